"""Change notifications end to end: subscription handshake through the real route, a user added in Microsoft 365
reaching the PBX as a user sync run, refused forgeries, ``status --json``."""
from __future__ import annotations

import json
import time

import requests

from flask_pbx365.runs.queue import get_queue
from flask_pbx365.notifications import ensure_subscriptions, list_subscriptions

URL = "/integrations/microsoft365/notifications"


def _wait_for_jobs(app, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = get_queue(app).count
        if count:
            return count
        time.sleep(0.1)
    return 0


def test_user_added_in_entra_queues_a_user_sync_run(notify_env, served):
    app = notify_env.app
    with app.app_context():
        subs = ensure_subscriptions("acme")
    assert [s["resource"] for s in subs] == ["users"]
    with app.app_context():
        assert ensure_subscriptions("acme") == subs      # idempotent: nothing due, nothing recreated
    notify_env.add_user("zoe", "Zoe", "Webhook")
    started = time.monotonic()
    assert _wait_for_jobs(app) == 1
    assert time.monotonic() - started < 10
    notify_env.work()
    from flask_pbx365.runs import list_runs

    with app.app_context():
        runs = list_runs("acme", "users")
    assert [r.trigger for r in runs] == ["notification"]
    assert runs[0].status == "done", runs[0].message
    assert "zoe" in notify_env.synced()


def test_webhook_refuses_what_graph_would_not_send(notify_env, served):
    app = notify_env.app
    with app.app_context():
        sid = ensure_subscriptions("acme")[0]["id"]
    echo = requests.post(f"{served}{URL}/acme", params={"validationToken": "Validation: a b+c"}, timeout=5)
    assert echo.status_code == 200 and echo.text == "Validation: a b+c"
    assert echo.headers["Content-Type"].startswith("text/plain")
    assert echo.headers["X-Content-Type-Options"] == "nosniff"
    note = {"subscriptionId": sid, "clientState": "forged", "changeType": "updated", "resource": "Users/x",
            "tenantId": notify_env.tid}
    assert requests.post(f"{served}{URL}/acme", json={"value": [note]}, timeout=5).status_code == 401
    assert requests.post(f"{served}{URL}/acme", json={"value": [{**note, "subscriptionId": "nope"}]},
                         timeout=5).status_code == 401
    assert requests.post(f"{served}{URL}/globex", json={"value": [note]}, timeout=5).status_code in (401, 404)
    assert requests.post(f"{served}{URL}/nosuch", json={"value": [note]}, timeout=5).status_code == 404
    assert requests.post(f"{served}{URL}/acme", data="not json", timeout=5).status_code == 400
    assert requests.post(f"{served}{URL}/acme", json={"value": "x"}, timeout=5).status_code == 400
    time.sleep(0.3)
    assert get_queue(app).count == 0


def test_status_json_lists_subscriptions_and_disabling_removes_them(notify_env, served):
    app = notify_env.app
    with app.app_context():
        subs = ensure_subscriptions("acme")
    result = app.test_cli_runner().invoke(args=["pbx365", "status", "acme", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["subscriptions"]
    assert listed == subs and listed[0]["id"] and listed[0]["resource"] == "users" and listed[0]["expires"]
    from flask_pbx365.settings import import_settings

    with app.app_context():
        import_settings("acme", {"notifications": {"enabled": False}})
        assert ensure_subscriptions("acme") == []
        assert list_subscriptions("acme") == []
    notify_env.add_user("yan", "Yan", "Quiet")
    time.sleep(1.0)
    assert get_queue(app).count == 0        # the subscription was deleted in Microsoft 365 too


def test_reauthorization_required_renews_the_subscription(notify_env, served):
    app = notify_env.app
    from datetime import datetime, timedelta, timezone

    from flask_pbx365.models import NotificationSubscription
    from flask_pbx365.state import get_state

    with app.app_context():
        sid = ensure_subscriptions("acme")[0]["id"]
        row = get_state().db.session.get(NotificationSubscription, sid)
        row.expires_at = datetime.now(timezone.utc) + timedelta(hours=1)   # as if renewed long ago
        get_state().db.session.commit()
        soon = list_subscriptions("acme")[0]["expires"]
    answer = notify_env.emulator.admin("POST", f"/tenants/{notify_env.tid}/subscriptions/{sid}/lifecycle",
                                       json={"event": "reauthorizationRequired"})
    assert answer["sent"] is True
    assert _wait_for_jobs(app) == 1
    notify_env.work()
    with app.app_context():
        renewed = list_subscriptions("acme")
    assert renewed[0]["id"] == sid and renewed[0]["expires"] > soon
    graph_side = notify_env.emulator.admin("GET", f"/tenants/{notify_env.tid}/subscriptions")
    expires = datetime.fromisoformat(graph_side[0]["expirationDateTime"][:26] + "+00:00")
    assert expires > datetime.now(timezone.utc) + timedelta(days=20)


def test_scheduler_pass_creates_and_backs_off_when_unreachable(notify_env, served):
    app = notify_env.app
    from flask_pbx365.notifications import scheduler_pass

    with app.app_context():
        assert scheduler_pass(app) == []
        assert [s["resource"] for s in list_subscriptions("acme")] == ["users"]
        app.config["DEMO_PUBLIC_URL"] = "http://127.0.0.1:9"   # portal moved somewhere Graph cannot reach
        assert scheduler_pass(app) == ["acme"]
        assert scheduler_pass(app) == []                        # backing off: no retry every pass


def _client_state(notify_env, sid: str) -> str:
    subs = notify_env.emulator.admin("GET", f"/tenants/{notify_env.tid}/subscriptions")
    return next(s for s in subs if s["id"] == sid)["clientState"]


def test_a_burst_of_1000_notifications_in_a_second_becomes_one_job_and_one_run(notify_env, served):
    from concurrent.futures import ThreadPoolExecutor

    from flask_pbx365.runs import list_runs

    app = notify_env.app
    with app.app_context():
        sid = ensure_subscriptions("acme")[0]["id"]
    state = _client_state(notify_env, sid)
    notify_env.add_user("zoe", "Zoe", "Burst")

    def post(n: int) -> int:
        notes = [{"subscriptionId": sid, "clientState": state, "changeType": "updated",
                  "resource": f"Users/{n}-{k}", "tenantId": notify_env.tid} for k in range(5)]
        return requests.post(f"{served}{URL}/acme", json={"value": notes}, timeout=30).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(200)))  # 200 requests of 5: 1,000 notifications
    took = time.monotonic() - started
    assert codes == [202] * 200, sorted(set(codes))
    assert get_queue(app).count == 1, f"{get_queue(app).count} jobs queued for one burst ({took:.1f} s)"
    notify_env.work()
    with app.app_context():
        runs = list_runs("acme", "users")
    assert len(runs) == 1 and runs[0].trigger == "notification" and runs[0].status == "done", runs
    assert "zoe" in notify_env.synced()
    # The next notification after the burst was handled gets a job (and a run) of its own.
    assert post(1000) == 202 and get_queue(app).count == 1


def test_a_body_over_1_mb_is_refused_even_without_a_content_length(notify_env, served):
    with notify_env.app.app_context():
        sid = ensure_subscriptions("acme")[0]["id"]
    note = {"subscriptionId": sid, "clientState": _client_state(notify_env, sid), "changeType": "updated",
            "resource": "Users/x", "tenantId": notify_env.tid, "padding": "x" * 1_100_000}
    body = json.dumps({"value": [note]}).encode()
    assert requests.post(f"{served}{URL}/acme", data=body, timeout=30,
                         headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    chunked = requests.post(f"{served}{URL}/acme", data=chunks(), timeout=30,
                            headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    time.sleep(0.3)
    assert get_queue(notify_env.app).count == 0  # nothing queued from either
