"""Every property the emulator returns exists in Microsoft's v1.0 CSDL with a compatible type.

The tenant is filled first (photo, mailbox settings, contact folders with contacts, single and recurring events,
a subscription, a draft), so that every answer checked holds real objects of each type: user, contact,
contactFolder, event, mailboxSettings, profilePhoto, subscription and message. The entity type of each answer
comes from resolving its request path against the CSDL itself; items carrying ``@odata.type`` (directory objects,
delta items) are checked against that type.
"""
from __future__ import annotations

import datetime as dt

import pytest

from flask_pbx365.emulator import csdl

from ..emulator_outlook.conftest import Listener
from .conftest import ALL_READ, user_id

EXTRA = ["Contacts.Read", "Calendars.Read", "User.Read.All", "Mail.ReadWrite", "Presence.ReadWrite.All"]
WINDOW = "startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-05-01T00:00:00Z"
USER_SELECT = ",".join(["accountEnabled", "department", "userType", "createdDateTime", "businessPhones",
                        "mobilePhone", "mail", "companyName", "jobTitle", "officeLocation", "employeeId",
                        "preferredLanguage", "onPremisesImmutableId", "proxyAddresses", "otherMails"])
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def _check(value: object, type_name: str, where: str) -> int:
    """Assert ``value`` fits ``type_name`` property by property (recursing); returns how many properties."""
    sch = csdl.schema()
    if isinstance(value, dict) and isinstance(value.get("@odata.type"), str):
        cast = value["@odata.type"].lstrip("#")
        cast = cast if cast.startswith("microsoft.graph.") else f"microsoft.graph.{cast.rsplit('.', 1)[-1]}"
        assert cast in sch.types, f"{where}: @odata.type {value['@odata.type']!r} is not in the CSDL"
        type_name = cast
    props = {**sch.properties(type_name), **sch.navigation(type_name)}
    checked = 0
    for key, item in value.items():
        if key.startswith("@") or "@" in key:
            continue
        assert key in props, f"{where}: {key!r} is not a property of {type_name}"
        member = props[key]
        inner = member[11:-1] if member.startswith("Collection(") else member
        if inner in sch.types and item is not None:
            for element in (item if member.startswith("Collection(") else [item]):
                assert isinstance(element, dict), f"{where}: {key}={element!r} is not a {inner}"
                checked += _check(element, inner, f"{where}.{key}")
        else:
            assert csdl.compatible(member, item, sch), f"{where}: {key}={item!r} does not fit {member}"
        checked += 1
    return checked


def _in(minutes: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def filled(graph_for, m365_emulator, m365_tenant):
    """A tenant holding one object of every kind the conformance test reads, and a Graph session on it."""
    em, tid = m365_emulator, m365_tenant
    alice = user_id(em, tid, "alice")
    g = graph_for(sorted(set(ALL_READ + EXTRA)))
    em.put_photo(tid, alice, PNG, "image/png")
    em.patch_user(tid, alice, mailboxSettings={"userPurpose": "user", "timeZone": "W. Europe Standard Time"})
    folder = em.admin("POST", f"/tenants/{tid}/users/{alice}/contactFolders", {"displayName": "Work"})
    child = em.admin("POST", f"/tenants/{tid}/users/{alice}/contactFolders",
                     {"displayName": "Team", "parentFolderId": folder["id"]})
    contact = {"givenName": "Pat", "surname": "Partner", "displayName": "Pat Partner", "companyName": "Fabrikam",
               "jobTitle": "Buyer", "department": "Purchasing", "businessPhones": ["+1 425 555 0199"],
               "homePhones": ["+1 425 555 0198"], "mobilePhone": "+1 425 555 0197",
               "emailAddresses": [{"name": "Pat", "address": "pat@fabrikam.example"}],
               "businessAddress": {"street": "1 Main St", "city": "Redmond", "postalCode": "98052",
                                   "countryOrRegion": "USA"}}
    for parent in (None, folder["id"], child["id"]):
        em.admin("POST", f"/tenants/{tid}/users/{alice}/contacts", {**contact, "parentFolderId": parent})
    em.admin("POST", f"/tenants/{tid}/users/{alice}/events", {
        "subject": "Standup", "showAs": "busy", "location": {"displayName": "Room 1"},
        "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-03-16T09:15:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"],
                                   "firstDayOfWeek": "monday"},
                       "range": {"type": "endDate", "startDate": "2026-03-16", "endDate": "2026-04-30"}}})
    em.admin("POST", f"/tenants/{tid}/users/{alice}/events", {
        "subject": "Trip", "showAs": "oof", "isAllDay": False,
        "start": {"dateTime": "2026-03-26T08:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-03-26T17:00:00", "timeZone": "Pacific Standard Time"}})
    em.admin("PUT", f"/tenants/{tid}/users/{alice}/teams-presence", {"availability": "Busy", "activity": "InAMeeting"})
    assert g.request("POST", f"/users/{alice}/presence/setPresence", json={
        "sessionId": g.app_id, "availability": "Busy", "activity": "InACall"}).status_code == 200
    listener = Listener()
    subscription = g.request("POST", "/subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": listener.url,
        "lifecycleNotificationUrl": listener.url, "resource": f"users/{alice}/contacts",
        "expirationDateTime": _in(60), "clientState": "pbx"})
    assert subscription.status_code == 201, subscription.text
    draft = g.request("POST", f"/users/{alice}/messages", json={
        "subject": "Voicemail", "body": {"contentType": "text", "content": "hello"},
        "toRecipients": [{"emailAddress": {"address": "bob@contoso.example"}}]})
    assert draft.status_code == 201, draft.text
    yield {"g": g, "alice": alice, "folder": folder["id"], "child": child["id"],
           "subscription": subscription.json(), "draft": draft.json(),
           "group": next(x for x in g.get("/groups").json()["value"] if x["displayName"] == "Everyone")}
    listener.close()


