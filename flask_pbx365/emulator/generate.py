"""Deterministic synthetic tenants (``POST /_emulator/generate``) for benchmarks and demos.

``{"tenantId", "users": N, "contactsPerUser": k, "eventsPerUser": k, "photos": bool, "seed": s,
"displayName"?, "domain"?, "cloud"?, "applications"?: [...]}``: the same spec always gives the same objects
(ids included). Users mix departments; about 5 % are guests, 5 % disabled, 1 % have no given name or surname;
business phones come in varied formats. Groups: one per department, nested sub-groups, "All Staff", and
"Leadership" containing the nested "Managers" group. Every user's password is ``Passw0rd!``; user 0 is
``admin@{domain}``, a Global Administrator.
"""
from __future__ import annotations

import random
import struct
import uuid
import zlib
from datetime import datetime, timedelta, timezone

from .fixtures import ADMIN_ROLE, FixtureError, as_int, make_application, make_user, photo_from
from .store import CLOUD_NAMES, Store, Tenant

DEPARTMENTS = ["Sales", "Engineering", "Support", "Marketing", "Finance", "Human Resources", "Operations"]
FIRST = ["Ada", "Ben", "Chloé", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam", "Mara",
         "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Vik", "Wen", "Xavier", "Yara", "Zoë"]
LAST = ["Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ivanova", "Jensen", "Kowalski",
        "Larsen", "Müller", "Nakamura", "O'Brien", "Petrov", "Quint", "Rossi", "Schmidt", "Tanaka", "Ursu", "Varga",
        "Weber", "Xu", "Yilmaz", "Zimmermann"]
TITLES = ["Manager", "Engineer", "Specialist", "Analyst", "Consultant", "Coordinator", "Director", None]
PHONE_FORMATS = ["+1 425 555 {a:04d}", "(425) 555-{a:04d}", "425.555.{a:04d}", "+44 20 7946 {b:04d}",
                 "0049 30 {a:04d}{b:03d}", "+33 1 42 68 {c:02d} {d:02d}", "555-{a:04d} ext. {d:02d}"]
PASSWORD = "Passw0rd!"


