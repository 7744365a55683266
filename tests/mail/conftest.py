"""Mail test rig: the demo portal's tenant ``acme`` connected to a fresh emulator tenant with a sender mailbox.

Mail is sent the way production sends it: the demo queues a notification, a real RQ worker (burst mode) runs the
extension's mail job against the emulator; results are read through the demo API and the emulator's outbox.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.sync.conftest import connect, user_fixture


@dataclass
class MailEnv:
    app: Any
    emulator: Any
    tid: str
    sender: str
    tenant: str = "acme"

    def api(self, method: str, path: str, **kw: Any):
        token = self.app.config["DEMO_API_TOKEN"]
        answer = self.app.test_client().open(f"/api/tenants/{self.tenant}{path}", method=method,
                                             headers={"Authorization": f"Bearer {token}"}, **kw)
        assert answer.status_code < 300, answer.get_data(as_text=True)
        return answer.get_json()

    def enable(self, **mail: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings(self.tenant, {"mail": {"enabled": True, "sender": self.sender, **mail}})

    def work(self) -> None:
        from flask_pbx365.runs.queue import make_worker

        make_worker(self.app).work(burst=True)

    def notifications(self) -> list[dict]:
        return self.api("GET", "/notifications")

    def outbox(self) -> list[dict]:
        return self.emulator.outbox(self.tid)

    def graph_calls(self) -> list[tuple[str, str, int]]:
        return [(r["method"], r["path"], r["status"]) for r in self.emulator.requests_log()
                if r.get("tenantId") in (self.tid, None) or "/AttachmentSessions(" in r["path"]]


def wav_sha256(size: int) -> str:
    from demo_app.voicemail import silent_wav

    return hashlib.sha256(silent_wav(size)).hexdigest()


def make_env(app, emulator, permissions: list[str]) -> MailEnv:
    tid = str(uuid.uuid4())
    domain = f"{tid[:8]}.mail.example"
    sender = f"pbx@{domain}"
    emulator.create_tenant({"tenant": {"id": tid, "displayName": "Fabrikam", "domains": [domain],
                                       "cloud": "global"},
                            "users": [user_fixture(domain, "pbx", "PBX", "Notifications")], "groups": []})
    app.config.update(PBX365_MAX_RETRIES=2, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=20,
                      PBX365_MAIL_RECONCILE_SECONDS=0)
    connect(app, emulator, tid, permissions=permissions)
    emulator.clear_faults()
    emulator.clear_requests()
    return MailEnv(app, emulator, tid, sender)


@pytest.fixture
def mail_env(app, m365_emulator, redis_conn) -> MailEnv:
    """``acme`` connected with Mail.Send and Mail.ReadWrite (mail not enabled yet)."""
    env = make_env(app, m365_emulator, ["User.Read.All", "Mail.Send", "Mail.ReadWrite"])
    yield env
    m365_emulator.clear_faults()


@pytest.fixture
def send_only_env(app, m365_emulator, redis_conn) -> MailEnv:
    """``acme`` connected with Mail.Send only (no Mail.ReadWrite)."""
    env = make_env(app, m365_emulator, ["User.Read.All", "Mail.Send"])
    yield env
    m365_emulator.clear_faults()
