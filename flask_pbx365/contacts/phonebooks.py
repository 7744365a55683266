"""The two phonebooks contacts sync writes, behind one interface: a PBX user's personal one, the company one."""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

from ..exceptions import PBX365Error
from ..host import PBXHost, PhonebookEntry, apply_phonebook, phonebook_keys


@dataclass
class Phonebook:
    """Entries of one ``source`` in a user's personal phonebook (``host_user_id``) or the company phonebook.

    Only entries of ``source`` are ever listed, written or deleted, so entries people made themselves (other
    sources) are never touched.
    """

    host: PBXHost
    tenant: str
    source: str
    host_user_id: str | None = None

    def entries(self) -> dict[str, PhonebookEntry]:
        if self.host_user_id is None:
            found = self.host.list_company_contacts(self.tenant, self.source)
        else:
            found = self.host.list_personal_contacts(self.tenant, self.host_user_id, self.source)
        return {e.key: e for e in found if e.source == self.source}

    def keys(self) -> set[str]:
        """The keys of the entries of ``source`` (without loading the entries, when the host can)."""
        return phonebook_keys(self.host, self.tenant, self.host_user_id, self.source)

    def write(self, upserts: list[PhonebookEntry], deletes: list[str],
              savepoint: Callable[[], AbstractContextManager]) -> dict[str, PBX365Error]:
        """Upsert and delete in one host call when the host has batch phonebook writes; the errors by key."""
        return apply_phonebook(self.host, self.tenant, self.host_user_id, self.source, upserts, deletes, savepoint)
