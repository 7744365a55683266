"""The integration's health for one tenant: one line per concern, each with a state and, when not ok, the fix.

The Overview tab renders it and ``flask pbx365 status TENANT --json`` answers it as ``health``::

    {"state": "ok" | "warning" | "error",
     "checks": [{"name", "label", "state", "summary", "fix": str | null, "link": endpoint | null, "details": {}}]}

``name`` is ``connection``, ``permissions``, ``certificate``, ``redirect_uris``, one ``runs:<kind>`` per feature
with runs, ``notifications``, ``teams_calls`` (PBX → Teams on) and ``mail`` (Mail on); ``link`` is the admin endpoint (``pbx365_admin.<view>``) where the fix
is made. Nothing here calls Microsoft: the connection and permission lines come from the latest connection test
(:func:`flask_pbx365.connection.last_check`), so the page is fast and a Microsoft outage cannot hang it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from .connection import last_check
from .keys import list_key_pairs
from .mail import list_messages
from .models import SyncRun, TeamsPresenceState
from .notifications.subscriptions import desired_resources, list_subscriptions
from .redirects import redirect_uris
from .runs import refresh_if_stale, status_json
from .scheduler import next_runs
from .settings import get_settings
from .state import get_state
from .tenants import find_config

ORDER = {"ok": 0, "warning": 1, "error": 2}
_AADSTS = re.compile(r"AADSTS\d+")
_TOKEN_FIX = ("Check the IDs, upload the active public_key.pem in Entra (Certificates & secrets) and grant admin "
              "consent, then test again.")
_MISSING = re.compile(r"Missing application permission ([\w.-]+)")
_RUN_FIXES = [
    (re.compile(r"HTTP 50[0234]|timed out|could not reach|connection (reset|refused|aborted)|Max retries", re.I),
     "Microsoft 365 did not answer; the next run tries again. If it repeats, check this server's outbound HTTPS "
     "to Microsoft Graph (Configure: Test connection)."),
    (re.compile(r"HTTP 429|throttl", re.I),
     "Microsoft 365 throttled the requests; the next run continues where this one stopped. Nothing to do unless "
     "it repeats."),
    (re.compile(r"not a shared mailbox|no mailbox", re.I),
     "Enter the address of a shared mailbox on the Contacts tab (Exchange admin center > Mailboxes > Shared), or "
     "remove it."),
]
#: Entra's answers whose fix is known exactly (AADSTS codes: learn.microsoft.com reference-error-codes).
_TOKEN_FIXES = {
    "AADSTS1000502": "The certificate Entra holds has expired: generate a new key pair (Configure), upload its "
                     "public_key.pem in Entra (Certificates & secrets) and use it.",
    "AADSTS700027": "Entra does not know the key this portal signs with: upload the active key pair's "
                    "public_key.pem in Entra (Certificates & secrets).",
    "AADSTS700016": "No app with this application (client) ID in the directory: copy the ID from the app's "
                    "Overview in Entra.",
    "AADSTS90002": "No directory with this directory (tenant) ID: copy it from Entra's Overview.",
}

#: test-connection entry -> whether the tenant's settings use it (user sync itself is always needed).
IN_USE: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "user_sync": lambda s: True,
    "photos": lambda s: bool(s["user_sync"]["photos"]),
    "group_filter": lambda s: bool(s["user_sync"]["groups"]),
    "phone_write_back": lambda s: bool(s["user_sync"]["write_back_phone"]),
    "contacts": lambda s: bool(s["contacts"]["personal"] or s["contacts"]["shared_mailboxes"]),
    "shared_mailboxes": lambda s: bool(s["contacts"]["shared_mailboxes"]),
    "mail": lambda s: bool(s["mail"]["enabled"]),
    "calendar": lambda s: bool(s["presence"]["enabled"]),
    "teams_presence": lambda s: bool(s.get("teams_presence", {}).get("enabled")),
}


@dataclass
class Check:
    """One line of the health summary."""

    name: str
    label: str
    state: str
    summary: str
    fix: str | None = None
    link: str | None = None
    details: dict = field(default_factory=dict)


def _connection(tenant: str, checked: dict | None) -> Check:
    config = find_config(tenant)
    if config is None or not config.client_id or not config.directory_id:
        return Check("connection", "Connection", "error", "Not connected to Microsoft 365.",
                     "Enter the application (client) ID and the directory (tenant) ID of your app registration.",
                     "pbx365_admin.configure")
    if checked is None:
        return Check("connection", "Connection", "warning", "The connection has not been tested yet.",
                     "Test the connection (Configure tab, or Check now here).", "pbx365_admin.configure")
    if checked.get("error"):
        code = _AADSTS.search(checked["error"])
        aadsts = code.group(0) if code else None
        return Check("connection", "Connection", "error", f"No token: {checked['error']}",
                     _TOKEN_FIXES.get(aadsts or "", _TOKEN_FIX), "pbx365_admin.configure",
                     {"aadsts": aadsts, "at": checked.get("at")})
    return Check("connection", "Connection", "ok", f"A token was issued ({checked.get('at', '')[:16]} UTC).",
                 details={"at": checked.get("at")})


def _permissions(settings: Mapping[str, Any], checked: dict | None) -> Check:
    if checked is None or checked.get("error"):
        return Check("permissions", "Permissions", "warning", "Unknown until a connection test succeeds.",
                     "Test the connection on the Configure tab.", "pbx365_admin.configure")
    features = checked.get("features") or {}
    lacking, unavailable = {}, {}
    for name, result in features.items():
        if IN_USE.get(name, lambda s: False)(settings) and not result.get("ok"):
            if result.get("reason"):
                unavailable[name] = result["reason"]
            else:
                lacking[name] = result.get("missing") or []
    details = {"granted": checked.get("granted") or [], "missing": lacking, "unavailable": unavailable}
    if lacking:
        needed = sorted({p for missing in lacking.values() for p in missing})
        return Check("permissions", "Permissions", "error",
                     f"Missing for {', '.join(sorted(lacking))}: {', '.join(needed)}.",
                     f"Grant admin consent for {', '.join(needed)} (add them in Entra: API permissions, then "
                     "'Grant admin consent').", "pbx365_admin.configure", details)
    if unavailable:
        return Check("permissions", "Permissions", "warning", " ".join(unavailable.values()), None, None, details)
    return Check("permissions", "Permissions", "ok", "Every feature in use has the permissions it needs.",
                 details=details)


def _certificate(tenant: str) -> Check:
    keys = list_key_pairs(tenant)
    active = next((k for k in keys if k.active), None)
    if active is None:
        return Check("certificate", "Certificate", "error", "No key pair yet.",
                     "Generate a key pair and upload its public_key.pem in Entra (Certificates & secrets).",
                     "pbx365_admin.configure")
    staged = [k for k in keys if not k.active and k.not_after > active.not_after]
    details = {"sha256": active.sha256, "not_after": active.not_after.isoformat(), "days_left": active.days_left,
               "next_staged": bool(staged)}
    warn = max(current_app.config["PBX365_CERT_WARNING_DAYS"])
    if active.days_left < 0:
        return Check("certificate", "Certificate", "error", f"The certificate expired on {active.not_after:%Y-%m-%d}.",
                     "Generate a new key pair, upload its public_key.pem in Entra and use it.",
                     "pbx365_admin.configure", details)
    if active.days_left < warn:
        fix = ("Upload the next key pair's public_key.pem in Entra, then use it." if staged else
               "Generate a new key pair, upload its public_key.pem in Entra and use it.")
        return Check("certificate", "Certificate", "warning",
                     f"Expires in {active.days_left} days ({active.not_after:%Y-%m-%d}); next key "
                     f"{'staged' if staged else 'not staged'}.", fix, "pbx365_admin.configure", details)
    return Check("certificate", "Certificate", "ok",
                 f"Valid for {active.days_left} more days; next key {'staged' if staged else 'not staged'}.",
                 details=details)


def _redirects(tenant: str) -> Check:
    config = find_config(tenant)
    uris = redirect_uris(tenant, config.verified_redirect_uris if config else None)
    changed = [u for u in uris if u.changed]
    details = {"uris": [u.uri for u in uris]}
    if changed:
        return Check("redirect_uris", "Redirect URIs", "warning",
                     f"The {', '.join(u.label.lower() for u in changed)} changed since the last sign-in.",
                     f"Update the redirect URI in Entra (Authentication) to {changed[0].uri}, or sign-in fails "
                     "with AADSTS50011.", "pbx365_admin.configure", details)
    return Check("redirect_uris", "Redirect URIs", "ok", " and ".join(u.uri for u in uris), details=details)


def fix_for(message: str) -> str:
    """What the admin does about a failed run or request, from its message (Entra's and Graph's answers)."""
    code = _AADSTS.search(message or "")
    if code and code.group(0) in _TOKEN_FIXES:
        return _TOKEN_FIXES[code.group(0)]
    missing = _MISSING.search(message or "")
    if missing:
        return (f"Grant admin consent for {missing.group(1)} (Entra: API permissions > Add a permission > "
                "Application permissions, then 'Grant admin consent'), then run it again.")
    for pattern, fix in _RUN_FIXES:
        if pattern.search(message or ""):
            return fix
    return "Fix what the message names, then run it again."


def _runs(tenant: str, endpoint: str | None = None) -> list[Check]:
    """One line per feature with runs (only the one whose tab is ``endpoint``, when given)."""
    state = get_state()
    upcoming = next_runs(tenant)
    checks = []
    for feature in state.run_features:
        tab = f"pbx365_admin.{feature.tab.endpoint}" if feature.tab else None
        if endpoint is not None and tab != endpoint:
            continue
        last = state.db.session.scalars(sa.select(SyncRun).where(SyncRun.tenant == tenant, SyncRun.kind == feature.name)
                                        .order_by(SyncRun.created_at.desc()).limit(1)).first()
        if last is not None:
            refresh_if_stale(last)
        run = status_json(last) if last is not None else None
        details = {"last": run, "next": upcoming.get(feature.name)}
        name, label = f"runs:{feature.name}", feature.label
        when = f" Next: {upcoming[feature.name][:16].replace('T', ' ')} UTC." if upcoming.get(feature.name) else ""
        if run is None:
            checks.append(Check(name, label, "ok", f"No run yet.{when}", details=details))
        elif run["status"] == "waiting_confirmation":
            checks.append(Check(name, label, "warning", f"A run is waiting for confirmation: {run['message']}",
                                "Review the planned removals and confirm them (or change the filters).", tab,
                                details))
        elif run["status"] == "failed":
            checks.append(Check(name, label, "error", f"The last run failed: {run['message']}",
                                fix_for(run["message"]), tab, details))
        else:
            counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items() if v) or "nothing changed"
            took = _duration(last)
            checks.append(Check(name, label, "ok", f"Last run {run['status']} ({counts}{took}).{when}",
                                details=details))
    return checks


def _duration(run: SyncRun) -> str:
    if run.started_at and run.finished_at:
        return f", {(run.finished_at - run.started_at).total_seconds():.1f} s"
    return ""


def _notifications(tenant: str, settings: Mapping[str, Any]) -> Check:
    subscriptions = list_subscriptions(tenant)
    details = {"subscriptions": subscriptions}
    if not settings["notifications"]["enabled"]:
        return Check("notifications", "Change notifications", "ok", "Off: the schedule keeps things in sync.",
                     details=details)
    portal = get_state().host.public_urls(tenant).portal
    host = (urlsplit(portal).hostname or "").lower()
    public = portal.startswith("https://") and host not in ("localhost", "127.0.0.1", "::1") \
        and not host.endswith((".local", ".test", ".internal", ".lan"))
    wanted = desired_resources(tenant) if find_config(tenant) else {}
    if not public:
        return Check("notifications", "Change notifications", "warning",
                     f"The portal ({portal}) is not reachable from the internet over HTTPS, so Microsoft cannot "
                     "notify it; the schedule keeps things in sync.",
                     "Publish the portal (or the SBC domain) over HTTPS for edits to arrive in seconds.", None,
                     details)
    missing = sorted(set(wanted) - {s["resource"] for s in subscriptions})
    if missing:
        return Check("notifications", "Change notifications", "warning",
                     f"{len(missing)} wanted subscription(s) missing ({', '.join(missing[:3])}).",
                     "The scheduler creates them; recreate them from the list below if they stay missing.",
                     "pbx365_admin.overview", details)
    soonest = min((s["expires"] for s in subscriptions), default=None)
    summary = (f"{len(subscriptions)} subscription(s), renewed before they expire (soonest {soonest[:16]} UTC)."
               if subscriptions else "No subscription needed yet.")
    return Check("notifications", "Change notifications", "ok", summary, details=details)


def _mail(tenant: str, settings: Mapping[str, Any]) -> Check | None:
    if not settings.get("mail", {}).get("enabled"):  # off, or the feature switched off in this portal
        return None
    recent = list_messages(tenant, limit=20)
    failed = [m for m in recent if m.status == "failed"]
    details = {"recent": [{"subject": m.subject, "status": m.status, "to": list(m.recipients)} for m in recent[:5]]}
    if failed:
        return Check("mail", "Mail", "error", f"{len(failed)} of the last {len(recent)} emails failed: "
                     f"{failed[0].error or 'see the Mail tab'}", "Fix what the Mail tab names, then send again.",
                     "pbx365_admin.mail", details)
    sent = sum(1 for m in recent if m.status == "sent")
    return Check("mail", "Mail", "ok", f"Sending as {settings['mail']['sender']}; {sent} of the last "
                 f"{len(recent)} emails sent.", details=details)


def _teams_calls(tenant: str, settings: Mapping[str, Any]) -> Check | None:
    options = settings.get("teams_presence")
    if not options or not (options["enabled"] and options["to_teams"]):
        return None
    session = get_state().db.session
    refused = session.scalar(sa.select(sa.func.count()).select_from(TeamsPresenceState).where(
        TeamsPresenceState.tenant == tenant, TeamsPresenceState.push_error.is_not(None)))
    on_call = session.scalar(sa.select(sa.func.count()).select_from(TeamsPresenceState).where(
        TeamsPresenceState.tenant == tenant, TeamsPresenceState.call_state != "idle"))
    if refused:
        error = session.scalar(sa.select(TeamsPresenceState.push_error).where(
            TeamsPresenceState.tenant == tenant, TeamsPresenceState.push_error.is_not(None)).limit(1))
        return Check("teams_calls", "PBX calls in Teams", "error", f"{refused} user(s) not shown in a call: {error}",
                     "Grant Presence.ReadWrite.All with admin consent, or turn PBX → Teams off.",
                     "pbx365_admin.teams_presence", {"refused": refused, "on_call": on_call})
    return Check("teams_calls", "PBX calls in Teams", "ok", f"{on_call} user(s) on the phone shown in a call.",
                 details={"refused": 0, "on_call": on_call})


def tab_problems(tenant: str, endpoint: str) -> list[dict]:
    """The failed lines whose fix is made on the admin tab ``endpoint`` (``pbx365_admin.<view>``), for that tab's
    error panel; the Overview shows every line itself."""
    if endpoint == "pbx365_admin.overview":
        return []
    checks: list[Check | None] = list(_runs(tenant, endpoint))
    if endpoint == "pbx365_admin.configure":
        checked = last_check(tenant)
        checks += [_connection(tenant, checked), _permissions(get_settings(tenant), checked)]
    elif endpoint == "pbx365_admin.mail":
        checks.append(_mail(tenant, get_settings(tenant)))
    elif endpoint == "pbx365_admin.teams_presence":
        checks.append(_teams_calls(tenant, get_settings(tenant)))
    return [asdict(c) for c in checks if c is not None and c.state == "error" and c.link == endpoint]


def tenant_health(tenant: str) -> dict:
    """The tenant's health as documented above."""
    settings = get_settings(tenant)
    checked = last_check(tenant)
    checks = [_connection(tenant, checked), _permissions(settings, checked), _certificate(tenant),
              _redirects(tenant), *_runs(tenant), _notifications(tenant, settings)]
    checks += [c for c in (_teams_calls(tenant, settings), _mail(tenant, settings)) if c is not None]
    worst = max((c.state for c in checks), key=ORDER.__getitem__, default="ok")
    return {"state": worst, "checked_at": datetime.now(timezone.utc).isoformat(),
            "checks": [asdict(c) for c in checks]}
