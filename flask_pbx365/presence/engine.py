"""The calendar presence engine: Outlook calendars → :mod:`.rules` → ``host.set_presence(..., "calendar")``.

Every linked, active, enabled PBX user's calendar is read for the moment of the run; each batch of users commits
the PBX status changes together with the remembered state, so a killed worker leaves nothing half-made. Users
that left calendar presence (unlinked, disabled, or the feature turned off) get their remembered status back.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import NamedTuple

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import GraphError, NotFoundError, PBX365Error, PermissionMissingError
from ..graph import GraphClient
from ..host import HostUser, get_presences
from ..models import PresenceState, UserLink
from ..runs import RunContext, prune_quiet_runs
from ..settings import get_settings
from ..state import get_state
from ..tenants import require_connection
from .calendar import read_meetings
from .rules import Decision, Meeting, Memory, decide

log = logging.getLogger("flask_pbx365.presence")

KIND = "presence"
CHUNK = 20  # one $batch call of calendarView requests
#: Item action recorded for each decision that is worth a line in the run's details.
ITEM_ACTION = {"set": "updated", "restore": "updated", "protected": "skipped", "override": "skipped"}


def memory_of(row: PresenceState | None) -> Memory:
    if row is None:
        return Memory()
    return Memory(row.applied_status, row.event_id, row.event_subject, row.event_end, row.previous_status,
                  row.previous_source, tuple(row.ignored_event_ids or ()))


class Linked(NamedTuple):
    """What the pass needs of a user's link."""

    host_user_id: str
    object_id: str
    user_principal_name: str | None
    display_name: str | None


