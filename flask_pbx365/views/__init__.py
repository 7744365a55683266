"""The extension's blueprints: ``admin_bp`` (the admin tabs) and ``public_bp`` (OAuth redirect route)."""
from .admin import admin_bp
from .public import public_bp
from . import configure  # noqa: F401  (registers the Configure tab's routes on admin_bp)
from . import user_sync  # noqa: F401  (registers the User Sync tab's routes on admin_bp)
from . import sign_in  # noqa: F401  (registers the Sign In tab's routes on admin_bp)
from . import mail  # noqa: F401  (registers the Mail tab's routes on admin_bp)
from . import contacts  # noqa: F401  (registers the Contacts tab's routes on admin_bp)
from . import presence  # noqa: F401  (registers the Presence tab's routes on admin_bp)
from ..sso import routes as _sso_routes  # noqa: F401  (registers sign-in routes on public_bp)
from ..notifications import webhook as _webhook  # noqa: F401  (registers the Graph webhook on public_bp)

__all__ = ["admin_bp", "public_bp"]
