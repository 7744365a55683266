"""The fault matrix of user sync over a 5,000-user tenant: each fault injected while a full round and then a delta
round run, and the final PBX state equals the fault-free run's.

One 5,000-user directory serves the module. The reference is it synced without faults into PBX tenant ``globex``;
each fault gets a PBX tenant of its own, which gets the fault in its first full round (mid-read) and again in the
delta round that follows a batch of edits, additions and deletions in Microsoft 365. A faulted run may end failed
(the history says why, and nobody is deprovisioned by a failed read); the next runs converge. Compared: every
linked user's fields, enabled state and groups, and extensions (present, unique, unchanged for users that had one).
The figures of the matrix are printed (``-s``) for the README's Reliability section.
"""
from __future__ import annotations

import time
import uuid

import pytest

from flask_pbx365.runs import get_run, request_run
from flask_pbx365.runs.queue import make_worker
from tests.reliability.portal import drop_postgres, kill_worker, module_portal, restart_redis, worker_mid_run
from tests.sync.conftest import connect

pytestmark = pytest.mark.timeout(900)

USERS = 5000
PAGE = r"/v1\.0/users(/delta)?\?"  # the full read (/users?$top=999) and delta pages
HANG = {"path": PAGE, "skip": 3, "delayMs": 4000}  # the fourth page hangs while a process fault strikes
GRAPH_ERROR = '{"error": {"code": "%s", "message": "%s"}}'

#: fault name -> the emulator fault specs injected (``skip`` puts them in the middle of the round's pages).
HTTP_FAULTS: dict[str, list[dict]] = {
    "429 with Retry-After": [{"path": PAGE, "skip": 3, "times": 2, "status": 429, "retryAfter": 1}],
    "503": [{"path": PAGE, "skip": 3, "times": 2, "status": 503}],
    "504": [{"path": PAGE, "skip": 3, "times": 2, "status": 504}],
    "reset before the request": [{"path": PAGE, "skip": 3, "times": 2, "reset": "before"}],
    "reset after the request": [{"path": PAGE, "skip": 3, "times": 2, "reset": "after"}],
    "slower than the timeout": [{"path": PAGE, "skip": 3, "times": 1, "delayMs": 3500}],
    "malformed JSON page": [{"path": PAGE, "skip": 3, "times": 1, "status": 200, "body": '{"value": [{"id": '}],
    "token expired mid-run": [{"path": PAGE, "skip": 3, "times": 1, "status": 401,
                               "body": GRAPH_ERROR % ("InvalidAuthenticationToken", "Access token has expired.")}],
    "503 storm (gives up, then recovers)": [{"path": PAGE, "skip": 3, "times": 40, "status": 503}],
}


