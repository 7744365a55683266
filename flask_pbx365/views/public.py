"""Public routes: the OAuth redirect URI (admin consent, and Sign in with Microsoft: :mod:`flask_pbx365.sso`)."""
from __future__ import annotations

import secrets
import time

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from .. import signals
from ..models import utcnow
from ..state import get_state
from ..redirects import record_verified
from ..tenants import find_config

public_bp = Blueprint("pbx365", __name__, template_folder="../templates")

_STATES = "_pbx365_oauth_states"
STATE_TTL = 600


def remember_state(purpose: str, tenant: str, redirect_uri: str, **extra) -> str:
    """A one-time ``state`` for an OAuth round trip, kept in the user's session for 10 minutes."""
    state = secrets.token_urlsafe(24)
    states = {k: v for k, v in session.get(_STATES, {}).items() if v["at"] > time.time() - STATE_TTL}
    states[state] = {"purpose": purpose, "tenant": tenant, "redirect_uri": redirect_uri, "at": time.time(), **extra}
    session[_STATES] = states
    return state


def take_state(state: str | None) -> dict | None:
    """The remembered data of ``state``, removed so it cannot be replayed; ``None`` if unknown or expired."""
    states = dict(session.get(_STATES, {}))
    data = states.pop(state or "", None)
    session[_STATES] = states
    if data is None or data["at"] < time.time() - STATE_TTL:
        return None
    return data


def _error_page(title: str, message: str, status: int = 400, **context):
    return render_template("pbx365/oauth_error.html", title=title, message=message,
                           base_template=get_state().app.config["PBX365_BASE_TEMPLATE"], **context), status


@public_bp.route("/oauth2/callback", methods=["GET", "POST"])
def oauth_callback():
    """Microsoft sends the browser back here after admin consent and after Sign in with Microsoft."""
    from ..sso.routes import AFTER_SIGN_OUT_KEY
    from ..sso.safety import safe_next

    params = request.values
    after_sign_out = session.pop(AFTER_SIGN_OUT_KEY, None)
    if after_sign_out and not any(k in params for k in ("state", "code", "error")):
        # Microsoft's end_session_endpoint returning (sso.routes.sign_out_response) to the registered URI.
        return redirect(safe_next(after_sign_out) or "/")
    data = take_state(params.get("state"))
    if data is None:
        return _error_page("Sign-in link expired", "This response from Microsoft does not match a request made "
                           "from this browser, or it was already used. Start again from the portal.")
    if data["purpose"] == "admin_consent":
        return _finish_admin_consent(data, params)
    if data["purpose"] == "sign_in":
        from ..sso.callback import finish_sign_in

        return finish_sign_in(data, params)
    return _error_page("Unknown request", "This response from Microsoft is not one the portal expects.")


def _finish_admin_consent(data: dict, params):
    tenant = data["tenant"]
    state = get_state()
    config = find_config(tenant)
    error = params.get("error")
    if error or params.get("admin_consent", "").lower() != "true":
        description = params.get("error_description") or error or "Consent was not granted."
        signals.admin_consent_received.send(state.app, tenant=tenant, granted=False, error=description)
        hint = None
        if "AADSTS50011" in description:
            hint = (f"Add this exact redirect URI in Entra > App registrations > your app > Authentication: "
                    f"{data['redirect_uri']}")
        return _error_page("Admin consent was not granted", description, hint=hint)
    if config is not None:
        config.consent_granted_at = utcnow()
        config.verified_redirect_uris = record_verified(tenant, config.verified_redirect_uris,
                                                        data["redirect_uri"])
        state.db.session.commit()
    signals.admin_consent_received.send(state.app, tenant=tenant, granted=True, error=None)
    flash("Admin consent granted. Microsoft may take about a minute to apply new permissions.", "success")
    return redirect(url_for("pbx365_admin.configure"))
