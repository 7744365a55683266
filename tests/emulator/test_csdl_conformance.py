"""Every property the emulator returns exists in Microsoft's v1.0 CSDL with a compatible type.

Generic over ``CASES``: (request path template, query) pairs; the entity type comes from resolving the path
against the CSDL itself.
"""
from __future__ import annotations

import pytest

from flask_pbx365.emulator import csdl

from .conftest import ALL_READ, user_id

CASES = [
    ("/users/{alice}", ""),
    ("/users/{alice}", "?$select=" + ",".join(["accountEnabled", "department", "userType", "createdDateTime",
                                               "businessPhones", "mobilePhone", "mail", "companyName", "jobTitle"])),
    ("/users", ""),
    ("/users/delta", ""),
    ("/users/{alice}/mailboxSettings", ""),
    ("/users/{alice}/photo", ""),
    ("/groups", ""),
    ("/users/{alice}/contacts", ""),
    ("/users/{alice}/contactFolders", ""),
    ("/users/{alice}/events", ""),
    ("/subscriptions", ""),
]
EXTRA = ["Contacts.Read", "Calendars.Read", "User.Read.All"]


def _check(obj: dict, type_name: str, where: str) -> None:
    sch = csdl.schema()
    props = {**sch.properties(type_name), **sch.navigation(type_name)}
    for key, value in obj.items():
        if key.startswith("@") or "@" in key:
            continue
        assert key in props, f"{where}: {key!r} is not a property of {type_name}"
        assert csdl.compatible(props[key], value, sch), f"{where}: {key}={value!r} does not fit {props[key]}"


def test_csdl_resolves_paths():
    sch = csdl.schema()
    assert sch.resolve_path("/users/{id}/contactFolders/{id}/contacts/delta") == "Collection(microsoft.graph.contact)"
    assert sch.resolve_path("/users/{id}/mailboxSettings") == "microsoft.graph.mailboxSettings"
    assert sch.resolve_path("/users/{id}/photo") == "microsoft.graph.profilePhoto"
    assert sch.properties("microsoft.graph.user")["id"] == "Edm.String"  # from the base type
    with pytest.raises(KeyError):
        sch.resolve_path("/users/{id}/noSuchThing")
    assert not csdl.compatible("microsoft.graph.userPurpose", {"value": "user"}, sch)


@pytest.mark.parametrize("template,query", CASES)
def test_emulator_output_fits_csdl(graph_for, m365_emulator, m365_tenant, template, query):
    g = graph_for(sorted(set(ALL_READ + EXTRA)))
    path = template.format(alice=user_id(m365_emulator, m365_tenant, "alice"))
    r = g.get(path + query)
    assert r.status_code == 200, r.text
    body = r.json()
    type_name = csdl.schema().resolve_path(template)
    if type_name.startswith("Collection("):
        items = body["value"]
        type_name = type_name[11:-1]
    else:
        items = [body]
    for item in items:
        _check(item, type_name, template)
