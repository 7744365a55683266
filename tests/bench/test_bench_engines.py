"""The other engines at scale: personal contacts, calendar presence, and a scheduler pass over many tenants."""
from __future__ import annotations

import os
import time

import sqlalchemy as sa

from .rig import bench


def test_personal_contacts(m365_emulator, redis_url, tmp_path, record):
    users, per_user = int(os.environ.get("BENCH_CONTACT_USERS", "2000")), 100
    with bench(m365_emulator, redis_url, tmp_path, users, contactsPerUser=per_user) as rig:
        assert rig.run()["status"] == "done"
        rig.settings("contacts", personal=True)
        first = rig.run("contacts")
        again = rig.run("contacts")
        assert first["status"] == "done", first
        from demo_app.models import PersonalContact

        with rig.app.app_context():
            entries = rig.app.extensions["pbx365"].db.session.scalar(
                sa.select(sa.func.count()).select_from(PersonalContact).where(PersonalContact.source != "user"))
        record("contacts_personal", x=users * per_user, users=users, entries=entries, first_run_s=first["run_s"],
               contacts_per_s=round(entries / first["run_s"]) if first["run_s"] else None,
               again_run_s=again["run_s"], again_requests=again["graph_requests"],
               job_rss_mb=round(first["job_rss_mb"]))


def test_calendar_presence(m365_emulator, redis_url, tmp_path, record):
    users = 5000
    with bench(m365_emulator, redis_url, tmp_path, users, eventsPerUser=3) as rig:
        assert rig.run()["status"] == "done"
        rig.settings("presence", enabled=True)
        first = rig.run("presence")
        assert first["status"] == "done", first
        record("presence_pass", x=users, run_s=first["run_s"], requests=first["graph_requests"],
               users_per_s=round(users / first["run_s"]) if first["run_s"] else None,
               job_rss_mb=round(first["job_rss_mb"]))


def test_scheduler_pass_over_many_tenants(app, redis_conn, record):
    """1,000 PBX tenants, nothing due: what one scheduler tick costs."""
    from demo_app import directory
    from demo_app.models import Tenant, db
    from flask_pbx365.scheduler import dispatch_due

    tenants = 1000
    with app.app_context():
        existing = {t.slug for t in db.session.scalars(sa.select(Tenant))}
        db.session.add_all(Tenant(slug=f"t{i:04d}", name=f"Tenant {i}") for i in range(tenants)
                           if f"t{i:04d}" not in existing)
        db.session.commit()
        assert len(directory.get_tenant("t0001").slug) == 5
        dispatch_due(app)  # warm: first queries, imports
        t0 = time.perf_counter()
        rounds = 5
        for _ in range(rounds):
            dispatch_due(app)
        elapsed = (time.perf_counter() - t0) / rounds
    record("scheduler_pass", x=tenants, pass_ms=round(1000 * elapsed, 1))
