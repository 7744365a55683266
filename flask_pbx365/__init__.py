"""flask_pbx365: Microsoft 365 / Entra ID integration for Flask PBX portals.

Importing this package has no side effects; see :class:`PBX365`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["PBX365", "upgrade_database", "__version__"]

if TYPE_CHECKING:
    from .extension import PBX365
    from .migrate import upgrade_database


def __getattr__(name: str):
    if name == "PBX365":
        from .extension import PBX365
        return PBX365
    if name == "upgrade_database":
        from .migrate import upgrade_database
        return upgrade_database
    raise AttributeError(name)
