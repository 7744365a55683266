"""Mounting the extension: one registration per app, the host's db, config defaults, no import side effects."""
from __future__ import annotations

import subprocess
import sys

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_pbx365 import PBX365
from flask_pbx365.config import DEFAULTS


def test_import_has_no_side_effects():
    code = ("import sys, flask_pbx365; "
            "assert 'flask_pbx365.extension' not in sys.modules; "
            "assert 'sqlalchemy' not in sys.modules and 'flask' not in sys.modules; print('clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "clean"


def test_state_lives_in_app_extensions_and_second_registration_is_refused(app):
    state = app.extensions["pbx365"]
    assert state.app is app
    from demo_app.models import db

    assert state.db is db
    with pytest.raises(RuntimeError, match="already registered"):
        PBX365(app, db=db, host=state.host)


def test_config_defaults_are_set_but_host_values_win():
    from demo_app.host import DemoHost

    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", PBX365_QUEUE="custom-queue")
    db = SQLAlchemy(app)
    PBX365(app, db=db, host=DemoHost())
    assert app.config["PBX365_QUEUE"] == "custom-queue"
    for key, value in DEFAULTS.items():
        if key != "PBX365_QUEUE":
            assert app.config[key] == value
    assert app.url_map.bind("x").match("/admin/integrations/microsoft365/configure")[0] == "pbx365_admin.configure"
    assert app.url_map.bind("x").match("/integrations/microsoft365/oauth2/callback")[0] == "pbx365.oauth_callback"


def test_init_app_requires_the_hosts_db_and_a_host_adapter():
    app = Flask(__name__)
    with pytest.raises(TypeError, match="Flask-SQLAlchemy"):
        PBX365(app, host=object())
    db = SQLAlchemy()
    with pytest.raises(TypeError, match="PBXHost"):
        PBX365(app, db=db, host=object())


def test_factory_pattern_with_prefix_override():
    from demo_app.host import DemoHost

    ext = PBX365(db=SQLAlchemy(), host=DemoHost())
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", PBX365_ADMIN_URL_PREFIX="/settings/m365")
    ext.db.init_app(app)
    ext.init_app(app)
    assert app.url_map.bind("x").match("/settings/m365/configure")[0] == "pbx365_admin.configure"
