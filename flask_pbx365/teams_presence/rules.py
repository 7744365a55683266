"""Teams → PBX as one pure function: what a user's Teams presence does to their PBX status at this poll.

The precedence, highest first:

1. *Business trip* or *Holiday* set by the user or an admin is never overridden.
2. A meeting that calendar presence maps (source ``calendar``) keeps the status until calendar presence gives it
   back; Teams waits, and its presence then applies.
3. A *change* of Teams presence sets the status it maps to (source ``teams``). A status the user or an admin picks
   afterwards stays until Teams presence changes again: polls act on changes, not on every reading.
4. A Teams presence mapped to ``null`` leaves the status alone; if Teams had set the current status, the status
   from before Teams is given back.

The extension's own "In a call" session (PBX → Teams) comes back in the aggregated presence; while it is live a
reading of ``Busy``/``InACall`` is the PBX's own call and is ignored (no echo).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Mapping

from ..presence.rules import LABELS, PROTECTED

#: Teams availability values (Graph presence.availability), in the order the tab lists them.
AVAILABILITIES = ("Available", "Busy", "DoNotDisturb", "BeRightBack", "Away", "Offline")
#: Activities an admin may map on their own (they win over their availability's mapping).
ACTIVITIES = ("InACall", "InAConferenceCall", "InAMeeting", "Presenting", "OutOfOffice", "Inactive")
#: Availability values Graph may report beyond the ones above, folded onto them.
ALIASES = {"AvailableIdle": "Available", "BusyIdle": "Busy", "PresenceUnknown": "Offline"}
DEFAULT_MAPPING = {"Available": "available", "Busy": "dnd", "DoNotDisturb": "dnd", "BeRightBack": "away",
                   "Away": "away", "Offline": None}
#: What the extension's application session reports while a PBX call lasts.
OWN_SESSION = ("Busy", "InACall")

Action = Literal["set", "restore", "protected", "calendar", "none"]


@dataclass(frozen=True)
class Seen:
    """What is remembered per user (a :class:`~flask_pbx365.models.TeamsPresenceState` row)."""

    availability: str | None = None
    activity: str | None = None
    applied_status: str | None = None
    previous_status: str | None = None
    previous_source: str | None = None


@dataclass(frozen=True)
class Decision:
    """``status``/``source`` to set (``set``, ``restore``), the new memory, and a sentence for the run's details."""

    action: Action
    seen: Seen
    reason: str = ""
    status: str | None = None
    source: str | None = None


def mapped_status(mapping: Mapping[str, str | None], availability: str, activity: str) -> str | None:
    """The PBX status Teams presence maps to: the activity's own mapping when it has one, else the availability's."""
    if activity in mapping:
        return mapping[activity]
    return mapping.get(ALIASES.get(availability, availability))


def describe(availability: str, activity: str) -> str:
    return availability if activity in ("", availability) else f"{availability} ({activity})"


def decide(status: str, source: str, seen: Seen, availability: str, activity: str,
           mapping: Mapping[str, str | None], own_session_live: bool = False) -> Decision:
    """What to do now with a user whose PBX status is ``status``/``source``, given Teams' current reading."""
    if own_session_live and (availability, activity) == OWN_SESSION:
        return Decision("none", seen)
    if (availability, activity) == (seen.availability, seen.activity):
        return Decision("none", seen)
    reading = replace(seen, availability=availability, activity=activity)
    teams = describe(availability, activity)
    if status in PROTECTED and source in ("user", "admin"):
        return Decision("protected", reading, f"On {LABELS[status]}: Teams {teams} does not change the status.")
    if source == "calendar":
        # Not remembered as seen: the reading applies once calendar presence gives the status back.
        return Decision("calendar", seen, f"A meeting sets the status; Teams {teams} waits for its end.")
    target = mapped_status(mapping, availability, activity)
    owned = seen.applied_status is not None and (status, source) == (seen.applied_status, "teams")
    if target is None:
        if owned:
            back = seen.previous_status or "available"
            return Decision("restore", Seen(availability, activity),
                            f"Teams {teams}: back to {LABELS.get(back, back)}.", back, seen.previous_source or "user")
        return Decision("none", replace(reading, applied_status=None, previous_status=None, previous_source=None))
    if status == target:  # already so: nothing to write, and nothing to give back later unless Teams set it
        return Decision("none", reading if owned else replace(reading, applied_status=None, previous_status=None,
                                                              previous_source=None))
    previous = (seen.previous_status, seen.previous_source) if owned else (status, source)
    return Decision("set", Seen(availability, activity, target, *previous),
                    f"Teams {teams}: {LABELS.get(target, target)}; was {LABELS.get(status, status)}.",
                    target, "teams")
