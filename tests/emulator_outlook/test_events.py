"""Events, calendarView recurrence expansion across a DST change, time-zone preference, calendarView delta."""
from __future__ import annotations

import pytest

from .conftest import Tenant

WINDOW = "startDateTime=2026-03-20T00:00:00Z&endDateTime=2026-04-04T00:00:00Z"
BERLIN = {"Prefer": 'outlook.timezone="Europe/Berlin"'}


@pytest.fixture(scope="module")
def calendar(tenant: Tenant):
    amy = tenant.users["amy"]

    def add(event: dict) -> str:
        r = tenant.admin("POST", f"/users/{amy}/events", json=event)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    # Mon/Wed 09:00 Berlin time (Windows zone name); Europe leaves winter time on 2026-03-29.
    standup = add({"subject": "Standup", "showAs": "busy",
                   "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "W. Europe Standard Time"},
                   "end": {"dateTime": "2026-03-16T09:15:00", "timeZone": "W. Europe Standard Time"},
                   "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"],
                                              "firstDayOfWeek": "monday"},
                                  "range": {"type": "endDate", "startDate": "2026-03-16", "endDate": "2026-04-30"}}})
    trip = add({"subject": "Trip", "showAs": "oof",
                "start": {"dateTime": "2026-03-26T08:00:00", "timeZone": "Pacific Standard Time"},
                "end": {"dateTime": "2026-03-26T17:00:00", "timeZone": "Pacific Standard Time"}})
    monthly = add({"subject": "Board", "showAs": "tentative",
                   "start": {"dateTime": "2026-01-30T14:00:00", "timeZone": "UTC"},
                   "end": {"dateTime": "2026-01-30T15:00:00", "timeZone": "UTC"},
                   "recurrence": {"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"],
                                              "index": "last"},
                                  "range": {"type": "numbered", "startDate": "2026-01-30", "numberOfOccurrences": 3}}})
    return {"amy": amy, "standup": standup, "trip": trip, "monthly": monthly}


def _starts(items: list[dict], subject: str) -> list[str]:
    return [e["start"]["dateTime"] for e in items if e["subject"] == subject]


def test_calendar_view_expands_series_across_dst_in_utc(tenant: Tenant, calendar):
    items, _ = tenant.graph().pages(f"/users/{calendar['amy']}/calendarView?{WINDOW}")
    assert _starts(items, "Standup") == [
        "2026-03-23T08:00:00.0000000", "2026-03-25T08:00:00.0000000",     # CET = UTC+1
        "2026-03-30T07:00:00.0000000", "2026-04-01T07:00:00.0000000"]     # CEST = UTC+2
    standups = [e for e in items if e["subject"] == "Standup"]
    assert {e["type"] for e in standups} == {"occurrence"}
    assert {e["seriesMasterId"] for e in standups} == {calendar["standup"]}
    assert {e["start"]["timeZone"] for e in items} == {"UTC"}
    assert _starts(items, "Trip") == ["2026-03-26T15:00:00.0000000"]
    assert _starts(items, "Board") == ["2026-03-27T14:00:00.0000000"]      # last Friday of March
    assert {e["subject"]: e["showAs"] for e in items} == {"Standup": "busy", "Trip": "oof", "Board": "tentative"}
    assert [e["start"]["dateTime"] for e in items] == sorted(e["start"]["dateTime"] for e in items)


def test_calendar_view_in_preferred_time_zone(tenant: Tenant, calendar):
    g = tenant.graph()
    r = g.get(f"/users/{calendar['amy']}/calendarView?{WINDOW}&$top=50", headers=BERLIN)
    assert r.headers["Preference-Applied"] == 'outlook.timezone="Europe/Berlin"'
    items = r.json()["value"]
    assert set(_starts(items, "Standup")) == {f"2026-{d}T09:00:00.0000000" for d in ("03-23", "03-25", "04-01",
                                                                                    "03-30")}
    assert {e["start"]["timeZone"] for e in items} == {"Europe/Berlin"}
    occurrence = next(e for e in items if e["subject"] == "Standup")
    one = g.get(f"/users/{calendar['amy']}/events/{occurrence['id']}", headers=BERLIN).json()
    assert one["seriesMasterId"] == calendar["standup"] and one["start"] == occurrence["start"]


def test_calendar_view_needs_a_window_and_calendars_read(tenant: Tenant, calendar):
    r = tenant.graph().get(f"/users/{calendar['amy']}/calendarView")
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidParameter"
    denied = tenant.graph(["Contacts.Read"]).get(f"/users/{calendar['amy']}/calendarView?{WINDOW}")
    assert denied.status_code == 403


def test_events_lists_masters_not_occurrences(tenant: Tenant, calendar):
    items, _ = tenant.graph().pages(f"/users/{calendar['amy']}/events")
    types = {e["subject"]: e["type"] for e in items}
    assert types == {"Standup": "seriesMaster", "Trip": "singleInstance", "Board": "seriesMaster"}


def test_calendar_view_delta(tenant: Tenant, calendar):
    g = tenant.graph()
    amy = calendar["amy"]
    url = f"/users/{amy}/calendarView/delta?{WINDOW}"
    first, pages = [], 0
    while True:
        r = g.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        body = r.json()
        assert r.status_code == 200 and body["@odata.context"].endswith("$metadata#Collection(event)")
        first += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            break
        url = body["@odata.nextLink"]
        assert "/calendarView/delta?$skiptoken=" in url and "startDateTime" not in url
    assert pages == 3 and len(first) == 6
    assert all(e["@odata.type"] == "#microsoft.graph.event" for e in first)
    delta = body["@odata.deltaLink"]
    assert "$deltatoken=" in delta

    assert g.get(delta).json()["value"] == []
    tenant.admin("PATCH", f"/users/{amy}/events/{calendar['trip']}", json={"showAs": "busy"})
    # the standup stops before the DST change: two later occurrences disappear
    tenant.admin("PATCH", f"/users/{amy}/events/{calendar['standup']}", json={"recurrence": {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "endDate", "startDate": "2026-03-16", "endDate": "2026-03-28"}}})
    body = g.get(delta, headers=BERLIN).json()
    changed = {e["id"]: e for e in body["value"]}
    assert changed[calendar["trip"]]["showAs"] == "busy"
    assert changed[calendar["trip"]]["start"] == {"dateTime": "2026-03-26T16:00:00.0000000",
                                                  "timeZone": "Europe/Berlin"}
    removed = [e for e in body["value"] if "@removed" in e]
    assert len(removed) == 2
    assert all(e == {"@odata.type": "#microsoft.graph.event", "id": e["id"], "@removed": {"reason": "deleted"}}
               for e in removed)
    kept = [e for e in body["value"] if e.get("subject") == "Standup"]
    assert len(kept) == 2
    body = g.get(body["@odata.deltaLink"]).json()
    assert body["value"] == []


def test_calendar_view_delta_rejects_select(tenant: Tenant, calendar):
    r = tenant.graph().get(f"/users/{calendar['amy']}/calendarView/delta?{WINDOW}&$select=subject")
    assert r.status_code == 400
