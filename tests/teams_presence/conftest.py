"""Teams presence test rig: ``acme`` linked to a fresh emulator tenant by a real user sync, the presence
permissions granted, Teams presence on.

Teams statuses are set through the emulator's admin API (what each user's own Teams client reports); polls run
through the run machinery and a real RQ worker (burst mode); PBX statuses are read through the demo API and call
states reported through it, as a PBX would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.presence.conftest import CALENDAR_PERMISSIONS, PresenceEnv
from tests.sync.conftest import connect, empty_env  # noqa: F401  (empty_env: a fixture the tests here use)

TEAMS_PERMISSIONS = [*CALENDAR_PERMISSIONS, "Presence.Read.All", "Presence.ReadWrite.All"]


@dataclass
class TeamsEnv(PresenceEnv):
    app_id: str = ""

    def teams_settings(self, **options: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings(self.tenant, {"teams_presence": options})

    def teams(self, name: str, availability: str, activity: str | None = None) -> dict:
        """``name``'s own Teams client reports this."""
        return self.emulator.admin("PUT", f"/tenants/{self.tid}/users/{self.oid(name)}/teams-presence",
                                   {"availability": availability, "activity": activity or availability})

    def teams_view(self, name: str) -> dict:
        """What Graph says of ``name`` now, with the application sessions."""
        return self.emulator.admin("GET", f"/tenants/{self.tid}/users/{self.oid(name)}/teams-presence")

    def poll(self) -> dict:
        """One Teams → PBX run executed by a worker; its JSON."""
        from flask_pbx365.runs import request_run, status_json

        with self.app.app_context():
            run = status_json(request_run(self.tenant, "teams_presence"))
        self.work()
        return self.status(run["run_id"])

    def call(self, name: str, state: str) -> None:
        """The PBX reports ``name``'s phone (demo API), then the worker runs what that queued."""
        answer = self.app.test_client().put(f"/api/tenants/{self.tenant}/users/{self.ext(name)}/call-state",
                                            json={"state": state}, headers=self._auth())
        assert answer.status_code == 204, answer.get_data(as_text=True)
        self.work()

    def presence_requests(self, fragment: str) -> list[dict]:
        return [r for r in self.emulator.requests_log() if fragment in r["path"]]


@pytest.fixture
def tenv(app, m365_emulator, m365_tenant, redis_conn) -> TeamsEnv:
    """``acme`` linked to the emulator's default tenant, presence permissions granted, Teams presence on."""
    app.config.update(PBX365_MAX_RETRIES=2, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    app_id = connect(app, m365_emulator, m365_tenant, permissions=TEAMS_PERMISSIONS)
    domain = m365_emulator.users(m365_tenant)[0]["userPrincipalName"].split("@")[1]
    m365_emulator.clear_faults()
    env = TeamsEnv(app, m365_emulator, m365_tenant, domain, app_id=app_id)
    assert env.sync()["status"] == "done"
    env.teams_settings(enabled=True)
    yield env
    m365_emulator.clear_faults()
