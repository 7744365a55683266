"""``demo connect``: connect tenant ``acme`` to the Microsoft 365 emulator, as an admin would in Entra.

When the emulator answers: load the acme fixture into it (if the tenant is unknown there), make sure acme has a
key pair, register (or update) the application with the portal's and SBC's redirect URIs, the certificate and every
permission the extension uses, with admin consent, and fill acme's Configure tab.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
import requests
from flask import current_app

from .host import DemoHost

TENANT = "acme"
FIXTURE = Path(__file__).with_name("fixtures") / "acme_tenant.json"
#: The application (client) ID of the demo's app registration in the emulator.
APP_ID = "5f2c9a4e-8d1b-4c3a-b6e7-0a9d8c7b6e51"
PERMISSIONS = ["User.ReadBasic.All", "User.Read.All", "ProfilePhoto.Read.All", "GroupMember.Read.All",
               "Contacts.Read", "MailboxSettings.Read", "Mail.Send", "Mail.ReadWrite", "Calendars.Read",
               "User-Phone.ReadWrite.All", "Presence.Read.All", "Presence.ReadWrite.All"]


def connect_acme() -> list[str]:
    """Do the connection steps that are missing; returns what was done, one line each (inside an app context)."""
    config = current_app.config
    base = config["DEMO_EMULATOR_URL"].rstrip("/")
    ca = os.path.abspath(config["DEMO_EMULATOR_CA"])
    if not os.path.exists(ca):
        return [f"emulator CA {ca} not found; acme not connected (start the emulator, then run "
                "'flask --app demo_app demo connect')"]
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    directory_id = fixture["tenant"]["id"]

    def call(method: str, path: str, **kwargs) -> requests.Response:
        # verify per request: a Session's verify loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment.
        return requests.request(method, f"{base}/_emulator/tenants{path}", verify=ca, timeout=60, **kwargs)

    try:
        answer = call("GET", f"/{directory_id}")
    except requests.RequestException as exc:
        return [f"emulator at {base} not reachable ({exc.__class__.__name__}); acme not connected"]
    done = []
    if answer.status_code == 404:
        _check(call("POST", "", json=fixture), "load the acme fixture")
        done.append(f"loaded fixture {FIXTURE.name} into the emulator (directory {directory_id})")
    else:
        _check(answer, "look up the acme directory")

    from flask_pbx365.keys import active_key_pair, generate_key_pair
    from flask_pbx365.settings import export_settings, import_settings

    from .models import db

    key = active_key_pair(TENANT)
    if key is None:
        key = generate_key_pair(TENANT)
        done.append(f"generated a key pair for {TENANT} (SHA-1 {key.sha1})")
    certificate = key.certificate_pem.decode() if isinstance(key.certificate_pem, bytes) else key.certificate_pem

    urls = DemoHost().public_urls(TENANT)
    callback = config.get("PBX365_URL_PREFIX", "/integrations/microsoft365").rstrip("/") + "/oauth2/callback"
    app = {"displayName": "PBX Server-side (demo)",
           "redirectUris": [url + callback for url in (urls.portal, urls.sbc) if url],
           "certificates": [certificate], "permissions": PERMISSIONS, "adminConsent": True}
    answer = call("PATCH", f"/{directory_id}/applications/{APP_ID}", json=app)
    if answer.status_code == 404:
        _check(call("POST", f"/{directory_id}/applications", json={"appId": APP_ID, **app}),
               "register the application")
        done.append(f"registered application {APP_ID} with admin consent")
    else:
        _check(answer, "update the application")
        done.append(f"updated application {APP_ID} (redirect URIs, certificate, permissions)")

    settings = {"configure": {"client_id": APP_ID, "directory_id": directory_id, "cloud": "custom",
                              "login_url": base, "graph_url": base, "ca_bundle": ca}}
    first_connection = not export_settings(TENANT)["configure"].get("client_id")
    if first_connection:  # later runs leave the admin's Sign In tab alone
        settings["sign_in"] = {"enabled": True}
        settings["teams_presence"] = {"enabled": True}
    import_settings(TENANT, settings)
    db.session.commit()
    done.append(f"configured {TENANT}: client {APP_ID}, directory {directory_id}, cloud custom at {base}"
                + ("; Microsoft sign-in and Teams presence enabled" if first_connection else ""))
    return done


def _check(answer: requests.Response, what: str) -> None:
    if answer.status_code >= 400:
        raise click.ClickException(f"The emulator refused to {what}: HTTP {answer.status_code} {answer.text[:300]}")

