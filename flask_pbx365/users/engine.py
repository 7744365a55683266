"""The user sync engine: Microsoft Graph users → plan → PBX host adapter, in crash-safe batches.

Data flows one way: :class:`~flask_pbx365.graph.GraphClient` → this engine → :class:`~flask_pbx365.host.PBXHost`.
The views, the CLI and the RQ job all end up in :func:`sync_users`.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import DeltaTokenExpiredError, GraphError, NotFoundError, PBX365Error, PermissionMissingError
from ..graph import BatchRequest, GraphClient, prefetched
from ..host import HostUser, MailMessage, UserChange, UserChangeResult, apply_users, get_users
from ..models import DeltaState, UserLink, clip
from ..rows import in_keys, insert_rows, refresh_statistics
from ..runs import RunContext
from ..settings import get_settings
from ..state import get_state
from ..tenants import require_connection
from .extensions import ExtensionAllocator
from .guard import can_hold, check as guard_check
from .mapping import SELECT, is_enabled, is_nameless, options_hash
from .photos import sync_photos
from .plan import REMOVALS, UPSERTS, Action, LinkRow, Plan, Planner, link_rows
from .scope import Scope

log = logging.getLogger("flask_pbx365.sync")

KIND = "users"
#: Item action recorded for each plan action kind.
ITEM_ACTION = {"create": "created", "link": "linked", "update": "updated", "enable": "updated",
               "disable": "disabled", "delete": "deleted", "skip": "skipped"}


#: Application permissions that may write a user's business phone.
PHONE_WRITERS = frozenset({"User-Phone.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
#: Object ids per ``IN (...)`` lookup of links (well under every database's bound-parameter limit).
LOOKUP_CHUNK = 500
#: ``$top`` of a full read of ``/users``: Graph's maximum page size for users.
FULL_PAGE_SIZE = 999
#: What a business-phone write-back needs of a user.
WRITE_BACK_KEYS = ("id", "userPrincipalName", "displayName", "businessPhones")


def batch_size() -> int:
    return max(1, int(get_state().app.config["PBX365_SYNC_BATCH_SIZE"]))


class UserSync:
    """One execution of a user sync run (see :func:`sync_users`)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.run = ctx.run
        self.tenant = ctx.run.tenant
        self.state = get_state()
        self.session = self.state.db.session
        self.host = self.state.host
        self.options = get_settings(self.tenant)["user_sync"]
        self.directory_id = require_connection(self.tenant).directory_id.lower()
        self.graph_errors: list[str] = []
        self.full_reason = ""
        #: Object id -> extension whose write-back Microsoft refused (privileged admins), kept across runs.
        self.write_back_refused: dict[str, str] = {}
        self._phone_writer: bool | None = None
        #: Actions applied so far in this run (batches committed), and whether the extension group exists.
        self._applied = 0
        self._group_ready = False

    # --- reading ----------------------------------------------------------------------------------------------

    def _delta_state(self) -> DeltaState | None:
        return self.session.scalar(sa.select(DeltaState).where(DeltaState.tenant == self.tenant,
                                                                DeltaState.kind == KIND))

    def _full_reason(self, state: DeltaState | None, scope: Scope) -> str:
        """Why this round must read every user, or "" when the stored deltaLink still applies."""
        if state is None or not state.delta_link:
            return "first run"
        if (state.directory_id or "").lower() != self.directory_id:
            return "the directory (tenant) ID changed"
        if state.options_hash != options_hash(self.options):
            return "filters or mapped fields changed"
        if state.scope_hash != scope.members_hash():
            return "membership of the selected groups changed"
        return ""

    def _delta_round(self, client: GraphClient, delta_link: str) -> tuple[dict[str, dict], str]:
        """Every user of an incremental round by lower-case id, and the new deltaLink."""
        self.ctx.report(force=True, phase="reading", pages=0, read=0, full=False)
        rnd = client.delta(delta_link)
        users: dict[str, dict] = {}
        for count, page in enumerate(rnd, 1):
            for item in page:
                oid = str(item.get("id") or "").lower()
                if not oid:
                    continue
                previous = users.get(oid)
                # The same user can come more than once in a round; later data wins, partial data merges.
                if "@removed" in item or previous is None or "@removed" in previous:
                    users[oid] = item
                else:
                    users[oid] = {**previous, **item}
            self.ctx.report(pages=count, read=len(users))
        self._complete_partial(client, users)
        return users, rnd.delta_link

    def _full_pages(self, client: GraphClient) -> tuple[Iterator[list[dict]], str]:
        """The deltaLink for "now", then (lazily) every user, 999 a page.

        Fewest requests: users delta pages are small and take no $top, so a full round takes the deltaLink for
        "now" first ($deltatoken=latest, no data) and then lists /users. A change made during the listing comes
        again in the next round, which applies it once more: nothing is lost.
        """
        select = ",".join(SELECT)
        start = client.delta("/users/delta", params={"$select": select, "$deltatoken": "latest"})
        for _ in start:
            pass
        pages = (page.get("value") or [] for page in client.iter_pages(
            "/users", params={"$select": select, "$top": str(FULL_PAGE_SIZE)}))
        return pages, start.delta_link

    def _complete_partial(self, client: GraphClient, users: dict[str, dict]) -> None:
        """Delta may return only changed properties: read such users whole, so no decision rests on a guess."""
        partial = [oid for oid, u in users.items() if "@removed" not in u and any(k not in u for k in SELECT)]
        if not partial:
            return
        answers = client.batch([BatchRequest(str(i), "GET", f"/users/{oid}?$select={','.join(SELECT)}")
                                for i, oid in enumerate(partial)])
        for oid, answer in zip(partial, answers):
            if answer.ok and isinstance(answer.body, dict):
                users[oid] = {**{k: None for k in SELECT}, **users[oid], **answer.body}
            elif answer.status == 404:
                users[oid] = {"id": users[oid].get("id", oid), "@removed": {"reason": "changed"}}
            else:
                error = answer.error()
                self._graph_error(f"reading user {oid}: {error}")
                self.ctx.item("error", users.pop(oid), detail=f"Could not read the whole user: {error}")

    # --- the run ----------------------------------------------------------------------------------------------

    def execute(self) -> tuple[str, str]:
        ctx = self.ctx
        with GraphClient(credentials_for(self.tenant), **client_options()) as client:
            scope = Scope.from_options(self.options)
            ctx.report(force=True, phase="reading")
            state = self._delta_state()
            self.write_back_refused = dict(((state.applied or {}) if state else {}).get("write_back_refused") or {})
            now = datetime.now(timezone.utc)
            try:
                scope.load_groups(client)
                self.full_reason = self._full_reason(state, scope)
                if not self.full_reason:
                    users, delta_link = self._delta_round(client, state.delta_link)
            except DeltaTokenExpiredError:
                log.info("users delta token of %s expired: full resync", self.tenant)
                self.full_reason = "the delta token expired"
            except GraphError as exc:
                return "failed", f"Reading users from Microsoft 365 failed: {exc} Nothing was changed."
            if self.full_reason:
                return self._full_round(client, state, scope, now)
            ctx.report(force=True, phase="planning")
            links, host_users = self._known(users, now, scope)
            planner = Planner(self.options, scope, links, host_users, now)
            for oid, user in users.items():
                planner.consider(oid, user)
            linked = self.session.scalar(sa.select(sa.func.count()).select_from(UserLink).where(
                self._mine(), UserLink.state.in_(("active", "disabled"))))
            allocator = ExtensionAllocator.for_users(self.host, self.tenant, self.options["start_extension"],
                                                     host_users)
            return self._conclude(client, state, scope, planner.finish(False, set(users)), linked, allocator,
                                  False, delta_link, now)

    def _full_round(self, client: GraphClient, state: DeltaState | None, scope: Scope,
                    now: datetime) -> tuple[str, str]:
        """Read every user and plan against every link and PBX user.

        When the guard cannot hold this run (see :func:`~flask_pbx365.users.guard.can_hold`), the actions other
        than removals are applied as the pages arrive, while the next page is fetched; only the ids seen stay in
        memory. Otherwise the whole plan is made first.
        """
        ctx = self.ctx
        links = link_rows(self.session, self._mine())
        host_users = self.host.list_users(self.tenant)
        planner = Planner(self.options, scope, links, host_users, now)
        allocator = ExtensionAllocator.for_users(self.host, self.tenant, self.options["start_extension"], host_users)
        del host_users
        linked = sum(1 for link in links if link.state in ("active", "disabled"))
        writing = not self.run.dry_run and not can_hold(linked, int(self.options["guard_percent"]),
                                                        int(self.options["guard_max"]), ctx.confirmed)
        ctx.report(force=True, phase="reading and applying" if writing else "reading", pages=0, read=0, full=True)
        old_group = self._old_group(state)
        seen: set[str] = set()
        write_back: list[tuple[Action, str]] = []
        try:
            pages, delta_link = self._full_pages(client)
            for count, page in enumerate(prefetched(pages), 1):
                for item in page:
                    oid = str(item.get("id") or "").lower()
                    # The first answer wins: a change during the listing comes in the next (delta) round.
                    if oid and oid not in seen:
                        seen.add(oid)
                        planner.consider(oid, item)
                ctx.report(pages=count, read=len(seen))
                if writing:
                    self._apply(client, planner.take_ready(), allocator, old_group, now, write_back)
        except GraphError as exc:
            if not self._applied:
                return "failed", f"Reading users from Microsoft 365 failed: {exc} Nothing was changed."
            ctx.commit()
            return "failed", (f"Reading users from Microsoft 365 failed after {len(seen)} users: {exc} "
                              f"{self._summary(True)[:-1]} until then; nobody was disabled or deleted, and the "
                              "next run reads every user again.")
        for action, extension in write_back:  # the Graph client is free again
            self._write_back(client, action, extension)
        if write_back:
            ctx.commit()
        return self._conclude(client, state, scope, planner.finish(True, seen), linked, allocator, True,
                              delta_link, now)

    def _conclude(self, client: GraphClient, state: DeltaState | None, scope: Scope, plan: Plan, linked: int,
                  allocator: ExtensionAllocator, full: bool, delta_link: str, now: datetime) -> tuple[str, str]:
        """The rest of a run once every user was read: the guard, what is left to apply, removals, photos."""
        ctx = self.ctx
        ctx.report(force=True, phase="planning")
        if self.graph_errors:
            plan.actions = [a for a in plan.actions if a.kind not in REMOVALS]
        verdict = guard_check(plan.removals, linked, int(self.options["guard_percent"]),
                              int(self.options["guard_max"]), ctx.confirmed)
        if self.run.dry_run:
            return self._preview(plan, allocator, full, verdict.hold)
        if verdict.hold:
            self._record_plan(plan, allocator, "planned, waiting for confirmation")
            self.run.progress = {**(self.run.progress or {}), "held_removals": verdict.removals}
            ctx.commit()
            self._notify_held(verdict.message)
            return "waiting_confirmation", verdict.message
        actions = [a for a in plan.actions if a.kind not in REMOVALS]
        ctx.report(force=True, phase="applying", done=self._applied, total=self._applied + len(actions))
        self._apply(client, actions, allocator, self._old_group(state), now)
        if self.options["photos"]:
            self._photos(client, plan)
        if self.graph_errors:
            ctx.commit()
            return "failed", (f"{self._summary(full)} Some Microsoft Graph calls failed ({self.graph_errors[0]}"
                              f"{f' and {len(self.graph_errors) - 1} more' if len(self.graph_errors) > 1 else ''}"
                              "), so nobody was disabled or deleted in this run; the next run tries again.")
        self._apply_removals(plan, now)
        self._save_state(state, delta_link, scope, full, now)
        ctx.commit()
        return "done", self._summary(full)

    @staticmethod
    def _old_group(state: DeltaState | None) -> str | None:
        """The extension group the last complete round applied (to leave it when the setting changed)."""
        return (state.applied or {}).get("extension_group") if state else None

    # --- what the PBX side knows ------------------------------------------------------------------------------

    def _mine(self) -> sa.ColumnElement[bool]:
        return sa.and_(UserLink.tenant == self.tenant, sa.func.lower(UserLink.directory_id) == self.directory_id)

    def _known(self, users: dict[str, dict], now: datetime, scope: Scope) -> tuple[list[LinkRow], list[HostUser]]:
        """The links and PBX users an incremental round's plan needs (a full round needs them all).

        It costs what the round brings: the links of the users it returned plus the disabled users whose
        deletion came due, and only those users from the PBX, unless someone unlinked came (to link by UPN or
        email, or to create on a free extension, the PBX's users are listed once).
        """
        links: list[LinkRow] = []
        oids = sorted(users)
        for start in range(0, len(oids), LOOKUP_CHUNK):
            chunk = oids[start:start + LOOKUP_CHUNK]
            links += link_rows(self.session, self._mine(), in_keys(self.session, UserLink.object_id, chunk))
        if self.options["deprovision"] == "delete":
            due = now - timedelta(days=int(self.options["delete_after_days"]))
            seen = {link.id for link in links}
            links += [link for link in link_rows(self.session, self._mine(), UserLink.state == "disabled",
                                                 UserLink.disabled_at <= due) if link.id not in seen]
        by_oid = {link.object_id.lower(): link for link in links}
        # Only someone the plan may link or create needs the PBX's whole list (to match by UPN or email, and
        # for free extensions); a guest, a disabled or an unselected user without a link only gets skipped.
        newcomer = any("@removed" not in user and (oid not in by_oid or by_oid[oid].state == "deleted")
                       and scope.selects(user) and is_enabled(user) and not scope.excluded_type(user)
                       and not is_nameless(user) for oid, user in users.items())
        if newcomer:
            return links, self.host.list_users(self.tenant)
        return links, get_users(self.host, self.tenant, [link.host_user_id for link in links])

    def _summary(self, full: bool) -> str:
        how = f"Full sync ({self.full_reason})" if full else "Incremental sync"
        counts = ", ".join(f"{v} {k}" for k, v in self.ctx.counts.items() if v)
        return f"{how}: {counts or 'no changes'}."

    # --- preview and held plans -------------------------------------------------------------------------------

    def _record_plan(self, plan: Plan, allocator: ExtensionAllocator, note: str) -> None:
        for action in plan.actions:
            if action.kind not in ITEM_ACTION:
                continue
            extension = allocator.peek() if action.kind == "create" else (
                action.host_user.extension if action.host_user else None)
            detail = "; ".join(x for x in (action.reason, action.mapped.caller_id_note if action.mapped else "", note)
                               if x)
            self.ctx.item(ITEM_ACTION[action.kind], action.user, extension=extension, detail=detail,
                          object_id=action.object_id, upn=action.upn, name=action.name)

    def _preview(self, plan: Plan, allocator: ExtensionAllocator, full: bool, would_hold: bool) -> tuple[str, str]:
        self._record_plan(plan, allocator, "dry run: not applied")
        self.ctx.commit()
        held = " A real run would be held for the admin's confirmation (mass-change guard)." if would_hold else ""
        photos = " Photos are compared during real runs only." if self.options["photos"] else ""
        return "done", f"Dry run, nothing was changed. {self._summary(full)}{held}{photos}"

    def _notify_held(self, message: str) -> None:
        if not get_settings(self.tenant)["notifications"]["enabled"]:
            return
        recipients = self.host.admin_emails(self.tenant)
        if not recipients:
            return
        try:
            self.host.send_mail(self.tenant, MailMessage(
                to=recipients, subject="Microsoft 365 user sync is waiting for your confirmation",
                body=f"{message}\n\nRun: {self.run.id}\nOpen Microsoft 365 integration > User Sync to review the "
                     "list of users it would disable or delete, then confirm or change the filters."))
            self.session.commit()
        except PBX365Error:
            log.warning("could not mail the admins of %s about held run %s", self.tenant, self.run.id,
                        exc_info=True)

    # --- applying ---------------------------------------------------------------------------------------------

    def _batches(self, actions: list[Action]) -> Iterable[list[Action]]:
        size = batch_size()
        for start in range(0, len(actions), size):
            yield actions[start:start + size]

    def _apply(self, client: GraphClient, actions: list[Action], allocator: ExtensionAllocator,
               old_group: str | None, now: datetime, write_back_later: list[tuple[Action, str]] | None = None) -> None:
        """Apply ``actions`` (no removals) batch by batch, each batch committed with its links and items.

        Business phones are written back after each batch, or, while the Graph client is still reading the
        round, collected in ``write_back_later`` (slimmed to what the write needs).
        """
        group = self.options["extension_group"]
        if not self._group_ready and any(a.kind in UPSERTS for a in actions):
            self.host.ensure_group(self.tenant, group)
            self._group_ready = True
        for batch in self._batches(actions):
            write_back = self._apply_batch(batch, allocator, group, old_group, now)
            self._applied += len(batch)
            self.ctx.report(done=self._applied)
            refresh_statistics(self.session, UserLink.__table__)
            self.ctx.commit()  # the batch's host changes, links and details together
            if write_back_later is not None:
                write_back_later += [(Action("writeback", {k: a.user.get(k) for k in WRITE_BACK_KEYS}), extension)
                                     for a, extension in write_back]
                continue
            for action, extension in write_back:
                self._write_back(client, action, extension)
            if write_back:
                self.ctx.commit()

    def _write_back(self, client: GraphClient, action: Action, extension: str) -> None:
        """The extension into the user's business phone. Microsoft refuses that for a privileged administrator
        (app-only callers may not change their phones): one error item naming the cause, remembered so it is not
        tried again every run, and no reason to hold back anyone's deprovisioning."""
        oid = (action.object_id or "").lower()
        try:
            client.patch(f"/users/{action.object_id}", {"businessPhones": [extension]})
        except GraphError as exc:
            if isinstance(exc, PermissionMissingError) and self._may_write_phones(client):
                self.write_back_refused[oid] = extension
                self.ctx.item("error", action.user, extension=extension, detail=(
                    "Business phone not written: privileged admin: Microsoft does not allow app-only phone "
                    "updates of administrators. Set it in the Microsoft 365 admin center; the sync does not try "
                    "again until the extension changes."))
                return
            self._graph_error(f"writing the extension back to {action.upn}: {exc}")
            self.ctx.item("error", action.user, extension=extension,
                          detail=f"Could not write the extension to the business phone in Microsoft 365: {exc}")
        else:
            self.write_back_refused.pop(oid, None)

    def _may_write_phones(self, client: GraphClient) -> bool:
        """Whether the token carries a permission that writes phones (else a 403 is the app's, not the user's)."""
        if self._phone_writer is None:
            try:
                roles = set(client.token_roles())
            except GraphError:
                roles = set()
            self._phone_writer = bool(roles & PHONE_WRITERS)
        return self._phone_writer

    def _wants_write_back(self, action: Action, extension: str) -> bool:
        return (bool(self.options["write_back_phone"]) and action.user.get("businessPhones") != [extension]
                and self.write_back_refused.get((action.object_id or "").lower()) != extension)

    def _apply_batch(self, batch: list[Action], allocator: ExtensionAllocator, group: str, old_group: str | None,
                     now: datetime) -> list[tuple[Action, str]]:
        """Apply one batch's upserts in one host call (plus a retry round for extensions taken meanwhile); the
        links are written after. Returns the (action, extension) pairs whose business phone to write back."""
        changes: dict[str, tuple[Action, UserChange]] = {}
        links = LinkWrites(self.tenant, self.directory_id, now)
        for index, action in enumerate(batch):
            if action.kind == "skip":
                self.ctx.item("skipped", action.user, detail=action.reason)
            elif action.kind == "relabel":
                links.update(action.link.id, user_principal_name=clip(action.user.get("userPrincipalName")),
                             display_name=clip(action.user.get("displayName")))
            elif action.kind == "forget":
                links.update(action.link.id, state="deleted", reason=clip(action.reason))
            elif action.kind != "writeback":
                changes[str(index)] = (action, self._change(str(index), action, group, old_group))
        creates = [c for a, c in changes.values() if a.kind == "create"]
        others = [c for a, c in changes.values() if a.kind != "create"]
        results = {r.key: r for r in self._host_apply(others)}
        results.update(allocator.create_all(creates, self._host_apply))
        created = {results[c.key].user.id for c in creates if results[c.key].ok}
        if created:
            self._free_host_ids(created)
        write_back: list[tuple[Action, str]] = []
        for key, (action, _) in changes.items():
            result = results[key]
            if not result.ok:
                self.ctx.item("error", action.user, detail=f"{action.reason}: {result.error}" if action.reason
                              else str(result.error), object_id=action.object_id, upn=action.upn, name=action.name)
                continue
            host_user = result.user if action.kind == "create" else action.host_user
            links.upsert(action, host_user)
            detail = "; ".join(x for x in (action.reason, action.mapped.caller_id_note) if x)
            self.ctx.item(ITEM_ACTION[action.kind], action.user, extension=host_user.extension, detail=detail)
            if self._wants_write_back(action, host_user.extension):
                write_back.append((action, host_user.extension))
        write_back += [(a, a.host_user.extension) for a in batch if a.kind == "writeback"
                       and self._wants_write_back(a, a.host_user.extension)]
        links.execute(self.session)
        return write_back

    def _host_apply(self, changes: list[UserChange]) -> list[UserChangeResult]:
        return apply_users(self.host, self.tenant, changes, self.session.begin_nested) if changes else []

    def _change(self, key: str, action: Action, group: str, old_group: str | None) -> UserChange:
        mapped = action.mapped
        leave = (old_group,) if old_group and old_group != group else ()
        common = dict(key=key, fields=mapped.fields, set_caller_id=mapped.manage_caller_id,
                      caller_id=mapped.caller_id, join_groups=(group,), leave_groups=leave)
        if action.kind == "create":
            return UserChange(username=action.user.get("userPrincipalName") or action.user["id"], **common)
        return UserChange(user_id=action.host_user.id, enabled=True if action.kind == "enable" else None, **common)

    def _free_host_ids(self, host_user_ids: set[str]) -> None:
        """A host that reuses ids may hand out the id of a user deleted behind the sync's back: that old link
        is marked deleted before a new one takes the id."""
        ids = sorted(host_user_ids)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            for stale in self.session.scalars(sa.select(UserLink).where(
                    UserLink.tenant == self.tenant,
                    in_keys(self.session, UserLink.host_user_id, ids[start:start + LOOKUP_CHUNK]))):
                stale.host_user_id = f"gone-{stale.id}"
                stale.state, stale.reason = "deleted", "the PBX user was deleted in the PBX"
        self.session.flush()

    def _apply_removals(self, plan: Plan, now: datetime) -> None:
        removals = plan.of(*REMOVALS)
        if not removals:
            return
        self.ctx.report(force=True, phase="deprovisioning", done=0, total=len(removals))
        done = 0
        for batch in self._batches(removals):
            changes = [UserChange(str(i), user_id=a.host_user.id, delete=a.kind == "delete",
                                  enabled=False if a.kind == "disable" else None) for i, a in enumerate(batch)]
            links = LinkWrites(self.tenant, self.directory_id, now)
            for action, result in zip(batch, self._host_apply(changes)):
                link, host_user = action.link, action.host_user
                if not result.ok:
                    self.ctx.item("error", action.user, extension=host_user.extension, detail=str(result.error),
                                  object_id=action.object_id, upn=action.upn, name=action.name)
                    continue
                if action.kind == "disable":
                    links.update(link.id, state="disabled", disabled_at=now, reason=clip(action.reason))
                else:
                    links.update(link.id, state="deleted", host_user_id=f"deleted-{link.id}",
                                 reason=clip(action.reason))
                self.ctx.item(ITEM_ACTION[action.kind], action.user, extension=host_user.extension,
                              detail=action.reason, object_id=action.object_id, upn=action.upn, name=action.name)
            links.execute(self.session)
            done += len(batch)
            self.ctx.report(done=done)
            self.ctx.commit()

    def _photos(self, client: GraphClient, plan: Plan) -> None:
        links = list(self.session.scalars(sa.select(UserLink).where(
            UserLink.tenant == self.tenant, sa.func.lower(UserLink.directory_id) == self.directory_id,
            UserLink.state == "active").order_by(UserLink.id)))
        self.ctx.report(force=True, phase="photos", done=0, total=len(links))
        progress = {"done": 0}

        def changed(link: UserLink, what: str) -> None:
            self.ctx.item("updated", object_id=link.object_id, upn=link.user_principal_name,
                          name=link.display_name, detail=what)

        def failed(link: UserLink, error: GraphError) -> None:
            if isinstance(error, NotFoundError):
                return
            self._graph_error(f"reading the photo of {link.user_principal_name}: {error}")
            self.ctx.item("error", object_id=link.object_id, upn=link.user_principal_name, name=link.display_name,
                          detail=f"Could not read the photo: {error}")

        def chunk_done(n: int) -> None:
            progress["done"] += n
            self.ctx.report(done=progress["done"])
            self.ctx.commit()

        try:
            sync_photos(client, self.host, self.tenant, links, changed, failed, chunk_done)
        except GraphError as exc:
            self.session.rollback()
            self._graph_error(f"reading photos: {exc}")

    def _graph_error(self, what: str) -> None:
        log.warning("user sync of %s: Graph error %s", self.tenant, what)
        self.graph_errors.append(what)

    def _save_state(self, state: DeltaState | None, delta_link: str, scope: Scope, full: bool,
                    now: datetime) -> None:
        if state is None:
            state = DeltaState(tenant=self.tenant, kind=KIND, applied={})
            self.session.add(state)
        state.directory_id = self.directory_id
        state.delta_link = delta_link
        state.options_hash = options_hash(self.options)
        state.scope_hash = scope.members_hash()
        state.applied = {"extension_group": self.options["extension_group"],
                         "write_back_refused": dict(self.write_back_refused)}
        if full:
            state.full_sync_at = now


