"""The admin portal: dashboard, tenants (system admin), users, extension groups, company phonebook, notifications."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, session, url_for

from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.host import PRESENCE_STATUSES

from . import directory
from .auth import admin_required, current_admin, safe_next, sign_in_admin, sign_out_admin
from .login import login_page
from .pages import html_blueprint
from .models import CompanyContact, ExtensionGroup, Notification, SystemAdmin, Tenant, User, db
from .voicemail import leave_voicemail, notify_missed_call

bp = html_blueprint("admin", __name__, url_prefix="/admin")


def scoped_tenant() -> Tenant:
    """The tenant the admin works in; a system admin without a scope is sent to the tenant list (via 409 page)."""
    admin = current_admin()
    if admin is None or admin.tenant is None:
        abort(409, description="Switch to a tenant scope first (Tenants → Switch to tenant scope).")
    return admin.tenant


def tenant_user(user_id: int) -> User:
    """A user of the admin's tenant; another tenant's user is 404, as if it did not exist."""
    user = db.session.get(User, user_id)
    if user is None or user.tenant_id != scoped_tenant().id:
        abort(404)
    return user


@bp.route("/login", methods=["GET", "POST"])
def login():
    def authenticate(account):
        if isinstance(account, SystemAdmin):
            sign_in_admin(system=account)
        elif not account.enabled:
            return "This account is disabled."
        elif not account.is_admin:
            return f"{account.username} is not an administrator; sign in to the web client instead."
        else:
            sign_in_admin(user=account)
        return redirect(safe_next(request.values.get("next"), url_for("admin.dashboard")))
    return login_page(target="admin", template="admin/login.html", authenticate=authenticate)


@bp.post("/logout")
def logout():
    sign_out_admin()
    return redirect(url_for("admin.login"))


@bp.get("")
@bp.get("/")
@admin_required
def dashboard():
    admin = current_admin()
    if admin.tenant is None:
        return redirect(url_for("admin.tenants"))
    tenant = admin.tenant
    count = lambda model, *where: db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
    stats = {
        "Users": count(User, User.tenant_id == tenant.id),
        "Enabled": count(User, User.tenant_id == tenant.id, User.enabled.is_(True)),
        "Extension groups": count(ExtensionGroup, ExtensionGroup.tenant_id == tenant.id),
        "Company contacts": count(CompanyContact, CompanyContact.tenant_id == tenant.id),
        "Emails sent": count(Notification, Notification.tenant_id == tenant.id),
    }
    return render_template("admin/dashboard.html", tenant=tenant, stats=stats)


# --- tenants (system admin) -----------------------------------------------------------------------------------

def _require_system() -> None:
    if not current_admin().is_system:
        abort(403, description="Only the system administrator manages tenants.")


@bp.route("/tenants", methods=["GET", "POST"])
@admin_required
def tenants():
    _require_system()
    if request.method == "POST":
        slug = (request.form.get("slug") or "").strip().lower()
        name = (request.form.get("name") or "").strip()
        if not directory.SLUG_RE.match(slug) or not name:
            flash("A tenant needs a name and a slug of lowercase letters, digits and '-'.", "error")
        elif directory.get_tenant(slug):
            flash(f"Tenant {slug} already exists.", "error")
        else:
            db.session.add(Tenant(slug=slug, name=name))
            db.session.commit()
            flash(f"Tenant {name} created.", "ok")
        return redirect(url_for("admin.tenants"))
    rows = db.session.execute(
        sa.select(Tenant, sa.func.count(User.id)).outerjoin(User, User.tenant_id == Tenant.id)
        .group_by(Tenant.id).order_by(Tenant.slug)).all()
    return render_template("admin/tenants.html", rows=rows)


@bp.post("/tenants/<slug>/switch")
@admin_required
def switch_tenant(slug: str):
    _require_system()
    tenant = directory.get_tenant(slug) or abort(404)
    session["scope"] = tenant.slug
    flash(f"You are now in the scope of tenant {tenant.name}.", "ok")
    return redirect(url_for("admin.dashboard"))


@bp.post("/scope/leave")
@admin_required
def leave_scope():
    _require_system()
    session.pop("scope", None)
    return redirect(url_for("admin.tenants"))


# --- users ----------------------------------------------------------------------------------------------------

@bp.get("/users")
@admin_required
def users():
    tenant = scoped_tenant()
    return render_template("admin/users.html", tenant=tenant, users=directory.tenant_users(tenant),
                           links=directory.m365_object_ids(tenant.slug))


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    tenant = scoped_tenant()
    form = request.form
    if request.method == "POST":
        try:
            user = directory.create_local_user(
                tenant, username=form.get("username", ""), password=form.get("password") or None,
                role=form.get("role", "user"), extension=form.get("extension", "").strip() or None,
                first_name=form.get("first_name", "").strip(), last_name=form.get("last_name", "").strip(),
                email=form.get("email", "").strip() or None)
        except (ValueError, HostAdapterError) as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"User {user.username} created with extension {user.extension}.", "ok")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_new.html", tenant=tenant, form=form,
                           suggested=directory.next_free_extension(tenant))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int):
    user = tenant_user(user_id)
    if request.method == "POST":
        form = request.form
        extension = form.get("extension", "").strip()
        if not directory.EXTENSION_RE.match(extension):
            flash("An extension is 2 to 15 digits.", "error")
        else:
            for name in ("first_name", "last_name", "display_name", "email", "mobile", "department", "job_title",
                         "caller_id"):
                value = form.get(name, "").strip()
                setattr(user, name, value if name in ("first_name", "last_name", "display_name") else value or None)
            user.extension = extension
            if form.get("presence") in PRESENCE_STATUSES and form["presence"] != user.presence_status:
                user.presence_status, user.presence_source = form["presence"], "admin"
            try:
                db.session.commit()
            except sa.exc.IntegrityError:
                db.session.rollback()
                flash(str(ExtensionInUseError(extension)), "error")
            else:
                flash(f"{user.username} saved.", "ok")
                return redirect(url_for("admin.users"))
    return render_template("admin/user_edit.html", user=user, statuses=PRESENCE_STATUSES)


@bp.post("/users/<int:user_id>/call")
@admin_required
def simulate_call(user_id: int):
    """The user's page: ring the desk phone, answer it, hang up (Teams shows "In a call" meanwhile)."""
    user = tenant_user(user_id)
    state = request.form.get("state", "")
    if state not in directory.CALL_STATES:
        flash("Choose ring, answer or hang up.", "error")
    else:
        directory.set_call_state(user, state)
        flash(f"{user.username}: phone {state.replace('_', ' ')}.", "ok")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/enabled")
