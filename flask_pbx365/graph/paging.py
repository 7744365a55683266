"""Server-driven paging (``@odata.nextLink``) and delta rounds (``@odata.deltaLink``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..exceptions import MalformedResponseError

if TYPE_CHECKING:
    from .client import GraphClient


def short_url(url: str, limit: int = 300) -> str:
    return url if len(url) <= limit else url[:limit] + "..."


def page_items(page: dict, url: str) -> list:
    """The page's ``value`` list, or MalformedResponseError naming the URL."""
    value = page.get("value") if isinstance(page, dict) else None
    if not isinstance(value, list):
        raise MalformedResponseError(
            f"Microsoft Graph answered {short_url(url)} with a page that has no 'value' list.")
    return value


def _next(client: "GraphClient", page: dict, key: str, url: str, seen: set[str]) -> str | None:
    link = page.get(key)
    if link is None:
        return None
    if not isinstance(link, str) or not link:
        raise MalformedResponseError(f"The {key} of the page {short_url(url)} is not a URL.")
    client.check_link(link)
    if link in seen:  # a server answering the same link again would loop forever
        raise MalformedResponseError(f"Microsoft Graph repeated the page link {short_url(link)}.")
    seen.add(link)
    return link


def iter_pages(client: "GraphClient", path: str, *, params: Any = None, headers: Mapping[str, str] | None = None,
               mailbox: str | None = None) -> Iterator[dict]:
    """Every page of a collection. A page with an empty ``value`` and a nextLink is followed too."""
    url: str | None = client.url_for(path)
    seen: set[str] = set()
    while url:
        page = client._get_json(url, params=params, headers=headers, mailbox=mailbox)
        page_items(page, url)
        following = _next(client, page, "@odata.nextLink", url, seen)
        yield page
        url, params = following, None  # the nextLink carries the original query


def is_continuation(path_or_link: str) -> bool:
    """True for a stored delta/next link (its token can expire), False for the start of a new round."""
    lowered = path_or_link.lower()
    return "://" in lowered or "deltatoken=" in lowered or "skiptoken=" in lowered


class DeltaRound:
    """One delta round: iterate it once for the pages' item lists (items may carry ``@removed``).

    After the last page, :attr:`delta_link` holds the link for the next round. Raises
    :class:`~flask_pbx365.exceptions.DeltaTokenExpiredError` when a stored link has expired (410,
    ``syncStateNotFound``, ``resyncRequired``...) and :class:`~flask_pbx365.exceptions.FeatureUnavailableError`
    when the cloud does not offer this delta at all.
    """

    def __init__(self, client: "GraphClient", path_or_delta_link: str, *, params: Any = None,
                 headers: Mapping[str, str] | None = None, mailbox: str | None = None):
        self._client = client
        self._start = path_or_delta_link
        self._params = params
        self._headers = headers
        self._mailbox = mailbox
        self._started = False
        self.delta_link: str | None = None
        self.pages = 0
        self.items = 0

    def __iter__(self) -> Iterator[list[dict]]:
        if self._started:
            raise RuntimeError("A DeltaRound can be iterated only once; start a new round with its delta_link.")
        self._started = True
        return self._rounds()

    def _rounds(self) -> Iterator[list[dict]]:
        client = self._client
        url = client.url_for(self._start)
        continuing = is_continuation(self._start)
        params = None if continuing else self._params
        seen: set[str] = set()
        while True:
            page = client._get_json(url, params=params, headers=self._headers, mailbox=self._mailbox,
                                    context="delta-continue" if continuing else "delta-start")
            items = page_items(page, url)
            following = _next(client, page, "@odata.nextLink", url, seen)
            delta_link = None if following else _next(client, page, "@odata.deltaLink", url, seen)
            if not following and not delta_link:
                raise MalformedResponseError(
                    f"The delta page {short_url(url)} has neither @odata.nextLink nor @odata.deltaLink.")
            self.pages += 1
            self.items += len(items)
            yield items
            if delta_link:
                self.delta_link = delta_link
                return
            url, params, continuing = following, None, True
