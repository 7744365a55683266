"""The OAuth round trips' shared parts: one-time ``state`` values kept in the user's session, the error page."""
from __future__ import annotations

import secrets
import time

from flask import render_template, session

from .state import get_state

#: Session key of the local path to land on when Microsoft's sign-out returns to the OAuth callback.
AFTER_SIGN_OUT_KEY = "_pbx365_after_sign_out"

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


def error_page(title: str, message: str, status: int = 400, **context):
    """The page the browser sees when an OAuth round trip cannot finish: what happened and what to do."""
    return render_template("pbx365/oauth_error.html", title=title, message=message,
                           base_template=get_state().app.config["PBX365_BASE_TEMPLATE"], **context), status