@admin_required
def set_enabled(user_id: int):
    user = tenant_user(user_id)
    user.enabled = request.form.get("enabled") == "1"
    db.session.commit()
    flash(f"{user.username} {'enabled' if user.enabled else 'disabled'}.", "ok")
    return redirect(url_for("admin.users"))


# --- extension groups -----------------------------------------------------------------------------------------

@bp.route("/groups", methods=["GET", "POST"])
@admin_required
def groups():
    tenant = scoped_tenant()
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        exists = db.session.scalar(sa.select(ExtensionGroup).where(ExtensionGroup.tenant_id == tenant.id,
                                                                    ExtensionGroup.name == name))
        if not name or exists:
            flash("Give the group a name no other group of this tenant has.", "error")
        else:
            db.session.add(ExtensionGroup(tenant_id=tenant.id, name=name))
            db.session.commit()
        return redirect(url_for("admin.groups"))
    rows = db.session.scalars(sa.select(ExtensionGroup).where(ExtensionGroup.tenant_id == tenant.id)
                              .order_by(ExtensionGroup.name))
    return render_template("admin/groups.html", groups=list(rows), users=directory.tenant_users(tenant))


def _tenant_group(group_id: int) -> ExtensionGroup:
    group = db.session.get(ExtensionGroup, group_id)
    if group is None or group.tenant_id != scoped_tenant().id:
        abort(404)
    return group


@bp.post("/groups/<int:group_id>/members")
@admin_required
def group_members(group_id: int):
    group = _tenant_group(group_id)
    user = tenant_user(int(request.form.get("user_id") or 0))
    if request.form.get("action") == "remove":
        if user in group.members:
            group.members.remove(user)
    elif user not in group.members:
        group.members.append(user)
    db.session.commit()
    return redirect(url_for("admin.groups"))


@bp.post("/groups/<int:group_id>/delete")
@admin_required
def delete_group(group_id: int):
    db.session.delete(_tenant_group(group_id))
    db.session.commit()
    return redirect(url_for("admin.groups"))


# --- company phonebook ----------------------------------------------------------------------------------------

@bp.route("/phonebook", methods=["GET", "POST"])
@admin_required
def phonebook():
    tenant = scoped_tenant()
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        if not name:
            flash("A contact needs a name.", "error")
        else:
            db.session.add(CompanyContact(tenant_id=tenant.id, key=str(uuid.uuid4()), source="admin",
                                          **contact_fields(request.form)))
            db.session.commit()
        return redirect(url_for("admin.phonebook"))
    rows = db.session.scalars(sa.select(CompanyContact).where(CompanyContact.tenant_id == tenant.id)
                              .order_by(CompanyContact.name))
    return render_template("admin/phonebook.html", contacts=list(rows))


@bp.post("/phonebook/<int:contact_id>/delete")
@admin_required
def delete_contact(contact_id: int):
    row = db.session.get(CompanyContact, contact_id)
    if row is None or row.tenant_id != scoped_tenant().id:
        abort(404)
    db.session.delete(row)
    db.session.commit()
    return redirect(url_for("admin.phonebook"))


def contact_fields(form) -> dict:
    """A phonebook entry from the add-contact form (one number of each kind, one email)."""
    def one(name: str) -> list[str]:
        value = (form.get(name) or "").strip()
        return [value] if value else []
    return {"name": form.get("name", "").strip(), "company": (form.get("company") or "").strip(),
            "phones": {"business": one("business"), "mobile": one("mobile"), "home": one("home")},
            "emails": one("email")}


# --- notifications --------------------------------------------------------------------------------------------

@bp.get("/notifications")
@admin_required
def notifications():
    tenant = scoped_tenant()
    rows = db.session.scalars(sa.select(Notification).where(Notification.tenant_id == tenant.id)
                              .order_by(Notification.id.desc()).limit(200))
    return render_template("admin/notifications.html", notifications=list(rows),
                           users=directory.tenant_users(tenant))


@bp.post("/notifications/test")
@admin_required
def test_notification():
    """Simulate a PBX event (missed call or voicemail) for an extension, which emails its user."""
    tenant = scoped_tenant()
    user = directory.user_by_extension(tenant, request.form.get("extension", "")) or abort(404)
    caller = (request.form.get("caller") or "").strip()
    if request.form.get("event") == "voicemail":
        _voicemail, note = leave_voicemail(user, caller, 16044)
    else:
        note = notify_missed_call(user, caller)
    db.session.commit()
    flash(f"Email to {user.email} recorded ({note.transport}, {note.status})." if note
          else f"{user.username} has no email address; nothing was sent.", "ok" if note else "error")
    return redirect(url_for("admin.notifications"))
