"""Teams presence at scale: a Teams → PBX poll of 10,000 users, and 1,000 PBX calls starting within a second."""
from __future__ import annotations

import math
import time

import sqlalchemy as sa

from .rig import bench

USERS = 10000


def _linked(rig) -> list[tuple[str, str]]:
    from flask_pbx365.models import UserLink

    with rig.app.app_context():
        return [(oid, hid) for oid, hid in rig.app.extensions["pbx365"].db.session.execute(
            sa.select(UserLink.object_id, UserLink.host_user_id).where(UserLink.state == "active"))]


def test_teams_to_pbx_poll(m365_emulator, redis_url, tmp_path, record):
    with bench(m365_emulator, redis_url, tmp_path, USERS) as rig:
        assert rig.run()["status"] == "done"
        linked = _linked(rig)
        m365_emulator.admin("PUT", f"/tenants/{rig.tid}/teams-presence", {
            oid: {"availability": "Busy" if i % 2 else "Available", "activity": "Busy" if i % 2 else "Available"}
            for i, (oid, _) in enumerate(linked)})
        rig.settings("teams_presence", enabled=True)
        first = rig.run("teams_presence")
        quiet = rig.run("teams_presence")
        changed = linked[: len(linked) // 100]
        m365_emulator.admin("PUT", f"/tenants/{rig.tid}/teams-presence",
                            {oid: {"availability": "Away", "activity": "Away"} for oid, _ in changed})
        some = rig.run("teams_presence")
        assert first["status"] == quiet["status"] == some["status"] == "done", (first, quiet, some)
        record("teams_poll", x=len(linked), requests=quiet["graph_requests"],
               min_requests=math.ceil(len(linked) / 650), first_run_s=first["run_s"],
               first_updated=first["counts"]["updated"], quiet_run_s=quiet["run_s"],
               one_percent_run_s=some["run_s"], one_percent_updated=some["counts"]["updated"],
               job_rss_mb=round(first["job_rss_mb"]))


def test_pbx_to_teams_burst_of_calls(m365_emulator, redis_url, tmp_path, record):
    calls = 1000
    with bench(m365_emulator, redis_url, tmp_path, 2000) as rig:
        assert rig.run()["status"] == "done"
        rig.settings("teams_presence", enabled=True, to_pbx=False)
        linked = _linked(rig)[:calls]
        from flask_pbx365.teams_presence import call_state_changed

        with rig.app.app_context():
            session = rig.app.extensions["pbx365"].db.session
            rig.emulator.clear_requests()
            t0 = time.perf_counter()
            for _, hid in linked:  # each call is its own PBX transaction, as a PBX reports them
                assert call_state_changed("acme", hid, "on_call")
                session.commit()
            report_s = time.perf_counter() - t0
            jobs = rig.app.extensions["pbx365"].redis().llen("rq:queue:pbx365")
        wall, _ = rig.work()
        log = m365_emulator.requests_log()
        batches = [e for e in log if e["path"].endswith("/$batch")]
        sets = [e for e in log if e["path"].endswith("/presence/setPresence") and e["status"] == 200]
        assert len(sets) == calls
        record("teams_calls", x=calls, report_s=round(report_s, 3), jobs=jobs, batch_requests=len(batches),
               sessions_set=len(sets), push_s=round(wall, 3))
