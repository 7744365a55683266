"""3CX's calendar presence rules, end to end: emulator calendars → presence run → the demo API's presence."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .conftest import graph_time

CALENDAR = {"status": "dnd", "source": "calendar"}
AVAILABLE = {"status": "available", "source": "user"}


def test_meeting_sets_dnd_and_its_end_restores_the_status(penv):
    meeting = penv.meeting("alice", subject="Quarterly review")
    run = penv.run()
    assert run["status"] == "done" and run["counts"]["updated"] == 1, run
    assert penv.presence("alice") == CALENDAR
    assert penv.presence("bob") == AVAILABLE  # no meeting
    assert any("Quarterly review" in item["detail"] for item in penv.items(run["run_id"], "updated"))

    assert penv.run()["counts"]["updated"] == 0  # still in the meeting: nothing to change
    assert penv.presence("alice") == CALENDAR

    penv.end_meeting("alice", meeting)
    assert penv.run()["counts"]["updated"] == 1
    assert penv.presence("alice") == AVAILABLE


def test_the_status_from_before_comes_back(penv):
    penv.set_presence("alice", "lunch")
    meeting = penv.meeting("alice", show_as="oof")
    penv.run()
    assert penv.presence("alice") == {"status": "away", "source": "calendar"}
    penv.delete_meeting("alice", meeting)
    penv.run()
    assert penv.presence("alice") == {"status": "lunch", "source": "user"}


def test_mapping_and_the_strongest_of_overlapping_meetings(penv):
    penv.meeting("alice", show_as="oof", minutes_from=-30, minutes_to=60)
    penv.meeting("alice", show_as="workingElsewhere", minutes_from=-2, minutes_to=10)
    penv.meeting("bob", show_as="tentative")   # no status by default
    penv.meeting("carol", show_as="free")
    penv.meeting("carol", show_as="busy", minutes_from=5, minutes_to=60)    # not started yet
    penv.meeting("carol", show_as="busy", minutes_from=-60, minutes_to=-1)  # over
    penv.run()
    assert penv.presence("alice") == CALENDAR  # dnd beats away
    assert penv.presence("bob") == AVAILABLE
    assert penv.presence("carol") == AVAILABLE

    penv.presence_settings(mapping={"tentative": "away", "workingElsewhere": None, "oof": "away", "busy": "dnd"})
    penv.run()
    assert penv.presence("alice") == {"status": "away", "source": "calendar"}  # the oof meeting remains
    assert penv.presence("bob") == {"status": "away", "source": "calendar"}


def test_business_trip_and_holiday_ignore_the_calendar(penv):
    penv.set_presence("alice", "business_trip")
    penv.set_presence("bob", "holiday")
    penv.meeting("alice")
    penv.meeting("bob", show_as="oof")
    run = penv.run()
    assert penv.presence("alice") == {"status": "business_trip", "source": "user"}
    assert penv.presence("bob") == {"status": "holiday", "source": "user"}
    skipped = {item["display_name"]: item["detail"] for item in penv.items(run["run_id"], "skipped")}
    assert "Business Trip" in skipped["Alice Anders"] and "Holiday" in skipped["Bob Brown"]
    assert run["counts"]["updated"] == 0


def test_a_users_own_change_wins_until_the_next_meeting(penv):
    first = penv.meeting("alice", subject="Long workshop", minutes_from=-10, minutes_to=120)
    penv.run()
    assert penv.presence("alice") == CALENDAR
    penv.set_presence("alice", "available")  # the user picks a status during the workshop
    run = penv.run()
    assert penv.presence("alice") == AVAILABLE
    assert "kept until the next meeting" in penv.items(run["run_id"], "skipped")[0]["detail"]
    penv.run()
    assert penv.presence("alice") == AVAILABLE  # the workshop goes on; the user's choice stays

    second = penv.meeting("alice", subject="Call with a customer", show_as="oof", minutes_from=-1, minutes_to=20)
    penv.run()
    assert penv.presence("alice") == {"status": "away", "source": "calendar"}  # the next meeting takes over
    penv.delete_meeting("alice", second)
    penv.run()
    assert penv.presence("alice") == AVAILABLE  # back to the user's choice; the workshop stays ignored
    penv.end_meeting("alice", first)
    penv.run()
    assert penv.presence("alice") == AVAILABLE


def test_an_admins_change_during_a_meeting_wins_too(penv):
    from flask_pbx365.state import get_state

    meeting = penv.meeting("alice")
    penv.run()
    with penv.app.app_context():  # as the host's admin page does: source "admin"
        state = get_state(penv.app)
        user_id = next(u.id for u in state.host.list_users("acme") if u.extension == penv.ext("alice"))
        state.host.set_presence("acme", user_id, "holiday", "admin")
        state.db.session.commit()
    penv.run()
    assert penv.presence("alice") == {"status": "holiday", "source": "admin"}
    penv.end_meeting("alice", meeting)
    penv.run()
    assert penv.presence("alice") == {"status": "holiday", "source": "admin"}  # not "restored" over the admin


def test_recurring_series_in_another_time_zone(penv):
    """calendarView expands the series; the occurrence of today (wall clock in Berlin) is in progress."""
    now = datetime.now(timezone.utc)
    first = now - timedelta(days=10, minutes=15)
    penv.emulator.admin("POST", f"/tenants/{penv.tid}/users/{penv.oid('carol')}/events", {
        "subject": "Daily stand-up", "showAs": "busy",
        "start": graph_time(first, "Europe/Berlin"), "end": graph_time(first + timedelta(minutes=45), "Europe/Berlin"),
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "noEnd", "startDate": first.astimezone().date().isoformat()}}})
    run = penv.run()
    assert penv.presence("carol") == CALENDAR
    assert "Daily stand-up" in penv.items(run["run_id"], "updated")[0]["detail"]


def test_cancelled_declined_and_private_entries(penv):
    penv.meeting("alice", isCancelled=True)
    penv.meeting("bob", responseStatus={"response": "declined", "time": "2024-01-01T00:00:00Z"})
    penv.meeting("carol", subject="Doctor appointment", sensitivity="private")
    run = penv.run()
    assert penv.presence("alice") == AVAILABLE
    assert penv.presence("bob") == AVAILABLE
    assert penv.presence("carol") == CALENDAR
    detail = penv.items(run["run_id"], "updated")[0]["detail"]
    assert "Doctor" not in detail and "private appointment" in detail


def test_unreadable_calendar_leaves_the_status_alone(penv):
    meeting = penv.meeting("alice")
    penv.run()
    penv.delete_meeting("alice", meeting)
    penv.emulator.add_fault(path=f"/users/{penv.oid('alice')}/calendarView", times=5, status=500)
    run = penv.run()
    assert run["status"] == "failed" and run["counts"]["errors"] == 1
    assert "could not be read" in run["message"]
    assert "500" in penv.items(run["run_id"], "error")[0]["detail"]
    assert penv.presence("alice") == CALENDAR  # a failed read is no proof the meeting ended
    penv.emulator.clear_faults()
    penv.run()
    assert penv.presence("alice") == AVAILABLE


def test_users_who_leave_get_their_status_back(penv):
    penv.meeting("alice")
    penv.meeting("bob")
    penv.run()
    penv.emulator.patch_user(penv.tid, penv.oid("alice"), accountEnabled=False)
    penv.settings(guard_percent=100)
    assert penv.sync()["counts"]["disabled"] == 1  # user sync disables alice's PBX user
    penv.run()
    assert penv.presence("alice") == AVAILABLE
    assert penv.presence("bob") == CALENDAR

    penv.presence_settings(enabled=False)
    run = penv.run()
    assert penv.presence("bob") == AVAILABLE
    assert "Calendar presence is off" in run["message"]


def test_dry_run_changes_nothing(penv):
    penv.meeting("alice")
    run = penv.run(dry_run=True)
    assert run["status"] == "done" and run["counts"]["updated"] == 1
    assert run["message"].startswith("Dry run")
    assert penv.presence("alice") == AVAILABLE
    penv.run()
    assert penv.presence("alice") == CALENDAR
