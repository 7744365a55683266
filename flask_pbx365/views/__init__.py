"""The extension's blueprints, built once per app: the admin tabs and the public routes (OAuth callback, webhook).

:func:`build_admin_blueprint` takes the tabs (Overview, Configure, then each switched-on feature's), and
:func:`build_public_blueprint` the features (for their public routes); :class:`flask_pbx365.PBX365` calls both.
"""
from .admin import build_admin_blueprint
from .configure import TAB as CONFIGURE_TAB
from .overview import TAB as OVERVIEW_TAB
from .public import build_public_blueprint

__all__ = ["CONFIGURE_TAB", "OVERVIEW_TAB", "build_admin_blueprint", "build_public_blueprint"]
