"""``DemoHost``: the demo PBX's implementation of :class:`flask_pbx365.host.PBXHost`.

Unit of work: the methods that change data only flush; the caller (the extension) commits or rolls back, so a
sync batch is all-or-nothing. ``login_user`` and ``issue_app_token`` commit, because the session or token they
create must be usable by the very next request.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import Response, current_app, flash, g, redirect, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.rows import in_keys, insert_rows, refresh_statistics
from flask_pbx365.host import (PRESENCE_SOURCES, PRESENCE_STATUSES, CallState, HostTenant, HostUser, MailMessage, PhonebookEntry,
                               PresenceSource, PresenceStatus, PublicURLs, SignInTarget, UserChange,
                               UserChangeResult, UserFields)

from . import directory
from .auth import current_admin, sign_in_admin, sign_in_web
from .models import (UNUSABLE_PASSWORD, AppToken, CompanyContact, ExtensionGroup, PersonalContact, Tenant, User, db,
                     extension_group_members, utcnow)
from .notifications import deliver

APP_TOKEN_LIFETIME = timedelta(hours=8)


class DemoHost:
    """The demo portal as the extension sees it. Tenants are slugs; user ids are the ``users.id`` as strings."""

    # --- tenancy and access -------------------------------------------------------------------------------
    def list_tenants(self) -> list[HostTenant]:
        return [HostTenant(t.slug, t.name) for t in db.session.scalars(sa.select(Tenant).order_by(Tenant.slug))]

    def current_tenant(self) -> str | None:
        admin = current_admin()
        return admin.tenant.slug if admin and admin.tenant else None

    def is_tenant_admin(self, tenant: str) -> bool:
        """A system admin may administer every tenant; a tenant admin only their own."""
        admin = current_admin()
        return admin is not None and directory.get_tenant(tenant) is not None and admin.may_administer(tenant)

    def login_url(self, next_path: str) -> str:
        return url_for("admin.login", next=next_path)

    # --- users and extensions -----------------------------------------------------------------------------
    def list_users(self, tenant: str) -> list[HostUser]:
        return [_host_user(u) for u in directory.tenant_users(self._tenant(tenant))]

    def get_user(self, tenant: str, user_id: str) -> HostUser | None:
        user = self._find_user(tenant, user_id)
        return _host_user(user) if user else None

    def create_user(self, tenant: str, username: str, extension: str, fields: UserFields) -> HostUser:
        """Create an enabled user named ``<local part of username>@<tenant>`` (made unique) with an unusable
        password: they sign in with Microsoft."""
        t = self._tenant(tenant)
        user = User(username=directory.unique_username(fields.email or username, t), extension=str(extension),
                    role="user", enabled=True, presence_status="available", presence_source="user")
        user.set_password(None)
        _apply_fields(user, fields)
        directory.add_user(t, user)
        return _host_user(user)

    def update_user(self, tenant: str, user_id: str, fields: UserFields) -> HostUser:
        user = self._user(tenant, user_id)
        _apply_fields(user, fields)
        db.session.flush()
        return _host_user(user)

    def set_user_enabled(self, tenant: str, user_id: str, enabled: bool) -> None:
        self._user(tenant, user_id).enabled = bool(enabled)
        db.session.flush()

    def delete_user(self, tenant: str, user_id: str) -> None:
        db.session.delete(self._user(tenant, user_id))
        db.session.flush()

    def is_extension_free(self, tenant: str, extension: str) -> bool:
        return directory.user_by_extension(self._tenant(tenant), str(extension)) is None

    # --- batch operations (PBXHostBatch) -------------------------------------------------------------------
    def get_users(self, tenant: str, user_ids: list[str]) -> dict[str, HostUser]:
        t = self._tenant(tenant)
        ids = [int(i) for i in user_ids if str(i).isdigit()]
        found: dict[str, HostUser] = {}
        for start in range(0, len(ids), CHUNK):
            rows = db.session.scalars(sa.select(User).options(selectinload(User.groups)).where(
                User.tenant_id == t.id, in_keys(db.session, User.id, ids[start:start + CHUNK])))
            found.update((str(u.id), _host_user(u)) for u in rows)
        return found

    def apply_users(self, tenant: str, changes: list[UserChange]) -> list[UserChangeResult]:
        """A batch in a few statements: one tenant lookup, one existence check, bulk INSERT ... RETURNING, bulk
        UPDATE by primary key, bulk group membership. Deletes go one by one (rare, and the ORM cascades them)."""
        t = self._tenant(tenant)
        results = {c.key: UserChangeResult(c.key) for c in changes}
        creates = [c for c in changes if c.user_id is None and not c.delete]
        existing = [c for c in changes if c.user_id is not None]
        ids = {int(c.user_id) for c in existing if str(c.user_id).isdigit()}
        known = set()
        for chunk in _chunks(sorted(ids)):
            known.update(db.session.scalars(sa.select(User.id).where(
                User.tenant_id == t.id, in_keys(db.session, User.id, chunk))))
        for c in existing:
            if not str(c.user_id).isdigit() or int(c.user_id) not in known:
                results[c.key].error = HostAdapterError(
                    f"Tenant {tenant!r} has no user with id {c.user_id!r}; it may have been deleted.")
        for c in [c for c in existing if c.delete and results[c.key].ok]:
            try:
                self.delete_user(tenant, c.user_id)
            except HostAdapterError as exc:
                results[c.key].error = exc
        made = self._insert_users(t, creates, results)
        for c in [c for c in existing if not c.delete and results[c.key].ok]:
            results[c.key].error = _too_long({**vars(c.fields or UserFields()), "caller_id": c.caller_id})
        updates = [c for c in existing if not c.delete and results[c.key].ok]
        rows = [row for c in updates if (row := _update_row(c))]
        if rows:
            db.session.execute(sa.update(User), rows)
        self._memberships(t, [(made[c.key]["id"] if c.key in made else int(c.user_id), c)
                              for c in [*creates, *updates] if results[c.key].ok], new=set(made))
        _expire_users({int(c.user_id) for c in updates})
        for c in creates:
            if c.key in made:
                results[c.key].user = _new_host_user(made[c.key], t.slug, list(c.join_groups))
        if made:
            refresh_statistics(db.session, User.__table__)  # the next batch's lookups plan with current figures
        return [results[c.key] for c in changes]

    def apply_phonebook(self, tenant: str, user_id: str | None, source: str, upserts: list[PhonebookEntry],
                        deletes: list[str]) -> dict[str, HostAdapterError]:
        """One phonebook's writes: one lookup of the rows by key, bulk INSERT, bulk UPDATE, one DELETE."""
        if user_id is None:
            model, owner = CompanyContact, {"tenant_id": self._tenant(tenant).id}
        else:
            model, owner = PersonalContact, {"user_id": self._user(tenant, user_id).id}
        scope = [getattr(model, k) == v for k, v in owner.items()] + [model.source == source]
        keys = [e.key for e in upserts]
        ids: dict[str, int] = {}
        for chunk in _chunks(keys):
            ids.update(db.session.execute(sa.select(model.key, model.id).where(
                *scope, in_keys(db.session, model.key, chunk))).all())
        latest = {e.key: e for e in upserts}  # the same key twice: the last one wins, as upserts one by one would
        new = [{**owner, "source": source, "key": k, **_entry_row(e)} for k, e in latest.items() if k not in ids]
        changed = [{"id": ids[k], **_entry_row(e)} for k, e in latest.items() if k in ids]
        if new:
            insert_rows(db.session, model.__table__, new)
        if changed:
            db.session.execute(sa.update(model), changed)
        for chunk in _chunks(list(deletes)):
            db.session.execute(sa.delete(model).where(*scope, model.key.in_(chunk)))
        for obj in list(db.session.identity_map.values()):  # bulk statements bypass loaded rows
            if isinstance(obj, model):
                db.session.expire(obj)
        return {}

    def phonebook_keys(self, tenant: str, user_id: str | None, source: str) -> set[str]:
        """One column of one phonebook: no entry objects for an unchanged contacts round."""
        if user_id is None:
            model, owner = CompanyContact, CompanyContact.tenant_id == self._tenant(tenant).id
        else:
            model, owner = PersonalContact, PersonalContact.user_id == self._user(tenant, user_id).id
        return set(db.session.scalars(sa.select(model.key).where(owner, model.source == source)))

    def personal_phonebook_keys(self, tenant: str, user_ids: list[str], source: str) -> dict[str, set[str]]:
        """The keys column of many personal phonebooks: one query per 500 users."""
        t = self._tenant(tenant)
        out: dict[str, set[str]] = {i: set() for i in user_ids}
        numeric = [int(i) for i in user_ids if str(i).isdigit()]
        for chunk in _chunks(numeric):
            for user_id, key in db.session.execute(
                    sa.select(PersonalContact.user_id, PersonalContact.key).join(User, User.id == PersonalContact.user_id)
                    .where(User.tenant_id == t.id, in_keys(db.session, User.id, chunk),
                           PersonalContact.source == source)):
                out.setdefault(str(user_id), set()).add(key)
        return out

    def _insert_users(self, t: Tenant, creates: list[UserChange], results: dict) -> dict[str, dict]:
        """INSERT the new users in one statement; returns their rows (with ``id``) by change key (errors go to
        ``results``)."""
        if not creates:
            return {}
        wanted = [c.extension for c in creates]
        taken = set()
        for chunk in _chunks(wanted):
            taken.update(db.session.scalars(sa.select(User.extension).where(
                User.tenant_id == t.id, in_keys(db.session, User.extension, chunk))))
        names = directory.unique_usernames([c.fields.email if c.fields and c.fields.email else c.username or "user"
                                            for c in creates], t)
        rows, keys, seen = [], [], set()
        now, empty = utcnow(), UserFields()
        for c, username in zip(creates, names):
            fields = vars(c.fields or empty)
            refused = _too_long(fields) or _too_long({"caller_id": c.caller_id})
            if refused:
                results[c.key].error = refused
                continue
            if c.extension in taken or c.extension in seen:
                results[c.key].error = ExtensionInUseError(c.extension)
                continue
            seen.add(c.extension)
            rows.append({**NEW_USER, "first_name": fields["first_name"] or "", "last_name": fields["last_name"] or "",
                         "display_name": fields["display_name"] or "", "email": fields["email"],
                         "mobile": fields["mobile"], "department": fields["department"],
                         "job_title": fields["job_title"],
                         "caller_id": (c.caller_id or None) if c.set_caller_id else None,
                         "enabled": True if c.enabled is None else c.enabled,
                         "tenant_id": t.id, "username": username, "extension": str(c.extension), "created_at": now})
            keys.append(c.key)
        if not rows:
            return {}
        table = User.__table__
        try:
            # Core executemany, then the ids by (tenant, extension): an ordered INSERT ... RETURNING degrades to
            # one statement per row on SQLite.
            with db.session.begin_nested():
                insert_rows(db.session, table, rows)
        except IntegrityError:
            # Another writer took a number or a name between the check and the insert: one by one, so only
            # those fail (ExtensionInUseError lets the extension try the next number).
            made = {}
            for key, row in zip(keys, rows):
                try:
                    with db.session.begin_nested():
                        made[key] = {**row, "id": db.session.scalar(sa.insert(User).returning(User.id), row)}
                except IntegrityError as exc:
                    results[key].error = (ExtensionInUseError(row["extension"]) if "extension" in str(exc.orig)
                                          else HostAdapterError(f"The username {row['username']} is taken."))
            return made
        ids: dict[str, int] = {}
        for chunk in _chunks([row["extension"] for row in rows]):
            ids.update(db.session.execute(sa.select(table.c.extension, table.c.id).where(
                table.c.tenant_id == t.id, in_keys(db.session, table.c.extension, chunk))).all())
        return {key: {**row, "id": ids[row["extension"]]} for key, row in zip(keys, rows)}

    def _memberships(self, t: Tenant, users: list[tuple[int, UserChange]], new: set[str] = frozenset()) -> None:
        """Join and leave groups; ``new`` are the keys of the changes that created their user (no groups yet)."""
        joins = {(uid, name) for uid, c in users for name in c.join_groups}
        leaves = {(uid, name) for uid, c in users for name in c.leave_groups}
        names = {name for _, name in joins | leaves}
        groups = {name: self._group(t, name, create=any(n == name for _, n in joins)) for name in names}
        ids = sorted({uid for uid, c in users if c.key not in new and (c.join_groups or c.leave_groups)})
        current = set()
        for chunk in _chunks(ids):
            current.update((uid, gid) for uid, gid in db.session.execute(sa.select(
                extension_group_members.c.user_id, extension_group_members.c.group_id).where(
                in_keys(db.session, extension_group_members.c.user_id, chunk))))
        add = [{"user_id": uid, "group_id": groups[name].id} for uid, name in sorted(joins)
               if (uid, groups[name].id) not in current]
        drop = [(uid, groups[name].id) for uid, name in sorted(leaves) if groups[name] is not None
                and (uid, groups[name].id) in current]
        if add:
            insert_rows(db.session, extension_group_members, add)
        for uid, gid in drop:
            db.session.execute(sa.delete(extension_group_members).where(
                extension_group_members.c.user_id == uid, extension_group_members.c.group_id == gid))

    # --- extension groups, photos, caller ID --------------------------------------------------------------
    def ensure_group(self, tenant: str, name: str) -> None:
        self._group(self._tenant(tenant), name, create=True)

    def set_group_membership(self, tenant: str, name: str, user_id: str, member: bool) -> None:
        user = self._user(tenant, user_id)
        group = self._group(user.tenant, name, create=member)
        if group is None:
            return
        if member and group not in user.groups:
            user.groups.append(group)
        elif not member and group in user.groups:
            user.groups.remove(group)
        db.session.flush()

    def set_photo(self, tenant: str, user_id: str, data: bytes | None, content_type: str | None = None) -> None:
        user = self._user(tenant, user_id)
        user.photo = data or None
        user.photo_content_type = (content_type or "image/jpeg") if data else None
        user.photo_sha256 = hashlib.sha256(data).hexdigest() if data else None
        db.session.flush()

    def set_caller_id(self, tenant: str, user_id: str, number: str | None) -> None:
        self._user(tenant, user_id).caller_id = number or None
        db.session.flush()

    # --- phonebooks ---------------------------------------------------------------------------------------
    def list_personal_contacts(self, tenant: str, user_id: str, source: str) -> list[PhonebookEntry]:
        user = self._user(tenant, user_id)
        rows = db.session.scalars(sa.select(PersonalContact).where(
            PersonalContact.user_id == user.id, PersonalContact.source == source).order_by(PersonalContact.id))
        return [_entry(row) for row in rows]

    def upsert_personal_contact(self, tenant: str, user_id: str, entry: PhonebookEntry) -> None:
        user = self._user(tenant, user_id)
        row = db.session.scalar(sa.select(PersonalContact).where(
            PersonalContact.user_id == user.id, PersonalContact.source == entry.source,
            PersonalContact.key == entry.key))
        if row is None:
            row = PersonalContact(user_id=user.id, key=entry.key, source=entry.source)
            db.session.add(row)
        _copy_entry(row, entry)
        db.session.flush()

    def delete_personal_contact(self, tenant: str, user_id: str, source: str, key: str) -> None:
        user = self._user(tenant, user_id)
        db.session.execute(sa.delete(PersonalContact).where(
            PersonalContact.user_id == user.id, PersonalContact.source == source, PersonalContact.key == key))

    def list_company_contacts(self, tenant: str, source: str) -> list[PhonebookEntry]:
        t = self._tenant(tenant)
        rows = db.session.scalars(sa.select(CompanyContact).where(
            CompanyContact.tenant_id == t.id, CompanyContact.source == source).order_by(CompanyContact.id))
        return [_entry(row) for row in rows]

    def upsert_company_contact(self, tenant: str, entry: PhonebookEntry) -> None:
        t = self._tenant(tenant)
        row = db.session.scalar(sa.select(CompanyContact).where(
            CompanyContact.tenant_id == t.id, CompanyContact.source == entry.source, CompanyContact.key == entry.key))
        if row is None:
            row = CompanyContact(tenant_id=t.id, key=entry.key, source=entry.source)
            db.session.add(row)
        _copy_entry(row, entry)
        db.session.flush()

    def delete_company_contact(self, tenant: str, source: str, key: str) -> None:
        t = self._tenant(tenant)
        db.session.execute(sa.delete(CompanyContact).where(
            CompanyContact.tenant_id == t.id, CompanyContact.source == source, CompanyContact.key == key))

    # --- presence -----------------------------------------------------------------------------------------
    def get_presence(self, tenant: str, user_id: str) -> tuple[PresenceStatus, PresenceSource]:
        user = self._user(tenant, user_id)
        return user.presence_status, user.presence_source  # type: ignore[return-value]

    def get_presences(self, tenant: str, user_ids: list[str]) -> dict[str, tuple[PresenceStatus, PresenceSource]]:
        """Two columns of many users: one query per 500, no user objects."""
        t = self._tenant(tenant)
        ids = [int(i) for i in user_ids if str(i).isdigit()]
        out: dict[str, tuple[PresenceStatus, PresenceSource]] = {}
        for chunk in _chunks(ids):
            for user_id, status, source in db.session.execute(
                    sa.select(User.id, User.presence_status, User.presence_source)
                    .where(User.tenant_id == t.id, in_keys(db.session, User.id, chunk))):
                out[str(user_id)] = (status, source)  # type: ignore[assignment]
        return out

    def set_presence(self, tenant: str, user_id: str, status: PresenceStatus, source: PresenceSource) -> None:
        if status not in PRESENCE_STATUSES:
            raise HostAdapterError(f"Unknown presence status {status!r}: use one of {', '.join(PRESENCE_STATUSES)}.")
        if source not in PRESENCE_SOURCES:
            raise HostAdapterError(f"Unknown presence source {source!r}: use one of {', '.join(PRESENCE_SOURCES)}.")
        user = self._user(tenant, user_id)
        user.presence_status, user.presence_source = status, source
        db.session.flush()

    def get_call_state(self, tenant: str, user_id: str) -> CallState:
        return self._user(tenant, user_id).call_state or "idle"  # type: ignore[return-value]

    # --- sign-in ------------------------------------------------------------------------------------------
    def login_user(self, tenant: str, user_id: str, target: SignInTarget) -> Response:
        """Sign the user in to the admin portal (tenant admins only) or the web client."""
        user = self._user(tenant, user_id)
        if not user.enabled:
            flash(f"The account {user.username} is disabled. Ask your PBX administrator to enable it.", "error")
            return redirect(url_for("web.login" if target == "web" else "admin.login", tenant=tenant))
        if target == "admin":
            if not user.is_admin:
                flash(f"{user.username} is not an administrator of {user.tenant.name}; use the web client.", "error")
                return redirect(url_for("admin.login", tenant=tenant))
            sign_in_admin(user=user)
            db.session.commit()
            return redirect(url_for("admin.dashboard"))
        if target == "web":
            sign_in_web(user)
            db.session.commit()
            return redirect(url_for("web.me"))
        raise HostAdapterError(f"Sign-in target {target!r} has no browser session; the app uses issue_app_token.")

    def issue_app_token(self, tenant: str, user_id: str) -> dict:
        user = self._user(tenant, user_id)
        if not user.enabled:
            raise HostAdapterError(f"The account {user.username} is disabled; no app token is issued.")
        token = secrets.token_urlsafe(32)
        db.session.add(AppToken(user_id=user.id, token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                                expires_at=utcnow() + APP_TOKEN_LIFETIME))
        db.session.commit()
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": int(APP_TOKEN_LIFETIME.total_seconds())}

    # --- URLs and mail ------------------------------------------------------------------------------------
    def public_urls(self, tenant: str) -> PublicURLs:
        config = current_app.config
        sbc = (config.get("DEMO_SBC_URL") or "").rstrip("/")
        return PublicURLs(portal=config["DEMO_PUBLIC_URL"].rstrip("/"), sbc=sbc or None)

    def admin_emails(self, tenant: str) -> list[str]:
        t = self._tenant(tenant)
        return list(db.session.scalars(sa.select(User.email).where(
            User.tenant_id == t.id, User.role == "admin", User.enabled.is_(True), User.email.is_not(None))
            .order_by(User.id)))

    def send_mail(self, tenant: str, message: MailMessage) -> None:
        deliver(directory.get_tenant(tenant), message)  # Microsoft 365 when the Mail tab is on, else SMTP/log

    # --- lookups ------------------------------------------------------------------------------------------
    def _tenant(self, slug: str) -> Tenant:
        # The slug's id is remembered for the app context (a request, or one job): the session's identity map then
        # answers the many calls of a sync without a query each.
        ids = g.setdefault("demo_tenant_ids", {})
        tenant = db.session.get(Tenant, ids[slug]) if slug in ids else None
        if tenant is None or tenant.slug != slug:
            tenant = directory.get_tenant(slug)
            if tenant is None:
                raise HostAdapterError(f"The PBX has no tenant {slug!r}.")
            ids[slug] = tenant.id
        return tenant

    def _find_user(self, tenant: str, user_id: str) -> User | None:
        t = self._tenant(tenant)
        try:
            user = db.session.get(User, int(user_id))
        except (TypeError, ValueError):
            return None
        return user if user is not None and user.tenant_id == t.id else None

    def _user(self, tenant: str, user_id: str) -> User:
        user = self._find_user(tenant, user_id)
        if user is None:
            raise HostAdapterError(f"Tenant {tenant!r} has no user with id {user_id!r}; it may have been deleted.")
        return user

    def _group(self, tenant: Tenant, name: str, *, create: bool) -> ExtensionGroup | None:
        group = db.session.scalar(sa.select(ExtensionGroup).where(
            ExtensionGroup.tenant_id == tenant.id, ExtensionGroup.name == name))
        if group is None and create:
            group = ExtensionGroup(tenant_id=tenant.id, name=name)
            db.session.add(group)
            db.session.flush()
        return group


