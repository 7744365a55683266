"""Profile photos: compare each linked user's photo ETag, fetch only changed photos, remove deleted ones."""
from __future__ import annotations

from typing import Callable

from ..exceptions import GraphError
from ..graph import BatchRequest, GraphClient
from ..host import PBXHost
from ..models import UserLink

#: Users per round trip (each round trip is one or more ``$batch`` calls of 20).
CHUNK = 100


def _etag(body: object) -> str | None:
    if isinstance(body, dict):
        etag = body.get("@odata.mediaEtag") or body.get("@odata.etag")
        return str(etag) if etag else None
    return None


def sync_photos(client: GraphClient, host: PBXHost, tenant: str, links: list[UserLink],
                on_changed: Callable[[UserLink, str], None], on_error: Callable[[UserLink, GraphError], None],
                on_chunk: Callable[[int], None]) -> None:
    """Bring the PBX photos of ``links`` (active links) up to date.

    Photo changes are not tracked by users delta, so every run reads the photo metadata (in ``$batch``) and
    downloads ``$value`` only where ``@odata.mediaEtag`` differs from the stored ``photo_etag``. No photo (404, or
    the documented 1x1 placeholder with an empty ETag) removes the photo the sync had set. ``on_changed(link,
    what)`` is called for each change, ``on_error`` for each failed call, ``on_chunk(n)`` after each chunk (the
    caller commits there).
    """
    for start in range(0, len(links), CHUNK):
        chunk = links[start:start + CHUNK]
        answers = client.batch([BatchRequest(str(i), "GET", f"/users/{link.object_id}/photo")
                                for i, link in enumerate(chunk)])
        to_fetch: list[tuple[UserLink, str]] = []
        for link, answer in zip(chunk, answers):
            if answer.status == 404 or (answer.ok and not _etag(answer.body)):
                if link.photo_etag is not None:
                    host.set_photo(tenant, link.host_user_id, None)
                    link.photo_etag = None
                    on_changed(link, "photo removed")
            elif answer.ok:
                etag = _etag(answer.body)
                if etag != link.photo_etag:
                    to_fetch.append((link, etag))
            else:
                on_error(link, answer.error())
        if to_fetch:
            photos = client.batch([BatchRequest(str(i), "GET", f"/users/{link.object_id}/photo/$value")
                                   for i, (link, _) in enumerate(to_fetch)])
            for (link, etag), answer in zip(to_fetch, photos):
                if answer.ok and isinstance(answer.body, (bytes, bytearray)) and answer.body:
                    content_type = next((v for k, v in answer.headers.items() if k.lower() == "content-type"),
                                        "image/jpeg")
                    host.set_photo(tenant, link.host_user_id, bytes(answer.body), content_type.split(";")[0])
                    link.photo_etag = etag
                    on_changed(link, "photo updated")
                elif answer.status == 404:
                    if link.photo_etag is not None:
                        host.set_photo(tenant, link.host_user_id, None)
                        link.photo_etag = None
                        on_changed(link, "photo removed")
                else:
                    on_error(link, answer.error() or GraphError(
                        f"The photo of {link.user_principal_name} came back empty or not as an image."))
        on_chunk(len(chunk))
