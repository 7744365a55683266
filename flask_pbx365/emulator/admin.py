"""The emulator's admin API (``/_emulator/...``, JSON, loopback only): tenants, applications, users, photos,
group members, faults, the request log, synthetic tenants. Every mutation is logged with
``store.record_change``. Admin calls are neither faulted nor logged.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .fixtures import FixtureError, load_fixture, make_application, make_user, photo_from
from .generate import generate_tenant
from .graph_common import store
from .graph_presence import AVAILABILITIES, admin_view, set_client_presence
from .store import Tenant, UnknownTenant, public
from .traffic import FaultSpecError

admin_bp = Blueprint("m365_admin", __name__, url_prefix="/_emulator")
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@admin_bp.before_app_request
def _loopback_only() -> Response | None:
    """403 for admin calls from anything but the loopback interface."""
    if request.path.startswith("/_emulator") and (request.remote_addr or "") not in LOOPBACK \
            and not (request.remote_addr or "").startswith("127."):
        return Response("The emulator's admin API only answers loopback clients.\n", status=403,
                        content_type="text/plain")
    return None


@admin_bp.errorhandler(AdminError)
def _admin_error(err: AdminError) -> Response:
    resp = jsonify({"error": err.message})
    resp.status_code = err.status
    return resp


@admin_bp.errorhandler(FixtureError)
@admin_bp.errorhandler(FaultSpecError)
def _bad_request(err: Exception) -> Response:
    resp = jsonify({"error": str(err)})
    resp.status_code = 400
    return resp


def _json() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise AdminError(400, "The body must be JSON (Content-Type: application/json).")
    return data


def _tenant(tid: str) -> Tenant:
    try:
        return store().tenant(tid)
    except UnknownTenant as exc:
        raise AdminError(404, str(exc)) from exc


def _user(tenant: Tenant, uid: str) -> dict:
    user = tenant.users.get(uid.lower())
    if user is None:
        raise AdminError(404, f"User {uid} does not exist in tenant {tenant.id}.")
    return user


def _user_json(user: dict) -> dict:
    out = public(user)
    out["deleted"] = bool(user.get("_deleted"))
    return out


# --- tenants -------------------------------------------------------------------------------------------------


@admin_bp.post("/tenants")
def create_tenant() -> tuple[Response, int]:
    tenant = load_fixture(store(), _json())
    return jsonify({"id": tenant.id}), 201


@admin_bp.get("/tenants")
def list_tenants() -> Response:
    with store().lock:
        return jsonify([{"id": t.id, "displayName": t.display_name, "domains": t.domains, "cloud": t.cloud}
                        for t in store().tenants.values()])


@admin_bp.get("/tenants/<tid>")
def get_tenant(tid: str) -> Response:
    with store().lock:
        t = _tenant(tid)
        return jsonify({"id": t.id, "displayName": t.display_name, "domains": t.domains, "cloud": t.cloud,
                        "throttle": t.throttle, **t.counts()})


@admin_bp.patch("/tenants/<tid>")
def patch_tenant(tid: str) -> Response:
    body = _json()
    with store().lock:
        t = _tenant(tid)
        if "throttle" in body:
            if not isinstance(body["throttle"], dict):
                raise AdminError(400, '"throttle" must be an object.')
            t.throttle = {**t.throttle, **body["throttle"]}
            current_app.extensions["m365_throttle"].reset(t.id)
        if "displayName" in body:
            t.display_name = str(body["displayName"])
        if "domains" in body:
            t.domains = list(body["domains"])
        if "cloud" in body:
            if body["cloud"] not in ("global", "usgov", "usgov-dod", "china"):
                raise AdminError(400, "cloud must be global, usgov, usgov-dod or china.")
            t.cloud = body["cloud"]
    return get_tenant(tid)


@admin_bp.delete("/tenants/<tid>")
def delete_tenant(tid: str) -> tuple[str, int]:
    with store().lock:
        store().tenants.pop(_tenant(tid).id, None)
    return "", 204


@admin_bp.post("/tenants/<tid>/delta/reset")
def reset_delta(tid: str) -> Response:
    """Invalidate every delta and skip token issued so far for the tenant (clients get 410 / 400)."""
    with store().lock:
        t = _tenant(tid)
        t.token_epoch += 1
        return jsonify({"tokenEpoch": t.token_epoch})


# --- applications --------------------------------------------------------------------------------------------


@admin_bp.post("/tenants/<tid>/applications")
def create_application(tid: str) -> tuple[Response, int]:
    body = _json()
    with store().lock:
        t = _tenant(tid)
        app = make_application(body)
        t.applications[app["appId"]] = app
    return jsonify({"appId": app["appId"]}), 201


@admin_bp.get("/tenants/<tid>/applications")
def list_applications(tid: str) -> Response:
    with store().lock:
        return jsonify(list(_tenant(tid).applications.values()))


def _application(t: Tenant, app_id: str) -> dict:
    app = t.applications.get(app_id.lower())
    if app is None:
        raise AdminError(404, f"Application {app_id} is not registered in tenant {t.id}.")
    return app


@admin_bp.get("/tenants/<tid>/applications/<app_id>")
def get_application(tid: str, app_id: str) -> Response:
    with store().lock:
        return jsonify(_application(_tenant(tid), app_id))


@admin_bp.patch("/tenants/<tid>/applications/<app_id>")
def patch_application(tid: str, app_id: str) -> Response:
    body = _json()
    with store().lock:
        t = _tenant(tid)
        app = make_application(body, existing=_application(t, app_id))
        t.applications[app["appId"]] = app
        return jsonify(app)


# --- users ---------------------------------------------------------------------------------------------------


@admin_bp.post("/tenants/<tid>/users")
def create_user(tid: str) -> tuple[Response, int]:
    body = _json()
    with store().lock:
        t = _tenant(tid)
        user = make_user(t, body)
        if user["id"] in t.users:
            raise AdminError(409, f"User {user['id']} already exists.")
        t.users[user["id"]] = user
        store().record_change(t, "user", user["id"], "created", data={"properties": []})
        return jsonify(_user_json(user)), 201


@admin_bp.get("/tenants/<tid>/users")
def list_users(tid: str) -> Response:
    """Every user of the tenant, soft-deleted ones included (``deleted: true``)."""
    with store().lock:
        return jsonify([_user_json(u) for u in _tenant(tid).users.values()])


@admin_bp.get("/tenants/<tid>/users/<uid>")
def get_user(tid: str, uid: str) -> Response:
    with store().lock:
        return jsonify(_user_json(_user(_tenant(tid), uid)))


@admin_bp.patch("/tenants/<tid>/users/<uid>")
def patch_user(tid: str, uid: str) -> Response:
    body = _json()
    if not isinstance(body, dict):
        raise AdminError(400, "A partial Graph user object is expected.")
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        changed = []
        for k, v in body.items():
            if k == "id" or k.startswith("_"):
                continue
            if k == "password":
                user["_password"] = v
            elif k == "mailboxSettings":
                user["_mailboxSettings"] = {**(user.get("_mailboxSettings") or {}), **(v or {})}
            elif k == "directoryRoles":
                user["_roles"] = list(v or [])
            elif user.get(k) != v:
                if v is None:
                    user.pop(k, None)
                else:
                    user[k] = v
                changed.append(k)
        if changed:
            store().record_change(t, "user", user["id"], "updated", data={"properties": changed})
        return jsonify(_user_json(user))


@admin_bp.delete("/tenants/<tid>/users/<uid>")
def delete_user(tid: str, uid: str) -> tuple[str, int]:
    """Soft delete (restorable); ``?permanent=true`` deletes for good (and drops group memberships)."""
    permanent = request.args.get("permanent", "").lower() in ("1", "true", "yes")
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        if permanent:
            del t.users[user["id"]]
            for g in t.groups.values():
                if user["id"] in g.get("_members", []):
                    g["_members"] = [m for m in g["_members"] if m != user["id"]]
        elif user.get("_deleted"):
            raise AdminError(409, f"User {uid} is already deleted.")
        else:
            user["_deleted"] = True
            user["deletedDateTime"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        store().record_change(t, "user", user["id"], "deleted", data={"permanent": permanent})
    return "", 204


@admin_bp.post("/tenants/<tid>/users/<uid>/restore")
def restore_user(tid: str, uid: str) -> Response:
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        if not user.get("_deleted"):
            raise AdminError(409, f"User {uid} is not deleted.")
        user["_deleted"] = False
        user.pop("deletedDateTime", None)
        store().record_change(t, "user", user["id"], "restored")
        return jsonify(_user_json(user))


@admin_bp.put("/tenants/<tid>/users/<uid>/photo")
def put_photo(tid: str, uid: str) -> Response:
    ctype = (request.content_type or "").split(";")[0].strip()
    if not ctype.startswith("image/"):
        raise AdminError(400, "Send the photo bytes with Content-Type: image/jpeg (or another image/* type).")
    data = request.get_data()
    if not data:
        raise AdminError(400, "The photo is empty.")
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        user["_photo"] = photo_from(data, ctype)
        store().record_change(t, "user", user["id"], "updated", data={"properties": ["photo"]})
        return jsonify({"etag": user["_photo"]["etag"], "contentType": ctype, "size": len(data)})


@admin_bp.delete("/tenants/<tid>/users/<uid>/photo")
def delete_photo(tid: str, uid: str) -> tuple[str, int]:
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        user["_photo"] = None
        store().record_change(t, "user", user["id"], "updated", data={"properties": ["photo"]})
    return "", 204


# --- Teams presence ------------------------------------------------------------------------------------------


def _client_presence(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict) or body.get("availability") not in AVAILABILITIES:
        raise AdminError(400, f'"availability" must be one of {", ".join(AVAILABILITIES)}.')
    activity = body.get("activity") or body["availability"]
    if not isinstance(activity, str):
        raise AdminError(400, '"activity" must be a string (InAMeeting, Presenting, InACall, ...).')
    return body["availability"], activity


@admin_bp.put("/tenants/<tid>/users/<uid>/teams-presence")
def put_teams_presence(tid: str, uid: str) -> Response:
    """What the user's own Teams client reports; answers the aggregated presence as ``GET`` does."""
    availability, activity = _client_presence(_json())
    with store().lock:
        t = _tenant(tid)
        user = _user(t, uid)
        set_client_presence(t, user["id"], availability, activity)
        return jsonify(admin_view(t, user["id"]))


