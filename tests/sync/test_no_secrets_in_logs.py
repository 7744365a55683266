"""No secret in any log: every log line of a connection test, a user sync (worker and work horse) and the tabs,
at DEBUG, scanned for the private key, the secrets, tokens and client assertions."""
from __future__ import annotations

import logging
import re

from tests.conftest import TEST_SECRET

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def test_nothing_secret_reaches_the_logs(env, admin_client, tmp_path):
    from flask_pbx365.keys import private_key_pem

    log_file = tmp_path / "all.log"
    handler = logging.FileHandler(log_file)  # inherited by the forked work horse, unlike pytest's capture
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        env.settings(photos=True, write_back_phone=True, guard_percent=100)
        result = env.app.test_cli_runner().invoke(args=["pbx365", "test-connection", "acme", "--json"])
        assert result.exit_code == 0, result.output
        assert env.sync()["status"] == "done"
        env.emulator.delete_user(env.tid, env.oid("bob"))
        assert env.sync()["status"] == "done"
        for tab in ("configure", "users", "sign-in", "mail", "contacts", "presence"):
            admin_client.get(f"/admin/integrations/microsoft365/{tab}")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    with env.app.app_context():
        key_pem, _ = private_key_pem("acme")
    text = log_file.read_text()
    assert "users sync of acme" in text or "sync" in text, "the scan saw no log lines at all"
    key_body = [line for line in key_pem.decode().splitlines() if line and not line.startswith("-----")]
    leaks = [what for what, found in (
        ("a line of the private key", any(line in text for line in key_body)),
        ("PBX365_SECRET_KEY", TEST_SECRET in text),
        ("the Flask SECRET_KEY", env.app.config["SECRET_KEY"] in text),
        ("a JWT (access token or client assertion)", bool(JWT.search(text))),
        ("a client assertion parameter", "client_assertion=" in text),
        ("an Authorization header", re.search(r"Bearer\s+[A-Za-z0-9._-]{20,}", text) is not None),
    ) if found]
    assert not leaks, f"found in the logs: {', '.join(leaks)}"


def test_the_scan_recognizes_the_tokens_it_looks_for(env):
    """The JWT pattern above matches a real access token of the emulator's Entra (so the scan can fail)."""
    from flask_pbx365.connection import client_options, credentials_for
    from flask_pbx365.graph import GraphClient

    with env.app.app_context(), GraphClient(credentials_for("acme"), **client_options()) as client:
        assert JWT.search(client.tokens.get())


def test_the_suite_wide_log_scan_catches_each_kind_of_secret():
    from tests.conftest import secret_leaks

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("flask_pbx365.x", logging.INFO, __file__, 1, message, None, None)

    leaking = ["got eyJhbGciOiJSUzI1NiJ9abc.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
               "-----BEGIN PRIVATE KEY-----", f"secret {TEST_SECRET}",
               "POST client_assertion=abcdefghijklmnopqrstuvwxyz0123", '{"refresh_token": "0.AAAAbbbbccccddddeeeeffff"}',
               'clientState="3f6c1b0e9d8a7c6b5a4f"']
    assert len(secret_leaks([record(m) for m in leaking])) == len(leaking)
    assert secret_leaks([record("users sync of acme: 12 created"), record("GET /users -> 200")]) == []
