"""``PBX365_*`` configuration keys and their defaults.

``PBX365.init_app`` applies each with ``app.config.setdefault``; the README lists them. Per-tenant options (the
admin tabs) are not here: they live in the database, see :mod:`flask_pbx365.settings`.
"""
from __future__ import annotations

#: Secret from which the key that encrypts private keys at rest is derived (HKDF-SHA256 → AES-256-GCM).
#: ``None`` uses the app's ``SECRET_KEY``. To rotate: move the old value to ``PBX365_SECRET_KEY_FALLBACKS``, set the
#: new one, run ``flask pbx365 keys reencrypt``, then drop the fallback.
PBX365_SECRET_KEY: str | None = None

#: Older secrets still accepted for decryption while a rotation is under way (newest first).
PBX365_SECRET_KEY_FALLBACKS: list[str] = []

#: Redis for RQ jobs, run locks and progress. ``None`` uses ``REDIS_URL``, then ``redis://localhost:6379/0``.
PBX365_REDIS_URL: str | None = None

#: The RQ queue every job of the extension goes to.
PBX365_QUEUE: str = "pbx365"

#: URL prefix of the public routes (OAuth redirect URI ``{prefix}/oauth2/callback``, change notifications).
PBX365_URL_PREFIX: str = "/integrations/microsoft365"

#: URL prefix of the admin tabs (Configure, User Sync, Sign In, Contacts, Mail).
PBX365_ADMIN_URL_PREFIX: str = "/admin/integrations/microsoft365"

#: The host's layout template the tabs render into; it must define ``{% block content %}`` (and may define
#: ``{% block title %}``). The default is a minimal standalone page.
PBX365_BASE_TEMPLATE: str = "pbx365/standalone_base.html"

#: Validity of a generated certificate, in days (Entra accepts up to several years; the seeds use one year).
PBX365_CERT_VALIDITY_DAYS: int = 365

#: RSA key size of generated key pairs.
PBX365_RSA_KEY_SIZE: int = 2048

#: Days before a certificate's expiry at which the Configure tab warns and the admins get an email.
PBX365_CERT_WARNING_DAYS: tuple[int, ...] = (30, 7)

#: Timeout, in seconds, of every Microsoft Graph / Entra request.
PBX365_HTTP_TIMEOUT: float = 30.0

#: Retries of a throttled (429) or unavailable (503/504) Graph request before the run fails.
PBX365_MAX_RETRIES: int = 6

#: Upper bound of one backoff wait, in seconds.
PBX365_MAX_BACKOFF: float = 60.0

#: CA bundle that verifies Microsoft's servers in the listed clouds (Global, US Government, China), for networks
#: whose TLS-inspecting proxy re-signs traffic. ``None`` uses certifi's bundle. ``REQUESTS_CA_BUNDLE`` is never used.
#: The custom cloud uses the CA bundle of its Configure tab instead.
PBX365_CA_BUNDLE: str | None = None

#: Proxies whose ``X-Forwarded-*`` headers are trusted when building redirect URIs (IP addresses; empty: none).
PBX365_TRUSTED_PROXIES: list[str] = []

#: Seconds between two passes of ``flask pbx365 scheduler`` (Teams presence polls as often as every 10 seconds).
PBX365_SCHEDULER_INTERVAL: float = 10.0

#: How long a finished job's result is kept in Redis, in seconds (run history itself is in the database).
PBX365_JOB_RESULT_TTL: int = 86400

#: Maximum run time of one sync job, in seconds.
PBX365_JOB_TIMEOUT: int = 3600

#: Clock skew, in seconds, allowed when checking an ID token's ``exp``, ``nbf`` and ``iat`` (Sign in with Microsoft).
PBX365_SSO_CLOCK_SKEW: int = 120

#: Lifetime, in seconds, of the one-time code a native app exchanges for its session token.
PBX365_SSO_APP_CODE_TTL: int = 60

#: Whether signing out (``POST {PBX365_URL_PREFIX}/sign-out/<tenant>``) also signs the browser out of Microsoft
#: (the tenant's ``end_session_endpoint``) when it signed in with Microsoft; a ``microsoft=1`` form field asks for it.
PBX365_SSO_SIGN_OUT_MICROSOFT: bool = False

#: Largest request body an admin tab accepts, bytes (its forms are small; a bigger body is refused with 413
#: before it is read).
PBX365_MAX_FORM_BYTES: int = 1_000_000

#: Content-Security-Policy of the admin tabs and sign-in pages (also X-Frame-Options SAMEORIGIN, no-store). The
#: default forbids framing by other sites without restricting the host layout's scripts; ``""`` sends none.
PBX365_CONTENT_SECURITY_POLICY: str = "frame-ancestors 'self'; object-src 'none'; base-uri 'self'"

#: After an uncertain send (the connection dropped, the answer was lost), how long the mail job looks for the
#: message in the sender's Sent Items before concluding it did not go out and sending it again.
PBX365_MAIL_RECONCILE_SECONDS: float = 10.0

#: Maximum run time of one mail job, in seconds (RQ stops it then, and the message is marked failed).
PBX365_MAIL_JOB_TIMEOUT: int = 600

#: Seconds after which the scheduler recovers a message: one still ``queued`` with no job in Redis (Redis
#: restarted, or the enqueue failed) is enqueued again; one still ``sending`` this long after its job's timeout (the
#: worker was killed) is taken over by a new job, which looks in Sent Items and Drafts before sending anything.
PBX365_MAIL_RECOVER_SECONDS: int = 60

#: Users per committed batch when a sync applies its plan (host changes and link state commit together). A first
#: sync commits each page of 999 users as it arrives, in one batch at this size.
PBX365_SYNC_BATCH_SIZE: int = 1000

#: Seconds a sync's per-tenant Redis lock lives without its heartbeat: how soon a killed worker's run is taken over.
PBX365_SYNC_LOCK_TTL: int = 60

#: Presence runs that changed nothing kept per tenant (presence runs every minute; older quiet runs are pruned).
PBX365_PRESENCE_QUIET_RUNS: int = 60

#: Minutes an application presence session "In a call" lasts in Teams before the scheduler renews it (Graph
#: allows 5 to 240); a worker that dies mid-call leaves Teams showing it no longer than this.
PBX365_TEAMS_SESSION_MINUTES: int = 60

#: A call's Teams session is renewed when fewer than this many minutes of it are left.
PBX365_TEAMS_RENEW_MINUTES: int = 15

#: A call reported as going on for longer than this many hours is taken as a lost hang-up: its Teams session ends.
PBX365_TEAMS_MAX_CALL_HOURS: float = 12.0

#: Names of features to switch off in this portal (``users``, ``sign_in``, ``contacts``, ``mail``, ``presence``,
#: ``teams_presence``):
#: their tab, settings section, sync command, schedule and subscriptions disappear.
PBX365_DISABLED_FEATURES: list[str] = []

DEFAULTS: dict[str, object] = {
    name: value for name, value in dict(globals()).items() if name.startswith("PBX365_")
}
