"""The fault matrix of contact sync and the calendar presence pass: each HTTP fault injected mid-run, and the PBX's
phonebooks and presence statuses end equal to the fault-free run's.

Generated directories (users with contacts and calendar events) serve the module; the reference is PBX tenant
``globex`` synced without faults, each fault gets a fresh PBX tenant of its own (users synced cleanly first).
Each HTTP fault alone runs over 60 users in ``make test`` (each case reads every mailbox from scratch) and over
5,000 in ``make soak`` (``PBX365_FAULT_MAILBOXES``). Over a 5,000-user directory ``make test`` also passes the
whole HTTP fault list through one run of each kind, and strikes each run with the process faults (a SIGKILLed
worker, a Redis restart, PostgreSQL's connections dropped).
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa

from flask_pbx365.contacts.mapping import PERSONAL_SOURCE
from flask_pbx365.runs import get_run, request_run
from flask_pbx365.runs.queue import make_worker
from tests.reliability.portal import (
    drop_postgres, kill_worker, module_portal, restart_redis, run_status, worker_mid_run)
from tests.sync.conftest import connect

USERS = int(os.environ.get("PBX365_FAULT_MAILBOXES", "60"))
#: Requests let through before a fault: about a quarter into the run.
SKIP = max(40, USERS // 2)

pytestmark = pytest.mark.timeout(900 if USERS <= 100 else 14400)

PERMISSIONS = ["User.Read.All", "GroupMember.Read.All", "Contacts.Read", "MailboxSettings.Read", "Calendars.Read"]
TOKEN_EXPIRED = '{"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}'


def faults(path: str) -> dict[str, list[dict]]:
    """The HTTP faults, aimed at the engine's own requests (``path``), in the middle of its run."""
    return {
        "429 with Retry-After": [{"path": path, "skip": SKIP, "times": 2, "status": 429, "retryAfter": 1}],
        "503": [{"path": path, "skip": SKIP, "times": 2, "status": 503}],
        "504": [{"path": path, "skip": SKIP, "times": 2, "status": 504}],
        "reset before the request": [{"path": path, "skip": SKIP, "times": 2, "reset": "before"}],
        "reset after the request": [{"path": path, "skip": SKIP, "times": 2, "reset": "after"}],
        "slower than the timeout": [{"path": path, "skip": SKIP, "times": 1, "delayMs": 3500}],
        "malformed JSON page": [{"path": path, "skip": SKIP, "times": 1, "status": 200, "body": '{"value": [{"id": '}],
        "token expired mid-run": [{"path": path, "skip": SKIP, "times": 1, "status": 401, "body": TOKEN_EXPIRED}],
    }


class World:
    def __init__(self, app, emulator, tid: str, users: int):
        self.app, self.emulator, self.tid, self.users, self.count = app, emulator, tid, users, 0

    def new_tenant(self) -> str:
        self.count += 1
        slug = f"cp{self.count}"
        token = self.app.config["DEMO_API_TOKEN"]
        assert self.app.test_client().post("/api/tenants", json={"slug": slug, "name": slug},
                                           headers={"Authorization": f"Bearer {token}"}).status_code == 201
        self.prepare(slug)
        return slug

    def prepare(self, slug: str) -> None:
        from flask_pbx365.settings import import_settings

        connect(self.app, self.emulator, self.tid, tenant=slug, permissions=PERMISSIONS)
        with self.app.app_context():
            import_settings(slug, {"contacts": {"personal": True}, "presence": {"enabled": True}})
        assert self.sync(slug, "users")["status"] == "done"

    def sync(self, tenant: str, kind: str) -> dict:
        with self.app.app_context():
            run_id = request_run(tenant, kind).id
        make_worker(self.app).work(burst=True)
        with self.app.app_context():
            run = get_run(tenant, run_id)
            return {"status": run.status, "message": run.message}

    def phonebooks(self, tenant: str) -> dict[str, tuple]:
        """Every personal contact of the tenant's users: user email -> sorted (name, company, phones, emails)."""
        from demo_app.models import PersonalContact, Tenant, User, db

        with self.app.app_context():
            rows = db.session.execute(sa.select(User.email, PersonalContact).join(
                PersonalContact, PersonalContact.user_id == User.id).join(Tenant, Tenant.id == User.tenant_id)
                .where(Tenant.slug == tenant, PersonalContact.source == PERSONAL_SOURCE)).all()
            books: dict[str, list] = {}
            for email, contact in rows:
                data = contact.as_json()
                books.setdefault(email, []).append(
                    (data["name"], data["company"], str(sorted(data["phones"].items())), str(data["emails"])))
        return {email: tuple(sorted(entries)) for email, entries in books.items()}

    def presence(self, tenant: str) -> dict[str, str]:
        token = self.app.config["DEMO_API_TOKEN"]
        users = self.app.test_client().get(f"/api/tenants/{tenant}/users",
                                           headers={"Authorization": f"Bearer {token}"}).get_json()
        return {u["email"]: u["presence"] for u in users if u["m365_object_id"]}

    def faulted(self, tenant: str, kind: str, specs: list[dict]) -> tuple[str, int, list[int]]:
        """Run ``kind`` under the fault, then without until done; (first status, runs, statuses answered)."""
        self.emulator.clear_requests()
        for spec in specs:
            self.emulator.add_fault(**spec)
        first = self.sync(tenant, kind)
        self.emulator.clear_faults()
        answered = sorted({e["status"] for e in self.emulator.requests_log()} - {200, 201, 204})
        runs = [first]
        while runs[-1]["status"] != "done" and len(runs) < 3:
            runs.append(self.sync(tenant, kind))
        assert runs[-1]["status"] == "done", runs
        if first["status"] == "failed":
            assert first["message"], "a failed run says why"
        return first["status"], len(runs), answered


