"""HTTP plumbing shared by token acquisition and Graph calls: pooled sessions, configured TLS trust, timeouts.

requests silently replaces ``verify=True`` by ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
(``Session.merge_environment_settings``), so every request here passes an explicit CA file path: the
custom cloud's ``ca_bundle`` when set, else certifi's bundle. Proxies from the environment still apply.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .._version import __version__
from ..clouds import Cloud
from ..exceptions import ConfigurationError, ConnectionFailedError
from .retry import RetryPolicy, is_transient

logger = logging.getLogger("flask_pbx365.graph")

USER_AGENT = f"flask-pbx365/{__version__}"


def trust_store(cloud: Cloud) -> str:
    """The CA file that verifies ``cloud``'s servers."""
    if cloud.ca_bundle:
        if not os.path.isfile(cloud.ca_bundle):
            raise ConfigurationError(
                f"The CA bundle {cloud.ca_bundle!r} of the custom cloud does not exist or is not a file: "
                "fix the CA bundle path on the Configure tab (--ca-bundle).")
        return cloud.ca_bundle
    import certifi

    return certifi.where()


def timeouts(timeout: float) -> tuple[float, float]:
    """(connect, read) timeouts for one request."""
    return (min(timeout, 10.0), timeout)


def new_session(pool_maxsize: int = 10) -> requests.Session:
    """A pooled session that never retries on its own (callers own the retry policy)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def connection_error(exc: requests.RequestException, method: str, url: str, verify: str) -> ConnectionFailedError:
    """An admin-readable :class:`ConnectionFailedError` for a transport failure."""
    host = requests.utils.urlparse(url).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        message = (f"TLS certificate verification failed for https://{host}: its certificate is not trusted by "
                   f"the CA bundle {verify}. For the custom cloud (emulator or private endpoint) set the CA "
                   "bundle on the Configure tab (--ca-bundle) to the CA file that signed the server's certificate.")
        code = "tlsError"
    elif isinstance(exc, requests.exceptions.Timeout):
        message = f"{method} https://{host} timed out ({type(exc).__name__}): check the network path and proxy."
        code = "timeout"
    else:
        message = (f"Could not connect to https://{host} ({type(exc).__name__}): check DNS, firewall and "
                   "proxy settings, and for the custom cloud its login and Graph URLs.")
        code = "connectionError"
    return ConnectionFailedError(message, status=0, code=code)


class TrustedHttp:
    """A session bound to one trust store and timeout; also serves as MSAL's ``http_client``.

    MSAL calls ``get(url, params=, headers=)`` and ``post(url, data=, headers=)``; the returned
    :class:`requests.Response` satisfies its response protocol.
    """

    def __init__(self, session: requests.Session, *, verify: str, timeout: float, retries: int = 0):
        self.session = session
        self.verify = verify
        self.timeout = timeouts(timeout)
        self.retries = retries

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        """One request with this trust and timeout; with ``retries``, transient failures and 5xx are re-sent
        (only used for Entra's discovery and token endpoints, where a repeat is harmless)."""
        kw.setdefault("timeout", self.timeout)
        kw["verify"] = self.verify
        policy = RetryPolicy(max_retries=self.retries, max_backoff=4.0, base=0.5)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(method, url, **kw)
            except requests.RequestException as exc:
                if last or not is_transient(exc):
                    raise
                logger.warning("%s %s failed (%s); retrying", method, _no_query(url), type(exc).__name__)
            else:
                if last or response.status_code not in (500, 502, 503, 504):
                    return response
                logger.warning("%s %s answered %s; retrying", method, _no_query(url), response.status_code)
            time.sleep(policy.backoff(attempt))
        raise AssertionError("unreachable")

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self.session.close()


def _no_query(url: str) -> str:
    return url.split("?", 1)[0]