def _png(rgb: tuple[int, int, int]) -> bytes:
    """A valid 8x8 single-colour PNG."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def generate_tenant(store: Store, spec: dict) -> Tenant:
    """Build (replacing any tenant with that id) the synthetic tenant described by ``spec``."""
    if not isinstance(spec, dict):
        raise FixtureError("The generate spec must be a JSON object.")
    seed = spec.get("seed", 1)
    rnd = random.Random(f"pbx365-{seed}")

    def gid() -> str:
        return str(uuid.UUID(int=rnd.getrandbits(128), version=4))

    n = as_int(spec.get("users"), "users", 50, maximum=200_000)
    k_contacts = as_int(spec.get("contactsPerUser"), "contactsPerUser", 0, maximum=1000)
    k_events = as_int(spec.get("eventsPerUser"), "eventsPerUser", 0, maximum=1000)
    cloud = spec.get("cloud") or "global"
    if cloud not in CLOUD_NAMES:
        raise FixtureError(f"Unknown cloud {cloud!r}.")
    tid = str(spec.get("tenantId") or gid()).lower()
    domain = spec.get("domain") or f"synthetic{seed}.example"
    tenant = Tenant(id=tid, display_name=spec.get("displayName") or f"Synthetic {seed}", domains=[domain],
                    cloud=cloud)
    photos = bool(spec.get("photos"))
    base_day = datetime(2030, 1, 7, tzinfo=timezone.utc)
    dept_members: dict[str, list[str]] = {d: [] for d in DEPARTMENTS}
    managers: list[str] = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        dept = DEPARTMENTS[i % len(DEPARTMENTS)]
        nick = f"{first}.{last}.{i}".lower().replace("'", "").replace(" ", "")
        roll = rnd.random()
        data: dict = {"id": gid(), "givenName": first, "surname": last, "displayName": f"{first} {last}",
                      "userPrincipalName": f"{nick}@{domain}", "mailNickname": nick, "department": dept,
                      "jobTitle": rnd.choice(TITLES), "companyName": tenant.display_name, "password": PASSWORD,
                      "officeLocation": rnd.choice(["HQ", "Remote", "Branch 2", None]), "usageLocation": "US"}
        if i == 0:
            data.update(userPrincipalName=f"admin@{domain}", mailNickname="admin", displayName="Tenant Admin",
                        givenName="Tenant", surname="Admin", directoryRoles=[ADMIN_ROLE], department="Operations")
        elif roll < 0.05:
            ext = f"{nick}_partner.example"
            data.update(userType="Guest", userPrincipalName=f"{ext}#EXT#@{domain}", mail=f"{nick}@partner.example")
        elif roll < 0.10:
            data["accountEnabled"] = False
        elif roll < 0.11:
            data.pop("givenName")
            data.pop("surname")
            data["displayName"] = f"svc-{nick.split('.')[0]}-{i}"
        if rnd.random() < 0.8:
            fmt = rnd.choice(PHONE_FORMATS)
            data["businessPhones"] = [fmt.format(a=rnd.randrange(10000), b=rnd.randrange(1000),
                                                 c=rnd.randrange(100), d=rnd.randrange(100))]
        if rnd.random() < 0.5:
            data["mobilePhone"] = f"+1 206 555 {rnd.randrange(10000):04d}"
        if photos and rnd.random() < 0.7:
            data["photo"] = None
        user = make_user(tenant, data)
        if "photo" in data:
            user["_photo"] = photo_from(_png((rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))),
                                        "image/png")
        tenant.users[user["id"]] = user
        dept_members[dept].append(user["id"])
        if data.get("jobTitle") in ("Manager", "Director"):
            managers.append(user["id"])
        _mailbox(tenant, rnd, gid, user, k_contacts, k_events, base_day)
    _groups(tenant, gid, dept_members, managers)
    for app_spec in spec.get("applications") or []:
        app = make_application(app_spec)
        tenant.applications[app["appId"]] = app
    with store.lock:
        store.add_tenant(tenant)
        for uid in tenant.users:
            store.record_change(tenant, "user", uid, "created", data={"properties": []})
        for g in tenant.groups:
            store.record_change(tenant, "group", g, "created")
    return tenant


def _mailbox(tenant: Tenant, rnd: random.Random, gid, user: dict, k_contacts: int, k_events: int,
             base_day: datetime) -> None:
    uid = user["id"]
    if k_contacts:
        contacts = tenant.contacts.setdefault(uid, {})
        for j in range(k_contacts):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            cid = gid()
            contacts[cid] = {"id": cid, "givenName": first, "surname": last, "displayName": f"{first} {last}",
                             "companyName": rnd.choice(["Fabrikam", "Northwind", "Tailspin", None]),
                             "emailAddresses": [{"name": f"{first} {last}",
                                                 "address": f"{first}.{last}{j}@customer.example".lower()}],
                             "businessPhones": [f"+1 312 555 {rnd.randrange(10000):04d}"],
                             "mobilePhone": f"+1 773 555 {rnd.randrange(10000):04d}" if rnd.random() < .5 else None,
                             "homePhones": []}
    if k_events:
        events = tenant.events.setdefault(uid, {})
        for j in range(k_events):
            start = base_day + timedelta(days=j // 4, hours=8 + 2 * (j % 4))
            eid = gid()
            events[eid] = {"id": eid, "subject": rnd.choice(["Standup", "Customer call", "1:1", "Planning"]),
                           "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
                           "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                                   "timeZone": "UTC"},
                           "showAs": rnd.choice(["busy", "tentative", "oof", "workingElsewhere", "free"]),
                           "isAllDay": False, "type": "singleInstance", "isCancelled": False}


def _groups(tenant: Tenant, gid, dept_members: dict[str, list[str]], managers: list[str]) -> None:
    def add(name: str, members: list[str]) -> str:
        g = gid()
        tenant.groups[g] = {"id": g, "displayName": name, "securityEnabled": True, "mailEnabled": False,
                            "groupTypes": [], "mailNickname": name.lower().replace(" ", "-"), "_members": members}
        return g

    dept_groups = []
    for dept, members in dept_members.items():
        half = len(members) // 2
        sub = add(f"{dept} Team B", members[half:])
        dept_groups.append(add(dept, members[:half] + [sub]))
    mgr = add("Managers", managers)
    add("Leadership", [mgr] + managers[:2])
    add("All Staff", dept_groups)