@contextlib.contextmanager
def generated_world(emulator, redis_url, database_url_base, directory, users: int, seed: int) -> Iterator[World]:
    """A directory of ``users`` (3 contacts and 3 events each) and the portal, ``globex`` connected and synced."""
    with module_portal(redis_url, database_url_base, directory) as app:
        tid = str(uuid.uuid4())
        emulator.generate(tenantId=tid, users=users, contactsPerUser=3, eventsPerUser=3, seed=seed)
        emulator.clear_faults()
        world = World(app, emulator, tid, users)
        world.prepare("globex")
        try:
            yield world
        finally:
            emulator.clear_faults()


@pytest.fixture(scope="module")
def world(m365_emulator, redis_url, database_url_base, tmp_path_factory):
    with generated_world(m365_emulator, redis_url, database_url_base, tmp_path_factory.mktemp("cp-faults"),
                         USERS, 9) as world:
        yield world


def test_contact_sync_fault_matrix(world, database_url_base):
    if database_url_base:
        pytest.skip("the HTTP fault matrix runs in the SQLite pass: the database plays no part in these faults")
    w = world
    assert w.sync("globex", "contacts")["status"] == "done"
    reference = w.phonebooks("globex")
    assert sum(len(v) for v in reference.values()) > USERS  # contacts to lose, if anything were lost
    rows, problems = [], []
    for name, specs in faults(r"/contactFolders").items():
        tenant = w.new_tenant()
        first, runs, answered = w.faulted(tenant, "contacts", specs)
        rows.append((name, first, runs, answered))
        if name == "token expired mid-run" and first != "done":
            problems.append(f"{name}: the token is refreshed within the run, which must not fail")
        wanted = {s.get("status", 0 if s.get("reset") else None) for s in specs} - {None, 200}
        if not wanted <= set(answered):
            problems.append(f"{name}: the request log does not show the fault ({answered})")
        if w.phonebooks(tenant) != reference:
            problems.append(f"{name}: the phonebooks differ from the fault-free run")
    print("\n" + "\n".join(" | ".join(map(str, r)) for r in rows))
    assert problems == []


def test_presence_pass_fault_matrix(world, database_url_base):
    if database_url_base:
        pytest.skip("the HTTP fault matrix runs in the SQLite pass")
    w = world
    assert w.sync("globex", "presence")["status"] == "done"
    reference = w.presence("globex")
    rows, problems = [], []
    for name, specs in faults(r"/calendarView|/\$batch").items():
        tenant = w.new_tenant()
        first, runs, answered = w.faulted(tenant, "presence", specs)
        rows.append((name, first, runs, answered))
        if name in ("token expired mid-run", "malformed JSON page") and first != "done":
            problems.append(f"{name}: the pass must not fail (a new token; that mailbox is read again)")
        if w.presence(tenant) != reference:
            problems.append(f"{name}: presence differs from the fault-free run")
    print("\n" + "\n".join(" | ".join(map(str, r)) for r in rows))
    assert problems == []


# --- every fault in one run over a 5,000-user tenant (make test; make soak runs each fault alone at that size) -----

TENANT_USERS = 5000
#: kind -> (the path its faults hit, matching requests between two faults: nine gaps spread over one run).
SPREAD = {"contacts": (r"/contactFolders", 1000), "presence": (r"/calendarView|/\$batch", 500)}


@pytest.fixture(scope="module")
def tenant_world(request, m365_emulator, redis_url, database_url_base, tmp_path_factory):
    """A 5,000-user directory and its portal: its own in ``make test``, the matrix's own in ``make soak``."""
    if USERS >= TENANT_USERS:
        yield request.getfixturevalue("world")
        return
    with generated_world(m365_emulator, redis_url, database_url_base, tmp_path_factory.mktemp("cp-large"),
                         TENANT_USERS, 13) as world:
        yield world


