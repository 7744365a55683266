"""The portal's pages as people use them: sign-in, /me, the admin portal, CSRF, tenant isolation."""
from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_from, login


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize("page", ["/admin/login", "/login"])
def test_login_page_asks_for_the_tenant_first(app, page):
    from flask_pbx365.settings import import_settings

    with app.app_context():  # acme uses Microsoft sign-in; globex does not
        import_settings("acme", {"configure": {"client_id": "5f2c9a4e-8d1b-4c3a-b6e7-0a9d8c7b6e51",
                                               "directory_id": "2d4c8e1a-7b3f-4e59-a6c2-9f0b1d3e5a77"},
                                 "sign_in": {"enabled": True}})
    client = app.test_client()
    html = text(client.get(page))
    assert re.search(r'<form method="get"[^>]*>\s*<input type="hidden" name="next"[^>]*>\s*<label>Tenant', html)
    assert "Sign in with Microsoft" not in html

    html = text(client.get(page + "?tenant=acme"))
    assert "Acme Corp" in html and 'type="password"' in html
    assert "Sign in with Microsoft" in html

    html = text(client.get(page + "?tenant=globex"))
    assert "Globex" in html and 'type="password"' in html and "Sign in with Microsoft" not in html

    html = text(client.get(page + "?tenant=nosuch"))
    assert "There is no tenant" in html and "Sign in with Microsoft" not in html


@pytest.mark.parametrize("page,username,password,lands", [
    ("/login", "alice@acme", "alice", "/me"), ("/admin/login", "admin@globex", "admin", "/admin/"),
    ("/admin/login", "sysadmin", "sysadmin", "/admin/")])
def test_full_username_signs_in_without_choosing_the_tenant(app, page, username, password, lands):
    client = app.test_client()
    assert login(client, username, password, page=page).headers["Location"].endswith(lands)


def test_web_client_sign_in_lands_on_me_with_name_and_extension(app):
    client = app.test_client()
    response = login(client, "bob", "bob", page="/login", tenant="acme")
    assert response.headers["Location"].endswith("/me")
    html = text(client.get("/me"))
    assert re.search(r'id="user-name">\s*Bob Jones', html)
    assert re.search(r'id="user-extension">\s*102', html)
    assert client.get("/").headers["Location"].endswith("/me")


def test_wrong_password_or_other_tenant_is_refused(app):
    client = app.test_client()
    for username, password, tenant in (("bob", "nope", "acme"), ("hank@globex", "hank", "acme"),
                                       ("sysadmin", "sysadmin", "acme"), ("sysadmin", "sysadmin", ""),
                                       ("bob@nosuch", "bob", ""), ("bob", "bob", "")):
        url = f"/login?tenant={tenant}"
        html = text(client.get(url))
        response = client.post(url, data={"username": username, "password": password, "tenant": tenant,
                                          "csrf_token": csrf_from(html)})
        assert response.status_code == 200 and "Wrong username or password" in text(response)
    assert client.get("/me").status_code == 302


def test_me_requires_sign_in_and_sign_out_ends_it(app):
    client = app.test_client()
    response = client.get("/me")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login(client, "alice", "alice", page="/login", tenant="acme")
    html = text(client.get("/me"))
    assert client.post("/logout", data={"csrf_token": csrf_from(html)}).status_code == 302
    assert client.get("/me").status_code == 302


def test_me_sets_presence_and_adds_personal_contacts(app, api):
    client = app.test_client()
    login(client, "bob", "bob", page="/login", tenant="acme")
    html = text(client.get("/me"))
    for label in ("Available", "Away", "Do Not Disturb", "Lunch", "Business Trip", "Holiday"):
        assert f">{label}</option>" in html
    token = csrf_from(html)
    client.post("/me/presence", data={"status": "dnd", "csrf_token": token})
    assert api.get("/tenants/acme/users/102/presence").get_json() == {"status": "dnd", "source": "user"}

    client.post("/me/contacts", data={"name": "Pizza Place", "business": "+12125550777", "csrf_token": token})
    assert {"name": "Pizza Place", "company": "", "phones": {"business": ["+12125550777"], "mobile": [], "home": []},
            "emails": [], "source": "user"} in api.get("/tenants/acme/users/102/contacts").get_json()
    assert "Pizza Place" in text(client.get("/me"))


def test_post_without_csrf_token_is_refused(app, api):
    client = app.test_client()
    response = client.post("/login?tenant=acme", data={"username": "bob", "password": "bob", "tenant": "acme"})
    assert response.status_code == 400 and "CSRF" in text(response)
    assert client.get("/me").status_code == 302

    login(client, "bob", "bob", page="/login", tenant="acme")
    assert client.post("/me/presence", data={"status": "holiday"}).status_code == 400
    assert client.post("/me/presence", data={"status": "holiday", "csrf_token": "forged"}).status_code == 400
    assert api.get("/tenants/acme/users/102/presence").get_json()["status"] == "available"

    admin = app.test_client()
    login(admin, "admin@acme", "admin")
    alice = api.users("acme")["101"]
    user_id = re.search(r'/admin/users/(\d+)"', text(admin.get("/admin/users"))).group(1)
    assert admin.post(f"/admin/users/{user_id}/enabled", data={"enabled": "0"}).status_code == 400
    assert api.users("acme")["101"]["enabled"] is alice["enabled"] is True


def test_normal_user_cannot_enter_the_admin_portal(app):
    client = app.test_client()
    html = text(client.get("/admin/login?tenant=acme"))
    response = client.post("/admin/login?tenant=acme", data={"username": "alice", "password": "alice",
                                                             "tenant": "acme", "csrf_token": csrf_from(html)})
    assert response.status_code == 200 and "not an administrator" in text(response)
    assert client.get("/admin/users").status_code == 302


