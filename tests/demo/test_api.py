"""The demo portal's JSON API, as interfaces.md "Demo portal JSON API" documents it."""
from __future__ import annotations

import io
import wave

import pytest

from tests.conftest import login

USER_KEYS = {"extension", "username", "first_name", "last_name", "display_name", "email", "mobile", "caller_id",
             "department", "job_title", "enabled", "groups", "photo_sha256", "presence", "m365_object_id"}

CALLS = [
    ("GET", "/api/tenants"), ("POST", "/api/tenants"), ("GET", "/api/tenants/acme/users"),
    ("POST", "/api/tenants/acme/users"), ("GET", "/api/tenants/acme/users/101/contacts"),
    ("POST", "/api/tenants/acme/users/101/contacts"), ("GET", "/api/tenants/acme/contacts"),
    ("GET", "/api/tenants/acme/users/101/presence"), ("PUT", "/api/tenants/acme/users/101/presence"),
    ("GET", "/api/tenants/acme/notifications"), ("POST", "/api/tenants/acme/voicemail"),
]


@pytest.mark.parametrize("method,path", CALLS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dGVzdDp0ZXN0"])
def test_every_call_needs_the_bearer_token(app, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = app.test_client().open(path, method=method, headers=headers, json={"slug": "x", "name": "X"})
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_tenants_list_create_and_refuse_bad_input(api):
    assert api.get("/tenants").get_json() == [{"slug": "acme", "name": "Acme Corp"},
                                              {"slug": "globex", "name": "Globex"}]
    created = api.post("/tenants", {"slug": "initech", "name": "Initech"})
    assert created.status_code == 201
    assert created.get_json() == {"slug": "initech", "name": "Initech"}
    assert {"slug": "initech", "name": "Initech"} in api.get("/tenants").get_json()
    assert api.get("/tenants/initech/users").get_json() == []

    for body in ({"slug": "Bad Slug!", "name": "X"}, {"slug": "ok"}, {"name": "No slug"}, {"slug": 5, "name": "X"}):
        response = api.post("/tenants", body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]
    assert api.post("/tenants", {"slug": "acme", "name": "Again"}).status_code == 409


def test_unknown_tenant_or_extension_is_404(api):
    for path in ("/tenants/nope/users", "/tenants/nope/contacts", "/tenants/nope/notifications",
                 "/tenants/acme/users/999/contacts", "/tenants/acme/users/999/presence",
                 "/tenants/globex/users/999/presence"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "error" in response.get_json()
    assert api.post("/tenants/acme/voicemail", {"extension": "999", "caller": "1", "wav_bytes": 100}).status_code == 404
    assert api.post("/tenants/nope/users", {"username": "x", "password": "x"}).status_code == 404


def test_users_answer_has_the_documented_shape(api):
    users = api.users("acme")
    assert set(users) == {"100", "101", "102", "103"}
    for user in users.values():
        assert USER_KEYS <= set(user)
        assert isinstance(user["extension"], str)
        assert user["presence"] == "available"
        assert user["m365_object_id"] is None
    alice = users["101"]
    assert (alice["username"], alice["first_name"], alice["last_name"], alice["email"]) == (
        "alice@acme", "Alice", "Smith", "alice@acme.example")
    assert alice["groups"] == ["Sales"] and alice["enabled"] is True
    assert set(api.users("globex")) == {"100", "101", "102", "103"}
    assert all(u["username"].endswith("@globex") for u in api.users("globex").values())


def test_create_user_returns_it_as_get_shows_it_with_the_first_free_extension(api):
    created = api.post("/tenants/acme/users", {"username": "zoe", "password": "pw", "role": "user",
                                               "first_name": "Zoe", "last_name": "Quinn", "email": "zoe@acme.example"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["extension"] == "104"  # seeded acme users have 100-103
    assert body == api.users("acme")["104"]
    assert body["username"] == "zoe@acme" and body["presence"] == "available" and body["display_name"] == "Zoe Quinn"

    explicit = api.post("/tenants/acme/users", {"username": "yan", "password": "pw", "extension": "106"})
    assert explicit.status_code == 201 and explicit.get_json()["extension"] == "106"
    gaps = [api.post("/tenants/acme/users", {"username": f"u{i}", "password": "pw"}).get_json()["extension"]
            for i in range(2)]
    assert gaps == ["105", "107"]


def test_created_user_can_sign_in_with_its_password(app, api):
    api.post("/tenants/globex/users", {"username": "marge", "password": "s3cret!", "role": "user",
                                       "first_name": "Marge", "last_name": "Simpson"})
    client = app.test_client()
    login(client, "marge@globex", "s3cret!", page="/login", tenant="globex")
    page = client.get("/me").get_data(as_text=True)
    assert "Marge Simpson" in page and "104" in page


@pytest.mark.parametrize("body,status", [
    ({"password": "pw"}, 400),
    ({"username": "x"}, 400),
    ({"username": "x", "password": "pw", "role": "root"}, 400),
    ({"username": "x", "password": "pw", "extension": "12ab"}, 400),
    ({"username": "x@globex", "password": "pw"}, 400),
    ({"username": "alice", "password": "pw"}, 409),
    ({"username": "x", "password": "pw", "extension": "101"}, 409),
])
def test_create_user_refuses_bad_or_conflicting_input(api, body, status):
    response = api.post("/tenants/acme/users", body)
    assert response.status_code == status
    assert response.get_json()["error"]
    assert len(api.users("acme")) == 4


def test_same_local_name_in_two_tenants(api):
    assert api.post("/tenants/globex/users", {"username": "alice", "password": "pw"}).status_code == 201
    assert api.users("globex")["104"]["username"] == "alice@globex"


def test_personal_phonebook(api):
    assert [c["name"] for c in api.get("/tenants/acme/users/101/contacts").get_json()] == ["Dentist", "Mom"]
    entry = {"name": "Zed Contact", "company": "Zed Inc", "phones": {"business": ["+12125550123"],
             "mobile": ["+19175550123"], "home": []}, "emails": ["zed@zed.example"]}
    created = api.post("/tenants/acme/users/101/contacts", entry)
    assert created.status_code == 201
    assert created.get_json() == {**entry, "source": "user"}
    listed = api.get("/tenants/acme/users/101/contacts").get_json()
    assert {**entry, "source": "user"} in listed
    assert api.get("/tenants/acme/users/102/contacts").get_json() == []

    minimal = api.post("/tenants/acme/users/102/contacts", {"name": "Only Name"}).get_json()
    assert minimal["phones"] == {"business": [], "mobile": [], "home": []} and minimal["emails"] == []
    for bad in ({"company": "no name"}, {"name": "x", "phones": {"fax": ["1"]}}, {"name": "x", "emails": "a@b"},
                {"name": "x", "phones": {"business": "123"}}):
        assert api.post("/tenants/acme/users/101/contacts", bad).status_code == 400, bad


def test_company_phonebook_shape(api):
    contacts = api.get("/tenants/acme/contacts").get_json()
    assert {c["name"] for c in contacts} == {"Building Security", "IT Helpdesk", "Taxi Service"}
    for contact in contacts:
        assert set(contact) == {"name", "company", "phones", "emails", "source"}
        assert set(contact["phones"]) == {"business", "mobile", "home"}


def test_presence_get_and_put(api):
    assert api.get("/tenants/acme/users/102/presence").get_json() == {"status": "available", "source": "user"}
    response = api.put("/tenants/acme/users/102/presence", {"status": "business_trip"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "business_trip", "source": "user"}
    assert api.get("/tenants/acme/users/102/presence").get_json() == {"status": "business_trip", "source": "user"}
    assert api.users("acme")["102"]["presence"] == "business_trip"
    for bad in ({"status": "busy"}, {}, {"status": 3}):
        assert api.put("/tenants/acme/users/102/presence", bad).status_code == 400
    assert api.get("/tenants/acme/users/102/presence").get_json()["status"] == "business_trip"


@pytest.mark.parametrize("size", [44, 1000, 4097, 300_001])
def test_voicemail_is_a_wav_of_n_bytes_mailed_to_the_user(app, api, size):
    response = api.post("/tenants/acme/voicemail", {"extension": "101", "caller": "+12125550199", "wav_bytes": size})
    assert response.status_code == 201
    voicemail = response.get_json()
    assert voicemail["filename"] == f"voicemail-{voicemail['id']}.wav"
    assert (voicemail["size"], voicemail["content_type"]) == (size, "audio/wav")

    notes = api.get("/tenants/acme/notifications").get_json()
    assert len(notes) == 1
    note = notes[0]
    assert note["to"] == ["alice@acme.example"] and "+12125550199" in note["subject"]
    assert (note["transport"], note["status"]) == ("log", "sent")
    [attachment] = note["attachments"]
    assert attachment["name"] == voicemail["filename"]
    assert (attachment["content_type"], attachment["size"]) == ("audio/wav", size)

    # The user downloads the same file from the web client: a WAV any reader accepts.
    client = app.test_client()
    login(client, "alice", "alice", page="/login", tenant="acme")
    download = client.get(f"/me/voicemail/{voicemail['id']}.wav")
    assert download.status_code == 200 and download.mimetype == "audio/wav"
    data = download.get_data()
    assert len(data) == size and data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getframerate() == 8000
        assert wav.getnframes() == size - 44 - (size - 44) % 2


@pytest.mark.parametrize("body", [{"extension": "101", "wav_bytes": 43}, {"extension": "101", "wav_bytes": "1000"},
                                  {"extension": "101"}, {"wav_bytes": 1000},
                                  {"extension": "101", "wav_bytes": 10**10}])
def test_voicemail_refuses_bad_input(api, body):
    response = api.post("/tenants/acme/voicemail", body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert api.get("/tenants/acme/notifications").get_json() == []


def test_missed_call_mails_the_user_and_notifications_stay_per_tenant(api):
    assert api.post("/tenants/acme/missed-call", {"extension": "102", "caller": "555-0100"}).status_code == 201
    [note] = api.get("/tenants/acme/notifications").get_json()
    assert note["to"] == ["bob@acme.example"] and "Missed call from 555-0100" == note["subject"]
    assert note["attachments"] == []
    assert api.get("/tenants/globex/notifications").get_json() == []