class World:
    """The module's directory, its reference PBX tenant, and a fresh PBX tenant per fault."""

    def __init__(self, app, emulator, tid: str):
        self.app, self.emulator, self.tid = app, emulator, tid
        self.tenants = 0

    def new_tenant(self) -> str:
        self.tenants += 1
        slug = f"fault{self.tenants}"
        token = self.app.config["DEMO_API_TOKEN"]
        answer = self.app.test_client().post("/api/tenants", json={"slug": slug, "name": slug},
                                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        connect(self.app, self.emulator, self.tid, tenant=slug)
        return slug

    def sync(self, tenant: str) -> dict:
        with self.app.app_context():
            run_id = request_run(tenant, "users").id
        make_worker(self.app).work(burst=True)
        return self.run(tenant, run_id)

    def run(self, tenant: str, run_id: str) -> dict:
        with self.app.app_context():
            run = get_run(tenant, run_id)
            return {"id": run.id, "status": run.status, "message": run.message, "counts": dict(run.counts or {})}

    def converge(self, tenant: str, first: dict) -> list[dict]:
        """Runs after a faulted one, without faults, until one is done (at most two more)."""
        runs = [first]
        while runs[-1]["status"] != "done" and len(runs) < 3:
            runs.append(self.sync(tenant))
        assert runs[-1]["status"] == "done", runs
        return runs

    def reference(self, fresh: bool = False) -> dict[str, tuple]:
        """The fault-free state of the directory as it is now (``globex`` synced, a delta after the first); with
        ``fresh``, as a PBX tenant synced for the first time now has it (no users deleted earlier, so disabled)."""
        assert self.sync("globex")["status"] == "done"
        state = self.snapshot("globex")
        return {k: v for k, v in state.items() if v[4]} if fresh else state

    def users(self, tenant: str) -> list[dict]:
        token = self.app.config["DEMO_API_TOKEN"]
        return self.app.test_client().get(f"/api/tenants/{tenant}/users",
                                          headers={"Authorization": f"Bearer {token}"}).get_json()

    def snapshot(self, tenant: str) -> dict[str, tuple]:
        users = self.users(tenant)
        extensions = [u["extension"] for u in users]
        assert all(extensions) and len(set(extensions)) == len(extensions), f"{tenant}: extension lost or duplicated"
        return {u["m365_object_id"]: (u["first_name"], u["last_name"], u["display_name"], u["email"], u["enabled"],
                                      tuple(sorted(u["groups"]))) for u in users if u["m365_object_id"]}

    def extensions(self, tenant: str) -> dict[str, str]:
        return {u["m365_object_id"]: u["extension"] for u in self.users(tenant) if u["m365_object_id"]}

    def change_directory(self) -> None:
        """Edits, additions and deletions, as a busy day in Microsoft 365 brings them."""
        users = [u for u in self.emulator.users(self.tid) if u.get("userType") != "Guest"
                 and u.get("accountEnabled") is not False and not u["userPrincipalName"].startswith("new")][:200]
        for n, user in enumerate(users[:160]):
            self.emulator.patch_user(self.tid, user["id"], surname=f"Renamed{n}{uuid.uuid4().hex[:4]}",
                                     jobTitle="Moved")
        for user in users[160:175]:
            self.emulator.delete_user(self.tid, user["id"])
        domain = users[0]["userPrincipalName"].split("@")[1]
        for n in range(15):
            tag = uuid.uuid4().hex[:6]
            self.emulator.add_user(self.tid, id=str(uuid.uuid4()), userPrincipalName=f"new{tag}@{domain}",
                                   givenName="New", surname=f"Hire{n}", displayName=f"New Hire{n}",
                                   mail=f"new{tag}@{domain}", userType="Member", accountEnabled=True)

    def faulted_round(self, tenant: str, name: str, specs: list[dict], delta: bool) -> dict:
        """One faulted round of ``tenant`` and the runs that converge; what the matrix prints."""
        before = self.extensions(tenant) if delta else None
        self.emulator.clear_requests()
        # A full round reads 1 + ceil(N/999) requests; a delta round of ~190 changes 2 pages (100 a page).
        for spec in specs:
            self.emulator.add_fault(**({**spec, "skip": 1} if delta and "skip" in spec else spec))
        faulted = self.sync(tenant)
        self.emulator.clear_faults()
        answered = [e["status"] for e in self.emulator.requests_log() if e["path"].startswith("/v1.0/users")]
        runs = self.converge(tenant, faulted)
        wanted = {s.get("status", 0 if s.get("reset") else None) for s in specs} - {None, 200}
        assert wanted <= set(answered), f"{name}: the request log does not show the fault ({sorted(set(answered))})"
        if faulted["status"] == "failed":
            assert faulted["message"], f"{name}: a failed run says why"
            assert not faulted["counts"].get("disabled") and not faulted["counts"].get("deleted"), faulted
        if before is not None:  # users that had an extension keep it
            after = self.extensions(tenant)
            assert {k: after[k] for k in before if k in after} == {k: v for k, v in before.items() if k in after}
        return {"fault": name, "round": "delta" if delta else "full", "first run": faulted["status"],
                "runs to converge": len(runs), "answered": sorted(set(answered) - {200})}


@pytest.fixture(scope="module")
def world(m365_emulator, redis_url, database_url_base, tmp_path_factory):
    with module_portal(redis_url, database_url_base, tmp_path_factory.mktemp("faults")) as app:
        tid = str(uuid.uuid4())
        m365_emulator.generate(tenantId=tid, users=USERS, seed=365)
        connect(app, m365_emulator, tid, tenant="globex")
        m365_emulator.clear_faults()
        yield World(app, m365_emulator, tid)
        m365_emulator.clear_faults()


def test_user_sync_http_fault_matrix(world, database_url_base):
    if database_url_base:
        pytest.skip("the HTTP fault matrix runs in the SQLite pass: the database plays no part in these faults")
    w = world
    reference = w.reference()
    assert len(reference) > USERS * 0.8
    tenants, rows, problems = {}, [], []
    for name, specs in HTTP_FAULTS.items():  # a full round under each fault
        tenants[name] = w.new_tenant()
        rows.append(w.faulted_round(tenants[name], name, specs, delta=False))
        if name == "token expired mid-run" and rows[-1]["first run"] != "done":
            problems.append(f"{name}: the token is refreshed within the run, which must not fail")
        if w.snapshot(tenants[name]) != reference:
            problems.append(f"{name}: the full round differs from the fault-free run")
    w.change_directory()
    reference = w.reference()
    expired = {"expired delta token (410 syncStateNotFound)": [{
        "path": r"/v1\.0/users/delta\?.*deltatoken", "times": 1, "status": 410,
        "body": GRAPH_ERROR % ("syncStateNotFound", "The sync state is no longer valid.")}]}
    for name, specs in {**HTTP_FAULTS, **expired}.items():  # then the delta round after the day's changes
        tenant = tenants.get(name) or tenants["503"]
        rows.append(w.faulted_round(tenant, name, specs, delta=True))
        if w.snapshot(tenant) != reference:
            problems.append(f"{name}: the delta round differs from the fault-free run")
    print("\n" + "\n".join(" | ".join(str(v) for v in row.values()) for row in rows))
    assert problems == []
    log = [e for e in w.emulator.requests_log() if e["path"].startswith("/v1.0/users")]
    assert log  # the last round's log; Retry-After is checked on its own below


def test_user_sync_honours_retry_after_as_the_request_log_shows(world, database_url_base):
    if database_url_base:
        pytest.skip("runs in the SQLite pass")
    w = world
    tenant = w.new_tenant()
    w.emulator.clear_requests()
    w.emulator.add_fault(path=PAGE, skip=2, times=1, status=429, retryAfter=1)
    assert w.sync(tenant)["status"] == "done"
    w.emulator.clear_faults()
    log = [e for e in w.emulator.requests_log() if e["path"].startswith("/v1.0/users")]
    throttled = next(i for i, e in enumerate(log) if e["status"] == 429)
    waited = _seconds(log[throttled + 1]["at"]) - _seconds(log[throttled]["at"])
    assert waited >= 0.9, f"Retry-After: 1 was not honoured (next request after {waited:.2f} s)"


def test_user_sync_survives_a_sigkilled_worker_mid_run(world):
    w = world
    reference = w.reference(fresh=True)
    tenant = w.new_tenant()
    worker_mid_run(w.app, w.emulator, tenant, "users", HANG, kill_worker)
    time.sleep(2.5)  # the dead run's lock expires
    w.converge(tenant, w.sync(tenant))
    assert w.snapshot(tenant) == reference


def test_user_sync_survives_redis_restarting_mid_run(world, redis_conn, database_url_base):
    if database_url_base:
        pytest.skip("runs in the SQLite pass (the database plays no part in this fault)")
    w = world
    reference = w.reference(fresh=True)
    tenant = w.new_tenant()
    run_id = worker_mid_run(w.app, w.emulator, tenant, "users", HANG, restart_redis(redis_conn))
    time.sleep(2.5)
    w.converge(tenant, w.sync(tenant))
    assert w.snapshot(tenant) == reference
    assert w.run(tenant, run_id)["status"] in ("done", "failed", "running")


def test_user_sync_survives_the_postgresql_connection_dropping(world, database_url_base):
    if not database_url_base:
        pytest.skip("a PostgreSQL fault")
    w = world
    reference = w.reference(fresh=True)
    tenant = w.new_tenant()
    worker_mid_run(w.app, w.emulator, tenant, "users", HANG, drop_postgres(w.app.config["SQLALCHEMY_DATABASE_URI"]))
    time.sleep(2.5)
    w.converge(tenant, w.sync(tenant))
    assert w.snapshot(tenant) == reference


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
