"""``DemoHost``: the demo PBX's implementation of :class:`flask_pbx365.host.PBXHost`.

Unit of work: the methods that change data only flush; the caller (the extension) commits or rolls back, so a
sync batch is all-or-nothing. ``login_user`` and ``issue_app_token`` commit, because the session or token they
create must be usable by the very next request.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import Response, current_app, flash, redirect, url_for

from flask_pbx365.exceptions import HostAdapterError
from flask_pbx365.host import (PRESENCE_STATUSES, HostTenant, HostUser, MailMessage, PhonebookEntry,
                               PresenceSource, PresenceStatus, PublicURLs, SignInTarget, UserFields)

from . import directory
from .auth import current_admin, sign_in_admin, sign_in_web
from .models import AppToken, CompanyContact, ExtensionGroup, PersonalContact, Tenant, User, db, utcnow
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

    def set_presence(self, tenant: str, user_id: str, status: PresenceStatus, source: PresenceSource) -> None:
        if status not in PRESENCE_STATUSES:
            raise HostAdapterError(f"Unknown presence status {status!r}: use one of {', '.join(PRESENCE_STATUSES)}.")
        if source not in ("user", "calendar", "admin"):
            raise HostAdapterError(f"Unknown presence source {source!r}: use user, calendar or admin.")
        user = self._user(tenant, user_id)
        user.presence_status, user.presence_source = status, source
        db.session.flush()

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
        tenant = directory.get_tenant(slug)
        if tenant is None:
            raise HostAdapterError(f"The PBX has no tenant {slug!r}.")
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


def _host_user(user: User) -> HostUser:
    return HostUser(
        id=str(user.id), tenant=user.tenant.slug, username=user.username, extension=user.extension,
        first_name=user.first_name or "", last_name=user.last_name or "", display_name=user.display_name or "",
        email=user.email, mobile=user.mobile, department=user.department, job_title=user.job_title,
        caller_id=user.caller_id, enabled=user.enabled, is_admin=user.is_admin,
        groups=[g.name for g in user.groups], photo_sha256=user.photo_sha256)


def _apply_fields(user: User, fields: UserFields) -> None:
    for name, value in vars(fields).items():
        if value is not None:
            setattr(user, name, value)


def _entry(row: PersonalContact | CompanyContact) -> PhonebookEntry:
    data = row.as_json()
    return PhonebookEntry(key=row.key, source=row.source, name=row.name, company=data["company"],
                          phones=data["phones"], emails=data["emails"])


def _copy_entry(row: PersonalContact | CompanyContact, entry: PhonebookEntry) -> None:
    row.name, row.company = entry.name, entry.company or ""
    row.phones = {kind: list(entry.phones.get(kind, [])) for kind in ("business", "mobile", "home")}
    row.emails = list(entry.emails)
