"""What a feature is: one frozen declaration of everything the rest of the extension needs to know about it.

Each feature folder (``users/``, ``contacts/``, ``presence/``, ``mail/``, ``sso/``) declares one :class:`Feature`
in its ``feature.py``; :mod:`flask_pbx365.features` lists them in one explicit ``FEATURES`` tuple, and the extension
keeps the ones switched on in its state. The scheduler, the run machinery, the CLI, test-connection, settings and
the admin tabs iterate that list; nothing registers itself at import time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .routing import Routes

#: An option validator: ``check(path, value) -> normalised value`` raising SettingsError.
Validator = Callable[[str, Any], Any]
#: A settings section: option -> (default, validator).
SectionSchema = Mapping[str, tuple[Any, Validator]]


@dataclass(frozen=True)
class Tab:
    """An admin tab: its endpoint (``url_for("pbx365_admin." + endpoint)``), its label and its routes."""

    endpoint: str
    label: str
    routes: Routes


@dataclass(frozen=True)
class Subscriptions:
    """The change-notification subscriptions a feature wants.

    ``resources(ctx)`` yields the Graph resources to watch for a tenant (``ctx`` is a
    :class:`flask_pbx365.notifications.subscriptions.SubscriptionContext`); a notification on any of them
    requests a run of the feature's kind. ``lifetime_minutes`` stays a little under Graph's maximum for them; ``change_type`` as Graph
    spells it.
    """

    resources: Callable[[Any], Iterable[str]]
    lifetime_minutes: int
    change_type: str = "created,updated,deleted"


@dataclass(frozen=True)
class Feature:
    """One feature of the integration, declared once.

    - ``name``: the feature's id; for a feature with runs also their ``kind`` (``users``, ``contacts``, ...).
    - ``label``: what admins read ("User sync").
    - ``job``: the top-level RQ job function ``job(tenant, run_id)`` of its runs, or ``None`` without runs.
    - ``schedule``: ``schedule(settings) -> (schedule, time zone) | None``: when the tenant's settings (the
      section named by ``schedule_key``) make runs automatic.
    - ``schedule_key``: the settings section that holds the feature's schedule options.
    - ``cli_name``: ``flask pbx365 sync <cli_name> TENANT`` (``None``: no sync command); ``cli_help`` its help.
    - ``permissions``: test-connection entry -> alternative permission sets (the first, least privileged one is
      what the admin is told to add); required ones first, then the optional ones in ``optional``.
    - ``optional``: the entries of ``permissions`` only some options need (photos, a group filter, write-back).
    - ``settings``: settings section -> option schema (``settings export`` / ``import``).
    - ``tab``: the admin tab, or ``None``.
    - ``public_routes``: routes on the public blueprint (``PBX365_URL_PREFIX``), or ``None``.
    - ``probe``: ``probe(tenant) -> {entry: reason}``: entries of ``permissions`` that cannot work whatever is
      granted (a cloud without the API, say), called by test-connection; ``None`` when there is nothing to check.
    - ``subscriptions``: the change notifications it wants, or ``None``.
    - ``scheduler_pass``: ``scheduler_pass(app)``, called by every pass of ``flask pbx365 scheduler`` for work
      that is not a run (renewing Teams call sessions), or ``None``.
    """

    name: str
    label: str
    job: Callable[[str, str], object] | None = None
    schedule: Callable[[Mapping[str, Any]], tuple[str, str] | None] | None = None
    schedule_key: str | None = None
    cli_name: str | None = None
    cli_help: str = ""
    permissions: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    optional: tuple[str, ...] = ()
    settings: Mapping[str, SectionSchema] = field(default_factory=dict)
    tab: Tab | None = None
    public_routes: Routes | None = None
    probe: Callable[[str], Mapping[str, str]] | None = None
    subscriptions: Subscriptions | None = None
    scheduler_pass: Callable[[Any], object] | None = None

    @property
    def runs(self) -> bool:
        """True when the feature has runs (a kind, a job, a run history)."""
        return self.job is not None


def find_feature(features: Iterable[Feature], name: str) -> Feature | None:
    """The feature called ``name`` among ``features``."""
    return next((f for f in features if f.name == name), None)
