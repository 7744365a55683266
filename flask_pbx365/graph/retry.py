"""When and how long to wait before retrying a Graph request."""
from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Mapping

import requests
import urllib3.exceptions

RETRYABLE_STATUSES = frozenset({429, 503, 504})
# The server did not process the request: safe to retry even a non-idempotent POST.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER = 900.0  # a server asking for more than 15 minutes is treated as asking for 15


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: seconds (``2.128``) or an HTTP date; None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (batch items carry plain dicts)."""
    if not headers:
        return None
    if isinstance(headers, requests.structures.CaseInsensitiveDict):
        return headers.get(name)
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_retries`` retries; server's Retry-After wins, else capped exponential backoff, full jitter."""

    max_retries: int = 6
    max_backoff: float = 60.0
    base: float = 1.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_backoff, self.base * (2 ** attempt))
        return random.uniform(0, ceiling)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        parsed = parse_retry_after(retry_after)
        return self.backoff(attempt) if parsed is None else parsed


def is_unsent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (so even a POST may be re-sent)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, urllib3.exceptions.NewConnectionError)
    return False


def is_transient(exc: requests.RequestException) -> bool:
    """Connection errors, resets and timeouts; never TLS trust failures (retrying cannot fix those)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            requests.exceptions.ChunkedEncodingError))