def test_tenant_admin_sees_only_their_tenant(app, api, user_id):
    client = app.test_client()
    login(client, "admin@acme", "admin", tenant="acme")
    html = text(client.get("/admin/users"))
    assert "alice@acme" in html and "@globex" not in html
    homer = user_id("globex", "102")
    assert client.get(f"/admin/users/{homer}").status_code == 404
    token = csrf_from(html)
    assert client.post(f"/admin/users/{homer}/enabled", data={"enabled": "0", "csrf_token": token}).status_code == 404
    assert client.post(f"/admin/users/{homer}", data={"extension": "555", "csrf_token": token}).status_code == 404
    assert api.users("globex")["102"]["enabled"] is True
    assert client.get("/admin/tenants").status_code == 403


def test_admin_manages_users(app, api, user_id):
    client = app.test_client()
    login(client, "admin@acme", "admin")
    token = csrf_from(text(client.get("/admin/users/new")))
    response = client.post("/admin/users/new", data={
        "username": "nina", "password": "pw", "role": "user", "first_name": "Nina", "last_name": "Novak",
        "email": "nina@acme.example", "extension": "", "csrf_token": token})
    assert response.status_code == 302
    nina = api.users("acme")["104"]
    assert (nina["username"], nina["display_name"]) == ("nina@acme", "Nina Novak")

    bob = user_id("acme", "102")
    edit = {"extension": "202", "caller_id": "+12125550102", "first_name": "Bob", "last_name": "Jones",
            "display_name": "Bobby Jones", "presence": "lunch", "csrf_token": token}
    assert client.post(f"/admin/users/{bob}", data=edit).status_code == 302
    users = api.users("acme")
    assert "102" not in users and users["202"]["caller_id"] == "+12125550102"
    assert users["202"]["display_name"] == "Bobby Jones"
    assert api.get("/tenants/acme/users/202/presence").get_json() == {"status": "lunch", "source": "admin"}

    taken = client.post(f"/admin/users/{bob}", data={**edit, "extension": "101"})
    assert taken.status_code == 200 and "Extension 101 is already in use" in text(taken)
    assert "202" in api.users("acme")

    client.post(f"/admin/users/{bob}/enabled", data={"enabled": "0", "csrf_token": token})
    assert api.users("acme")["202"]["enabled"] is False
    bob_client = app.test_client()
    html = text(bob_client.get("/login?tenant=acme"))
    refused = bob_client.post("/login?tenant=acme", data={"username": "bob", "password": "bob", "tenant": "acme",
                                                          "csrf_token": csrf_from(html)})
    assert "disabled" in text(refused)


def test_admin_groups_phonebook_and_notifications(app, api):
    client = app.test_client()
    login(client, "admin@acme", "admin")
    token = csrf_from(text(client.get("/admin/groups")))
    client.post("/admin/groups", data={"name": "Night shift", "csrf_token": token})
    html = text(client.get("/admin/groups"))
    night = re.search(r"<h2>Night shift</h2>.*?/admin/groups/(\d+)/delete", html, re.S).group(1)
    bob_id = re.search(r'<option value="(\d+)">102 ', html).group(1)
    client.post(f"/admin/groups/{night}/members", data={"user_id": bob_id, "csrf_token": token})
    assert api.users("acme")["102"]["groups"] == ["Night shift"]
    client.post(f"/admin/groups/{night}/members", data={"user_id": bob_id, "action": "remove", "csrf_token": token})
    assert api.users("acme")["102"]["groups"] == []

    client.post("/admin/phonebook", data={"name": "Courier", "company": "Fast Co", "mobile": "+19175550999",
                                          "csrf_token": token})
    assert {"name": "Courier", "company": "Fast Co", "phones": {"business": [], "mobile": ["+19175550999"],
            "home": []}, "emails": [], "source": "admin"} in api.get("/tenants/acme/contacts").get_json()

    client.post("/admin/notifications/test", data={"event": "voicemail", "extension": "101", "caller": "42",
                                                   "csrf_token": token})
    [note] = api.get("/tenants/acme/notifications").get_json()
    assert note["to"] == ["alice@acme.example"] and note["attachments"][0]["content_type"] == "audio/wav"
    assert "New voicemail from 42" in text(client.get("/admin/notifications"))


def test_system_admin_switches_to_tenant_scope(app):
    client = app.test_client()
    login(client, "sysadmin", "sysadmin")
    html = text(client.get("/admin/", follow_redirects=True))
    assert "Switch to tenant scope" in html and "Globex" in html
    assert client.get("/admin/users").status_code == 409
    client.post("/admin/tenants/globex/switch", data={"csrf_token": csrf_from(html)})
    users = text(client.get("/admin/users"))
    assert "homer@globex" in users and "@acme" not in users
    assert "Tenant: <strong>Globex</strong>" in users
    client.post("/admin/scope/leave", data={"csrf_token": csrf_from(users)})
    assert client.get("/admin/users").status_code == 409


def test_admin_layout_hosts_the_microsoft_365_pages(admin_client):
    html = text(admin_client.get("/admin/"))
    assert 'href="/admin/integrations/microsoft365"' in html
    response = admin_client.get("/admin/integrations/microsoft365/", follow_redirects=True)
    assert response.status_code == 200
    page = text(response)
    assert "Call Manager" in page and "Acme Corp" in page  # rendered inside the portal's admin layout


def test_open_redirects_are_not_followed(app):
    client = app.test_client()
    html = text(client.get("/login?tenant=acme&next=https://evil.example/"))
    response = client.post("/login?tenant=acme", data={"username": "bob", "password": "bob", "tenant": "acme",
                                                       "next": "https://evil.example/", "csrf_token": csrf_from(html)})
    assert response.headers["Location"].endswith("/me")