@admin_bp.get("/tenants/<tid>/users/<uid>/teams-presence")
def get_teams_presence(tid: str, uid: str) -> Response:
    with store().lock:
        t = _tenant(tid)
        return jsonify(admin_view(t, _user(t, uid)["id"]))


@admin_bp.put("/tenants/<tid>/teams-presence")
def put_many_teams_presence(tid: str) -> Response:
    """``{user id: {"availability", "activity"}}`` for many users at once (benchmarks); answers the count."""
    body = _json()
    if not isinstance(body, dict):
        raise AdminError(400, "The body must map user ids to {availability, activity}.")
    pairs = {uid: _client_presence(value) for uid, value in body.items()}
    with store().lock:
        t = _tenant(tid)
        for uid, (availability, activity) in pairs.items():
            set_client_presence(t, _user(t, uid)["id"], availability, activity)
    return jsonify({"updated": len(pairs)})


# --- groups --------------------------------------------------------------------------------------------------


@admin_bp.post("/tenants/<tid>/groups")
def create_group(tid: str) -> tuple[Response, int]:
    body = _json()
    fixture_group = {k: v for k, v in body.items() if k != "members"}
    with store().lock:
        t = _tenant(tid)
        from .store import new_id
        gid = str(fixture_group.get("id") or new_id()).lower()
        group = {"securityEnabled": True, "mailEnabled": False, "groupTypes": [], **fixture_group, "id": gid,
                 "_members": [str(m).lower() for m in body.get("members") or []]}
        group.setdefault("displayName", gid)
        t.groups[gid] = group
        store().record_change(t, "group", gid, "created")
        return jsonify(public(group)), 201


