"""Reading one mailbox's contacts: its folders, then each folder by delta (incremental) or in full.

Graph tracks contact changes per folder (``/users/{id}/contactFolders/{fid}/contacts/delta``). A folder with a
stored deltaLink is read incrementally; one without (new folder, first run, expired token) is read in full. Where
the cloud has no contact delta (21Vianet answers 501) every folder is read in full with a plain list and the
caller diffs against the phonebook. Nothing here touches the database: the engine applies the result.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote

from ..exceptions import DeltaTokenExpiredError, FeatureUnavailableError, GraphError
from ..graph import BatchRequest, GraphClient
from .mapping import SELECT

log = logging.getLogger("flask_pbx365.contacts")

PAGE_SIZE = 500
FOLDER_SELECT = "id,displayName,parentFolderId"


@dataclass
class FolderState:
    """What the last applied run left for one folder (a detached copy of the stored row)."""

    delta_link: str | None
    contact_ids: set[str]


@dataclass
class FolderRead:
    """One folder after this run's read: every contact id in it, the contacts read, the next deltaLink."""

    folder_id: str
    ids: set[str]
    contacts: dict[str, dict]
    delta_link: str | None
    full: bool
    note: str = ""


@dataclass
class MailboxRead:
    """A whole mailbox after this run's read."""

    folders: dict[str, FolderRead] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return set().union(*(f.ids for f in self.folders.values())) if self.folders else set()

    @property
    def contacts(self) -> dict[str, dict]:
        merged: dict[str, dict] = {}
        for folder in self.folders.values():
            merged.update(folder.contacts)
        return merged

    @property
    def full_folders(self) -> int:
        return sum(1 for f in self.folders.values() if f.full)


class Capabilities:
    """What this run learnt about the cloud: ``contact_delta`` turns False after the first 501 (or 4xx on a new
    delta round), so later folders go straight to full reads."""

    def __init__(self) -> None:
        self.contact_delta = True


class MailboxReader:
    """Reads the contacts of one mailbox (``who``: object id or address) through ``client``.

    Every call passes ``mailbox=`` so the client keeps within Outlook's 4 concurrent requests per mailbox.
    Graph errors propagate (the engine then leaves this mailbox's phonebook alone).
    """

    def __init__(self, client: GraphClient, who: str, caps: Capabilities):
        self.client = client
        self.who = who
        self.base = f"/users/{quote(who, safe='@')}"
        self.caps = caps

    # --- folders ----------------------------------------------------------------------------------------

    def folder_ids(self) -> list[str]:
        """The default Contacts folder and every folder below it (the default first); [] for an empty mailbox.

        Graph does not list the default folder itself: its id is the ``parentFolderId`` of its child folders,
        or of any contact in it.
        """
        top = list(self.client.iter_items(f"{self.base}/contactFolders",
                                          params={"$select": FOLDER_SELECT, "$top": PAGE_SIZE}, mailbox=self.who))
        default = top[0].get("parentFolderId") if top else None
        if not default:
            page = self.client.get(f"{self.base}/contacts", params={"$select": "id,parentFolderId", "$top": 1},
                                   mailbox=self.who)
            first = (page.get("value") or [None])[0]
            default = first.get("parentFolderId") if isinstance(first, dict) else None
        if not default:
            return []
        found = [default]
        queue = [f["id"] for f in top if f.get("id")]
        while queue:
            fid = queue.pop(0)
            if fid in found:
                continue
            found.append(fid)
            for child in self.client.iter_items(f"{self.base}/contactFolders/{quote(fid, safe='')}/childFolders",
                                                params={"$select": FOLDER_SELECT, "$top": PAGE_SIZE},
                                                mailbox=self.who):
                if child.get("id") and child["id"] not in found:
                    queue.append(child["id"])
        return found

    # --- contacts ---------------------------------------------------------------------------------------

    def read(self, states: dict[str, FolderState], full: set[str] = frozenset()) -> MailboxRead:
        """Every folder of the mailbox; folders in ``full`` are read in full even with a stored deltaLink."""
        result = MailboxRead()
        for fid in self.folder_ids():
            state = states.get(fid)
            result.folders[fid] = self.read_folder(fid, None if fid in full else state)
        return result

    def read_folder(self, fid: str, state: FolderState | None) -> FolderRead:
        note = ""
        if self.caps.contact_delta:
            try:
                if state is not None and state.delta_link:
                    try:
                        return self._delta(fid, state.delta_link, set(state.contact_ids))
                    except DeltaTokenExpiredError:
                        log.info("contacts delta token of %s folder %s expired: full read", self.who, fid)
                        note = "the delta token expired, so the folder was read in full"
                return self._delta(fid, None, set(), note)
            except FeatureUnavailableError:
                log.info("no contact delta in this cloud: full reads with diffing")
                self.caps.contact_delta = False
        return self._list(fid, note)

    def _delta(self, fid: str, link: str | None, ids: set[str], note: str = "") -> FolderRead:
        headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
        if link is None:
            rnd = self.client.delta(f"{self.base}/contactFolders/{quote(fid, safe='')}/contacts/delta",
                                    params={"$select": ",".join(SELECT)}, headers=headers, mailbox=self.who)
        else:
            rnd = self.client.delta(link, headers=headers, mailbox=self.who)
        pages = list(rnd)
        return _folder_read(fid, pages, ids, rnd.delta_link, full=link is None, note=note)

    def _list(self, fid: str, note: str = "") -> FolderRead:
        contacts = {c["id"]: c for c in self.client.iter_items(
            f"{self.base}/contactFolders/{quote(fid, safe='')}/contacts",
            params={"$select": ",".join(SELECT), "$top": PAGE_SIZE}, mailbox=self.who) if c.get("id")}
        return FolderRead(fid, set(contacts), contacts, None, full=True, note=note)


