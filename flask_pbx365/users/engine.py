"""The user sync engine: Microsoft Graph users → plan → PBX host adapter, in crash-safe batches.

Data flows one way: :class:`~flask_pbx365.graph.GraphClient` → this engine → :class:`~flask_pbx365.host.PBXHost`.
The views, the CLI and the RQ job all end up in :func:`sync_users`.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Iterable

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import DeltaTokenExpiredError, GraphError, NotFoundError, PBX365Error, PermissionMissingError
from ..graph import BatchRequest, GraphClient
from ..host import HostUser, MailMessage, UserChange, UserChangeResult, apply_users, get_users
from ..models import DeltaState, UserLink, clip
from ..runs import RunContext
from ..settings import get_settings
from ..state import get_state
from ..tenants import require_connection
from .extensions import ExtensionAllocator
from .guard import check as guard_check
from .mapping import SELECT, is_enabled, is_nameless, options_hash
from .photos import sync_photos
from .plan import REMOVALS, UPSERTS, Action, Plan, Planner
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

    # --- reading ----------------------------------------------------------------------------------------------

    def _delta_state(self) -> DeltaState | None:
        return self.session.scalar(sa.select(DeltaState).where(DeltaState.tenant == self.tenant,
                                                                DeltaState.kind == KIND))

    def _read(self, client: GraphClient, state: DeltaState | None, scope: Scope) -> tuple[dict[str, dict], bool, str]:
        """Every user of this round by lower-case id, whether the round was full, and the new deltaLink."""
        opts_hash = options_hash(self.options)
        full = True
        if state is None or not state.delta_link:
            self.full_reason = "first run"
        elif (state.directory_id or "").lower() != self.directory_id:
            self.full_reason = "the directory (tenant) ID changed"
        elif state.options_hash != opts_hash:
            self.full_reason = "filters or mapped fields changed"
        elif state.scope_hash != scope.members_hash():
            self.full_reason = "membership of the selected groups changed"
        else:
            full = False
        try:
            return self._round(client, None if full else state.delta_link)
        except DeltaTokenExpiredError:
            log.info("users delta token of %s expired: full resync", self.tenant)
            self.full_reason = "the delta token expired"
            return self._round(client, None)

    def _round(self, client: GraphClient, delta_link: str | None) -> tuple[dict[str, dict], bool, str]:
        full = delta_link is None
        self.ctx.report(force=True, phase="reading", pages=0, read=0, full=full)
        select = ",".join(SELECT)
        if full:
            # Fewest requests: users delta pages are small and take no $top, so a full round takes the deltaLink
            # for "now" first ($deltatoken=latest, no data) and then lists /users 999 a page. A change made during
            # the listing comes again in the next round, which applies it once more: nothing is lost.
            start = client.delta("/users/delta", params={"$select": select, "$deltatoken": "latest"})
            for _ in start:
                pass
            next_link = start.delta_link
            pages: Iterable[list[dict]] = (page.get("value") or [] for page in client.iter_pages(
                "/users", params={"$select": select, "$top": str(FULL_PAGE_SIZE)}))
        else:
            rnd = client.delta(delta_link)
            pages = rnd
        users: dict[str, dict] = {}
        count = 0
        for page in pages:
            count += 1
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
        if not full:
            self._complete_partial(client, users)
            next_link = rnd.delta_link
        return users, full, next_link

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
            try:
                scope.load_groups(client)
                users, full, delta_link = self._read(client, state, scope)
            except GraphError as exc:
                return "failed", f"Reading users from Microsoft 365 failed: {exc} Nothing was changed."
            ctx.report(force=True, phase="planning")
            now = datetime.now(timezone.utc)
            links, host_users = self._known(users, full, now, scope)
            planner = Planner(self.options, scope, links, host_users, now)
            for oid, user in users.items():
                planner.consider(oid, user)
            plan = planner.finish(full, set(users))
            if self.graph_errors:
                plan.actions = [a for a in plan.actions if a.kind not in REMOVALS]
            linked = self.session.scalar(sa.select(sa.func.count()).select_from(UserLink).where(
                self._mine(), UserLink.state.in_(("active", "disabled"))))
            verdict = guard_check(plan.removals, linked, int(self.options["guard_percent"]),
                                  int(self.options["guard_max"]), ctx.confirmed)
            allocator = ExtensionAllocator.for_users(self.host, self.tenant, self.options["start_extension"],
                                                     host_users)
            if self.run.dry_run:
                return self._preview(plan, allocator, full, verdict.hold)
            if verdict.hold:
                self._record_plan(plan, allocator, "planned, waiting for confirmation")
                self.run.progress = {**(self.run.progress or {}), "held_removals": verdict.removals}
                ctx.commit()
                self._notify_held(verdict.message)
                return "waiting_confirmation", verdict.message
            old_group = (state.applied or {}).get("extension_group") if state else None
            self._apply(client, plan, allocator, old_group, now)
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

    # --- what the PBX side knows ------------------------------------------------------------------------------

    def _mine(self) -> sa.ColumnElement[bool]:
        return sa.and_(UserLink.tenant == self.tenant, sa.func.lower(UserLink.directory_id) == self.directory_id)

    def _known(self, users: dict[str, dict], full: bool, now: datetime,
               scope: Scope) -> tuple[list[UserLink], list[HostUser]]:
        """The links and PBX users this round's plan needs.

        A full round needs them all (whoever was not returned is gone). An incremental round costs what it
        brings: the links of the users it returned plus the disabled users whose deletion came due, and only
        those users from the PBX, unless someone unlinked came (to link by UPN or email, or to create on a free
        extension, the PBX's users are listed once).
        """
        if full:
            links = list(self.session.scalars(sa.select(UserLink).where(self._mine())))
            return links, self.host.list_users(self.tenant)
        links = []
        oids = sorted(users)
        for start in range(0, len(oids), LOOKUP_CHUNK):
            links += self.session.scalars(sa.select(UserLink).where(
                self._mine(), UserLink.object_id.in_(oids[start:start + LOOKUP_CHUNK])))
        if self.options["deprovision"] == "delete":
            due = now - timedelta(days=int(self.options["delete_after_days"]))
            seen = {link.id for link in links}
            links += [link for link in self.session.scalars(sa.select(UserLink).where(
                self._mine(), UserLink.state == "disabled", UserLink.disabled_at <= due)) if link.id not in seen]
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

    def _apply(self, client: GraphClient, plan: Plan, allocator: ExtensionAllocator, old_group: str | None,
               now: datetime) -> None:
        actions = [a for a in plan.actions if a.kind not in REMOVALS]
        group = self.options["extension_group"]
        if plan.of(*UPSERTS):
            self.host.ensure_group(self.tenant, group)
        self.ctx.report(force=True, phase="applying", done=0, total=len(actions))
        done = 0
        for batch in self._batches(actions):
            write_back = self._apply_batch(batch, allocator, group, old_group, now)
            done += len(batch)
            self.ctx.report(done=done)
            self.ctx.commit()  # the batch's host changes, links and details together
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
        for index, action in enumerate(batch):
            if action.kind == "skip":
                self.ctx.item("skipped", action.user, detail=action.reason)
            elif action.kind == "relabel":
                action.link.user_principal_name = clip(action.user.get("userPrincipalName"))
                action.link.display_name = clip(action.user.get("displayName"))
            elif action.kind == "forget":
                action.link.state, action.link.reason = "deleted", clip(action.reason)
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
            extension = self._record_upsert(action, result.user if action.kind == "create" else action.host_user,
                                            now)
            if self._wants_write_back(action, extension):
                write_back.append((action, extension))
        write_back += [(a, a.host_user.extension) for a in batch if a.kind == "writeback"
                       and self._wants_write_back(a, a.host_user.extension)]
        self.session.flush()
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

    def _record_upsert(self, action: Action, host_user: HostUser, now: datetime) -> str:
        """The link and the run item of one applied upsert; returns the user's extension."""
        user, mapped, link = action.user, action.mapped, action.link
        if link is None:
            link = UserLink(tenant=self.tenant, directory_id=self.directory_id, object_id=user["id"].lower(),
                            host_user_id=host_user.id, created_at=now)
            self.session.add(link)
        link.host_user_id = host_user.id
        if action.kind == "create":
            link.photo_etag = None
        link.state, link.reason, link.disabled_at = "active", None, None
        link.user_principal_name = clip(user.get("userPrincipalName"))
        link.display_name = clip(user.get("displayName"))
        link.fields_hash = mapped.digest()
        link.last_seen_at = now
        detail = "; ".join(x for x in (action.reason, mapped.caller_id_note) if x)
        self.ctx.item(ITEM_ACTION[action.kind], user, extension=host_user.extension, detail=detail)
        return host_user.extension

    def _free_host_ids(self, host_user_ids: set[str]) -> None:
        """A host that reuses ids may hand out the id of a user deleted behind the sync's back: that old link
        is marked deleted before a new one takes the id."""
        ids = sorted(host_user_ids)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            for stale in self.session.scalars(sa.select(UserLink).where(
                    UserLink.tenant == self.tenant, UserLink.host_user_id.in_(ids[start:start + LOOKUP_CHUNK]))):
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
            for action, result in zip(batch, self._host_apply(changes)):
                link, host_user = action.link, action.host_user
                if not result.ok:
                    self.ctx.item("error", action.user, extension=host_user.extension, detail=str(result.error),
                                  object_id=action.object_id, upn=action.upn, name=action.name)
                    continue
                if action.kind == "disable":
                    link.state, link.disabled_at = "disabled", now
                else:
                    link.state = "deleted"
                    link.host_user_id = f"deleted-{link.id}"
                link.reason = clip(action.reason)
                self.ctx.item(ITEM_ACTION[action.kind], action.user, extension=host_user.extension,
                              detail=action.reason, object_id=action.object_id, upn=action.upn, name=action.name)
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


def sync_users(ctx: RunContext) -> tuple[str, str]:
    """The user sync engine for :func:`flask_pbx365.runs.execute`: ``(status, message)``."""
    return UserSync(ctx).execute()


def reset_delta(tenant: str) -> None:
    """Forget the stored deltaLink: the next run is a full resync."""
    session = get_state().db.session
    session.execute(sa.delete(DeltaState).where(DeltaState.tenant == tenant, DeltaState.kind == KIND))
    session.commit()
