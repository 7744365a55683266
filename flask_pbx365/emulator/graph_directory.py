"""Graph directory endpoints: users, groups and their members, profile photos, mailbox settings.

Permissions and shapes as Microsoft documents them (user-list, user-get, user-update, group-list-members,
group-list-transitivemembers, profilephoto-get, user-get-mailboxsettings); users delta is in :mod:`.graph_delta`.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from . import csdl
from .graph_common import (apply_select, collection, eventual_consistency, graph_context, graph_error, graph_json,
                           has_permission, odata_context, paginate, parse_select, require_mailbox,
                           require_permission, resolve_user, store)
from .odata_filter import UnsupportedFilter, parse_filter
from .store import Tenant
from .throttle import charge_directory

directory_bp = Blueprint("m365_directory", __name__)

DEFAULT_USER_PROPS = ["businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"]
BASIC_USER_PROPS = {"id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "securityIdentifier"}
NOT_IN_COLLECTION = {"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects", "preferredName",
                     "responsibilities", "schools", "skills", "mailboxSettings"}
USER_FILTERABLE = {"id", "department", "userType", "accountEnabled", "mail", "userPrincipalName", "displayName",
                   "givenName", "surname", "jobTitle", "companyName", "employeeId", "officeLocation", "country",
                   "city", "state", "mailNickname", "usageLocation", "employeeType", "onPremisesSyncEnabled"}
GROUP_FILTERABLE = {"id", "displayName", "mail", "mailEnabled", "securityEnabled", "mailNickname"}
READ_USERS = ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
              "Directory.ReadWrite.All")
FULL_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_GROUPS = ("GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All",
               "Directory.Read.All", "Directory.ReadWrite.All")
PHOTO_READ = ("ProfilePhoto.Read.All", "User.Read.All", "User.ReadWrite.All", "ProfilePhoto.ReadWrite.All",
              "Directory.Read.All", "Directory.ReadWrite.All")
READ_ONLY_USER_PROPS = {"id", "createdDateTime", "deletedDateTime", "securityIdentifier", "userType"}
PHONE_PROPS = {"businessPhones", "mobilePhone"}
#: Properties Microsoft calls sensitive: an app-only caller may not change them on a privileged administrator
#: ("Who can perform sensitive actions"; the app itself would need a higher administrator role).
SENSITIVE_PROPS = {"businessPhones", "mobilePhone", "otherMails", "accountEnabled"}
#: Directory roles that do not make a user privileged for those updates.
UNPRIVILEGED_ROLES = {"Directory Readers", "Guest Inviter", "Message Center Reader", "Reports Reader"}


def _unsupported(message: str) -> Exception:
    return graph_error(400, "Request_UnsupportedQuery", message)


def user_select(collection: bool) -> list[str] | None:
    """The validated ``$select`` for user objects (400 unknown property, 501 not returnable in collections)."""
    select = parse_select()
    if not select:
        return None
    props = csdl.schema().properties("microsoft.graph.user")
    for p in select:
        if p not in props:
            raise graph_error(400, "Request_BadRequest",
                              f"Could not find a property named '{p}' on type 'microsoft.graph.user'.")
        if collection and p in NOT_IN_COLLECTION:
            raise graph_error(501, "NotImplemented", "This operation target is not yet supported.")
    return select


def user_view(user: dict, select: list[str] | None, basic_only: bool, always: tuple[str, ...] = ()) -> dict:
    """The user as Graph returns it for this request's ``$select`` and permissions."""
    props = select or DEFAULT_USER_PROPS
    if basic_only:
        props = [p for p in props if p in BASIC_USER_PROPS]
    return apply_select(user, props, always=always)


def _count_requested() -> bool:
    if request.args.get("$count", "").lower() != "true":
        return False
    if not eventual_consistency():
        raise graph_error(400, "Request_BadRequest", "$count is not currently supported.")
    return True


def _filter(allowed: set[str], basic_only: bool = False):
    text = request.args.get("$filter")
    if not text:
        return None
    try:
        parsed = parse_filter(text, allowed)
    except UnsupportedFilter as exc:
        raise _unsupported(str(exc)) from exc
    if parsed.advanced and not (eventual_consistency() and request.args.get("$count", "").lower() == "true"):
        raise _unsupported("Unsupported query: 'ne' and 'not' need the ConsistencyLevel: eventual header and "
                           "$count=true.")
    if basic_only and parsed.properties - BASIC_USER_PROPS:
        raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    return parsed.predicate


