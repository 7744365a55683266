"""The benchmark rig: the demo portal on a fresh database, connected to a generated emulator tenant, with runs
executed by a real RQ worker process (``worker_run.py``), and the two limits measured on the same machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import requests
import sqlalchemy as sa

from tests.fixtures_services import fresh_database_url
from tests.sync.conftest import connect

ROOT = Path(__file__).resolve().parents[2]
SELECT = ("id,givenName,surname,displayName,mail,userPrincipalName,department,jobTitle,mobilePhone,businessPhones,"
          "accountEnabled,userType,employeeId,officeLocation")


def sizes(default: str) -> list[int]:
    return [int(x) for x in os.environ.get("BENCH_SIZES", default).split(",") if x.strip()]


@dataclass
class Bench:
    """One demo portal (tenant ``acme``) connected to one generated emulator tenant of ``size`` users."""

    app: Any
    config: dict
    emulator: Any
    tid: str
    size: int
    database_url: str
    app_id: str = ""
    last: dict = field(default_factory=dict)

    # --- runs --------------------------------------------------------------------------------------------
    def settings(self, section: str, **values: Any) -> None:
        from flask_pbx365.settings import import_settings

        with self.app.app_context():
            import_settings("acme", {section: values})

    def run(self, kind: str = "users") -> dict:
        """Request a run, execute it in a real worker process; the run's JSON plus wall time, RSS, requests."""
        from flask_pbx365.runs import get_run, request_run, status_json

        with self.app.app_context():
            run = status_json(request_run("acme", kind))
        self.emulator.clear_requests()
        wall, rss = self.work()
        with self.app.app_context():
            status = status_json(get_run("acme", run["run_id"]))
        graph = [e for e in self.emulator.requests_log() if "/v1.0/" in e["path"]]
        started, finished = (datetime.fromisoformat(status[k]) for k in ("started_at", "finished_at"))
        self.last = {**status, "wall_s": wall, "run_s": (finished - started).total_seconds(), **rss,
                     "graph_requests": len(graph)}
        return self.last

    def work(self) -> tuple[float, dict]:
        """Run a burst worker in its own process until the queue is empty: (wall seconds, its RSS figures)."""
        command = [sys.executable, str(ROOT / "tests" / "bench" / "worker_run.py")]
        profile = os.environ.get("BENCH_PROFILE")
        if profile:  # py-spy samples the worker and its work horse: collapsed stacks, one file per run
            out = Path(profile) / f"worker-{self.size}-{time.strftime('%H%M%S')}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            command = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--format", "raw",
                       "--rate", "250", "-o", str(out), "--", *command]
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT,
                              env={**os.environ, "BENCH_APP_CONFIG": json.dumps(self.config),
                                   "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
        assert done.returncode == 0, done.stderr[-3000:]
        figures = [line for line in done.stdout.splitlines() if line.startswith("{")]
        return wall, json.loads(figures[-1])

    def pbx_count(self) -> int:
        from demo_app.models import User

        with self.app.app_context():
            return self.app.extensions["pbx365"].db.session.scalar(sa.select(sa.func.count()).select_from(User))

    # --- the limits --------------------------------------------------------------------------------------
    def token(self) -> str:
        from flask_pbx365.connection import client_options, credentials_for
        from flask_pbx365.graph import GraphClient

        with self.app.app_context():
            with GraphClient(credentials_for("acme"), **client_options()) as client:
                return client.tokens.get()

    def fetch_limit(self) -> tuple[float, int, int, float]:
        """The same full read by a bare ``requests`` client: the deltaLink for now, then every page of 999 (the
        requests the sync's minimum counts); (seconds of the whole read, listing pages, users, seconds of the
        listing alone)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.emulator.ca_path
        session.headers["Authorization"] = f"Bearer {self.token()}"
        url: str | None = f"{self.emulator.base_url}/v1.0/users?$select={SELECT}&$top=999"
        t0 = time.perf_counter()
        probe = session.get(f"{self.emulator.base_url}/v1.0/users/delta?$select={SELECT}&$deltatoken=latest",
                            timeout=120).json()
        assert "@odata.deltaLink" in probe, probe
        t1 = time.perf_counter()
        pages = users = 0
        while url:
            body = session.get(url, timeout=120).json()
            pages += 1
            users += len(body["value"])
            url = body.get("@odata.nextLink")
        end = time.perf_counter()
        return end - t0, pages, users, end - t1

    def write_limit(self) -> dict[str, float]:
        """The rows the run stored, written the cheapest way: each table a first sync fills (the PBX's users and
        their group memberships, the host's; the links and the run's items, the extension's), its rows as stored,
        inserted again with one Core bulk insert per 999 into a copy of the table (the same columns, constraints
        and indexes), all in one transaction of the same database. Seconds per table (the users are the
        tenant's only: the portal has demo tenants)."""
        from demo_app.models import Tenant, User
        from flask_pbx365.models import UserLink

        engine = sa.create_engine(self.database_url)
        tables = {**User.__table__.metadata.tables, **UserLink.__table__.metadata.tables}
        meta = sa.MetaData()
        for table in tables.values():  # what the copies' foreign keys name (they exist; not created again)
            table.to_metadata(meta)
        suffix = uuid.uuid4().hex[:8]
        copies: dict[str, tuple[sa.Table, list[dict]]] = {}
        with engine.connect() as conn:
            for name in STORED_BY_A_SYNC:
                table = tables[name]
                query = sa.select(table)
                if table is User.__table__:
                    query = query.join(Tenant.__table__).where(Tenant.__table__.c.slug == "acme")
                skip = {c.name for c in table.primary_key if table.autoincrement_column is c} | {"photo"}
                data = [{k: v for k, v in row._mapping.items() if k not in skip} for row in conn.execute(query)]
                copy = table.to_metadata(meta, name=f"bench_{name[:20]}_{suffix}")
                for item in [*copy.constraints, *copy.indexes]:
                    if isinstance(item.name, str):  # names are per schema on PostgreSQL
                        item.name = f"{item.name[:40]}_{suffix}"
                copies[name] = (copy, data)
        for copy, _ in copies.values():
            copy.create(engine)
        try:
            seconds = {}
            with engine.begin() as conn:
                for name, (copy, data) in copies.items():
                    t0 = time.perf_counter()
                    for start in range(0, len(data), 999):
                        conn.execute(sa.insert(copy), data[start:start + 999])
                    seconds[name] = time.perf_counter() - t0
            return seconds
        finally:
            for copy, _ in reversed(list(copies.values())):
                copy.drop(engine)
            engine.dispose()

    def bare_write_limit(self, rows: int) -> float:
        """``rows`` narrow rows (7 short strings, no index but the key) inserted with one Core bulk insert per 999,
        into the same database: the floor of any insert (the write limit before the host's own rows were used)."""
        engine = sa.create_engine(self.database_url)
        meta = sa.MetaData()
        table = sa.Table(f"bench_write_{uuid.uuid4().hex[:8]}", meta, sa.Column("id", sa.Integer, primary_key=True),
                         *(sa.Column(n, sa.String(255)) for n in ("username", "extension", "first_name", "last_name",
                                                                  "display_name", "email", "department")))
        meta.create_all(engine)
        data = [{"username": f"user{i}@acme", "extension": str(1000 + i), "first_name": "First",
                 "last_name": f"Last{i}", "display_name": f"First Last{i}", "email": f"user{i}@x.example",
                 "department": "Dept"} for i in range(rows)]
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for start in range(0, rows, 999):
                conn.execute(sa.insert(table), data[start:start + 999])
        elapsed = time.perf_counter() - t0
        meta.drop_all(engine)
        engine.dispose()
        return elapsed


#: The tables a first user sync fills, one row per user each: the write limit inserts their rows again.
STORED_BY_A_SYNC = ("users", "extension_group_members", "pbx365_user_link", "pbx365_sync_run_item")


@contextmanager
def bench(emulator, redis_url: str, tmp_path: Path, size: int, *, db: str = "sqlite", **generate: Any
          ) -> Iterator[Bench]:
    """A portal on a fresh database (``db`` sqlite or postgres) and an emulator tenant of ``size`` users."""
    from demo_app import create_app

    base = os.environ.get("BENCH_PG_URL") if db == "postgres" else None
    with fresh_database_url(base, tmp_path) as url:
        config = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "PBX365_SECRET_KEY": "bench",
                  "PBX365_REDIS_URL": redis_url, "DEMO_EMULATOR_URL": "https://127.0.0.1:9",
                  "DEMO_PUBLIC_URL": "http://portal.test", "DEMO_SBC_URL": "https://sbc.test:8444",
                  "PBX365_HTTP_TIMEOUT": 120}
        app = create_app(config)
        result = app.test_cli_runner().invoke(args=["demo", "init"])
        assert result.exit_code == 0, result.output
        tid = str(uuid.uuid4())
        emulator.generate(tenantId=tid, users=size, seed=size, **generate)
        app_id = connect(app, emulator, tid, permissions=[
            "User.Read.All", "GroupMember.Read.All", "ProfilePhoto.Read.All", "Contacts.Read", "Calendars.Read",
            "MailboxSettings.Read", "Presence.Read.All", "Presence.ReadWrite.All"])
        rig = Bench(app, config, emulator, tid, size, url, app_id)
        rig.settings("user_sync", guard_percent=100)
        try:
            yield rig
        finally:
            with app.app_context():
                app.extensions["pbx365"].db.session.remove()
                app.extensions["pbx365"].db.engine.dispose()
            emulator.admin("DELETE", f"/tenants/{tid}")
