"""The two phonebooks contacts sync writes, behind one interface: a PBX user's personal one, the company one."""
from __future__ import annotations

from dataclasses import dataclass

from ..host import PBXHost, PhonebookEntry


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

    def upsert(self, entry: PhonebookEntry) -> None:
        if self.host_user_id is None:
            self.host.upsert_company_contact(self.tenant, entry)
        else:
            self.host.upsert_personal_contact(self.tenant, self.host_user_id, entry)

    def delete(self, key: str) -> None:
        if self.host_user_id is None:
            self.host.delete_company_contact(self.tenant, self.source, key)
        else:
            self.host.delete_personal_contact(self.tenant, self.host_user_id, self.source, key)