@pytest.fixture(scope="module")
def tenant_references(tenant_world) -> dict:
    """The fault-free run of each kind in the 5,000-user directory's ``globex``."""
    for kind in ("contacts", "presence"):
        assert tenant_world.sync("globex", kind)["status"] == "done"
    return {kind: _state(tenant_world, "globex", kind) for kind in ("contacts", "presence")}


@pytest.mark.parametrize("kind", list(SPREAD))
def test_every_http_fault_in_one_run_over_a_5000_user_tenant(tenant_world, tenant_references, database_url_base,
                                                               kind):
    """The whole fault list, one after another through the same run (and the runs that follow a failed one):
    the phonebooks or presence statuses end equal to the fault-free run's, and the log shows every fault."""
    if database_url_base:
        pytest.skip("runs in the SQLite pass: the database plays no part in these faults")
    if USERS >= TENANT_USERS:
        pytest.skip("make soak injects each fault alone at this size")
    w = tenant_world
    reference = tenant_references[kind]
    tenant = w.new_tenant()
    path, gap = SPREAD[kind]
    w.emulator.clear_requests()
    specs = [{**spec, "skip": gap} for specs in faults(path).values() for spec in specs]
    for spec in specs:
        w.emulator.add_fault(**spec)
    runs = [w.sync(tenant, kind)]
    while runs[-1]["status"] != "done" and len(runs) < 6:
        runs.append(w.sync(tenant, kind))
    w.emulator.clear_faults()
    assert runs[-1]["status"] == "done", runs
    assert all(r["message"] for r in runs if r["status"] == "failed"), "a failed run says why"
    answered = {e["status"] for e in w.emulator.requests_log()}
    wanted = {s.get("status", 0 if s.get("reset") else None) for s in specs} - {None, 200}
    assert wanted <= answered, f"the request log does not show every fault: {sorted(wanted - answered)}"
    assert _state(w, tenant, kind) == reference
    print(f"\n{kind}: {len(specs)} faults over {TENANT_USERS} users: runs {[r['status'] for r in runs]}")


#: kind -> a request of its run that hangs mid-run while a process fault strikes (``skip``: a share of the run).
HANGS = {"contacts": {"path": r"/contactFolders", "delayMs": 4000},
         "presence": {"path": r"/calendarView|/\$batch", "delayMs": 4000}}


def _converged_after(w: World, tenant: str, kind: str, action) -> None:
    hang = {**HANGS[kind], "skip": max(40, w.users // 2)}
    run_id = worker_mid_run(w.app, w.emulator, tenant, kind, hang, action)
    if action is kill_worker:
        assert run_status(w.app, tenant, run_id) == "running", "killed mid-run, not after it"
    time.sleep(2.5)  # the dead run's lock expires
    runs = [w.sync(tenant, kind)]
    while runs[-1]["status"] != "done" and len(runs) < 3:
        runs.append(w.sync(tenant, kind))
    assert runs[-1]["status"] == "done", runs


def _state(w: World, tenant: str, kind: str):
    return w.phonebooks(tenant) if kind == "contacts" else w.presence(tenant)


@pytest.mark.parametrize("kind", list(HANGS))
def test_a_sigkilled_worker_mid_run_loses_and_duplicates_nothing(tenant_world, tenant_references, kind):
    tenant = tenant_world.new_tenant()
    _converged_after(tenant_world, tenant, kind, kill_worker)
    assert _state(tenant_world, tenant, kind) == tenant_references[kind]


@pytest.mark.parametrize("kind", list(HANGS))
def test_redis_restarting_mid_run_loses_and_duplicates_nothing(tenant_world, tenant_references, redis_conn,
                                                               database_url_base, kind):
    if database_url_base:
        pytest.skip("runs in the SQLite pass (the database plays no part in this fault)")
    tenant = tenant_world.new_tenant()
    _converged_after(tenant_world, tenant, kind, restart_redis(redis_conn))
    assert _state(tenant_world, tenant, kind) == tenant_references[kind]


@pytest.mark.parametrize("kind", list(HANGS))
def test_the_postgresql_connection_dropping_mid_run_loses_and_duplicates_nothing(tenant_world, tenant_references,
                                                                                  database_url_base, kind):
    if not database_url_base:
        pytest.skip("a PostgreSQL fault")
    tenant = tenant_world.new_tenant()
    _converged_after(tenant_world, tenant, kind, drop_postgres(tenant_world.app.config["SQLALCHEMY_DATABASE_URI"]))
    assert _state(tenant_world, tenant, kind) == tenant_references[kind]
