"""3CX's calendar presence rules as one pure function: what to do with one user's status at this moment.

- A meeting in progress whose Outlook *Show as* maps to a status sets it (the strongest when several overlap);
  the status from before is remembered and restored when no mapped meeting is in progress any more.
- A user on *Business trip* or *Holiday* (set by the user or an admin) is left alone.
- When the user or an admin changes the status while a meeting drives it, their choice wins: the meetings in
  progress at that moment are ignored from then on, and the next meeting takes over again.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

#: Stronger statuses win when meetings overlap (dnd > away, as 3CX ranks "Do Not Disturb" over "Away").
STRENGTH = {"dnd": 5, "holiday": 4, "business_trip": 3, "away": 2, "lunch": 1, "available": 0}
#: Statuses a person chose for a longer absence: calendar changes are ignored while one is set.
PROTECTED = ("business_trip", "holiday")
LABELS = {"available": "Available", "away": "Away", "dnd": "Do Not Disturb", "lunch": "Lunch",
          "business_trip": "Business Trip", "holiday": "Holiday"}

Action = Literal["set", "restore", "keep", "protected", "override", "none"]


@dataclass(frozen=True)
class Meeting:
    """An event in progress whose Show as maps to a PBX status."""

    event_id: str
    status: str
    show_as: str
    subject: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Memory:
    """What is remembered between runs (a :class:`~flask_pbx365.models.PresenceState` row)."""

    applied_status: str | None = None
    event_id: str | None = None
    event_subject: str | None = None
    event_end: datetime | None = None
    previous_status: str | None = None
    previous_source: str | None = None
    ignored: tuple[str, ...] = field(default_factory=tuple)

    @property
    def owned(self) -> bool:
        """True while a meeting drives the user's status."""
        return self.applied_status is not None

    @property
    def empty(self) -> bool:
        return not self.owned and not self.ignored


@dataclass(frozen=True)
class Decision:
    """The outcome for one user: ``status``/``source`` to set on the PBX (``set``, ``restore``), the new memory,
    and a sentence for the run's details."""

    action: Action
    memory: Memory
    reason: str = ""
    status: str | None = None
    source: str | None = None


def strongest(meetings: list[Meeting]) -> Meeting | None:
    """The meeting whose status wins; among equals the one that started first (then by id, to be stable)."""
    if not meetings:
        return None
    return min(meetings, key=lambda m: (-STRENGTH.get(m.status, 0), m.start, m.event_id))


def describe(meeting: Meeting) -> str:
    return f"{meeting.subject!r} (Show as {meeting.show_as}, until {meeting.end:%Y-%m-%d %H:%M} UTC)"


def _owning(meeting: Meeting, previous_status: str | None, previous_source: str | None,
            ignored: tuple[str, ...]) -> Memory:
    return Memory(meeting.status, meeting.event_id, meeting.subject[:255], meeting.end, previous_status,
                  previous_source, ignored)


def decide(status: str, source: str, memory: Memory, meetings: list[Meeting]) -> Decision:
    """What to do now, given the user's current PBX ``status``/``source``, the memory and the mapped meetings
    in progress (every meeting of the list is in progress now)."""
    in_progress = {m.event_id for m in meetings}
    ignored = tuple(i for i in memory.ignored if i in in_progress)  # an ignored meeting that ended is forgotten

    if memory.owned and (status, source) != (memory.applied_status, "calendar"):
        return Decision("override", Memory(ignored=tuple(sorted(set(ignored) | in_progress))),
                        f"Status changed to {LABELS.get(status, status)} by the {source} during "
                        f"{memory.event_subject!r}: kept until the next meeting.")

    best = strongest([m for m in meetings if m.event_id not in ignored])
    if memory.owned:
        if best is None:
            back = memory.previous_status or "available"
            return Decision("restore", Memory(ignored=ignored),
                            f"{memory.event_subject!r} ended: back to {LABELS.get(back, back)}.",
                            back, memory.previous_source or "user")
        kept = _owning(best, memory.previous_status, memory.previous_source, ignored)
        if best.status == memory.applied_status:
            return Decision("keep", kept)
        return Decision("set", kept, f"{LABELS.get(best.status, best.status)}: {describe(best)}.",
                        best.status, "calendar")
    if best is None:
        return Decision("none", replace(memory, ignored=ignored))
    if status in PROTECTED:
        return Decision("protected", replace(memory, ignored=ignored),
                        f"On {LABELS[status]}: {describe(best)} does not change the status.")
    return Decision("set", _owning(best, status, source, ignored),
                    f"{LABELS.get(best.status, best.status)}: {describe(best)}; was {LABELS.get(status, status)}.",
                    best.status, "calendar")