def _search(user: dict, text: str) -> bool:
    text = text.strip().strip('"')
    for alternative in text.split('" OR "'):
        terms = [t.strip().strip('"') for t in alternative.split('" AND "')]
        if all(_search_term(user, t) for t in terms):
            return True
    return False


def _search_term(obj: dict, term: str) -> bool:
    prop, _, value = term.partition(":")
    val = obj.get(prop.strip())
    return isinstance(val, str) and value.strip().lower() in val.lower()


def _sorted_users(tenant: Tenant) -> list[dict]:
    """Live users ordered by id (cached until the tenant's next change)."""
    stamp = (len(tenant.users), tenant.changes[-1].seq if tenant.changes else 0)
    cached = tenant.extra.get("_users_by_id")
    if cached and cached[0] == stamp:
        return cached[1]
    users = sorted((u for u in tenant.users.values() if not u.get("_deleted")), key=lambda u: u["id"])
    tenant.extra["_users_by_id"] = (stamp, users)
    return users


@directory_bp.get("/v1.0/users")
def list_users() -> Response:
    ctx = graph_context()
    require_permission(*READ_USERS)
    charge_directory(2)
    basic_only = not has_permission(*FULL_USERS)
    select = user_select(collection=True)
    count = _count_requested()
    pred = _filter(USER_FILTERABLE, basic_only)
    search = request.args.get("$search")
    if search and not eventual_consistency():
        raise graph_error(400, "Request_UnsupportedQuery",
                          "Request with $search query parameter only works through MSGraph with a special request "
                          "header: 'ConsistencyLevel: eventual'")
    orderby = request.args.get("$orderby")
    with store().lock:
        users = _sorted_users(ctx.tenant)
        if pred is not None:
            users = [u for u in users if pred(u)]
        if search:
            users = [u for u in users if _search(u, search)]
        key = lambda u: u["id"]  # noqa: E731
        if orderby:
            prop, _, direction = orderby.partition(" ")
            if prop not in ("displayName", "userPrincipalName") and not eventual_consistency():
                raise _unsupported(f"Sorting not supported for '{prop}'.")
            users = sorted(users, key=lambda u: (str(u.get(prop) or "").lower(), u["id"]),
                           reverse=direction.strip().lower() == "desc")
            key = None
        page, next_link = paginate(users, tenant=ctx.tenant, default_size=100, max_size=999, key=key,
                                   top_over_max_is_error=True)
        value = [user_view(u, select, basic_only) for u in page]
        total = len(users)
    return graph_json(collection(odata_context("users", select), value, next_link, count=total if count else None))


@directory_bp.get("/v1.0/users/$count")
def count_users() -> Response:
    ctx = graph_context()
    require_permission(*READ_USERS)
    charge_directory(2)
    if not eventual_consistency():
        raise graph_error(400, "Request_BadRequest", "$count is not currently supported.")
    pred = _filter(USER_FILTERABLE, not has_permission(*FULL_USERS))
    with store().lock:
        users = _sorted_users(ctx.tenant)
        n = len(users) if pred is None else sum(1 for u in users if pred(u))
    return Response(str(n), content_type="text/plain")


@directory_bp.get("/v1.0/users/<uid>")
def get_user(uid: str) -> Response:
    ctx = graph_context()
    require_permission(*READ_USERS)
    charge_directory(2)
    basic_only = not has_permission(*FULL_USERS)
    select = user_select(collection=False)
    with store().lock:
        user = resolve_user(ctx.tenant, uid)
        body = user_view(user, select, basic_only)
    return graph_json({"@odata.context": odata_context("users", select, entity=True), **body})


