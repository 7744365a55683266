"""The one explicit list of the integration's features, and which of them an app switches on.

Adding a feature: write its folder (engine, tab, job, ``feature.py`` with a :class:`~flask_pbx365.feature.Feature`)
and add its ``FEATURE`` here. The order is the order of the admin tabs and of ``settings export``.
"""
from __future__ import annotations

from typing import Iterable

from .contacts.feature import FEATURE as CONTACTS
from .exceptions import ConfigurationError
from .feature import Feature
from .mail.feature import FEATURE as MAIL
from .presence.feature import FEATURE as PRESENCE
from .sso.feature import FEATURE as SIGN_IN
from .teams_presence.feature import FEATURE as TEAMS_PRESENCE
from .users.feature import FEATURE as USERS

FEATURES: tuple[Feature, ...] = (USERS, SIGN_IN, CONTACTS, MAIL, PRESENCE, TEAMS_PRESENCE)


def select_features(features: Iterable[Feature] | None, disabled: Iterable[str] = ()) -> tuple[Feature, ...]:
    """``features`` (default :data:`FEATURES`) without the ones named in ``disabled``; unknown names are refused."""
    chosen = tuple(FEATURES if features is None else features)
    names = [f.name for f in chosen]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"Each feature may be listed once; got {', '.join(names)}.")
    unknown = sorted(set(disabled) - set(names))
    if unknown:
        raise ConfigurationError(f"PBX365_DISABLED_FEATURES names unknown features {', '.join(unknown)}; "
                                 f"known: {', '.join(names)}.")
    return tuple(f for f in chosen if f.name not in set(disabled))
