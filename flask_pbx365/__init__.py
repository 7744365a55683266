"""flask_pbx365: Microsoft 365 / Entra ID integration for Flask PBX portals.

Importing this package has no side effects; see :class:`PBX365`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

__all__ = ["PBX365", "upgrade_database", "__version__"]

if TYPE_CHECKING:
    from .extension import PBX365
    from .migrate import upgrade_database


def __getattr__(name: str):
    if name == "PBX365":
        from .extension import (
            PBX365,  # lazy: importing the package stays free of side effects and cheap
        )
        return PBX365
    if name == "upgrade_database":
        from .migrate import (
            upgrade_database,  # lazy: importing the package stays free of side effects and cheap
        )
        return upgrade_database
    raise AttributeError(name)
