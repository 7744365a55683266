"""Reading the meetings in progress from users' Outlook calendars (``calendarView``, Calendars.Read).

calendarView expands recurring series into their occurrences, so each answer already lists the instances that
overlap the window. Times are asked for in UTC (``Prefer: outlook.timezone="UTC"``). Users are read 20 at a time
through ``$batch``; a page's ``@odata.nextLink`` is followed on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import GraphError, MalformedResponseError
from ..graph import BatchRequest, GraphClient
from .rules import Meeting

PREFER = {"Prefer": 'outlook.timezone="UTC"'}
SELECT = ("id", "subject", "showAs", "start", "end", "isCancelled", "isAllDay", "sensitivity", "responseStatus")
#: calendarView is asked for this much either side of now; only events in progress at ``now`` count.
MARGIN = timedelta(minutes=1)


@dataclass
class CalendarAnswer:
    """One mailbox's meetings in progress, or the error that kept it from being read."""

    object_id: str
    meetings: list[Meeting]
    error: GraphError | None = None


def _stamp(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def view_path(object_id: str, now: datetime) -> str:
    """The calendarView request of one mailbox for the window around ``now``."""
    query = urlencode({"startDateTime": _stamp(now - MARGIN), "endDateTime": _stamp(now + MARGIN),
                       "$select": ",".join(SELECT), "$top": "50"}, safe="$,:")
    return f"/users/{object_id}/calendarView?{query}"


def parse_time(value: object) -> datetime:
    """A Graph ``dateTimeTimeZone`` as an aware UTC datetime."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise MalformedResponseError(f"An event time from Microsoft Graph is not a dateTimeTimeZone: {value!r}.")
    try:
        dt = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise MalformedResponseError(
            f"Microsoft Graph returned the event time {value!r}, which is not in UTC as asked with "
            f"Prefer: outlook.timezone=\"UTC\", nor in a known time zone.") from exc
    return dt.astimezone(timezone.utc)


def meetings_in_progress(events: list[dict], mapping: dict[str, str | None], now: datetime) -> list[Meeting]:
    """The events in progress at ``now`` whose Show as maps to a status (cancelled and declined ones don't count)."""
    out = []
    for event in events:
        status = mapping.get(str(event.get("showAs") or "unknown"))
        if not status or not event.get("id") or event.get("isCancelled"):
            continue
        if ((event.get("responseStatus") or {}).get("response") or "") == "declined":
            continue
        start, end = parse_time(event.get("start")), parse_time(event.get("end"))
        if not start <= now < end:
            continue
        private = event.get("sensitivity") in ("private", "confidential")
        subject = "private appointment" if private else (event.get("subject") or "untitled appointment")
        out.append(Meeting(str(event["id"]), status, str(event.get("showAs")), subject, start, end))
    return out


def read_meetings(client: GraphClient, object_ids: list[str], mapping: dict[str, str | None],
                  now: datetime) -> list[CalendarAnswer]:
    """The meetings in progress of each mailbox, in the order of ``object_ids``.

    Errors of single mailboxes are returned in their answer; a failure of the whole ``$batch`` call raises.
    """
    requests = [BatchRequest(str(i), "GET", view_path(oid, now), headers=dict(PREFER))
                for i, oid in enumerate(object_ids)]
    answers = []
    for oid, answer in zip(object_ids, client.batch(requests)):
        if not answer.ok:
            answers.append(CalendarAnswer(oid, [], answer.error()))
            continue
        try:
            body = answer.body if isinstance(answer.body, dict) else {}
            events = list(body.get("value") or [])
            if body.get("@odata.nextLink"):
                events += client.iter_items(body["@odata.nextLink"], headers=PREFER, mailbox=oid)
            answers.append(CalendarAnswer(oid, meetings_in_progress(events, mapping, now)))
        except GraphError as exc:
            answers.append(CalendarAnswer(oid, [], exc))
    return answers
