"""What the User Sync tab's pickers list: the tenant's departments, groups and users, cached briefly in Redis."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from ..connection import client_options, credentials_for
from ..exceptions import GraphError, PBX365Error
from ..graph import GraphClient
from ..state import get_state
from .mapping import is_guest, text

CACHE_SECONDS = 600


def _key(tenant: str) -> str:
    return f"pbx365:sync:{tenant}:directory"


def directory_snapshot(tenant: str, refresh: bool = False) -> dict:
    """``{"departments": [...], "groups": [{id, displayName}], "users": [{id, displayName,
    userPrincipalName, department, guest}], "errors": [...], "fetched_at"}``; read from Graph at most every 10
    minutes unless ``refresh``. Never raises: problems are listed in ``errors`` for the tab to show."""
    redis = get_state().redis()
    if not refresh:
        cached = redis.get(_key(tenant))
        if cached:
            return json.loads(cached)
    data: dict = {"departments": [], "groups": [], "users": [], "errors": [],
                  "fetched_at": datetime.now(timezone.utc).isoformat()}
    try:
        client = GraphClient(credentials_for(tenant), **client_options())
    except PBX365Error as exc:
        data["errors"].append(str(exc))
        return data
    with client:
        try:
            users = list(client.iter_items("/users", params={
                "$select": "id,displayName,userPrincipalName,department,userType", "$top": "999"}))
            data["users"] = sorted(({"id": u["id"], "displayName": text(u.get("displayName")),
                                     "userPrincipalName": text(u.get("userPrincipalName")),
                                     "department": text(u.get("department")), "guest": is_guest(u)}
                                    for u in users if u.get("id")), key=lambda u: u["displayName"].lower())
            departments = {u["department"].lower(): u["department"] for u in data["users"] if u["department"]}
            data["departments"] = sorted(departments.values(), key=str.lower)
        except GraphError as exc:
            data["errors"].append(f"Could not list users and departments: {exc}")
        try:
            groups = client.iter_items("/groups", params={"$select": "id,displayName", "$top": "999"})
            data["groups"] = sorted(({"id": g["id"], "displayName": text(g.get("displayName"))}
                                     for g in groups if g.get("id")), key=lambda g: g["displayName"].lower())
        except GraphError as exc:
            data["errors"].append(f"Could not list groups (needs GroupMember.Read.All): {exc}")
    if not data["errors"]:
        redis.set(_key(tenant), json.dumps(data), ex=CACHE_SECONDS)
    return data


def search(items: list[dict], query: str, limit: int = 50) -> list[dict]:
    """Items whose display name, UPN or department contains ``query`` (case-insensitive)."""
    q = query.strip().lower()
    found = [i for i in items if not q or any(q in str(i.get(k) or "").lower()
                                               for k in ("displayName", "userPrincipalName", "department"))]
    return found[:limit]