# (request path template, query, headers, least number of items expected)
CASES = [
    ("/users/{alice}", "", {}, 1),
    ("/users/{alice}", "?$select=" + USER_SELECT, {}, 1),
    ("/users", "", {}, 6),
    ("/users", "?$select=" + USER_SELECT + "&$filter=accountEnabled eq true&$count=true",
     {"ConsistencyLevel": "eventual"}, 5),
    ("/users/delta", "", {}, 6),
    ("/users/{alice}/mailboxSettings", "", {}, 1),
    ("/users/{alice}/photo", "", {}, 1),
    ("/groups", "", {}, 2),
    ("/groups/{group}/transitiveMembers", "", {}, 4),
    ("/users/{alice}/contacts", "", {}, 1),
    ("/users/{alice}/contacts/{contact}", "", {}, 1),
    ("/users/{alice}/contactFolders", "", {}, 1),
    ("/users/{alice}/contactFolders/{folder}/childFolders", "", {}, 1),
    ("/users/{alice}/contactFolders/{folder}/contacts", "", {}, 1),
    ("/users/{alice}/contactFolders/{folder}/contacts/delta", "", {}, 1),
    ("/users/{alice}/contactFolders/delta", "", {}, 2),
    ("/users/{alice}/events", "", {}, 2),
    ("/users/{alice}/calendarView", "?" + WINDOW, {"Prefer": 'outlook.timezone="Europe/Berlin"'}, 7),
    ("/users/{alice}/calendarView/delta", "?" + WINDOW, {}, 7),
    ("/subscriptions", "", {}, 1),
    ("/subscriptions/{subscription}", "", {}, 1),
    ("/users/{alice}/messages/{draft}", "", {}, 1),
    ("/users/{alice}/presence", "", {}, 1),
    ("/communications/presences/{alice}", "", {}, 1),
]


