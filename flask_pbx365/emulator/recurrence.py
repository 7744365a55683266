"""Outlook time zones and recurrence: Graph ``dateTimeTimeZone`` values and the expansion of event series.

Series are expanded in the master's own time zone (IANA or Windows names), so occurrences keep their wall-clock
time across daylight-saving changes. Pure functions: no request, no store.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Occurrences generated per series at most (a runaway ``noEnd`` daily series over a huge window).
MAX_OCCURRENCES = 5000


# --- time zones ------------------------------------------------------------------------------------------------

#: Windows time-zone names Outlook uses, mapped to IANA (CLDR windowsZones, territory "001"; common ones only).
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC", "Coordinated Universal Time": "UTC", "tzone://Microsoft/Utc": "UTC",
    "GMT Standard Time": "Europe/London", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest", "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau", "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest", "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul", "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg", "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Kolkata", "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore", "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul", "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane", "W. Australia Standard Time": "Australia/Perth",
    "New Zealand Standard Time": "Pacific/Auckland", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage", "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix", "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago", "Eastern Standard Time": "America/New_York",
    "Atlantic Standard Time": "America/Halifax", "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota", "Central Standard Time (Mexico)": "America/Mexico_City",
}


def zone(name: str | None) -> ZoneInfo:
    """The zone of an IANA or Windows time-zone name; ``ValueError`` when unknown."""
    name = (name or "UTC").strip()
    iana = WINDOWS_ZONES.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_event_time(value: dict) -> datetime:
    """A Graph ``dateTimeTimeZone`` as an aware UTC datetime (naive ``dateTime`` is in ``timeZone``)."""
    dt = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone(value.get("timeZone")))
    return dt.astimezone(timezone.utc)


def format_event_time(dt: datetime, tz_name: str) -> dict:
    """``{"dateTime": "2024-03-31T09:00:00.0000000", "timeZone": tz_name}`` in ``tz_name``'s wall time."""
    local = dt.astimezone(zone(tz_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz_name}


# --- recurrence --------------------------------------------------------------------------------------------------

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    m = month - 1 + n
    return year + m // 12, m % 12 + 1


def _month_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    nxt = date(*_add_months(year, month, 1), 1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def _relative_day(year: int, month: int, days_of_week: list[str], index: str) -> date | None:
    wanted = {_DAYS.index(d.lower()) for d in days_of_week}
    matches = [d for d in _month_days(year, month) if d.weekday() in wanted]
    if not matches:
        return None
    i = _INDEX.get((index or "first").lower(), 0)
    return matches[i] if i < len(matches) else None


def _pattern_dates(pattern: dict, start: date, limit: date) -> Iterator[date]:
    """Dates from ``start`` on that match a Graph ``recurrencePattern``, ascending, stopping past ``limit``."""
    kind = pattern.get("type", "daily")
    interval = max(1, int(pattern.get("interval") or 1))
    days = [d.lower() for d in pattern.get("daysOfWeek") or []] or [_DAYS[start.weekday()]]
    k = 0
    while True:
        if kind == "daily":
            d = start + timedelta(days=k * interval)
            if d > limit:
                return
            yield d
        elif kind == "weekly":
            first_dow = _DAYS.index((pattern.get("firstDayOfWeek") or "sunday").lower())
            week = start - timedelta(days=(start.weekday() - first_dow) % 7) + timedelta(weeks=k * interval)
            if week > limit:
                return
            for i in range(7):
                d = week + timedelta(days=i)
                if _DAYS[d.weekday()] in days and start <= d <= limit:
                    yield d
        elif kind in ("absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
            if kind.endswith("Monthly"):
                y, m = _add_months(start.year, start.month, k * interval)
            else:
                y, m = start.year + k * interval, int(pattern.get("month") or start.month)
            if date(y, m, 1) > limit:
                return
            if kind.startswith("absolute"):
                day = int(pattern.get("dayOfMonth") or start.day)
                d = date(y, m, day) if day <= len(_month_days(y, m)) else None
            else:
                d = _relative_day(y, m, days, pattern.get("index"))
            if d and start <= d <= limit:
                yield d
        else:
            raise ValueError(f"unsupported recurrence pattern type {kind!r}")
        k += 1


def occurrence_starts(event: dict, window_end: datetime) -> Iterator[datetime]:
    """UTC start times of a series' occurrences before ``window_end``, in order (the range applied).

    Occurrences keep the master's wall-clock start time in the master's start time zone, so their UTC time
    moves across a daylight-saving change.
    """
    rec = event["recurrence"]
    rng = rec.get("range") or {}
    tz = zone(event["start"].get("timeZone"))
    first = parse_event_time(event["start"]).astimezone(tz)
    start = date.fromisoformat(rng["startDate"]) if rng.get("startDate") else first.date()
    end = date.fromisoformat(rng["endDate"]) if rng.get("type") == "endDate" and rng.get("endDate") else None
    count = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else 0
    limit = window_end.astimezone(tz).date() + timedelta(days=1)
    if end:
        limit = min(limit, end)
    for n, d in enumerate(_pattern_dates(rec.get("pattern") or {}, start, limit)):
        if (count and n >= count) or n >= MAX_OCCURRENCES:
            return
        yield datetime.combine(d, first.time().replace(tzinfo=None), tz).astimezone(timezone.utc)


def occurrence_id(master_id: str, start: datetime) -> str:
    """The id of one occurrence of a series (stable; ``GET /events/{id}`` resolves it)."""
    return f"{master_id}_OID_{start.strftime('%Y%m%dT%H%M%S')}"


def instances(event: dict, win_start: datetime, win_end: datetime) -> list[tuple[dict, datetime, datetime]]:
    """The instances of a stored event overlapping [win_start, win_end): ``(event, start_utc, end_utc)``.

    A series master yields its occurrences (``type: occurrence``, ``seriesMasterId``); other events
    themselves. Cancelled events are skipped.
    """
    if event.get("isCancelled"):
        return []
    start, end = parse_event_time(event["start"]), parse_event_time(event["end"])
    if not event.get("recurrence"):
        return [(event, start, end)] if start < win_end and end > win_start else []
    duration = end - start
    out = []
    for occ_start in occurrence_starts(event, win_end):
        occ_end = occ_start + duration
        if occ_start < win_end and occ_end > win_start:
            occ = {**event, "id": occurrence_id(event["id"], occ_start), "type": "occurrence",
                   "seriesMasterId": event["id"], "recurrence": None}
            out.append((occ, occ_start, occ_end))
    return out
