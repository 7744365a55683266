"""The user web client: sign-in, ``/me`` (name, extension, presence, personal phonebook, voicemail)."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for

from flask_pbx365.host import PRESENCE_STATUSES
from flask_pbx365.sso import sign_out_response

from .admin import contact_fields
from .auth import current_web_user, safe_next, sign_in_web, sign_out_web, web_login_required
from .login import login_page
from .pages import html_blueprint
from .models import PersonalContact, SystemAdmin, Voicemail, db

bp = html_blueprint("web", __name__)

PRESENCE_LABELS = {"available": "Available", "away": "Away", "dnd": "Do Not Disturb", "lunch": "Lunch",
                   "business_trip": "Business Trip", "holiday": "Holiday"}


@bp.get("/")
def index():
    return redirect(url_for("web.me" if current_web_user() else "web.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    def authenticate(account):
        if isinstance(account, SystemAdmin):
            return "The system administrator signs in to the admin portal."
        if not account.enabled:
            return "This account is disabled."
        sign_in_web(account)
        return redirect(safe_next(request.values.get("next"), url_for("web.me")))
    return login_page(target="web", template="web/login.html", authenticate=authenticate)


@bp.post("/logout")
def logout():
    user = current_web_user()
    if user is None:
        sign_out_web()
        return redirect(url_for("web.login"))
    # The extension ends the session, and Microsoft's too when asked and the user signed in with Microsoft.
    response = sign_out_response(user.tenant.slug, url_for("web.login", tenant=user.tenant.slug),
                                 microsoft=request.form.get("microsoft") == "1" or None)
    sign_out_web()
    return response


@bp.get("/me")
@web_login_required
def me():
    user = current_web_user()
    contacts = db.session.scalars(sa.select(PersonalContact).where(PersonalContact.user_id == user.id)
                                  .order_by(PersonalContact.name))
    voicemails = db.session.scalars(sa.select(Voicemail).where(Voicemail.user_id == user.id)
                                    .order_by(Voicemail.id.desc()))
    return render_template("web/me.html", user=user, contacts=list(contacts), voicemails=list(voicemails),
                           statuses=PRESENCE_LABELS)


@bp.post("/me/presence")
@web_login_required
def set_presence():
    status = request.form.get("status")
    if status not in PRESENCE_STATUSES:
        flash("Choose one of the presence profiles.", "error")
    else:
        user = current_web_user()
        user.presence_status, user.presence_source = status, "user"
        db.session.commit()
        flash(f"Presence set to {PRESENCE_LABELS[status]}.", "ok")
    return redirect(url_for("web.me"))


@bp.post("/me/contacts")
@web_login_required
def add_contact():
    fields = contact_fields(request.form)
    if not fields["name"]:
        flash("A contact needs a name.", "error")
    else:
        db.session.add(PersonalContact(user_id=current_web_user().id, key=str(uuid.uuid4()), source="user",
                                       **fields))
        db.session.commit()
        flash(f"{fields['name']} added to your phonebook.", "ok")
    return redirect(url_for("web.me"))


@bp.get("/me/voicemail/<int:voicemail_id>.wav")
@web_login_required
def voicemail_file(voicemail_id: int):
    row = db.session.get(Voicemail, voicemail_id)
    if row is None or row.user_id != current_web_user().id:
        abort(404)
    return Response(row.data, mimetype=row.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{row.filename}"'})