@admin_bp.put("/tenants/<tid>/groups/<gid>/members")
def set_members(tid: str, gid: str) -> Response:
    members = _json()
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise AdminError(400, "The body must be a JSON list of user or group ids.")
    with store().lock:
        t = _tenant(tid)
        group = t.groups.get(gid.lower())
        if group is None:
            raise AdminError(404, f"Group {gid} does not exist in tenant {t.id}.")
        unknown = [m for m in members if m.lower() not in t.users and m.lower() not in t.groups]
        if unknown:
            raise AdminError(400, f"Unknown member ids: {', '.join(unknown)}.")
        group["_members"] = [m.lower() for m in members]
        store().record_change(t, "group", group["id"], "updated", data={"properties": ["members"]})
        return jsonify({"id": group["id"], "members": group["_members"]})


# --- faults, request log, generation, keys -------------------------------------------------------------------


@admin_bp.post("/faults")
def add_fault() -> tuple[Response, int]:
    return jsonify({"id": current_app.extensions["m365_traffic"].add_fault(_json())}), 201


@admin_bp.delete("/faults")
def clear_faults() -> tuple[str, int]:
    current_app.extensions["m365_traffic"].clear_faults()
    return "", 204


@admin_bp.get("/requests")
def requests_log() -> Response:
    return jsonify(current_app.extensions["m365_traffic"].entries())


@admin_bp.delete("/requests")
def clear_requests() -> tuple[str, int]:
    current_app.extensions["m365_traffic"].clear_log()
    return "", 204


@admin_bp.post("/generate")
def generate() -> tuple[Response, int]:
    tenant = generate_tenant(store(), _json())
    with store().lock:
        return jsonify({"id": tenant.id, **tenant.counts()}), 201


@admin_bp.post("/keys/rotate")
def rotate_keys() -> Response:
    """Start signing tokens with a new key (the old one stays in the JWKS)."""
    return jsonify({"kid": current_app.extensions["m365_keys"].rotate()})
