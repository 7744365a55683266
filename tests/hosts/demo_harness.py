"""The conformance kit's harness for demo_app's DemoHost.

``pytest --pbx365-host tests.hosts.demo_harness:make_harness``
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import sqlalchemy as sa

from demo_app import create_app
from demo_app.models import Notification, PersonalContact, User, db
from flask_pbx365.conformance import HostHarness


def make_harness():
    folder = tempfile.mkdtemp(prefix="pbx365-kit-demo-")
    app = create_app({
        "TESTING": True, "SECRET_KEY": "kit", "PBX365_SECRET_KEY": "kit-secret",
        "SQLALCHEMY_DATABASE_URI": os.environ.get("KIT_DATABASE_URL") or f"sqlite:///{folder}/demo.db",
        "PBX365_REDIS_URL": os.environ.get("KIT_REDIS_URL", "redis://127.0.0.1:9/0"),
        "DEMO_EMULATOR_URL": "https://127.0.0.1:9", "DEMO_PUBLIC_URL": "http://portal.test",
        "DEMO_SBC_URL": "https://sbc.test:8444"})
    result = app.test_cli_runner().invoke(args=["demo", "init"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin_id = str(db.session.scalar(sa.select(User.id).where(User.username == "admin@acme")))

    def add_user_contact(tenant: str, user_id: str, name: str) -> None:
        db.session.add(PersonalContact(user_id=int(user_id), key=str(uuid.uuid4()), source="user", name=name))

    def user_contact_names(tenant: str, user_id: str) -> list[str]:
        return list(db.session.scalars(sa.select(PersonalContact.name).where(
            PersonalContact.user_id == int(user_id), PersonalContact.source == "user")))

    def sent_mail() -> list[dict]:
        return [{"to": n.recipients, "subject": n.subject} for n in db.session.scalars(sa.select(Notification))]

    yield HostHarness(app=app, tenant="acme", other_tenant="globex", admin_user_id=admin_id,
                      add_user_contact=add_user_contact, user_contact_names=user_contact_names, sent_mail=sent_mail)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)
