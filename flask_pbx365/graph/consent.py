"""The admin consent link an admin opens to grant the app's application permissions."""
from __future__ import annotations

from urllib.parse import urlencode

from ..clouds import Cloud
from .credentials import AppCredentials


def admin_consent_url(credentials_or_cloud: AppCredentials | Cloud, client_id: str | None = None,
                      directory_id: str | None = None, redirect_uri: str | None = None,
                      state: str | None = None) -> str:
    """``{login_url}/{directory_id}/adminconsent?client_id=...&state=...&redirect_uri=...``.

    With :class:`AppCredentials`, ``client_id`` and ``directory_id`` default to its own.
    """
    if isinstance(credentials_or_cloud, AppCredentials):
        cloud = credentials_or_cloud.cloud
        client_id = client_id or credentials_or_cloud.client_id
        directory_id = directory_id or credentials_or_cloud.directory_id
    else:
        cloud = credentials_or_cloud
    if not client_id or not directory_id:
        raise ValueError("admin_consent_url needs a client_id and a directory_id")
    query = {"client_id": client_id}
    if state is not None:
        query["state"] = state
    if redirect_uri is not None:
        query["redirect_uri"] = redirect_uri
    return f"{cloud.authority(directory_id)}/adminconsent?{urlencode(query)}"
