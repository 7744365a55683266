"""Microsoft Teams presence, both ways.

- Teams → PBX (:mod:`.engine`, rules in :mod:`.rules`): a poll of ``getPresencesByUserId`` every
  ``interval_seconds`` (one request per 650 users) maps Teams availability to PBX statuses.
- PBX → Teams (:mod:`.calls`): the host calls :func:`call_state_changed` when a phone rings, answers or hangs up;
  the user shows *Busy, In a call* in Teams while it lasts.

Who is covered and where it cannot work: :mod:`.scope`. The tab: :mod:`.tab`; the declaration: :mod:`.feature`.
"""
from __future__ import annotations

from .calls import call_state_changed, push_call_states

__all__ = ["call_state_changed", "push_call_states"]
