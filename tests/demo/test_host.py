"""DemoHost, the reference PBXHost, exercised as the extension calls it."""
from __future__ import annotations

import hashlib
import threading

import pytest
from flask import jsonify

from flask_pbx365.exceptions import ExtensionInUseError, HostAdapterError
from flask_pbx365.host import MailAttachment, MailMessage, PBXHost, PhonebookEntry, PublicURLs, UserFields
from tests.conftest import login


@pytest.fixture
def host():
    from demo_app.host import DemoHost

    return DemoHost()


@pytest.fixture
def ctx(app):
    """An app context whose changes are committed on exit, as the extension's unit of work does."""
    from demo_app.models import db

    class Ctx:
        def __enter__(self):
            self.cm = app.app_context()
            self.cm.__enter__()
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                db.session.commit()
            else:
                db.session.rollback()
            self.cm.__exit__(*exc)
    return Ctx


@pytest.fixture
def probe(app, host):
    """Routes that report what DemoHost sees in a request (added before the first request)."""
    @app.get("/_probe/scope")
    def scope():
        return jsonify(current=host.current_tenant(), acme=host.is_tenant_admin("acme"),
                       globex=host.is_tenant_admin("globex"), unknown=host.is_tenant_admin("nosuch"))

    @app.get("/_probe/login/<tenant>/<user_id>/<target>")
    def login_as(tenant, user_id, target):
        return host.login_user(tenant, user_id, target)
    return app


def test_demo_host_implements_the_protocol(host):
    assert isinstance(host, PBXHost)
    missing = [name for name in vars(PBXHost) if not name.startswith("_") and callable(getattr(PBXHost, name))
               and not callable(getattr(host, name, None))]
    assert missing == []


def test_tenants_and_users(ctx, host, user_id):
    with ctx():
        assert [(t.key, t.name) for t in host.list_tenants()] == [("acme", "Acme Corp"), ("globex", "Globex")]
        users = {u.extension: u for u in host.list_users("acme")}
        assert set(users) == {"100", "101", "102", "103"}
        assert users["100"].is_admin and not users["101"].is_admin
        alice = host.get_user("acme", user_id("acme", "101"))
        assert (alice.username, alice.email, alice.groups, alice.tenant) == (
            "alice@acme", "alice@acme.example", ["Sales"], "acme")
        assert host.get_user("globex", user_id("acme", "101")) is None  # another tenant's user
        assert host.get_user("acme", "not-a-number") is None
        with pytest.raises(HostAdapterError, match="no tenant"):
            host.list_users("nosuch")
        assert not host.is_extension_free("acme", "101") and host.is_extension_free("acme", "150")
        assert host.is_extension_free("globex", "150")


def test_create_update_disable_delete(ctx, host, api, app):
    with ctx():
        created = host.create_user("acme", "Zara.Khan@acme.example", "1000",
                                   UserFields(first_name="Zara", last_name="Khan", display_name="Zara Khan",
                                              email="zara.khan@acme.example", department="Sales", job_title="AE",
                                              mobile="+19175550100"))
    assert created.username == "zara.khan@acme" and created.enabled and not created.is_admin
    shown = api.users("acme")["1000"]
    assert (shown["display_name"], shown["department"], shown["mobile"], shown["presence"]) == (
        "Zara Khan", "Sales", "+19175550100", "available")

    with ctx():
        host.update_user("acme", created.id, UserFields(job_title="Senior AE", department=None))
        host.set_caller_id("acme", created.id, "+12125550100")
    shown = api.users("acme")["1000"]
    assert (shown["job_title"], shown["department"], shown["caller_id"]) == ("Senior AE", "Sales", "+12125550100")

    with ctx():
        host.set_user_enabled("acme", created.id, False)
    assert api.users("acme")["1000"]["enabled"] is False
    with ctx():
        host.delete_user("acme", created.id)
    assert "1000" not in api.users("acme")
    with ctx(), pytest.raises(HostAdapterError):
        host.update_user("acme", created.id, UserFields(first_name="Ghost"))


def test_created_users_get_unique_usernames_and_no_usable_password(ctx, host, app):
    with ctx():
        first = host.create_user("acme", "alice@contoso.example", "500", UserFields(email="alice@acme.example"))
        second = host.create_user("acme", "alice@other.example", "501", UserFields(email="ALICE@acme.example"))
    assert (first.username, second.username) == ("alice2@acme", "alice3@acme")  # alice@acme is seeded
    client = app.test_client()
    for password in ("", "alice", "!"):
        html = client.get("/login?tenant=acme").get_data(as_text=True)
        from tests.conftest import csrf_from
        response = client.post("/login?tenant=acme", data={"username": "alice2", "password": password,
                                                           "tenant": "acme", "csrf_token": csrf_from(html)})
        assert "Wrong username or password" in response.get_data(as_text=True)