@directory_bp.patch("/v1.0/users/<uid>")
def patch_user(uid: str) -> Response:
    """PATCH a user: 204; only phone properties with User-Phone.ReadWrite.All; one businessPhones entry."""
    ctx = graph_context()
    perm = require_permission("User.ReadWrite.All", "Directory.ReadWrite.All", "User-Phone.ReadWrite.All")
    charge_directory(write=True)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise graph_error(400, "Request_BadRequest", "The request body must be a JSON object.")
    props = csdl.schema().properties("microsoft.graph.user")
    for k in body:
        if k not in props:
            raise graph_error(400, "Request_BadRequest", f"Property '{k}' does not exist as a declared property "
                              "or extension property.")
        if k in READ_ONLY_USER_PROPS:
            raise graph_error(400, "Request_BadRequest", f"Property '{k}' is read-only and cannot be set.")
    if perm == "User-Phone.ReadWrite.All" and set(body) - PHONE_PROPS:
        raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    phones = body.get("businessPhones")
    if "businessPhones" in body and (not isinstance(phones, list) or len(phones) > 1):
        raise graph_error(400, "Request_BadRequest",
                          "Invalid value specified for property 'businessPhones' of resource 'User'.")
    if "displayName" in body and not body["displayName"]:
        raise graph_error(400, "Request_BadRequest",
                          "Invalid value specified for property 'displayName' of resource 'User'.")
    with store().lock:
        user = resolve_user(ctx.tenant, uid)
        privileged = set(user.get("_roles") or []) - UNPRIVILEGED_ROLES
        if ctx.user_id is None and privileged and set(body) & SENSITIVE_PROPS:
            raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        changed = [k for k, v in body.items() if user.get(k) != v]
        user.update(body)
        if changed:
            store().record_change(ctx.tenant, "user", user["id"], "updated", data={"properties": changed})
    return Response(status=204)


# --- photos and mailbox settings -----------------------------------------------------------------------------


@directory_bp.get("/v1.0/users/<uid>/photo")
def photo_meta(uid: str) -> Response:
    ctx = graph_context()
    require_permission(*PHOTO_READ)
    charge_directory()
    with store().lock:
        user = resolve_user(ctx.tenant, uid)
        photo = user.get("_photo")
    ctx_url = odata_context(f"users('{user['id']}')/photo", entity=True)
    if not photo:
        return graph_json({"@odata.context": ctx_url, "@odata.mediaContentType": "image/gif",
                           "@odata.mediaEtag": "", "id": "1x1", "width": 1, "height": 1})
    return graph_json({"@odata.context": ctx_url, "@odata.mediaContentType": photo["contentType"],
                       "@odata.mediaEtag": photo["etag"], "id": "240x240", "width": 240, "height": 240})


@directory_bp.get("/v1.0/users/<uid>/photo/$value")
def photo_value(uid: str) -> Response:
    ctx = graph_context()
    require_permission(*PHOTO_READ)
    charge_directory()
    with store().lock:
        photo = resolve_user(ctx.tenant, uid).get("_photo")
    if not photo:
        raise graph_error(404, "ImageNotFound", "Exception of type "
                          "'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.")
    if photo["etag"] in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        resp = Response(status=304)
    else:
        resp = Response(photo["bytes"], content_type=photo["contentType"])
    resp.headers["ETag"] = photo["etag"]
    return resp


@directory_bp.get("/v1.0/users/<uid>/mailboxSettings")
@directory_bp.get("/v1.0/users/<uid>/mailboxSettings/<setting>")
def mailbox_settings(uid: str, setting: str | None = None) -> Response:
    ctx = graph_context()
    require_permission("MailboxSettings.Read", "MailboxSettings.ReadWrite")
    with store().lock:
        user = require_mailbox(resolve_user(ctx.tenant, uid))
        settings = dict(user.get("_mailboxSettings") or {})
    fragment = f"users('{user['id']}')/mailboxSettings"
    if setting is None:
        return graph_json({"@odata.context": odata_context(fragment), **settings})
    if setting not in csdl.schema().properties("microsoft.graph.mailboxSettings"):
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{setting}'.")
    value = settings.get(setting)
    if isinstance(value, dict):
        return graph_json({"@odata.context": odata_context(f"{fragment}/{setting}"), **value})
    return graph_json({"@odata.context": odata_context(f"{fragment}/{setting}"), "value": value})


# --- groups --------------------------------------------------------------------------------------------------


def _group_view(group: dict, select: list[str] | None) -> dict:
    return apply_select(group, select)