@pytest.mark.parametrize("template,query,headers,least", CASES, ids=[c[0] + c[1][:12] for c in CASES])
def test_emulator_output_fits_csdl(filled, template, query, headers, least):
    g = filled["g"]
    contact = g.get(f"/users/{filled['alice']}/contacts").json()["value"][0]["id"]
    path = template.format(alice=filled["alice"], folder=filled["folder"], contact=contact,
                           group=filled["group"]["id"], subscription=filled["subscription"]["id"],
                           draft=filled["draft"]["id"])
    r = g.get(path + query, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    type_name = csdl.schema().resolve_path(template)
    if type_name.startswith("Collection("):
        items = list(body["value"])
        while "@odata.nextLink" in body:
            body = g.get(body["@odata.nextLink"], headers=headers).json()
            items += body["value"]
        type_name = type_name[11:-1]
    else:
        items = [body]
    assert len(items) >= least, f"{template}: only {len(items)} items to check"
    for item in items:
        assert _check(item, type_name, template) >= (1 if "@removed" in item else 2)


def test_created_objects_fit_csdl(filled):
    """What POST answers (subscription, draft message) fits its type too."""
    assert _check(filled["subscription"], "microsoft.graph.subscription", "POST /subscriptions") >= 8
    assert _check(filled["draft"], "microsoft.graph.message", "POST /messages") >= 8


def test_presences_by_user_id_fit_csdl(filled):
    """getPresencesByUserId answers a collection of presence (what the CSDL's action returns)."""
    g, alice = filled["g"], filled["alice"]
    r = g.request("POST", "/communications/getPresencesByUserId", json={"ids": [alice]})
    assert r.status_code == 200, r.text
    assert csdl.schema().resolve_path("/communications/getPresencesByUserId") == "Collection(microsoft.graph.presence)"
    [item] = r.json()["value"]
    assert _check(item, "microsoft.graph.presence", "getPresencesByUserId") == 3
    assert (item["availability"], item["activity"]) == ("Busy", "InACall")  # equal ranks: the newest session


def test_single_mailbox_setting_is_the_enum_value(filled):
    r = filled["g"].get(f"/users/{filled['alice']}/mailboxSettings/userPurpose")
    assert r.status_code == 200
    sch = csdl.schema()
    member = sch.properties("microsoft.graph.mailboxSettings")["userPurpose"]
    assert r.json()["value"] == "user" and csdl.compatible(member, r.json()["value"], sch)


def test_csdl_resolves_paths():
    sch = csdl.schema()
    assert sch.resolve_path("/users/{id}/contactFolders/{id}/contacts/delta") == "Collection(microsoft.graph.contact)"
    assert sch.resolve_path("/users/{id}/mailboxSettings") == "microsoft.graph.mailboxSettings"
    assert sch.resolve_path("/users/{id}/photo") == "microsoft.graph.profilePhoto"
    assert sch.properties("microsoft.graph.user")["id"] == "Edm.String"  # from the base type
    with pytest.raises(KeyError):
        sch.resolve_path("/users/{id}/noSuchThing")
    assert not csdl.compatible("microsoft.graph.userPurpose", {"value": "user"}, sch)
    # bound actions and functions, as the client sends them
    assert sch.resolve_path("/users/{id}/sendMail") == "Edm.Untyped"
    assert sch.resolve_path("/users/{id}/microsoft.graph.sendMail") == "Edm.Untyped"
    assert sch.resolve_path("/users/{id}/messages/{id}/attachments/createUploadSession") == \
        "microsoft.graph.uploadSession"
    assert sch.resolve_path("/users/microsoft.graph.delta()") == "Collection(microsoft.graph.user)"
    assert sch.resolve_path("/users/{id}/contactfolders/{id}/contacts/delta") == "Collection(microsoft.graph.contact)"
    assert sch.resolve_path("/groups/{id}/transitiveMembers/microsoft.graph.user") == "Collection(microsoft.graph.user)"
    with pytest.raises(KeyError):
        sch.resolve_path("/users/{id}/sendMessage")
    with pytest.raises(KeyError):
        sch.resolve_path("/users/{id}/mailboxSettings/delta")


@pytest.mark.parametrize("cloud_file, contact_delta", [
    ("v1.0-Prod.csdl", True), ("v1.0-Fairfax.csdl", True), ("v1.0-Mooncake.csdl", False)])
def test_cloud_feature_set_follows_its_csdl(cloud_file, contact_delta):
    """The emulator offers contact and contact folder delta in the global and US clouds but not in 21Vianet
    (its tenants answer 501 there), because that is what each cloud's own CSDL binds."""
    sch = csdl.schema(cloud_file)
    for path in ("/users/{id}/contactFolders/{id}/contacts/delta", "/users/{id}/contactFolders/delta"):
        if contact_delta:
            assert sch.resolve_path(path).startswith("Collection(")
        else:
            with pytest.raises(KeyError, match="not bound"):
                sch.resolve_path(path)
    assert sch.resolve_path("/users/delta") == "Collection(microsoft.graph.user)"
    assert sch.resolve_path("/users/{id}/calendarView/delta") == "Collection(microsoft.graph.event)"


def test_checker_catches_what_the_csdl_lacks():
    """The check itself can fail: an unknown property, a wrong type, and a bad nested value are caught."""
    with pytest.raises(AssertionError, match="notAGraphProperty"):
        _check({"id": "x", "notAGraphProperty": 1}, "microsoft.graph.user", "t")
    with pytest.raises(AssertionError, match="accountEnabled"):
        _check({"id": "x", "accountEnabled": "yes"}, "microsoft.graph.user", "t")
    with pytest.raises(AssertionError, match="emailAddresses"):
        _check({"id": "x", "emailAddresses": [{"address": "a@b", "primary": True}]}, "microsoft.graph.contact", "t")
    with pytest.raises(AssertionError, match="@odata.type"):
        _check({"@odata.type": "#microsoft.graph.nothing", "id": "x"}, "microsoft.graph.directoryObject", "t")
