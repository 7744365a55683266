"""`flask pbx365 ...` as an admin's script uses it (interfaces.md)."""
from __future__ import annotations

import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes

APP_ID = "6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6"
DIRECTORY_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def run(app, *args):
    return app.test_cli_runner().invoke(args=["pbx365", *args])


def test_configure_and_export(app):
    result = run(app, "configure", "acme", "--client-id", APP_ID, "--directory-id", DIRECTORY_ID, "--cloud", "china")
    assert result.exit_code == 0, result.output
    exported = json.loads(run(app, "settings", "export", "acme").stdout)
    assert exported["configure"] == {"client_id": APP_ID, "directory_id": DIRECTORY_ID, "cloud": "china",
                                     "login_url": None, "graph_url": None, "ca_bundle": None}


def test_configure_refuses_a_bad_guid_with_one_line(app):
    result = run(app, "configure", "acme", "--directory-id", "not-a-guid")
    assert result.exit_code != 0
    assert "not a GUID" in result.output
    assert run(app, "configure", "nosuchtenant", "--cloud", "global").exit_code != 0


def test_custom_cloud_via_cli(app, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    result = run(app, "configure", "acme", "--client-id", APP_ID, "--directory-id", DIRECTORY_ID, "--cloud", "custom",
                 "--login-url", "https://127.0.0.1:8443", "--graph-url", "https://127.0.0.1:8443",
                 "--ca-bundle", str(ca))
    assert result.exit_code == 0, result.output
    conf = json.loads(run(app, "settings", "export", "acme").stdout)["configure"]
    assert conf["cloud"] == "custom" and conf["ca_bundle"] == str(ca)
    assert run(app, "configure", "acme", "--cloud", "custom", "--login-url", "").exit_code != 0


def test_keys_generate_show_activate(app, tmp_path):
    out = tmp_path / "public_key.pem"
    assert run(app, "keys", "generate", "acme", "--out", str(out)).exit_code == 0
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    first = cert.fingerprint(hashes.SHA256()).hex()
    shown = json.loads(run(app, "keys", "show", "acme", "--json").stdout)
    assert shown == [{"sha1": cert.fingerprint(hashes.SHA1()).hex(), "sha256": first,
                      "not_after": cert.not_valid_after_utc.isoformat(), "active": True}]
    assert run(app, "keys", "generate", "acme").exit_code == 0
    shown = json.loads(run(app, "keys", "show", "acme", "--json").stdout)
    second = next(k["sha256"] for k in shown if k["sha256"] != first)
    assert [k["active"] for k in shown if k["sha256"] == first] == [True]
    assert run(app, "keys", "activate", "acme", second).exit_code == 0
    shown = {k["sha256"]: k["active"] for k in json.loads(run(app, "keys", "show", "acme", "--json").stdout)}
    assert shown == {first: False, second: True}
    bad = run(app, "keys", "activate", "acme", "00" * 32)
    assert bad.exit_code != 0 and "no key pair" in bad.output
    # another tenant does not see acme's keys
    assert json.loads(run(app, "keys", "show", "globex", "--json").stdout) == []
    assert run(app, "keys", "activate", "globex", second).exit_code != 0


def test_settings_import_merges_and_refuses_unknown_keys(app, tmp_path):
    full = json.loads(run(app, "settings", "export", "acme").stdout)
    assert set(full) == {"configure", "user_sync", "sign_in", "contacts", "mail", "presence", "teams_presence",
                         "notifications"}
    assert full["user_sync"]["deprovision"] == "disable" and full["user_sync"]["guard_percent"] == 10
    assert full["presence"]["mapping"] == {"busy": "dnd", "workingElsewhere": "dnd", "oof": "away", "tentative": None}

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"user_sync": {"mode": "automatic", "schedule": "0 */4 * * *",
                                               "start_extension": "2000", "departments": ["Sales"]},
                                 "mail": {"enabled": True, "sender": "pbx@contoso.example"}}))
    assert run(app, "settings", "import", "acme", str(patch)).exit_code == 0
    after = json.loads(run(app, "settings", "export", "acme").stdout)
    assert after["user_sync"]["mode"] == "automatic" and after["user_sync"]["start_extension"] == "2000"
    assert after["user_sync"]["photos"] is False  # absent keys keep their values
    assert after["mail"]["sender"] == "pbx@contoso.example"

    for bad, message in [({"user_sync": {"colour": "blue"}}, "Unknown setting user_sync.colour"),
                         ({"bogus": {}}, "Unknown settings section"),
                         ({"user_sync": {"schedule": "25:99"}}, "user_sync.schedule"),
                         ({"presence": {"mapping": {"busy": "sleeping"}}}, "presence.mapping.busy")]:
        patch.write_text(json.dumps(bad))
        result = run(app, "settings", "import", "acme", str(patch))
        assert result.exit_code != 0 and message in result.output, result.output
    patch.write_text("{not json")
    assert "not valid JSON" in run(app, "settings", "import", "acme", str(patch)).output
    assert json.loads(run(app, "settings", "export", "acme").stdout) == after  # nothing lost

    # an exported file imports back unchanged, into another tenant too
    out = tmp_path / "acme.json"
    run(app, "settings", "export", "acme", "--out", str(out))
    assert run(app, "settings", "import", "globex", str(out)).exit_code == 0
    assert json.loads(run(app, "settings", "export", "globex").stdout) == after