def _member_view(tenant: Tenant, oid: str) -> dict | None:
    """A member as a directoryObject: ``@odata.type`` plus its properties (only id without read access)."""
    user = tenant.users.get(oid)
    if user is not None:
        if user.get("_deleted"):
            return None
        if not has_permission(*READ_USERS):
            return {"@odata.type": "#microsoft.graph.user", "id": oid}
        return {"@odata.type": "#microsoft.graph.user",
                **user_view(user, parse_select(), not has_permission(*FULL_USERS))}
    group = tenant.groups.get(oid)
    if group is not None:
        return {"@odata.type": "#microsoft.graph.group", **_group_view(group, parse_select())}
    return None


def transitive_member_ids(tenant: Tenant, gid: str) -> list[str]:
    """Every direct and nested member of a group (users and groups), each once, cycles tolerated."""
    seen: dict[str, None] = {}
    stack = list(reversed(tenant.groups[gid].get("_members") or []))
    visited_groups = {gid}
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen[oid] = None
        if oid in tenant.groups and oid not in visited_groups:
            visited_groups.add(oid)
            stack.extend(reversed(tenant.groups[oid].get("_members") or []))
    return list(seen)


def _group(tenant: Tenant, gid: str) -> dict:
    group = tenant.groups.get(gid.lower())
    if group is None:
        raise graph_error(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist or one of its queried "
                          "reference-property objects are not present.")
    return group


@directory_bp.get("/v1.0/groups")
def list_groups() -> Response:
    ctx = graph_context()
    require_permission(*READ_GROUPS)
    charge_directory()
    select = parse_select()
    count = _count_requested()
    pred = _filter(GROUP_FILTERABLE)
    with store().lock:
        groups = sorted(ctx.tenant.groups.values(), key=lambda g: g["id"])
        if pred is not None:
            groups = [g for g in groups if pred(g)]
        page, next_link = paginate(groups, tenant=ctx.tenant, default_size=100, max_size=999,
                                   key=lambda g: g["id"], top_over_max_is_error=True)
        value = [_group_view(g, select) for g in page]
    return graph_json(collection(odata_context("groups", select), value, next_link,
                                 count=len(groups) if count else None))


@directory_bp.get("/v1.0/groups/<gid>")
def get_group(gid: str) -> Response:
    ctx = graph_context()
    require_permission(*READ_GROUPS)
    charge_directory()
    select = parse_select()
    with store().lock:
        body = _group_view(_group(ctx.tenant, gid), select)
    return graph_json({"@odata.context": odata_context("groups", select, entity=True), **body})


@directory_bp.get("/v1.0/groups/<gid>/<rel>")
@directory_bp.get("/v1.0/groups/<gid>/<rel>/<cast>")
def group_members(gid: str, rel: str, cast: str | None = None) -> Response:
    """``members`` and ``transitiveMembers``, optionally cast to ``microsoft.graph.user``/``group``."""
    if rel not in ("members", "transitiveMembers"):
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{rel}'.")
    if cast not in (None, "microsoft.graph.user", "microsoft.graph.group"):
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
    ctx = graph_context()
    require_permission(*READ_GROUPS)
    charge_directory(5 if rel == "transitiveMembers" else 3)
    if cast and rel == "transitiveMembers" and not eventual_consistency():
        raise _unsupported("The OData cast on transitiveMembers needs the ConsistencyLevel: eventual header.")
    count = _count_requested()
    with store().lock:
        group = _group(ctx.tenant, gid)
        ids = (transitive_member_ids(ctx.tenant, group["id"]) if rel == "transitiveMembers"
               else list(group.get("_members") or []))
        if cast == "microsoft.graph.user":
            ids = [i for i in ids if i in ctx.tenant.users]
        elif cast == "microsoft.graph.group":
            ids = [i for i in ids if i in ctx.tenant.groups]
        members = [m for m in (_member_view(ctx.tenant, i) for i in ids) if m is not None]
        page, next_link = paginate(members, tenant=ctx.tenant, default_size=100, max_size=999,
                                   top_over_max_is_error=True)
    if cast:
        fragment = f"{cast.rsplit('.', 1)[-1]}s"
    else:
        fragment = "directoryObjects"
    return graph_json(collection(odata_context(fragment), page, next_link, count=len(members) if count else None))
