"""Sign in with Microsoft: OIDC code flow with PKCE for the admin portal, the web client and native apps.

Public API for hosts:

- template global ``pbx365_signin_button(tenant, target)`` (:func:`signin_button`);
- :func:`password_sign_in_refusal` for the host's password form ("Microsoft only" mode);
- :func:`sign_out_response` for the host's logout view (or ``POST {PBX365_URL_PREFIX}/sign-out/<tenant>``).
"""
from __future__ import annotations

from .button import signin_button
from .matching import Identity, password_sign_in_refusal
from .safety import safe_next
from .sign_out import sign_out_response

__all__ = ["Identity", "password_sign_in_refusal", "safe_next", "sign_out_response", "signin_button"]
