"""The demo portal's JSON API (interfaces.md "Demo portal JSON API"), authenticated by ``DEMO_API_TOKEN``."""
from __future__ import annotations

import hmac
import uuid

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.host import PRESENCE_STATUSES

from . import directory
from .models import CompanyContact, Notification, PersonalContact, Tenant, User, db
from .voicemail import leave_voicemail, notify_missed_call

bp = Blueprint("api", __name__, url_prefix="/api")


class BadRequest(Exception):
    """Bad input: answered as 400 ``{"error": message}``."""


@bp.before_request
def require_token() -> None:
    expected = current_app.config["DEMO_API_TOKEN"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        abort(401, description="Send the header 'Authorization: Bearer <DEMO_API_TOKEN>'.")


@bp.errorhandler(BadRequest)
def bad_request(exc: BadRequest):
    return jsonify(error=str(exc)), 400


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    response = jsonify(error=exc.description)
    response.status_code = exc.code or 500
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="demo"'
    return response


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object with Content-Type: application/json")
    return data


def _text(data: dict, name: str, *, required: bool = False, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if required and not value.strip():
        raise BadRequest(f"{name} is required")
    return value.strip()


def _tenant(slug: str) -> Tenant:
    tenant = directory.get_tenant(slug)
    if tenant is None:
        abort(404, description=f"no tenant {slug!r}")
    return tenant


def _user(tenant: Tenant, extension: str) -> User:
    user = directory.user_by_extension(tenant, extension)
    if user is None:
        abort(404, description=f"tenant {tenant.slug!r} has no extension {extension!r}")
    return user


@bp.get("/tenants")
def list_tenants():
    return jsonify([t.as_json() for t in db.session.scalars(sa.select(Tenant).order_by(Tenant.slug))])


@bp.post("/tenants")
def create_tenant():
    data = _body()
    slug, name = _text(data, "slug", required=True).lower(), _text(data, "name", required=True)
    if not directory.SLUG_RE.match(slug):
        raise BadRequest("slug: lowercase letters, digits and '-', at most 63 characters")
    if directory.get_tenant(slug) is not None:
        return jsonify(error=f"tenant {slug!r} already exists"), 409
    tenant = Tenant(slug=slug, name=name)
    db.session.add(tenant)
    db.session.commit()
    return jsonify(tenant.as_json()), 201


@bp.get("/tenants/<slug>/users")
def list_users(slug: str):
    tenant = _tenant(slug)
    links = directory.m365_object_ids(tenant.slug)
    return jsonify([directory.user_json(u, links) for u in directory.tenant_users(tenant)])


@bp.post("/tenants/<slug>/users")
def create_user(slug: str):
    tenant = _tenant(slug)
    data = _body()
    extension = data.get("extension")
    if extension is not None and not isinstance(extension, (str, int)):
        raise BadRequest("extension must be a string of digits")
    try:
        user = directory.create_local_user(
            tenant, username=_text(data, "username", required=True), password=_text(data, "password", required=True),
            role=_text(data, "role", default="user"), extension=None if extension in (None, "") else str(extension),
            first_name=_text(data, "first_name"), last_name=_text(data, "last_name"),
            email=_text(data, "email") or None)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    except ExtensionInUseError as exc:
        db.session.rollback()
        return jsonify(error=f"extension {exc.extension} is already in use in tenant {slug}"), 409
    except HostAdapterError as exc:
        db.session.rollback()
        return jsonify(error=str(exc)), 409
    db.session.commit()
    return jsonify(directory.user_json(user, directory.m365_object_ids(tenant.slug))), 201


def _contact_from(data: dict) -> dict:
    phones = data.get("phones") or {}
    if not isinstance(phones, dict) or any(k not in ("business", "mobile", "home") for k in phones):
        raise BadRequest("phones is an object with the lists business, mobile and home")
    emails = data.get("emails") or []
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise BadRequest("emails is a list of strings")
    clean = {}
    for kind in ("business", "mobile", "home"):
        numbers = phones.get(kind) or []
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise BadRequest(f"phones.{kind} is a list of strings")
        clean[kind] = numbers
    return {"name": _text(data, "name", required=True), "company": _text(data, "company"), "phones": clean,
            "emails": emails}


@bp.route("/tenants/<slug>/users/<extension>/contacts", methods=["GET", "POST"])
def personal_contacts(slug: str, extension: str):
    user = _user(_tenant(slug), extension)
    if request.method == "POST":
        entry = PersonalContact(user_id=user.id, key=str(uuid.uuid4()), source="user", **_contact_from(_body()))
        db.session.add(entry)
        db.session.commit()
        return jsonify(entry.as_json()), 201
    rows = db.session.scalars(sa.select(PersonalContact).where(PersonalContact.user_id == user.id)
                              .order_by(PersonalContact.name, PersonalContact.id))
    return jsonify([row.as_json() for row in rows])


@bp.get("/tenants/<slug>/contacts")
def company_contacts(slug: str):
    tenant = _tenant(slug)
    rows = db.session.scalars(sa.select(CompanyContact).where(CompanyContact.tenant_id == tenant.id)
                              .order_by(CompanyContact.name, CompanyContact.id))
    return jsonify([row.as_json() for row in rows])


@bp.route("/tenants/<slug>/users/<extension>/presence", methods=["GET", "PUT"])
def presence(slug: str, extension: str):
    user = _user(_tenant(slug), extension)
    if request.method == "PUT":
        status = _text(_body(), "status", required=True)
        if status not in PRESENCE_STATUSES:
            raise BadRequest(f"status is one of {', '.join(PRESENCE_STATUSES)}")
        user.presence_status, user.presence_source = status, "user"
        db.session.commit()
    return jsonify(status=user.presence_status, source=user.presence_source)


@bp.put("/tenants/<slug>/users/<extension>/call-state")
def call_state(slug: str, extension: str):
    """The PBX's phone of that user: ``{"state": "on_call" | "ringing" | "idle"}`` → 204."""
    user = _user(_tenant(slug), extension)
    state = _text(_body(), "state", required=True)
    if state not in directory.CALL_STATES:
        raise BadRequest(f"state is one of {', '.join(directory.CALL_STATES)}")
    directory.set_call_state(user, state)
    return "", 204


@bp.get("/tenants/<slug>/notifications")
def notifications(slug: str):
    tenant = _tenant(slug)
    rows = db.session.scalars(sa.select(Notification).where(Notification.tenant_id == tenant.id)
                              .order_by(Notification.id))
    return jsonify([row.as_json() for row in rows])


def _event_target(slug: str) -> tuple[User, str, dict]:
    tenant = _tenant(slug)
    data = _body()
    extension = data.get("extension")
    if not isinstance(extension, (str, int)) or not str(extension):
        raise BadRequest("extension is required")
    return _user(tenant, str(extension)), _text(data, "caller"), data


@bp.post("/tenants/<slug>/voicemail")
def voicemail(slug: str):
    user, caller, data = _event_target(slug)
    size = data.get("wav_bytes")
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadRequest("wav_bytes is the size of the WAV file, an integer")
    try:
        message, note = leave_voicemail(user, caller, size)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    db.session.commit()
    return jsonify(id=message.id, extension=user.extension, caller=caller, filename=message.filename,
                   content_type=message.content_type, size=message.size,
                   notification=note.as_json() if note else None), 201


@bp.post("/tenants/<slug>/missed-call")
def missed_call(slug: str):
    """Not in interfaces.md (an extension of it): ``{"extension", "caller"}`` mails the user a missed call."""
    user, caller, _data = _event_target(slug)
    note = notify_missed_call(user, caller)
    db.session.commit()
    return jsonify(extension=user.extension, caller=caller, notification=note.as_json() if note else None), 201