def test_taken_extension_raises_and_keeps_the_callers_other_work(ctx, host, api):
    with ctx():
        host.upsert_company_contact("acme", PhonebookEntry(key="k1", source="shared@acme.example", name="Kept"))
        with pytest.raises(ExtensionInUseError) as info:
            host.create_user("acme", "newbie@acme.example", "101", UserFields(first_name="New"))
        assert info.value.extension == "101"
        host.create_user("acme", "newbie@acme.example", "104", UserFields(first_name="New"))
    assert "Kept" in {c["name"] for c in api.get("/tenants/acme/contacts").get_json()}
    assert api.users("acme")["104"]["first_name"] == "New"
    assert api.users("acme")["101"]["username"] == "alice@acme"


def test_concurrent_allocation_of_one_extension_fails_loudly(app, host, api):
    """Two workers create a user on the same extension at once: one wins, the other gets ExtensionInUseError."""
    from demo_app.models import db

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(n: int) -> None:
        with app.app_context():
            try:
                barrier.wait(5)
                host.create_user("acme", f"racer{n}@acme.example", "777", UserFields(first_name=f"Racer{n}"))
                db.session.commit()
                outcomes.append("created")
            except ExtensionInUseError:
                db.session.rollback()
                outcomes.append("in use")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["created", "in use"]
    assert api.users("acme")["777"]["first_name"] in ("Racer0", "Racer1")


def test_concurrent_api_creations_get_distinct_extensions(app, api):
    results: list[tuple[int, str]] = []

    def create(n: int) -> None:
        from tests.demo.conftest import Api

        response = Api(app.test_client()).post("/tenants/globex/users", {"username": f"c{n}", "password": "pw"})
        results.append((response.status_code, response.get_json().get("extension")))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _ in results] == [201] * 6
    assert sorted(ext for _, ext in results) == ["104", "105", "106", "107", "108", "109"]


def test_groups_and_photos(ctx, host, api, user_id):
    bob = user_id("acme", "102")
    with ctx():
        host.ensure_group("acme", "Microsoft 365")
        host.ensure_group("acme", "Microsoft 365")
        host.set_group_membership("acme", "Microsoft 365", bob, True)
        host.set_group_membership("acme", "Microsoft 365", bob, True)
        host.set_group_membership("acme", "Not there", bob, False)
        host.set_photo("acme", bob, b"\xff\xd8jpeg-bytes", "image/jpeg")
    user = api.users("acme")["102"]
    assert user["groups"] == ["Microsoft 365"]
    assert user["photo_sha256"] == hashlib.sha256(b"\xff\xd8jpeg-bytes").hexdigest()
    with ctx():
        host.set_group_membership("acme", "Microsoft 365", bob, False)
        host.set_photo("acme", bob, None)
    user = api.users("acme")["102"]
    assert user["groups"] == [] and user["photo_sha256"] is None


def test_phonebooks_upsert_by_source_and_key(ctx, host, api, user_id):
    alice = user_id("acme", "101")
    entry = PhonebookEntry(key="AAMk1", source="m365:personal", name="Peter Parker", company="Daily Bugle",
                           phones={"business": ["+12125550199"], "mobile": [], "home": []}, emails=["p@b.example"])
    with ctx():
        host.upsert_personal_contact("acme", alice, entry)
        entry.name = "Peter B. Parker"
        host.upsert_personal_contact("acme", alice, entry)
        listed = host.list_personal_contacts("acme", alice, "m365:personal")
        assert [(e.key, e.name, e.phones["business"]) for e in listed] == [("AAMk1", "Peter B. Parker",
                                                                            ["+12125550199"])]
        assert host.list_personal_contacts("acme", alice, "user") != []  # seeded, user-made
    shown = [c for c in api.get("/tenants/acme/users/101/contacts").get_json() if c["source"] == "m365:personal"]
    assert shown == [{"name": "Peter B. Parker", "company": "Daily Bugle", "emails": ["p@b.example"],
                      "phones": {"business": ["+12125550199"], "mobile": [], "home": []}, "source": "m365:personal"}]
    with ctx():
        host.delete_personal_contact("acme", alice, "m365:personal", "AAMk1")
        host.upsert_company_contact("acme", PhonebookEntry(key="c1", source="reception@acme.example",
                                                           name="Couriers"))
        assert [e.name for e in host.list_company_contacts("acme", "reception@acme.example")] == ["Couriers"]
        assert host.list_company_contacts("globex", "reception@acme.example") == []
    assert [c["source"] for c in api.get("/tenants/acme/users/101/contacts").get_json()] == ["user", "user"]
    assert {"name": "Couriers", "source": "reception@acme.example"}.items() <= next(
        c for c in api.get("/tenants/acme/contacts").get_json() if c["name"] == "Couriers").items()
    with ctx():
        host.delete_company_contact("acme", "reception@acme.example", "c1")
    assert "Couriers" not in {c["name"] for c in api.get("/tenants/acme/contacts").get_json()}


