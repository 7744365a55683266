"""A Microsoft 365 emulator (Entra ID + Microsoft Graph over HTTPS) for offline tests, benchmarks and the demo.

Run it with ``python -m flask_pbx365.emulator --state-dir DIR``; build the WSGI app with
:func:`flask_pbx365.emulator.app.create_app`. The extension's runtime code never imports this package.
"""
