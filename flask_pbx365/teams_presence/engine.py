"""Teams → PBX: one poll of ``getPresencesByUserId`` for the tenant's linked users, applied through :mod:`.rules`.

A poll costs one request per 650 users (Graph's limit per request) and one read of the remembered readings; only
users whose Teams presence changed since the last poll reach the PBX (their host users, their statuses), and all
of them are written in one commit. Users who left Teams presence (unlinked, opted out, the feature switched off)
get back the status Teams had set for them.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import FeatureUnavailableError, GraphError, MalformedResponseError, PBX365Error
from ..graph import GraphClient
from ..host import HostUser, get_users
from ..models import TeamsPresenceState
from ..runs import RunContext, prune_quiet_runs
from ..state import get_state
from .rules import Seen, decide
from .scope import KIND, check_available, linked_users, options, unavailable_reason

log = logging.getLogger("flask_pbx365.teams_presence")

#: Graph's maximum of user ids per getPresencesByUserId request.
MAX_IDS = 650
ITEM_ACTION = {"set": "updated", "restore": "updated", "protected": "skipped"}


def _seen(row: TeamsPresenceState | None) -> Seen:
    if row is None:
        return Seen()
    return Seen(row.availability, row.activity, row.applied_status, row.previous_status, row.previous_source)


def _own_session_live(row: TeamsPresenceState | None, now: datetime) -> bool:
    return row is not None and row.session_expires_at is not None and row.session_expires_at > now


def read_presences(client: GraphClient, object_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{object id: (availability, activity)}`` for ``object_ids``, ``MAX_IDS`` per request."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(object_ids), MAX_IDS):
        chunk = object_ids[start:start + MAX_IDS]
        answer = client.post("/communications/getPresencesByUserId", {"ids": chunk}, idempotent=True) or {}
        value = answer.get("value")
        if not isinstance(value, list):
            raise MalformedResponseError("getPresencesByUserId answered without a value list.")
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found[item["id"].lower()] = (str(item.get("availability") or "PresenceUnknown"),
                                             str(item.get("activity") or item.get("availability") or ""))
    return found


class TeamsPresenceSync:
    """One execution of a Teams → PBX poll (see :func:`sync_teams_presence`)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.tenant = ctx.run.tenant
        self.dry_run = ctx.run.dry_run
        self.state = get_state()
        self.session = self.state.db.session
        self.host = self.state.host
        self.options = options(self.tenant)
        self.changed = {"set": 0, "restore": 0}

    def execute(self) -> tuple[str, str]:
        reason = unavailable_reason(self.tenant)
        if reason:
            raise FeatureUnavailableError(reason)
        active = self.options["enabled"] and self.options["to_pbx"]
        targets = dict(linked_users(self.tenant, self.options["opt_out"])) if active else {}
        rows = {row.host_user_id: row for row in self.session.scalars(
            sa.select(TeamsPresenceState).where(TeamsPresenceState.tenant == self.tenant))}
        covered = set(targets.values())
        self._release([row for hid, row in rows.items() if hid not in covered])
        self.ctx.report(force=True, phase="reading Teams presence", done=0, total=len(targets))
        readings: dict[str, tuple[str, str]] = {}
        if targets:
            try:
                with GraphClient(credentials_for(self.tenant), **client_options()) as client:
                    readings = read_presences(client, list(targets))
            except GraphError as exc:
                check_available(self.tenant, exc)
                raise GraphError(f"Reading Teams presence from Microsoft 365 failed: {exc}", status=exc.status,
                                 code=exc.code, request_id=exc.request_id) from exc
        self.ctx.report(done=len(targets))
        self._apply(targets, rows, readings)
        if not self.dry_run:
            keep = int(self.state.app.config["PBX365_PRESENCE_QUIET_RUNS"])
            prune_quiet_runs(self.tenant, KIND, keep=keep, current=self.ctx.run.id)
        self.ctx.commit()
        return ("failed" if self.ctx.counts["errors"] else "done"), self._summary(len(targets))

    def _summary(self, checked: int) -> str:
        counts = self.ctx.counts
        text = (f"set from Teams {self.changed['set']}, restored {self.changed['restore']}, "
                f"left alone {counts['skipped']}, errors {counts['errors']}.")
        if not (self.options["enabled"] and self.options["to_pbx"]):
            text = f"Teams → PBX is off (Teams presence tab), so nothing was read: {text}"
        else:
            text = f"Read the Teams presence of {checked} users: {text}"
        return f"Dry run, nothing was changed. {text}" if self.dry_run else text

    # --- applying --------------------------------------------------------------------------------------------

    def _apply(self, targets: dict[str, str], rows: dict[str, TeamsPresenceState],
               readings: dict[str, tuple[str, str]]) -> None:
        now = datetime.now(timezone.utc)
        changed = {oid: hid for oid, hid in targets.items() if oid in readings
                   and (rows.get(hid) is None or (rows[hid].availability, rows[hid].activity) != readings[oid])}
        if not changed:
            return
        users = {u.id: u for u in get_users(self.host, self.tenant, changed.values())}
        new_rows: list[dict[str, Any]] = []
        for oid, hid in changed.items():
            user, row = users.get(hid), rows.get(hid)
            if user is None or not user.enabled:
                continue
            try:
                with self.session.begin_nested():
                    status, source = self.host.get_presence(self.tenant, hid)
                    decision = decide(status, source, _seen(row), *readings[oid], self.options["mapping"],
                                      _own_session_live(row, now))
                    if decision.action in self.changed:
                        self.changed[decision.action] += 1
                    if not self.dry_run:
                        if decision.status is not None:
                            self.host.set_presence(self.tenant, hid, decision.status, decision.source)
                        if row is None:
                            new_rows.append(self._new_row(oid, hid, decision.seen))
                        else:
                            self._store(row, oid, decision.seen)
            except PBX365Error as exc:
                self._item("error", oid, user, f"Setting the presence from Teams failed: {exc}")
                continue
            if decision.action in ITEM_ACTION:
                self._item(ITEM_ACTION[decision.action], oid, user, decision.reason)
        if new_rows:
            self.session.execute(sa.insert(TeamsPresenceState), new_rows)

    def _new_row(self, oid: str, hid: str, seen: Seen) -> dict[str, Any]:
        return {"tenant": self.tenant, "host_user_id": hid, "object_id": oid, "availability": seen.availability,
                "activity": seen.activity, "applied_status": seen.applied_status,
                "previous_status": seen.previous_status, "previous_source": seen.previous_source,
                "call_state": "idle", "updated_at": datetime.now(timezone.utc)}

    @staticmethod
    def _store(row: TeamsPresenceState, oid: str, seen: Seen) -> None:
        row.object_id = oid
        row.availability, row.activity, row.applied_status = seen.availability, seen.activity, seen.applied_status
        row.previous_status, row.previous_source = seen.previous_status, seen.previous_source

    def _release(self, rows: list[TeamsPresenceState]) -> None:
        """Give users who left Teams presence the status Teams had set back; end their sessions, then forget them."""
        for row in rows:
            if row.applied_status is not None:
                try:
                    with self.session.begin_nested():
                        status, source = self.host.get_presence(self.tenant, row.host_user_id)
                        if (status, source) == (row.applied_status, "teams") and not self.dry_run:
                            back = row.previous_status or "available"
                            self.host.set_presence(self.tenant, row.host_user_id, back,
                                                   row.previous_source or "user")  # type: ignore[arg-type]
                            self.changed["restore"] += 1
                except PBX365Error as exc:
                    log.warning("could not restore the presence of %s: %s", row.host_user_id, exc)
                    continue
            if self.dry_run:
                continue
            if row.session_expires_at is None:
                self.session.delete(row)
            else:  # the PBX → Teams job clears the session, the next poll forgets the row
                row.call_state, row.availability, row.activity, row.applied_status = "idle", None, None, None

    def _item(self, action: str, oid: str, user: HostUser, detail: str) -> None:
        self.ctx.item(action, object_id=oid, name=user.display_name or user.username, extension=user.extension,
                      detail=detail)


def sync_teams_presence(ctx: RunContext) -> tuple[str, str]:
    """The engine :func:`flask_pbx365.runs.execute` runs for ``sync teams-presence``."""
    return TeamsPresenceSync(ctx).execute()