def test_presence(ctx, host, api, user_id):
    carol = user_id("acme", "103")
    with ctx():
        assert host.get_presence("acme", carol) == ("available", "user")
        host.set_presence("acme", carol, "dnd", "calendar")
    assert api.get("/tenants/acme/users/103/presence").get_json() == {"status": "dnd", "source": "calendar"}
    with ctx(), pytest.raises(HostAdapterError, match="presence status"):
        host.set_presence("acme", carol, "busy", "calendar")


def test_urls_admin_emails_and_mail(app, ctx, host, api):
    with ctx():
        assert host.public_urls("acme") == PublicURLs("http://portal.test", "https://sbc.test:8444")
        app.config["DEMO_SBC_URL"] = ""
        assert host.public_urls("acme") == PublicURLs("http://portal.test", None)
        assert host.admin_emails("acme") == ["admin@acme.example"]
        assert host.login_url("/admin/integrations/microsoft365/") .startswith("/admin/login?next=")
        host.send_mail("acme", MailMessage(to=["admin@acme.example"], subject="Certificate expires in 7 days",
                                           body="Renew it.", attachments=[MailAttachment("a.txt", "text/plain",
                                                                                         b"hello")]))
    [note] = api.get("/tenants/acme/notifications").get_json()
    assert (note["to"], note["subject"], note["transport"], note["status"]) == (
        ["admin@acme.example"], "Certificate expires in 7 days", "log", "sent")
    assert note["attachments"] == [{"name": "a.txt", "content_type": "text/plain", "size": 5,
                                    "sha256": hashlib.sha256(b"hello").hexdigest()}]


def test_app_token(app, ctx, host, user_id):
    from demo_app.models import AppToken, db

    with ctx():
        token = host.issue_app_token("acme", user_id("acme", "101"))
        assert token["token_type"] == "Bearer" and token["expires_in"] > 0 and len(token["access_token"]) > 30
        stored = db.session.query(AppToken).one()
        assert stored.token_sha256 == hashlib.sha256(token["access_token"].encode()).hexdigest()


def test_scope_and_admin_check(probe):
    anonymous = probe.test_client()
    assert anonymous.get("/_probe/scope").get_json() == {"current": None, "acme": False, "globex": False,
                                                         "unknown": False}
    tenant_admin = probe.test_client()
    login(tenant_admin, "admin@acme", "admin", tenant="acme")
    assert tenant_admin.get("/_probe/scope").get_json() == {"current": "acme", "acme": True, "globex": False,
                                                            "unknown": False}
    system = probe.test_client()
    login(system, "sysadmin", "sysadmin")
    assert system.get("/_probe/scope").get_json() == {"current": None, "acme": True, "globex": True,
                                                      "unknown": False}
    html = system.get("/admin/tenants").get_data(as_text=True)
    from tests.conftest import csrf_from
    system.post("/admin/tenants/globex/switch", data={"csrf_token": csrf_from(html)})
    assert system.get("/_probe/scope").get_json()["current"] == "globex"


def test_login_user_starts_the_right_session(probe, user_id):
    web = probe.test_client()
    response = web.get(f"/_probe/login/acme/{user_id('acme', '102')}/web")
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    assert "Bob Jones" in web.get("/me").get_data(as_text=True)
    assert web.get("/admin/users").status_code == 302  # the web session is not an admin session

    admin = probe.test_client()
    response = admin.get(f"/_probe/login/acme/{user_id('acme', '100')}/admin")
    assert response.headers["Location"].endswith("/admin/")
    assert "alice@acme" in admin.get("/admin/users").get_data(as_text=True)

    refused = probe.test_client()
    response = refused.get(f"/_probe/login/acme/{user_id('acme', '101')}/admin")
    assert "/admin/login" in response.headers["Location"]
    assert "not an administrator" in refused.get(response.headers["Location"]).get_data(as_text=True)
    assert refused.get("/admin/users").status_code == 302
