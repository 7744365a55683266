"""``GET /v1.0/users/delta``: the directory's delta query (delta-query-overview, delta-query-users, user-delta).

A round is pages linked by ``@odata.nextLink`` (``$skiptoken``) ending with an ``@odata.deltaLink``
(``$deltatoken``). Tokens are signed and carry the initial ``$select``/``$filter`` and the change-log position;
a token older than 7 days or issued before ``POST /_emulator/tenants/{tid}/delta/reset`` answers ``410 Gone``
with a ``Location`` of the initial query (synchronization reset).
"""
from __future__ import annotations

import bisect

from flask import Response, request

from .graph_common import (BadToken, StaleToken, build_url, graph_context, graph_error, graph_json, has_permission,
                           odata_context, page_size, prefer, read_token, require_permission, sign_token, store)
from .graph_directory import (DEFAULT_USER_PROPS, FULL_USERS, READ_USERS, _sorted_users, directory_bp, user_select,
                              user_view)
from .odata_filter import UnsupportedFilter, parse_filter
from .store import Tenant
from .throttle import charge_directory

delta_bp = directory_bp  # same blueprint: the routes below sit next to the other /users routes
DELTA_PATH = "/v1.0/users/delta"
TOKEN_MAX_AGE = 7 * 86400
MAX_FILTER_IDS = 50


def _reset_error(select: list[str] | None) -> Exception:
    location = build_url(DELTA_PATH, {"$select": ",".join(select)} if select else {})
    return graph_error(410, "resyncRequired", "The delta token has expired or was invalidated; start a new "
                       "synchronization with the initial delta query.", headers={"Location": location})


def _state() -> dict:
    """The round's state: from the token in the URL, or a new initial round."""
    ctx = graph_context()
    for name in ("$skiptoken", "$deltatoken", "$deltaToken"):
        raw = request.args.get(name)
        if raw is None or (name != "$skiptoken" and raw.lower() == "latest"):
            continue
        try:
            state = read_token(ctx.tenant, raw, max_age=TOKEN_MAX_AGE)
        except StaleToken as exc:
            raise _reset_error(None) from exc
        except BadToken as exc:
            raise graph_error(400, "Request_BadRequest", "The delta token is invalid for this request.") from exc
        if state.get("kind") != "users":
            raise graph_error(400, "Request_BadRequest", "The delta token belongs to another resource.")
        return state
    select = user_select(collection=True)
    ids: list[str] = []
    text = request.args.get("$filter")
    if text:
        try:
            parsed = parse_filter(text, {"id"})
        except UnsupportedFilter as exc:
            raise graph_error(400, "Request_UnsupportedQuery", "Only $filter=id eq '...' (joined with 'or') is "
                              "supported on users delta.") from exc
        if parsed.advanced or not parsed.ids or len(parsed.ids) > MAX_FILTER_IDS:
            raise graph_error(400, "Request_UnsupportedQuery", f"Filter by id supports 1 to {MAX_FILTER_IDS} "
                              "ids joined with 'or'.")
        ids = sorted({i.lower() for i in parsed.ids})
    latest = any((request.args.get(n) or "").lower() == "latest" for n in ("$deltatoken", "$deltaToken"))
    seq = store().current_seq
    if latest:
        return {"kind": "users", "sel": select, "ids": ids, "mode": "latest", "from": seq}
    return {"kind": "users", "sel": select, "ids": ids, "mode": "init", "to": seq, "first": True}


def _clean(obj: dict, keep_null: set[str] = frozenset()) -> dict:
    return {k: v for k, v in obj.items() if v is not None or k in keep_null or k == "id"}


def _incremental(tenant: Tenant, state: dict, basic_only: bool, minimal: bool) -> list[dict]:
    """The changed users between ``from`` and ``to`` in the change log, one entry per user."""
    changes = tenant.changes
    seqs = [c.seq for c in changes]
    lo, hi = bisect.bisect_right(seqs, state["from"]), bisect.bisect_right(seqs, state["to"])
    per: dict[str, dict] = {}
    for c in changes[lo:hi]:
        if c.kind != "user":
            continue
        entry = per.pop(c.object_id, None) or {"types": set(), "props": set(), "all": False}
        entry["types"].add(c.change_type)
        props = (c.data or {}).get("properties")
        if c.change_type == "updated" and props:
            entry["props"].update(props)
        elif c.change_type == "updated":
            entry["all"] = True
        per[c.object_id] = entry  # re-insert: ordered by last change
    wanted = set(state["ids"]) if state["ids"] else None
    select = state["sel"]
    tracked = set(select or DEFAULT_USER_PROPS)
    out = []
    for oid, entry in per.items():
        if wanted is not None and oid not in wanted:
            continue
        user = tenant.users.get(oid)
        if user is None:
            out.append({"id": oid, "@removed": {"reason": "deleted"}})
            continue
        if user.get("_deleted"):
            out.append({"id": oid, "@removed": {"reason": "changed"}})
            continue
        full = bool(entry["types"] & {"created", "restored"}) or entry["all"]
        changed = entry["props"] & tracked
        if not full and not changed:
            continue  # only untracked properties changed
        view = user_view(user, select, basic_only, ("id",))
        if minimal and not full:
            out.append({"id": oid, **{k: view[k] for k in changed if k in view}})
        else:
            out.append(_clean(view, changed))
    return out


@directory_bp.get("/v1.0/users/delta")
@directory_bp.get("/v1.0/users/microsoft.graph.delta()")
def users_delta() -> Response:
    ctx = graph_context()
    require_permission(*READ_USERS)
    charge_directory(2)
    basic_only = not has_permission(*FULL_USERS)
    minimal = prefer().get("return") == "minimal"
    n = page_size(100, 999, allow_top=False)  # users delta ignores $top (delta-query-overview)
    state = _state()
    select = state["sel"]
    first = state.pop("first", False)
    context = odata_context("users", select if first else None)
    if state["mode"] == "latest":
        link = build_url(DELTA_PATH, {"$deltatoken": sign_token(ctx.tenant, {**state, "mode": "inc"})})
        return graph_json({"@odata.context": context, "@odata.deltaLink": link, "value": []})
    with store().lock:
        if state["mode"] == "init":
            users = _sorted_users(ctx.tenant)
            if state["ids"]:
                wanted = set(state["ids"])
                users = [u for u in users if u["id"] in wanted]
            keys = [u["id"] for u in users]
            start = bisect.bisect_right(keys, state["k"]) if state.get("k") else 0
            page = users[start:start + n]
            value = [_clean(user_view(u, select, basic_only, ("id",))) for u in page]
            more = start + n < len(users)
            next_state = {**state, "k": page[-1]["id"]} if more else None
            end_seq = state["to"]
        else:
            if "to" not in state:  # first page of an incremental round: fix its end now
                state = {**state, "to": store().current_seq, "o": 0}
            items = _incremental(ctx.tenant, state, basic_only, minimal)
            start = state.get("o", 0)
            value = items[start:start + n]
            more = start + n < len(items)
            next_state = {**state, "o": start + n} if more else None
            end_seq = state["to"]
    body: dict = {"@odata.context": context}
    if next_state is not None:
        body["@odata.nextLink"] = build_url(DELTA_PATH, {"$skiptoken": sign_token(ctx.tenant, next_state)})
    else:
        delta = {"kind": "users", "sel": select, "ids": state["ids"], "mode": "inc", "from": end_seq}
        body["@odata.deltaLink"] = build_url(DELTA_PATH, {"$deltatoken": sign_token(ctx.tenant, delta)})
    body["value"] = value
    return graph_json(body)
