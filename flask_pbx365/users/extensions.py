"""Extension numbers for new PBX users: from the start number upward, skipping every number in use."""
from __future__ import annotations

from typing import Callable

from ..exceptions import ExtensionInUseError, HostAdapterError
from ..host import HostUser, PBXHost, UserChange, UserChangeResult, UserFields, apply_users

#: Where numbering starts when no start number is configured and the tenant has no numeric extension yet.
DEFAULT_FIRST = 100
#: How many taken numbers in a row one allocation tries before giving up.
MAX_ATTEMPTS = 1000


class ExtensionAllocator:
    """Hands out free extensions for one tenant during one run.

    Numbers known to be taken (``taken``, from the PBX's users as the run read them) are skipped without asking.
    The host has the last word: when a create answers :class:`ExtensionInUseError` because another sync or a
    host admin took the number meanwhile (the host's unique constraint), that user gets the next number in the
    next round. A whole batch is allocated at once and retried only for the refused ones. An existing user's
    extension is never touched.
    """

    def __init__(self, host: PBXHost, tenant: str, start: str | None, taken: set[str]):
        self.host = host
        self.tenant = tenant
        self.taken = set(taken)
        width = len(start) if start else 0
        if start:
            first = int(start)
        else:  # "the first free number" among the tenant's own numbering
            numeric = [int(x) for x in self.taken if x.isdigit()]
            first = min(numeric) if numeric else DEFAULT_FIRST
        self._next = first
        self._width = width

    @classmethod
    def for_users(cls, host: PBXHost, tenant: str, start: str | None, users: list[HostUser]) -> "ExtensionAllocator":
        return cls(host, tenant, start, {u.extension for u in users})

    def _format(self, number: int) -> str:
        return str(number).zfill(self._width)

    def peek(self) -> str:
        """The next number not known to be taken; reserves it in this allocator (also a dry run's plan)."""
        while self._format(self._next) in self.taken:
            self._next += 1
        number = self._format(self._next)
        self.taken.add(number)
        return number

    def create_all(self, changes: list[UserChange],
                   apply: Callable[[list[UserChange]], list[UserChangeResult]]) -> dict[str, UserChangeResult]:
        """Create the users of ``changes`` (``user_id`` None) on free extensions through ``apply`` (one call per
        round, usually one round); returns the result of each change by key."""
        results: dict[str, UserChangeResult] = {}
        pending = list(changes)
        for _ in range(MAX_ATTEMPTS):
            if not pending:
                return results
            for change in pending:
                change.extension = self.peek()
            retry = []
            for change, result in zip(pending, apply(pending)):
                if isinstance(result.error, ExtensionInUseError):
                    retry.append(change)  # taken between the read and the insert: the host's constraint decided
                else:
                    results[change.key] = result
            pending = retry
        for change in pending:
            results[change.key] = UserChangeResult(change.key, error=HostAdapterError(
                f"No free extension found after trying {MAX_ATTEMPTS} numbers up to {self._format(self._next)}; "
                "set a start number with free room on the User Sync tab."))
        return results

    def create(self, username: str, fields: UserFields) -> HostUser:
        """Create one enabled PBX user on the first free extension (raises the host's error)."""
        change = UserChange(key="one", username=username, fields=fields)
        result = self.create_all([change], lambda batch: apply_users(self.host, self.tenant, batch))["one"]
        if result.error is not None:
            raise result.error
        return result.user