class LinkWrites:
    """One batch's writes to links: new links in one INSERT, changes with one executemany per set of columns.

    Links are not written through the ORM: planning holds them as :class:`~.plan.LinkRow` columns, and a flush
    per batch of thousands of changed objects would cost more than the host's own writes.
    """

    def __init__(self, tenant: str, directory_id: str, now: datetime):
        self.tenant, self.directory_id, self.now = tenant, directory_id, now
        self.new: list[dict] = []
        self.changed: dict[tuple[str, ...], list[dict]] = {}  # by the columns a row sets

    def update(self, link_id: int, **values) -> None:
        """Set ``values`` on link ``link_id`` (``updated_at`` follows)."""
        row = {f"b_{k}": v for k, v in values.items()} | {"b_id": link_id, "b_updated_at": self.now}
        self.changed.setdefault(tuple(row), []).append(row)

    def upsert(self, action: Action, host_user: HostUser) -> None:
        user, link = action.user, action.link
        values = dict(host_user_id=host_user.id, state="active", reason=None, disabled_at=None,
                      user_principal_name=clip(user.get("userPrincipalName")),
                      display_name=clip(user.get("displayName")), fields_hash=action.mapped.digest(),
                      last_seen_at=self.now)
        if link is None:
            self.new.append(dict(values, tenant=self.tenant, directory_id=self.directory_id,
                                 object_id=user["id"].lower(), photo_etag=None, created_at=self.now,
                                 updated_at=self.now))
        elif action.kind == "create":  # the PBX user was deleted and is created again: its photo too
            self.update(link.id, **values, photo_etag=None)
        else:
            self.update(link.id, **values)

    def execute(self, session) -> None:
        table = UserLink.__table__
        if self.new:
            insert_rows(session, table, self.new)
        for columns, rows in self.changed.items():
            # Bound names differ from the columns' (SQLAlchemy reserves those for SET).
            statement = sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(
                {k[2:]: sa.bindparam(k) for k in columns if k != "b_id"})
            session.execute(statement, rows)
        self.new, self.changed = [], {}


def sync_users(ctx: RunContext) -> tuple[str, str]:
    """The user sync engine for :func:`flask_pbx365.runs.execute`: ``(status, message)``."""
    return UserSync(ctx).execute()


def reset_delta(tenant: str) -> None:
    """Forget the stored deltaLink: the next run is a full resync."""
    session = get_state().db.session
    session.execute(sa.delete(DeltaState).where(DeltaState.tenant == tenant, DeltaState.kind == KIND))
    session.commit()
