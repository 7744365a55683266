"""Every error the extension raises, under one base class.

Each message says what happened and what the admin can do about it.
"""
from __future__ import annotations


class PBX365Error(Exception):
    """Base class of every flask_pbx365 error."""


class ConfigurationError(PBX365Error):
    """A setting is missing or invalid (Configure tab, ``PBX365_*`` config, settings import)."""


class NotConfiguredError(ConfigurationError):
    """The tenant has no Microsoft 365 connection yet."""


class KeyPairError(PBX365Error):
    """A key pair is missing, unreadable, or cannot be decrypted with the configured secret."""


class SettingsError(ConfigurationError):
    """Imported settings are malformed (unknown key, wrong type, invalid value)."""


class HostAdapterError(PBX365Error):
    """The host PBX refused an operation."""


class ExtensionInUseError(HostAdapterError):
    """The extension number is already taken in the host PBX."""

    def __init__(self, extension: str):
        super().__init__(f"Extension {extension} is already in use.")
        self.extension = extension


# --- Microsoft Graph / Entra ---------------------------------------------------------------------------------


class GraphError(PBX365Error):
    """A Microsoft Graph call failed.

    ``status`` is the HTTP status (0 for a connection error), ``code`` Graph's error code, ``request_id`` the
    ``request-id`` Microsoft support asks for.
    """

    def __init__(self, message: str, *, status: int = 0, code: str | None = None,
                 request_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


class AuthenticationError(GraphError):
    """No token could be acquired (wrong app ID, tenant ID or certificate; AADSTS errors)."""

    def __init__(self, message: str, *, aadsts: str | None = None, **kw):
        super().__init__(message, **kw)
        self.aadsts = aadsts


class PermissionMissingError(GraphError):
    """The app lacks an application permission (403)."""

    def __init__(self, message: str, *, permission: str | None = None, **kw):
        super().__init__(message, **kw)
        self.permission = permission


class ThrottledError(GraphError):
    """Graph kept answering 429/503/504 after every retry."""


class NotFoundError(GraphError):
    """The Graph object does not exist (404)."""


class DeltaTokenExpiredError(GraphError):
    """A stored delta link is no longer valid; the caller must run a full resync."""


class UnsafeLinkError(GraphError):
    """A nextLink/deltaLink points outside the configured Graph host; it is not followed."""


class FeatureUnavailableError(GraphError):
    """The cloud does not offer this Graph feature (for example contact delta in 21Vianet)."""


class MalformedResponseError(GraphError):
    """Graph answered with something that is not the documented shape."""


class ConnectionFailedError(GraphError):
    """Microsoft 365 could not be reached: DNS, TLS trust, proxy, refused connection or timeout."""


# --- Sign in with Microsoft ----------------------------------------------------------------------------------


class SignInError(PBX365Error):
    """Sign in with Microsoft was refused or failed for one person.

    The message says why (it is shown to them), ``hint`` what to do about it (usually a step for the PBX
    administrator), ``code`` the reason as a word (``unlinked_user``, ``invalid_id_token``, an OAuth error such as
    ``invalid_grant``, or ``AADSTS50011``), ``status`` the HTTP status of the page or answer.
    """

    def __init__(self, message: str, *, code: str = "sign_in_failed", status: int = 403, hint: str | None = None,
                 aadsts: str | None = None, redirect_uri: str | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.hint = hint
        self.aadsts = aadsts
        self.redirect_uri = redirect_uri
