"""The contacts sync engine: Microsoft 365 contacts → PBX phonebooks, one way, a hundred mailboxes at a time.

Personal contacts of every linked, active synced user go to that user's personal phonebook (source
``microsoft365``); contacts of each configured shared mailbox go to the company phonebook (source = the mailbox's
address). Each mailbox is read whole before anything is written; a Graph error on a mailbox leaves its phonebook
alone (nothing deleted) and counts as an error. A mailbox's phonebook changes, its folder states and its run
details are committed together (with those of the rest of its chunk of ``BATCH_MAILBOXES``), so a killed worker
leaves each mailbox in either the old or the new state.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa

from ..connection import client_options, credentials_for
from ..exceptions import (
    AuthenticationError,
    ConnectionFailedError,
    GraphError,
    NotFoundError,
    PermissionMissingError,
)
from ..graph import GraphClient
from ..host import PhonebookEntry, get_users, personal_phonebook_keys
from ..models import ContactFolderState, UserLink
from ..runs import RunContext
from ..settings import get_settings
from ..state import get_state
from ..tenants import require_connection
from .mapping import PERSONAL_SOURCE, contact_name, same, to_entry
from .phonebooks import Phonebook
from .reader import BATCH_MAILBOXES, Capabilities, FolderState, MailboxRead, MailboxReader, read_many

log = logging.getLogger("flask_pbx365.contacts")

KIND = "contacts"
#: Errors that make every further call fail too: the run stops instead of failing mailbox by mailbox.
FATAL = (AuthenticationError, ConnectionFailedError)
NO_MAILBOX_CODES = {"mailboxnotenabledforrestapi", "request_resourcenotfound", "resourcenotfound",
                    "mailboxnotfound"}


@dataclass
class Mailbox:
    """One mailbox to sync and where its contacts go."""

    key: str                  # ContactFolderState.mailbox: object id (personal) or lower-case address (shared)
    who: str                  # how Graph addresses it: object id or address
    label: str                # UPN or address, for run details
    name: str | None          # the owner's display name, for run details
    phonebook: Phonebook
    object_id: str | None = None
    extension: str | None = None

    @property
    def shared(self) -> bool:
        return self.phonebook.host_user_id is None


class ContactsSync:
    """One execution of a contacts sync run (see :func:`sync_contacts`)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.run = ctx.run
        self.tenant = ctx.run.tenant
        state = get_state()
        self.session = state.db.session
        self.host = state.host
        self.options = get_settings(self.tenant)["contacts"]
        self.directory_id = require_connection(self.tenant).directory_id.lower()
        self.caps = Capabilities()
        self.failed: list[str] = []
        self.synced = {"personal": 0, "shared": 0}
        self.folders = {"full": 0, "incremental": 0}

    # --- the run ----------------------------------------------------------------------------------------

    def execute(self) -> tuple[str, str]:
        with GraphClient(credentials_for(self.tenant), **client_options()) as client:
            self.ctx.report(force=True, phase="preparing")
            mailboxes = self._personal_mailboxes() if self.options["personal"] else []
            shared = []
            # The address, lower-cased, is the company entries' source: a change of case must not orphan them.
            for address in dict.fromkeys(a.strip().lower() for a in self.options["shared_mailboxes"]):
                mailbox = self._shared_mailbox(client, address)
                if mailbox is not None:
                    shared.append(mailbox)
            mailboxes += shared
            self._clean_up({m.key for m in mailboxes}, configured_shared={
                a.lower() for a in self.options["shared_mailboxes"]})
            self.ctx.report(force=True, phase="reading contacts", done=0, total=len(mailboxes))
            blocked: set[bool] = set()  # kinds (shared or not) whose permission is missing
            for start in range(0, len(mailboxes), BATCH_MAILBOXES):
                # A chunk's states, phonebook keys and common reads at once; its writes commit together.
                chunk = [m for m in mailboxes[start:start + BATCH_MAILBOXES] if m.shared not in blocked]
                stored = self._stored(chunk)
                keys = personal_phonebook_keys(self.host, self.tenant,
                                               [m.phonebook.host_user_id for m in chunk if not m.shared],
                                               PERSONAL_SOURCE)
                reads = self._read_many(client, chunk, stored)
                for done, mailbox in enumerate(mailboxes[start:start + BATCH_MAILBOXES], start + 1):
                    if mailbox.shared in blocked:
                        continue
                    try:
                        rows, states = stored.get(mailbox.key, ({}, {}))
                        known = None if mailbox.shared else keys.get(mailbox.phonebook.host_user_id)
                        self._sync_mailbox(client, mailbox, rows, states, reads.get(mailbox.key), known)
                    except PermissionMissingError as exc:
                        blocked.add(mailbox.shared)
                        left = sum(1 for m in mailboxes[done - 1:] if m.shared == mailbox.shared)
                        self._error(mailbox, f"{exc} The contacts of {left} mailbox{'es' * (left != 1)} were "
                                             "not read.")
                    self.ctx.report(done=done)
                self.ctx.commit()
        return ("failed" if self.failed else "done"), self._summary()

    def _summary(self) -> str:
        if not self.options["personal"] and not self.options["shared_mailboxes"]:
            lead = "Nothing to sync: turn on personal contacts or add a shared mailbox on the Contacts tab."
        else:
            lead = (f"Contacts of {self.synced['personal']} user{'s' * (self.synced['personal'] != 1)} and "
                    f"{self.synced['shared']} shared mailbox{'es' * (self.synced['shared'] != 1)}:")
        counts = ", ".join(f"{v} {k}" for k, v in self.ctx.counts.items() if v) or "no changes"
        text = f"{lead} {counts}."
        if self.folders["full"] or self.folders["incremental"]:
            text += (f" Folders read in full: {self.folders['full']}, incrementally (delta): "
                     f"{self.folders['incremental']}.")
        if not self.caps.contact_delta:
            text += " This Microsoft cloud offers no contact delta, so folders were read in full and compared."
        if self.run.dry_run:
            text = "Dry run, nothing was changed. " + text
        if self.failed:
            more = f" and {len(self.failed) - 1} more" if len(self.failed) > 1 else ""
            text += (f" {len(self.failed)} mailbox{'es' * (len(self.failed) != 1)} failed ({self.failed[0]}{more}); "
                     "nothing was changed in their phonebooks, the next run tries again.")
        return text

    # --- which mailboxes --------------------------------------------------------------------------------

    def _personal_mailboxes(self) -> list[Mailbox]:
        # Columns, not ORM objects: each chunk's commit would expire them all.
        links = self.session.execute(sa.select(
            UserLink.host_user_id, UserLink.object_id, UserLink.user_principal_name, UserLink.display_name).where(
            UserLink.tenant == self.tenant, sa.func.lower(UserLink.directory_id) == self.directory_id,
            UserLink.state == "active").order_by(UserLink.id)).all()
        users = {u.id: u for u in get_users(self.host, self.tenant, [link.host_user_id for link in links])}
        out = []
        for link in links:
            user = users.get(link.host_user_id)
            if user is None or not user.enabled:
                continue
            out.append(Mailbox(key=link.object_id.lower(), who=link.object_id, label=link.user_principal_name or "",
                               name=link.display_name, object_id=link.object_id, extension=user.extension,
                               phonebook=Phonebook(self.host, self.tenant, PERSONAL_SOURCE, user.id)))
        return out

    def _shared_mailbox(self, client: GraphClient, address: str) -> Mailbox | None:
        """The shared mailbox at ``address``, or None (with an error detail) when it is not one."""
        mailbox = Mailbox(key=address.lower(), who=address, label=address, name=address,
                          phonebook=Phonebook(self.host, self.tenant, address))
        try:
            answer = client.get(f"/users/{quote(address, safe='@')}/mailboxSettings/userPurpose", mailbox=address)
        except FATAL:
            raise
        except NotFoundError as exc:
            self._error(mailbox, f"{address} is not a mailbox in this Microsoft 365 tenant; check the address on "
                                 f"the Contacts tab ({exc}).")
            return None
        except GraphError as exc:
            self._error(mailbox, f"Could not check that {address} is a shared mailbox: {exc}")
            return None
        purpose = answer.get("value")
        if isinstance(purpose, dict):  # one docs sample wraps the enum in an object
            purpose = purpose.get("value")
        if str(purpose or "").lower() != "shared":
            self._error(mailbox, f"{address} is a {purpose or 'unknown'} mailbox, not a shared mailbox; only shared "
                                 "mailboxes feed the company phonebook. Remove it from the Contacts tab or convert "
                                 "it to a shared mailbox in Exchange.")
            return None
        return mailbox

    # --- one mailbox ------------------------------------------------------------------------------------

    def _stored(self, mailboxes: list[Mailbox]) -> dict[str, tuple[dict[str, ContactFolderState],
                                                                     dict[str, FolderState]]]:
        """The stored folder rows of ``mailboxes`` (one query) and detached copies of their states, by mailbox
        key (the copies: each mailbox's commit expires every row, and reading one again would query it)."""
        out: dict[str, tuple[dict, dict]] = {m.key: ({}, {}) for m in mailboxes}
        if not mailboxes:
            return out
        for row in self.session.scalars(sa.select(ContactFolderState).where(
                ContactFolderState.tenant == self.tenant, ContactFolderState.mailbox.in_(list(out)))):
            rows, states = out.setdefault(row.mailbox, ({}, {}))
            rows[row.folder_id] = row
            states[row.folder_id] = FolderState(row.delta_link, set(row.contact_ids or []))
        return out

    def _read_many(self, client: GraphClient, mailboxes: list[Mailbox],
                   stored: dict[str, tuple[dict, dict[str, FolderState]]]) -> dict[str, MailboxRead]:
        """What :func:`read_many` reads of ``mailboxes`` in a few ``$batch`` calls; the rest is read alone."""
        try:
            return read_many(client, {m.key: (m.who, stored[m.key][1]) for m in mailboxes}, self.caps)
        except FATAL:
            raise
        except GraphError as exc:  # e.g. $batch itself refused: each mailbox alone then, reporting its own error
            log.info("contacts sync of %s: batched read failed (%s); reading mailboxes one by one", self.tenant, exc)
            return {}

    def _sync_mailbox(self, client: GraphClient, mailbox: Mailbox, rows: dict[str, ContactFolderState],
                      states: dict[str, FolderState], prefetched: MailboxRead | None,
                      known_keys: set[str] | None) -> None:
        reader = MailboxReader(client, mailbox.who, self.caps)
        try:
            read = prefetched if prefetched is not None else reader.read(states)
            entries = self._entries(read, mailbox.phonebook.source)
            keys = known_keys if known_keys is not None else mailbox.phonebook.keys()
            missing = [fid for fid, folder in read.folders.items()
                       if not folder.full and any(cid not in keys and cid not in entries for cid in folder.ids)]
            for fid in missing:  # entries removed behind the sync's back: read those folders whole again
                read.folders[fid] = reader.read_folder(fid, None)
                read.folders[fid].note = "entries were missing from the phonebook, so it was read in full"
            if missing:
                entries = self._entries(read, mailbox.phonebook.source)
            # Nothing read and nothing gone: the entries themselves are not needed (an unchanged mailbox).
            existing = mailbox.phonebook.entries() if keys and (entries or not keys <= read.ids) else {}
        except (*FATAL, PermissionMissingError):
            raise
        except NotFoundError as exc:
            if not mailbox.shared and (exc.code or "").lower() in NO_MAILBOX_CODES:
                self._item("skipped", mailbox, name=mailbox.name,
                           detail=f"No Exchange Online mailbox to read contacts from ({exc}).")
                return
            self._error(mailbox, f"Reading the contacts failed: {exc}")
            return
        except GraphError as exc:
            self._error(mailbox, f"Reading the contacts failed: {exc}")
            return
        self.synced["shared" if mailbox.shared else "personal"] += 1
        self.folders["full"] += read.full_folders
        self.folders["incremental"] += len(read.folders) - read.full_folders
        self._apply(mailbox, read, entries, existing)
        if not self.run.dry_run:
            self._save(mailbox, read, rows)

    @staticmethod
    def _entries(read: MailboxRead, source: str) -> dict[str, tuple[dict, PhonebookEntry | None]]:
        """Contact id -> (contact, its phonebook entry or None when skipped) for the contacts read.

        Skipped contacts leave the folders' ``ids``: the stored ids are those the phonebook should hold.
        """
        out = {cid: (contact, to_entry(contact, source)) for cid, contact in read.contacts.items()}
        skipped = {cid for cid, (_, entry) in out.items() if entry is None}
        for folder in read.folders.values():
            folder.ids -= skipped
        return out

    def _apply(self, mailbox: Mailbox, read: MailboxRead, entries: dict, existing: dict) -> None:
        source = mailbox.phonebook.source
        where = f"company phonebook ({source})" if mailbox.shared else "personal phonebook"
        note = "; dry run: not applied" if self.run.dry_run else ""
        upserts: list[PhonebookEntry] = []
        changes: list[tuple[str, str, str, str]] = []  # (key, action, name, detail)
        for cid, (contact, entry) in sorted(entries.items(), key=lambda kv: contact_name(kv[1][0]).lower()):
            if entry is None:
                self._item("skipped", mailbox, name=contact_name(contact) or cid[:40],
                           detail="No phone number and no email address: nothing to dial." + note)
                continue
            old = existing.get(cid)
            if old is not None and same(old, entry):
                continue
            upserts.append(entry)
            changes.append((entry.key, "created" if old is None else "updated", entry.name, f"{where}{note}"))
        keep = read.ids
        deletes = [key for key in existing if key not in keep]
        changes += [(key, "deleted", existing[key].name, f"no longer in Microsoft 365; removed from the {where}{note}")
                    for key in deletes]
        errors = {} if self.run.dry_run or not changes else mailbox.phonebook.write(
            upserts, deletes, self.session.begin_nested)
        for key, action, name, detail in changes:
            if key in errors:
                self._item("error", mailbox, name=name, detail=f"The PBX refused the change ({action}): {errors[key]}")
            else:
                self._item(action, mailbox, name=name, detail=detail)

    def _save(self, mailbox: Mailbox, read: MailboxRead, rows: dict[str, ContactFolderState]) -> None:
        for fid, row in rows.items():
            if fid not in read.folders:
                self.session.delete(row)
        for fid, folder in read.folders.items():
            row = rows.get(fid)
            if row is None:
                row = ContactFolderState(tenant=self.tenant, mailbox=mailbox.key, folder_id=fid)
                self.session.add(row)
            row.host_user_id = mailbox.phonebook.host_user_id
            row.delta_link = folder.delta_link
            row.contact_ids = sorted(folder.ids)
        self.session.flush()

    # --- mailboxes no longer synced -----------------------------------------------------------------------

    def _clean_up(self, current: set[str], configured_shared: set[str]) -> None:
        """Remove what the sync put in phonebooks for mailboxes it no longer syncs: shared mailboxes removed from
        the list, and every user's entries once personal contacts are turned off (or the PBX user is gone)."""
        rows = self.session.scalars(sa.select(ContactFolderState).where(ContactFolderState.tenant == self.tenant))
        by_mailbox: dict[str, list[ContactFolderState]] = {}
        for row in rows:
            if row.mailbox not in current:
                by_mailbox.setdefault(row.mailbox, []).append(row)
        for key, group in by_mailbox.items():
            host_user_id = group[0].host_user_id
            if host_user_id is None:
                if key in configured_shared:
                    continue  # configured but failing its check this run: keep its entries
                phonebook = Phonebook(self.host, self.tenant, key)
                mailbox = Mailbox(key=key, who=key, label=key, name=key, phonebook=phonebook)
                why = "the shared mailbox was removed from the Contacts tab"
            else:
                user = self.host.get_user(self.tenant, host_user_id)
                if user is not None and self.options["personal"]:
                    continue  # a disabled or unlinked user keeps the entries until it is synced again
                link = self.session.scalar(sa.select(UserLink).where(UserLink.tenant == self.tenant,
                                                                     sa.func.lower(UserLink.object_id) == key))
                phonebook = Phonebook(self.host, self.tenant, PERSONAL_SOURCE, host_user_id)
                mailbox = Mailbox(key=key, who=key, label=link.user_principal_name if link else key,
                                  name=link.display_name if link else None, object_id=key,
                                  extension=user.extension if user else None, phonebook=phonebook)
                why = "personal contacts sync was turned off"
                if user is None:
                    if not self.run.dry_run:
                        for row in group:
                            self.session.delete(row)
                    continue
            note = "; dry run: not applied" if self.run.dry_run else ""
            entries = phonebook.entries()
            errors = {} if self.run.dry_run or not entries else phonebook.write(
                [], list(entries), self.session.begin_nested)
            for entry_key, entry in entries.items():
                if entry_key in errors:
                    self._item("error", mailbox, name=entry.name,
                               detail=f"The PBX refused the change (deleted): {errors[entry_key]}")
                else:
                    self._item("deleted", mailbox, name=entry.name, detail=f"{why}{note}")
            if not self.run.dry_run:
                for row in group:
                    self.session.delete(row)
            self.ctx.commit()

    # --- run details --------------------------------------------------------------------------------------

    def _item(self, action: str, mailbox: Mailbox, *, name: str | None, detail: str) -> None:
        self.ctx.item(action, object_id=mailbox.object_id, upn=(mailbox.label or "")[:255] or None,
                      name=(name or "")[:255] or None,
                      extension=mailbox.extension, detail=detail)

    def _error(self, mailbox: Mailbox, message: str, record_failure: bool = True) -> None:
        log.warning("contacts sync of %s: mailbox %s: %s", self.tenant, mailbox.label, message)
        if record_failure:
            self.failed.append(f"{mailbox.label}: {message}")
        self._item("error", mailbox, name=mailbox.name, detail=message)


def sync_contacts(ctx: RunContext) -> tuple[str, str]:
    """The contacts sync engine for :func:`flask_pbx365.runs.execute`: ``(status, message)``."""
    return ContactsSync(ctx).execute()