def test_status_json(app):
    status = json.loads(run(app, "status", "acme", "--json").stdout)
    health = status.pop("health")
    assert health["state"] == "error" and health["checks"][0]["name"] == "connection"
    assert status == {"connected": False, "key": None, "runs": [], "next": {"users": None, "contacts": None,
                                                                              "presence": None, "teams_presence": None},
                      "subscriptions": []}
    run(app, "configure", "acme", "--client-id", APP_ID, "--directory-id", DIRECTORY_ID, "--cloud", "global")
    run(app, "keys", "generate", "acme")
    from tempfile import NamedTemporaryFile

    with NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"user_sync": {"mode": "automatic", "schedule": "02:30", "timezone": "Europe/Berlin"}}, f)
    run(app, "settings", "import", "acme", f.name)
    status = json.loads(run(app, "status", "acme", "--json").stdout)
    assert status["connected"] is True
    assert len(status["key"]["sha256"]) == 64
    from datetime import datetime
    from zoneinfo import ZoneInfo

    nxt = datetime.fromisoformat(status["next"]["users"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (nxt.hour, nxt.minute) == (2, 30)


def test_test_connection_without_configuration_fails_with_a_reason(app):
    result = run(app, "test-connection", "acme", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout if hasattr(result, "stdout") else result.stdout)
    assert data["ok"] is False and "Configure tab" in data["error"]
    assert set(data["features"]) == {"user_sync", "photos", "group_filter", "contacts", "shared_mailboxes", "mail",
                                     "calendar", "phone_write_back", "teams_presence"}


def test_worker_and_scheduler_commands(app, redis_conn):
    from datetime import datetime, timedelta, timezone

    from flask_pbx365.runs.queue import get_queue
    from flask_pbx365.keys import generate_key_pair
    from flask_pbx365.models import KeyPair
    from flask_pbx365.state import get_state
    from tests.core.test_scheduler_and_worker import record_app_name

    with app.app_context():
        job = get_queue().enqueue(record_app_name)
    assert run(app, "worker", "--burst").exit_code == 0
    job.refresh()
    assert job.return_value() == app.import_name

    with app.app_context():
        generate_key_pair("acme")
        row = get_state().db.session.query(KeyPair).filter_by(tenant="acme").one()
        row.not_after = datetime.now(timezone.utc) + timedelta(days=6)
        get_state().db.session.commit()
    assert run(app, "scheduler", "--once").exit_code == 0
    token = app.config["DEMO_API_TOKEN"]
    sent = app.test_client().get("/api/tenants/acme/notifications",
                                 headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [n["subject"] for n in sent if "certificate expires in 5 days" in n["subject"]
            or "certificate expires in 6 days" in n["subject"]]


def test_ca_bundle_override_applies_to_listed_clouds_only(app, tmp_path):
    from flask_pbx365.tenants import cloud_of, find_config

    run(app, "configure", "acme", "--client-id", APP_ID, "--directory-id", DIRECTORY_ID, "--cloud", "global")
    app.config["PBX365_CA_BUNDLE"] = "/etc/corporate-proxy-ca.pem"
    with app.app_context():
        cloud = cloud_of(find_config("acme"))
    assert cloud.login_url == "https://login.microsoftonline.com" and cloud.ca_bundle == "/etc/corporate-proxy-ca.pem"
    ca = tmp_path / "emulator-ca.pem"
    ca.write_text("x")
    run(app, "configure", "acme", "--cloud", "custom", "--login-url", "https://127.0.0.1:8443",
        "--graph-url", "https://127.0.0.1:8443", "--ca-bundle", str(ca))
    with app.app_context():
        assert cloud_of(find_config("acme")).ca_bundle == str(ca)
