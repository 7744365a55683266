"""Hostile Graph payloads: property tests of the mapping (hypothesis), and a tenant of odd users synced end to end.

Names in every script and direction (RTL, emoji, NFD), empty and 1,000-character fields, missing keys and null
arrays, the same address twice, phone strings of every shape: the sync never crashes, each user is either applied
whole or is an error item that names the reason, and nothing is half-written.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st

from flask_pbx365.users.mapping import MAPPING_VERSION, map_user, to_e164

from .conftest import env  # noqa: F401  (the fixture)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
NAMES = st.one_of(
    st.none(), st.just(""), st.just(" \t "), st.integers(), st.booleans(),
    st.text(min_size=0, max_size=40),
    st.text(alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=1000),
    st.sampled_from(["עברית", "العربية", "Ünïcødé", "😀 Smiley", unicodedata.normalize("NFD", "Zoë Ångström"),
                     "\u202eevil", "a\u0000b", "x" * 1000]),
)
PHONES = st.one_of(
    st.none(), st.text(max_size=30), st.from_regex(r"\+?[\d\s().\-x#*]{0,25}", fullmatch=True),
    st.sampled_from(["+1 425 555 0101", "(425) 555-0102", "0049 30 1234567", "ext. 42", "+", "++11", "0" * 40,
                     "١٢٣٤٥٦٧٨٩٠", "+1 (425) 555-0101 x123"]),
)
OPTIONS = st.fixed_dictionaries({
    "caller_id_from_office_phone": st.booleans(), "default_region": st.sampled_from(["US", "DE", "GB", "", "zz"]),
    "extension_group": st.one_of(st.none(), st.text(max_size=20)),
})


def graph_users() -> st.SearchStrategy[dict]:
    """Graph user objects as ``/users/delta`` may return them: any selected key missing, null or odd."""
    values = {"givenName": NAMES, "surname": NAMES, "displayName": NAMES, "mail": NAMES,
              "userPrincipalName": NAMES, "department": NAMES, "jobTitle": NAMES, "mobilePhone": PHONES,
              "businessPhones": st.one_of(st.none(), st.lists(PHONES, max_size=3), st.integers()),
              "accountEnabled": st.one_of(st.none(), st.booleans()), "userType": NAMES}
    return st.fixed_dictionaries({"id": st.uuids().map(str)}, optional=values)


@settings(max_examples=400, deadline=None, derandomize=True)  # CI: the same examples each run
@given(user=graph_users(), options=OPTIONS, extension=st.one_of(st.none(), st.text(max_size=6)))
def test_any_graph_user_maps_to_clean_fields_or_no_caller_id(user, options, extension):
    mapped = map_user(user, options, extension)
    for name, value in vars(mapped.fields).items():
        assert value is None or (isinstance(value, str) and value == value.strip()), (name, value)
    if any(isinstance(user.get(k), str) and user[k].strip() for k in ("givenName", "surname", "displayName")):
        assert mapped.fields.display_name
    assert mapped.caller_id is None or E164.match(mapped.caller_id)
    if not options["caller_id_from_office_phone"]:
        assert mapped.caller_id is None and mapped.caller_id_note == ""
    assert mapped.digest() == map_user(user, options, extension).digest()  # deterministic: no spurious rewrites
    assert mapped.digest() == _stored_digest(mapped)  # links synced by earlier versions are not all rewritten


def _stored_digest(mapped) -> str:
    """The digest as every earlier version computed (and stored in links): sha256 of sorted-key JSON."""
    data = {"v": MAPPING_VERSION, "fields": dict(vars(mapped.fields)), "group": mapped.group,
            "caller_id": [mapped.manage_caller_id, mapped.caller_id]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(number=PHONES.filter(lambda p: p is not None), region=st.sampled_from(["US", "DE", "GB", "FR", "JP", "zz"]))
@example(number="۳0000000000000", region="DE")  # found by hypothesis: 16 digits, "valid" for libphonenumber
def test_any_phone_string_becomes_e164_or_nothing(number, region):
    result = to_e164(number, region)
    assert result is None or E164.match(result)


def _hostile_users(domain: str) -> list[dict]:
    def user(name: str, **props) -> dict:
        return {"id": str(uuid.uuid4()), "userPrincipalName": f"{name}@{domain}", "userType": "Member",
                "accountEnabled": True, **props}

    return [
        user("rtl", givenName="דוד", surname="כהן", displayName="דוד כהן"),
        user("arabic", givenName="علي", surname="حسن"),
        user("emoji", givenName="😀 Sunny", surname="Day 🌞"),
        user("nfd", givenName=unicodedata.normalize("NFD", "Zoë"), surname=unicodedata.normalize("NFD", "Ångström")),
        user("bidi", givenName="\u202eevil", surname="Override"),
        user("long", givenName="G" * 1000, surname="S" * 1000, displayName="D" * 1000, jobTitle="J" * 1000,
             department="Dept " * 200),
        user("empty", givenName="", surname="", displayName=""),           # nameless: skipped with its reason
        user("nulls", givenName="Null", surname="Arrays", businessPhones=None, mobilePhone=None, mail=None,
             department=None),
        user("missing", givenName="Missing"),                              # most keys absent
        user("twin1", givenName="Twin", surname="One", mail=f"shared@{domain}"),
        user("twin2", givenName="Twin", surname="Two", mail=f"shared@{domain}"),  # the same address twice
        user("phones", givenName="Odd", surname="Phones", businessPhones=["ext. 42", "+", "0" * 40],
             mobilePhone="١٢٣٤٥٦٧٨٩٠"),
        user("ok", givenName="Plain", surname="User", businessPhones=["+1 425 555 0101"]),
    ]


def test_a_tenant_of_odd_users_syncs_each_user_whole_or_names_why_not(env):  # noqa: F811
    users = _hostile_users(env.domain)
    for u in users:
        env.emulator.add_user(env.tid, **u)
    env.settings(caller_id_from_office_phone=True)
    run = env.sync()
    assert run["status"] == "done", run["message"]
    items = {i["object_id"]: i for i in env.items(run["run_id"])}
    pbx = {u["m365_object_id"]: u for u in env.pbx_users() if u["m365_object_id"]}
    for u in users:
        item = items.get(u["id"])
        assert item is not None, f"{u['userPrincipalName']} has no run item"
        if u["id"] in pbx:  # applied: whole, names as Microsoft 365 has them (or the host's limit, said)
            row = pbx[u["id"]]
            assert item["action"] in ("created", "linked"), item
            assert row["extension"], row
            if u["userPrincipalName"].startswith(("rtl", "emoji", "nfd", "arabic")):
                assert row["first_name"] == u["givenName"] and row["last_name"] == u["surname"], row
        else:  # not applied: an error or a skip that says why, and no PBX user at all
            assert item["action"] in ("error", "skipped"), item
            assert item["detail"], item
    assert items[_id(users, "empty")]["action"] == "skipped"
    assert pbx[_id(users, "ok")]["caller_id"] == "+14255550101"
    assert pbx[_id(users, "phones")]["caller_id"] in (None, "")  # no valid office phone: cleared, not invented
    # A second run changes nothing: the odd values are stable, not rewritten every time.
    again = env.sync()
    assert again["status"] == "done" and again["counts"]["updated"] == 0 and again["counts"]["created"] == 0, again


def _id(users: list[dict], name: str) -> str:
    return next(u["id"] for u in users if u["userPrincipalName"].startswith(name + "@"))
