"""Outlook allows 4 concurrent requests per app and mailbox: one semaphore per (app, mailbox) per process."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_SEMAPHORES: dict[tuple[str, str, str], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


def _semaphore(key: tuple[str, str, str], limit: int) -> threading.BoundedSemaphore:
    with _LOCK:
        semaphore = _SEMAPHORES.get(key)
        if semaphore is None:
            semaphore = _SEMAPHORES[key] = threading.BoundedSemaphore(max(1, limit))
        return semaphore


@contextmanager
def mailbox_slot(directory_id: str, client_id: str, mailbox: str | None, limit: int) -> Iterator[None]:
    """Hold one of the ``limit`` concurrent slots of ``mailbox`` (no-op when ``mailbox`` is None).

    The limit is fixed by the first caller for a mailbox; Graph's limit is the same for every caller.
    """
    if not mailbox:
        yield
        return
    semaphore = _semaphore((directory_id.lower(), client_id.lower(), mailbox.lower()), limit)
    with semaphore:
        yield
