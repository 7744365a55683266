"""The mass-change guard: a run that would disable or delete too many linked users waits for the admin."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuardVerdict:
    hold: bool
    removals: int
    linked: int
    message: str = ""


def check(removals: int, linked: int, percent: int, maximum: int, confirmed: int | None = None) -> GuardVerdict:
    """Hold when ``removals`` (users to disable or delete) exceeds ``percent`` % of the ``linked`` users or
    ``maximum``. A tenant with no linked users yet is never held. ``confirmed`` is how many removals the admin
    already confirmed for this run: up to that many pass.
    """
    if removals == 0 or linked == 0:
        return GuardVerdict(False, removals, linked)
    if confirmed is not None and removals <= confirmed:
        return GuardVerdict(False, removals, linked)
    share = removals * 100 / linked
    reasons = []
    if removals * 100 > percent * linked:
        reasons.append(f"{share:.0f}% of the {linked} synced users, above the {percent}% limit")
    if removals > maximum:
        reasons.append(f"above the limit of {maximum} users")
    if not reasons:
        return GuardVerdict(False, removals, linked)
    again = (f" The admin confirmed {confirmed} removals, but the directory changed since and now more would "
             "be removed." if confirmed is not None else "")
    message = (f"Held for confirmation: this run would disable or delete {removals} user{'' if removals == 1 else 's'} ({'; '.join(reasons)})."
               f"{again} Nothing was changed. If this is expected, confirm the run on the User Sync tab or with "
               "`flask pbx365 sync confirm`; if not, check the filters and the Microsoft 365 directory.")
    return GuardVerdict(True, removals, linked, message)


def can_hold(linked: int, percent: int, maximum: int, confirmed: int | None = None) -> bool:
    """Whether any run could be held at all, before its plan is known.

    Only linked users can be removed, so a run removes at most ``linked``: with no linked users, a limit of 100 %
    and a maximum of at least ``linked``, or that many already confirmed, no plan can hold the run, and it may
    write while it still reads.
    """
    if linked == 0 or (confirmed is not None and confirmed >= linked):
        return False
    return percent < 100 or linked > maximum
