"""``flask --app demo_app demo init|connect``."""
from __future__ import annotations

import json

import requests
import sqlalchemy as sa


def test_demo_init_leaves_existing_data_alone(app, api):
    from demo_app.models import CompanyContact, SystemAdmin, User, db

    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.username == "alice@acme"))
        alice.first_name = "Alicia"
        db.session.execute(sa.delete(CompanyContact).where(CompanyContact.name == "Taxi Service"))
        db.session.commit()
    assert api.post("/tenants", {"slug": "initech", "name": "Initech"}).status_code == 201
    before = {slug: api.users(slug) for slug in ("acme", "globex")}

    result = app.test_cli_runner().invoke(args=["demo", "init", "--no-connect"])
    assert result.exit_code == 0, result.output
    assert "tenant acme exists; left alone" in result.output
    assert "created" not in result.output

    assert {slug: api.users(slug) for slug in ("acme", "globex")} == before
    assert api.users("acme")["101"]["first_name"] == "Alicia"
    assert "Taxi Service" not in {c["name"] for c in api.get("/tenants/acme/contacts").get_json()}
    assert [t["slug"] for t in api.get("/tenants").get_json()] == ["acme", "globex", "initech"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SystemAdmin)) == 1


def test_demo_init_without_an_emulator_says_so(app):
    result = app.test_cli_runner().invoke(args=["demo", "init"])
    assert result.exit_code == 0, result.output
    assert "acme not connected" in result.output


def test_demo_connect_registers_acme_in_the_emulator(app, m365_emulator):
    from demo_app.connect import APP_ID, FIXTURE, PERMISSIONS

    app.config.update(DEMO_EMULATOR_URL=m365_emulator.base_url, DEMO_EMULATOR_CA=m365_emulator.ca_path)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "connect"])
    assert first.exit_code == 0, first.output
    assert "generated a key pair for acme" in first.output
    directory_id = json.loads(FIXTURE.read_text())["tenant"]["id"]
    # verify= per request: EmulatorHandle.session's verify loses to REQUESTS_CA_BUNDLE when that is set.
    counts = requests.get(f"{m365_emulator.base_url}/_emulator/tenants/{directory_id}",
                          verify=m365_emulator.ca_path, timeout=30).json()
    assert counts["applications"] >= 1

    settings = runner.invoke(args=["pbx365", "settings", "export", "acme"])
    assert settings.exit_code == 0, settings.output
    configure = json.loads(settings.output)["configure"]
    assert configure == {"client_id": APP_ID, "directory_id": directory_id, "cloud": "custom",
                         "login_url": m365_emulator.base_url, "graph_url": m365_emulator.base_url,
                         "ca_bundle": m365_emulator.ca_path}

    # The registration works: a token is issued for the uploaded certificate, with every permission consented.
    tested = runner.invoke(args=["pbx365", "test-connection", "acme", "--json"])
    assert tested.exit_code == 0, tested.output
    report = json.loads(tested.output)
    assert report["ok"] is True and set(PERMISSIONS) <= set(report["granted"])

    assert "Sign in with Microsoft" in app.test_client().get("/login?tenant=acme").get_data(as_text=True)

    again = runner.invoke(args=["demo", "connect"])
    assert again.exit_code == 0, again.output
    assert "generated a key pair" not in again.output and "updated application" in again.output
    keys = runner.invoke(args=["pbx365", "keys", "show", "acme", "--json"])
    assert len(json.loads(keys.output)) == 1
