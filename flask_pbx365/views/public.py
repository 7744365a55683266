"""The public blueprint: the OAuth redirect URI, the Graph webhook and the features' public routes.

The OAuth callback serves both round trips that return from Microsoft: admin consent (finished here) and Sign in
with Microsoft (handed to :func:`flask_pbx365.sso.callback.finish_sign_in`).
"""
from __future__ import annotations

from typing import Iterable

from flask import Blueprint, flash, redirect, request, session, url_for

from .. import signals
from ..feature import Feature
from ..models import utcnow
from ..notifications.webhook import routes as webhook_routes
from ..oauth import AFTER_SIGN_OUT_KEY, error_page, take_state
from ..redirects import record_verified
from ..routing import Routes
from ..sso.callback import finish_sign_in
from ..sso.safety import safe_next
from ..state import get_state
from ..tenants import find_config
from .headers import secure

routes = Routes()


def build_public_blueprint(features: Iterable[Feature]) -> Blueprint:
    """The public blueprint of one app (``PBX365_URL_PREFIX``): no admin check, each route guards itself."""
    blueprint = Blueprint("pbx365", __name__, template_folder="../templates")
    blueprint.after_request(secure)
    routes.add_to(blueprint)
    webhook_routes.add_to(blueprint)
    for feature in features:
        if feature.public_routes is not None:
            feature.public_routes.add_to(blueprint)
    return blueprint


@routes.route("/oauth2/callback", methods=["GET", "POST"])
def oauth_callback():
    """Microsoft sends the browser back here after admin consent and after Sign in with Microsoft."""
    params = request.values
    after_sign_out = session.pop(AFTER_SIGN_OUT_KEY, None)
    if after_sign_out and not any(k in params for k in ("state", "code", "error")):
        # Microsoft's end_session_endpoint returning (sso.routes.sign_out_response) to the registered URI.
        return redirect(safe_next(after_sign_out) or "/")
    data = take_state(params.get("state"))
    if data is None:
        return error_page("Sign-in link expired", "This response from Microsoft does not match a request made "
                           "from this browser, or it was already used. Start again from the portal.")
    if data["purpose"] == "admin_consent":
        return _finish_admin_consent(data, params)
    if data["purpose"] == "sign_in":
        return finish_sign_in(data, params)
    return error_page("Unknown request", "This response from Microsoft is not one the portal expects.")


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
        return error_page("Admin consent was not granted", description, hint=hint)
    if config is not None:
        config.consent_granted_at = utcnow()
        config.verified_redirect_uris = record_verified(tenant, config.verified_redirect_uris,
                                                        data["redirect_uri"])
        state.db.session.commit()
    signals.admin_consent_received.send(state.app, tenant=tenant, granted=True, error=None)
    flash("Admin consent granted. Microsoft may take about a minute to apply new permissions.", "success")
    return redirect(url_for("pbx365_admin.configure"))
