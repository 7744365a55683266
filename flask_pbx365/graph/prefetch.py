"""Reading ahead: the next page is fetched while the caller works on this one."""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

#: How long the reader waits to hand over a page before it checks whether the caller stopped.
_POLL_SECONDS = 0.1


def prefetched(pages: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``pages`` in a background thread, at most ``depth`` pages ahead of the caller.

    Memory stays bounded (``depth`` pages waiting, one being read). An exception of the reader is raised in the
    caller where its page would have come, with its own traceback. When the caller stops early (an error, a
    ``break``), the reader stops before its next page. ``pages`` must not share state with what the caller does
    meanwhile: the caller must not use the same Graph client until the iteration is over.
    """
    handover: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stopped = threading.Event()
    end = object()

    def give(entry: tuple) -> bool:
        while not stopped.is_set():
            try:
                handover.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not give((page, None)):
                    return
            give((end, None))
        except BaseException as exc:  # handed to the caller, raised there
            give((end, exc))

    reader = threading.Thread(target=read, name="pbx365-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            page, error = handover.get()
            if error is not None:
                raise error
            if page is end:
                return
            yield page
    finally:
        stopped.set()
        reader.join(timeout=5)
