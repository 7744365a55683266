"""Microsoft Graph client: app-only tokens (MSAL, certificate), retries, paging, delta, ``$batch``."""
from __future__ import annotations

from .batch import BatchRequest, BatchResponse
from .client import GraphClient
from .consent import admin_consent_url
from .credentials import AppCredentials
from .paging import DeltaRound
from .permissions import PermissionChecks, feature_status, permission_for
from .prefetch import prefetched

__all__ = [
    "AppCredentials", "BatchRequest", "BatchResponse", "DeltaRound", "GraphClient", "PermissionChecks",
    "admin_consent_url", "feature_status", "permission_for", "prefetched",
]
