"""Change notifications: Graph subscriptions that bring Microsoft 365 edits to the PBX in seconds.

- :func:`ensure_subscriptions` / :func:`list_subscriptions` / :func:`scheduler_pass`: :mod:`.subscriptions`.
- The public webhook ``POST {PBX365_URL_PREFIX}/notifications/<tenant>``: :mod:`.webhook` (imported by
  :mod:`flask_pbx365.views` to register the route).
- The RQ job the webhook enqueues: :func:`.jobs.process_pending_notifications`.
"""
from __future__ import annotations

from .subscriptions import (
    ensure_subscriptions,
    list_subscriptions,
    notification_url,
    scheduler_pass,
)

__all__ = ["ensure_subscriptions", "list_subscriptions", "notification_url", "scheduler_pass"]
