"""Extension numbers for new PBX users: from the start number upward, skipping every number in use."""
from __future__ import annotations

from ..exceptions import ExtensionInUseError, HostAdapterError
from ..host import HostUser, PBXHost, UserFields

#: Where numbering starts when no start number is configured and the tenant has no numeric extension yet.
DEFAULT_FIRST = 100
#: How many taken numbers in a row one allocation tries before giving up.
MAX_ATTEMPTS = 1000


class ExtensionAllocator:
    """Hands out free extensions for one tenant during one run.

    Numbers known to be taken (``taken``) are skipped without asking; the host is asked before each attempt
    (:meth:`PBXHost.is_extension_free`) and has the last word: when ``create_user`` answers
    :class:`ExtensionInUseError` because another sync or a host admin took the number meanwhile, the next one
    is tried. An existing user's extension is never touched.
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
        """The number the next allocation would try (for a dry run's plan); reserves it in this allocator."""
        while self._format(self._next) in self.taken:
            self._next += 1
        number = self._format(self._next)
        self.taken.add(number)
        return number

    def create(self, username: str, fields: UserFields) -> HostUser:
        """Create an enabled PBX user on the first free extension."""
        for _ in range(MAX_ATTEMPTS):
            number = self.peek()
            if not self.host.is_extension_free(self.tenant, number):
                continue
            try:
                return self.host.create_user(self.tenant, username, number, fields)
            except ExtensionInUseError:
                continue  # taken between the check and the insert: the host's constraint decided
        raise HostAdapterError(
            f"No free extension found after trying {MAX_ATTEMPTS} numbers up to {self._format(self._next)}; "
            "set a start number with free room on the User Sync tab.")
