"""Calendar presence test rig: ``acme`` connected to a fresh emulator tenant (alice, bob, carol... linked by a
real user sync), Calendars.Read granted, presence enabled.

Meetings are real emulator events placed around the real clock; runs go through the run machinery and a real RQ
worker (burst mode); statuses are read through the demo API, as PBX clients see them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.sync.conftest import PERMISSIONS, SyncEnv, connect

CALENDAR_PERMISSIONS = [*PERMISSIONS, "Calendars.Read"]


def graph_time(dt: datetime, zone: str = "UTC") -> dict:
    """A Graph dateTimeTimeZone in ``zone`` (IANA name) for the aware datetime ``dt``."""
    from zoneinfo import ZoneInfo

    return {"dateTime": dt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


@dataclass
class PresenceEnv(SyncEnv):
    """SyncEnv plus calendars and presence."""

    def presence_settings(self, **presence: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings(self.tenant, {"presence": presence})

    def meeting(self, name: str, minutes_from: float = -5, minutes_to: float = 30, show_as: str = "busy",
                subject: str = "Meeting", zone: str = "UTC", **extra: Any) -> dict:
        """A calendar entry of ``name`` from ``minutes_from`` to ``minutes_to`` minutes around now."""
        now = datetime.now(timezone.utc)
        event = {"subject": subject, "showAs": show_as,
                 "start": graph_time(now + timedelta(minutes=minutes_from), zone),
                 "end": graph_time(now + timedelta(minutes=minutes_to), zone), **extra}
        return self.emulator.admin("POST", f"/tenants/{self.tid}/users/{self.oid(name)}/events", event)

    def end_meeting(self, name: str, event: dict) -> None:
        """Move the entry's end to a minute ago, as when a meeting is over."""
        end = graph_time(datetime.now(timezone.utc) - timedelta(minutes=1))
        start = graph_time(datetime.now(timezone.utc) - timedelta(minutes=20))
        self.emulator.admin("PATCH", f"/tenants/{self.tid}/users/{self.oid(name)}/events/{event['id']}",
                            {"start": start, "end": end})

    def delete_meeting(self, name: str, event: dict) -> None:
        self.emulator.admin("DELETE", f"/tenants/{self.tid}/users/{self.oid(name)}/events/{event['id']}")

    def run(self, dry_run: bool = False) -> dict:
        """A presence run executed by a worker; its JSON."""
        from flask_pbx365.runs import request_run, status_json

        with self.app.app_context():
            run = status_json(request_run(self.tenant, "presence", dry_run=dry_run))
        self.work()
        return self.status(run["run_id"])

    def ext(self, name: str) -> str:
        return self.synced()[name]["extension"]

    def presence(self, name: str) -> dict:
        answer = self.app.test_client().get(f"/api/tenants/{self.tenant}/users/{self.ext(name)}/presence",
                                            headers=self._auth())
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    def set_presence(self, name: str, status: str) -> None:
        """The user picks a status (demo API PUT: source ``user``)."""
        answer = self.app.test_client().put(f"/api/tenants/{self.tenant}/users/{self.ext(name)}/presence",
                                            json={"status": status}, headers=self._auth())
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.app.config['DEMO_API_TOKEN']}"}


@pytest.fixture
def penv(app, m365_emulator, m365_tenant, redis_conn) -> PresenceEnv:
    """``acme`` linked to the emulator's default tenant by a user sync, Calendars.Read granted, presence on."""
    app.config.update(PBX365_MAX_RETRIES=1, PBX365_MAX_BACKOFF=0.05, PBX365_HTTP_TIMEOUT=10)
    connect(app, m365_emulator, m365_tenant, permissions=CALENDAR_PERMISSIONS)
    domain = m365_emulator.users(m365_tenant)[0]["userPrincipalName"].split("@")[1]
    m365_emulator.clear_faults()
    env = PresenceEnv(app, m365_emulator, m365_tenant, domain)
    assert env.sync()["status"] == "done"
    env.presence_settings(enabled=True)
    yield env
    m365_emulator.clear_faults()