#: Mailboxes whose reads go out together (each step is one $batch call per 20 of them).
BATCH_MAILBOXES = 100


def read_many(client: GraphClient, wanted: dict[str, tuple[str, dict[str, FolderState]]],
              caps: Capabilities) -> dict[str, MailboxRead]:
    """The common mailbox, read for many at once in a few ``$batch`` calls: one whose default Contacts folder has
    no child folders (Outlook's usual shape), answered without errors.

    ``wanted`` maps the caller's key to (``who``, the stored folder states). Three steps, each one sub-request
    per mailbox: its folders, the default folder's id when the stored state does not name it, the folder's
    delta (a page to follow is read on at once). A mailbox left out of the answer (child folders, an error, a
    cloud without contact delta) is for :meth:`MailboxReader.read`, which reads it alone and raises what is
    wrong; the requests sent here for it were reads, so sending them again is harmless.
    """
    if not caps.contact_delta:
        return {}
    base = {key: f"/users/{quote(who, safe='@')}" for key, (who, _) in wanted.items()}
    folders = _batch_values(client, {key: f"{base[key]}/contactFolders?$select={FOLDER_SELECT}&$top={PAGE_SIZE}"
                                     for key in wanted})
    plain = [key for key, value in folders.items() if value == []]  # no folder below the default one
    default: dict[str, str | None] = {}
    ask = []
    for key in plain:
        stored = list(wanted[key][1])
        if len(stored) == 1:  # the only folder read last time is the default one (it is always read first)
            default[key] = stored[0]
        else:
            ask.append(key)
    for key, value in _batch_values(client, {key: f"{base[key]}/contacts?$select=id,parentFolderId&$top=1"
                                             for key in ask}, first_page=True).items():
        first = value[0] if value else None
        default[key] = first.get("parentFolderId") if isinstance(first, dict) else None
    result = {key: MailboxRead() for key, fid in default.items() if not fid}  # an empty mailbox
    deltas: dict[str, tuple[str, str, FolderState | None]] = {}
    for key, fid in default.items():
        if not fid:
            continue
        state = wanted[key][1].get(fid)
        if state is not None and state.delta_link:
            url = client.relative(state.delta_link)
            if url is None:
                continue
        else:
            state = None
            url = f"{base[key]}/contactFolders/{quote(fid, safe='')}/contacts/delta?$select={','.join(SELECT)}"
        deltas[key] = (fid, url, state)
    headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
    answers = client.batch([BatchRequest(str(n), "GET", url, headers=headers)
                            for n, (_, url, _) in enumerate(deltas.values())])
    for (key, (fid, _, state)), answer in zip(deltas.items(), answers):
        if answer.status == 501 or (state is None and answer.status in (400, 405)):  # no contact delta here
            caps.contact_delta = False
            return result
        body = answer.body if answer.ok and isinstance(answer.body, dict) else None
        if body is None or not isinstance(body.get("value"), list):
            continue
        following, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        pages = [body["value"]]
        try:
            if isinstance(following, str) and following:
                rnd = client.delta(following, headers=headers, mailbox=wanted[key][0])
                pages += list(rnd)
                delta_link = rnd.delta_link
            if not isinstance(delta_link, str) or not delta_link:
                continue
            client.check_link(delta_link)
        except GraphError:  # read alone again, where the error is raised and reported
            continue
        read = MailboxRead()
        read.folders[fid] = _folder_read(fid, pages, set(state.contact_ids) if state else set(), delta_link,
                                         full=state is None)
        result[key] = read
    return result


def _batch_values(client: GraphClient, urls: dict[str, str], first_page: bool = False) -> dict[str, list]:
    """GET each URL through ``$batch``: the ``value`` list of each good answer by key; only complete ones (no
    page to follow) unless ``first_page``."""
    keys = list(urls)
    answers = client.batch([BatchRequest(str(n), "GET", urls[key]) for n, key in enumerate(keys)])
    out = {}
    for key, answer in zip(keys, answers):
        body = answer.body if answer.ok and isinstance(answer.body, dict) else None
        if body is not None and isinstance(body.get("value"), list) and (
                first_page or not body.get("@odata.nextLink")):
            out[key] = body["value"]
    return out


def _folder_read(fid: str, pages: list[list[dict]], ids: set[str], delta_link: str | None, *, full: bool,
                 note: str = "") -> FolderRead:
    """A folder from its delta pages applied to the ids it held (``@removed`` takes a contact out)."""
    contacts: dict[str, dict] = {}
    for page in pages:
        for item in page:
            cid = item.get("id")
            if not cid:
                continue
            if "@removed" in item:
                ids.discard(cid)
                contacts.pop(cid, None)
            else:
                ids.add(cid)
                contacts[cid] = item
    return FolderRead(fid, ids, contacts, delta_link, full=full, note=note)