CHUNK = 500  # ids per IN (...): under every database's bound-parameter limit


def _chunks(values: list) -> list[list]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


#: The columns of a user the extension creates, besides its profile fields.
NEW_USER = {"role": "user", "password_hash": UNUSABLE_PASSWORD, "presence_status": "available",
            "presence_source": "user"}


def _update_row(change: UserChange) -> dict | None:
    """The columns a change sets (for a bulk UPDATE by primary key), or None when it sets none."""
    row = {k: v for k, v in vars(change.fields or UserFields()).items() if v is not None}
    if change.enabled is not None:
        row["enabled"] = change.enabled
    if change.set_caller_id:
        row["caller_id"] = change.caller_id or None
    return {"id": int(change.user_id), **row} if row else None


def _new_host_user(row: dict, tenant: str, groups: list[str]) -> HostUser:
    return HostUser(id=str(row["id"]), tenant=tenant, username=row["username"], extension=row["extension"],
                    first_name=row["first_name"], last_name=row["last_name"], display_name=row["display_name"],
                    email=row["email"], mobile=row["mobile"], department=row["department"],
                    job_title=row["job_title"], caller_id=row["caller_id"], enabled=row["enabled"], groups=groups)


def _expire_users(ids: set[int]) -> None:
    """Bulk statements bypass the identity map: loaded users would show their old values."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, User) and obj.id in ids:
            db.session.expire(obj)


def _host_user(user: User) -> HostUser:
    return HostUser(
        id=str(user.id), tenant=user.tenant.slug, username=user.username, extension=user.extension,
        first_name=user.first_name or "", last_name=user.last_name or "", display_name=user.display_name or "",
        email=user.email, mobile=user.mobile, department=user.department, job_title=user.job_title,
        caller_id=user.caller_id, enabled=user.enabled, is_admin=user.is_admin,
        groups=[g.name for g in user.groups], photo_sha256=user.photo_sha256)


@functools.cache
def _column_limits() -> dict[str, int]:
    """The length of each string column of users (asked once per row and field, so computed once)."""
    return {c.name: c.type.length for c in User.__table__.columns if getattr(c.type, "length", None)}


def _too_long(values: dict) -> HostAdapterError | None:
    """The refusal for a value longer than its column (PostgreSQL would fail the whole statement), or None."""
    limits = _column_limits()
    for name, value in values.items():
        limit = limits.get(name)
        if limit and isinstance(value, str) and len(value) > limit:
            label = name.replace("_", " ")
            return HostAdapterError(f"The {label} is {len(value)} characters long; this PBX keeps at most {limit}. "
                                    f"Shorten it in Microsoft 365.")
    return None


def _apply_fields(user: User, fields: UserFields) -> None:
    refused = _too_long(vars(fields))
    if refused:
        raise refused
    for name, value in vars(fields).items():
        if value is not None:
            setattr(user, name, value)


def _entry(row: PersonalContact | CompanyContact) -> PhonebookEntry:
    data = row.as_json()
    return PhonebookEntry(key=row.key, source=row.source, name=row.name, company=data["company"],
                          phones=data["phones"], emails=data["emails"])


def _entry_row(entry: PhonebookEntry) -> dict:
    return {"name": entry.name, "company": entry.company or "",
            "phones": {kind: list(entry.phones.get(kind, [])) for kind in ("business", "mobile", "home")},
            "emails": list(entry.emails)}


def _copy_entry(row: PersonalContact | CompanyContact, entry: PhonebookEntry) -> None:
    row.name, row.company = entry.name, entry.company or ""
    row.phones = {kind: list(entry.phones.get(kind, [])) for kind in ("business", "mobile", "home")}
    row.emails = list(entry.emails)