class PresenceSync:
    """One execution of a calendar presence run (see :func:`sync_presence`)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.tenant = ctx.run.tenant
        self.dry_run = ctx.run.dry_run
        self.state = get_state()
        self.session = self.state.db.session
        self.host = self.state.host
        self.options = get_settings(self.tenant)["presence"]
        self.directory_id = require_connection(self.tenant).directory_id.lower()
        self.changed = {"set": 0, "restore": 0}

    # --- who -------------------------------------------------------------------------------------------------

    def _targets(self, host_users: dict[str, HostUser]) -> list[tuple[Linked, HostUser]]:
        # Columns, not ORM objects: each chunk's commit would expire thousands of links and reload them one by one.
        links = self.session.execute(sa.select(
            UserLink.host_user_id, UserLink.object_id, UserLink.user_principal_name, UserLink.display_name).where(
            UserLink.tenant == self.tenant, UserLink.state == "active",
            sa.func.lower(UserLink.directory_id) == self.directory_id).order_by(UserLink.id))
        return [(Linked(*link), host_users[link.host_user_id]) for link in links
                if link.host_user_id in host_users and host_users[link.host_user_id].enabled]

    def _states(self, host_user_ids: list[str]) -> dict[str, PresenceState]:
        """The remembered states of ``host_user_ids``, by host user id."""
        query = sa.select(PresenceState).where(PresenceState.tenant == self.tenant)
        out: dict[str, PresenceState] = {}
        for start in range(0, len(host_user_ids), 500):
            out.update((row.host_user_id, row) for row in self.session.scalars(
                query.where(PresenceState.host_user_id.in_(host_user_ids[start:start + 500]))))
        return out

    def _remembered(self) -> set[str]:
        return set(self.session.scalars(sa.select(PresenceState.host_user_id).where(
            PresenceState.tenant == self.tenant)))

    # --- the run ---------------------------------------------------------------------------------------------

    def execute(self) -> tuple[str, str]:
        host_users = {u.id: u for u in self.host.list_users(self.tenant)}
        targets = self._targets(host_users) if self.options["enabled"] else []
        wanted = {host_user.id for _, host_user in targets}
        gone = sorted(self._remembered() - wanted)
        self._release(list(self._states(gone).values()) if gone else [], host_users)
        self.ctx.report(force=True, phase="reading calendars", done=0, total=len(targets))
        if targets:
            with GraphClient(credentials_for(self.tenant), **client_options()) as client:
                for start in range(0, len(targets), CHUNK):
                    self._chunk(client, targets[start:start + CHUNK], datetime.now(timezone.utc))
        if not self.dry_run:
            keep = int(self.state.app.config["PBX365_PRESENCE_QUIET_RUNS"])
            prune_quiet_runs(self.tenant, KIND, keep=keep, current=self.ctx.run.id)
        self.ctx.commit()
        if self.ctx.counts["errors"]:
            return "failed", (f"{self._summary(len(targets))} The statuses of users whose calendar could not be read "
                              "were left as they were; the next run tries again.")
        return "done", self._summary(len(targets))

    def _summary(self, checked: int) -> str:
        counts = self.ctx.counts
        text = (f"set from meetings {self.changed['set']}, restored {self.changed['restore']}, "
                f"left alone {counts['skipped']}, errors {counts['errors']}.")
        if not self.options["enabled"]:
            text = f"Calendar presence is off (Presence tab), so no calendar was read: {text}"
        else:
            text = f"Checked {checked} calendars: {text}"
        return f"Dry run, nothing was changed. {text}" if self.dry_run else text

    def _chunk(self, client: GraphClient, chunk: list[tuple[Linked, HostUser]], now: datetime) -> None:
        try:
            answers = read_meetings(client, [link.object_id for link, _ in chunk], self.options["mapping"], now)
        except GraphError as exc:
            raise GraphError(f"Reading calendars from Microsoft 365 failed: {exc}", status=exc.status,
                             code=exc.code, request_id=exc.request_id) from exc
        ids = [host_user.id for _, host_user in chunk]
        states, presences = self._states(ids), get_presences(self.host, self.tenant, ids)
        for (link, host_user), answer in zip(chunk, answers):
            if isinstance(answer.error, PermissionMissingError):
                raise answer.error  # the whole tenant lacks Calendars.Read: one clear failure, not N errors
            if isinstance(answer.error, NotFoundError):
                self._item("skipped", link, host_user, f"No Outlook calendar could be read ({answer.error}); "
                           "the user may have no Exchange Online mailbox.")
            elif answer.error is not None:
                self._item("error", link, host_user, f"Reading the calendar failed: {answer.error}")
            else:
                self._one(link, host_user, states.get(host_user.id), answer.meetings, presences.get(host_user.id))
        self.ctx.report(done=int(self.ctx.progress.get("done") or 0) + len(chunk))
        self.ctx.commit()  # the chunk's PBX statuses and remembered states together

    def _one(self, link: Linked, host_user: HostUser, row: PresenceState | None, meetings: list[Meeting],
             current: tuple[str, str] | None) -> None:
        """``current``: the user's PBX status and source as read for the chunk (None: ask the host alone)."""
        try:
            status, source = current if current is not None else self.host.get_presence(self.tenant, host_user.id)
            decision = decide(status, source, memory_of(row), meetings)
            if decision.status is None:  # only our own memory changes: no host write to isolate
                self._apply(decision, host_user, link.object_id, row)
            else:
                with self.session.begin_nested():
                    self._apply(decision, host_user, link.object_id, row)
        except PBX365Error as exc:
            self._item("error", link, host_user, f"Setting the presence failed: {exc}")
            return
        if decision.action in ITEM_ACTION:
            self._item(ITEM_ACTION[decision.action], link, host_user, decision.reason)

    # --- applying --------------------------------------------------------------------------------------------

    def _apply(self, decision: Decision, host_user: HostUser, object_id: str, row: PresenceState | None) -> None:
        if decision.action in self.changed:
            self.changed[decision.action] += 1
        if self.dry_run:
            return
        if decision.status is not None:
            self.host.set_presence(self.tenant, host_user.id, decision.status, decision.source)
        memory = decision.memory
        if memory.empty:
            if row is not None:
                self.session.delete(row)
            return
        if row is None:
            row = PresenceState(tenant=self.tenant, host_user_id=host_user.id, object_id=object_id)
            self.session.add(row)
        row.object_id = object_id
        row.applied_status, row.event_id, row.event_subject = (memory.applied_status, memory.event_id,
                                                               memory.event_subject)
        row.event_end, row.previous_status, row.previous_source = (memory.event_end, memory.previous_status,
                                                                   memory.previous_source)
        row.ignored_event_ids = list(memory.ignored)

    def _release(self, rows: list[PresenceState], host_users: dict[str, HostUser]) -> None:
        """Give users who left calendar presence their remembered status back, and forget them."""
        for row in rows:
            host_user = host_users.get(row.host_user_id)
            if host_user is not None:
                try:
                    with self.session.begin_nested():
                        status, source = self.host.get_presence(self.tenant, host_user.id)
                        decision = decide(status, source, memory_of(row), [])
                        self._apply(decision, host_user, row.object_id, None)
                except PBX365Error as exc:
                    log.warning("could not restore the presence of %s: %s", host_user.id, exc)
                    continue
                if decision.action == "restore":
                    self.ctx.item("updated", extension=host_user.extension, object_id=row.object_id,
                                  name=host_user.display_name or host_user.username,
                                  detail=f"{decision.reason} (calendar presence no longer applies to this user)")
            if not self.dry_run:
                self.session.delete(row)
        self.ctx.commit()

    def _item(self, action: str, link: Linked, host_user: HostUser, detail: str) -> None:
        self.ctx.item(action, object_id=link.object_id, upn=link.user_principal_name,
                      name=link.display_name or host_user.display_name, extension=host_user.extension,
                      detail=detail)


def sync_presence(ctx: RunContext) -> tuple[str, str]:
    """The engine :func:`flask_pbx365.runs.execute` runs for ``sync presence``."""
    return PresenceSync(ctx).execute()
