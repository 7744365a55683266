"""Teams → PBX: polls of getPresencesByUserId drive PBX statuses, by the mapping and the documented precedence."""
from __future__ import annotations

import pytest

DEFAULTS = [("Available", "Available", "available"), ("Busy", "Busy", "dnd"), ("DoNotDisturb", "Presenting", "dnd"),
            ("BeRightBack", "BeRightBack", "away"), ("Away", "Away", "away")]


@pytest.mark.parametrize("availability,activity,status", DEFAULTS)
def test_each_default_mapping_sets_the_pbx_status(tenv, availability, activity, status):
    tenv.set_presence("alice", "lunch")
    tenv.teams("alice", availability, activity)
    run = tenv.poll()
    assert run["status"] == "done", run
    assert tenv.presence("alice") == {"status": status, "source": "teams"}
    assert tenv.presence("bob") == {"status": "available", "source": "user"}  # Offline in Teams: left alone


def test_offline_gives_back_the_status_from_before_teams(tenv):
    tenv.set_presence("alice", "lunch")
    tenv.teams("alice", "Busy")
    tenv.poll()
    assert tenv.presence("alice")["status"] == "dnd"
    tenv.teams("alice", "Offline")
    run = tenv.poll()
    assert tenv.presence("alice") == {"status": "lunch", "source": "user"}
    assert run["counts"]["updated"] == 1


def test_an_activity_mapping_wins_over_its_availability(tenv):
    tenv.teams_settings(mapping={"Available": "available", "Busy": "away", "DoNotDisturb": "dnd",
                                 "BeRightBack": "away", "Away": "away", "Offline": None, "InAMeeting": "dnd"})
    tenv.teams("alice", "Busy", "InAMeeting")
    tenv.teams("bob", "Busy", "Busy")
    tenv.poll()
    assert tenv.presence("alice")["status"] == "dnd"
    assert tenv.presence("bob")["status"] == "away"


def test_a_null_mapping_leaves_the_status_alone(tenv):
    tenv.teams_settings(mapping={"Available": "available", "Busy": None, "DoNotDisturb": "dnd",
                                 "BeRightBack": "away", "Away": "away", "Offline": None})
    tenv.set_presence("alice", "lunch")
    tenv.teams("alice", "Busy")
    tenv.poll()
    assert tenv.presence("alice") == {"status": "lunch", "source": "user"}


@pytest.mark.parametrize("protected", ["holiday", "business_trip"])
def test_holiday_and_business_trip_are_never_overridden(tenv, protected):
    tenv.set_presence("alice", protected)
    tenv.teams("alice", "DoNotDisturb")
    run = tenv.poll()
    assert tenv.presence("alice") == {"status": protected, "source": "user"}
    assert run["counts"]["skipped"] == 1
    assert "does not change the status" in " ".join(i["detail"] for i in tenv.items(run["run_id"]))


def test_the_users_own_pbx_choice_stays_until_teams_changes_again(tenv):
    tenv.teams("alice", "Busy")
    tenv.poll()
    assert tenv.presence("alice")["status"] == "dnd"
    tenv.set_presence("alice", "lunch")
    tenv.poll()
    assert tenv.presence("alice") == {"status": "lunch", "source": "user"}  # Teams did not change: no override
    tenv.teams("alice", "Away")
    tenv.poll()
    assert tenv.presence("alice") == {"status": "away", "source": "teams"}


def test_a_calendar_meeting_keeps_its_status_and_teams_applies_after_it(tenv):
    tenv.presence_settings(enabled=True)
    event = tenv.meeting("alice", show_as="oof", subject="Offsite")
    assert tenv.run()["status"] == "done"
    assert tenv.presence("alice") == {"status": "away", "source": "calendar"}
    tenv.teams("alice", "DoNotDisturb")
    run = tenv.poll()
    assert tenv.presence("alice") == {"status": "away", "source": "calendar"}
    assert run["counts"]["updated"] == 0
    tenv.end_meeting("alice", event)
    tenv.run()
    assert tenv.presence("alice")["source"] == "user"
    tenv.poll()
    assert tenv.presence("alice") == {"status": "dnd", "source": "teams"}


def test_a_poll_with_no_change_writes_nothing(tenv):
    tenv.teams("alice", "Busy")
    first = tenv.poll()
    assert first["counts"]["updated"] == 1
    second = tenv.poll()
    assert second["status"] == "done" and not any(second["counts"].values())


def test_opted_out_users_are_not_read_and_get_their_status_back(tenv):
    tenv.teams("alice", "Busy")
    tenv.teams("bob", "Busy")
    tenv.poll()
    tenv.emulator.clear_requests()
    tenv.teams_settings(opt_out=[tenv.oid("alice")])
    tenv.poll()
    assert tenv.presence("alice") == {"status": "available", "source": "user"}
    assert tenv.presence("bob") == {"status": "dnd", "source": "teams"}
    [read] = tenv.presence_requests("getPresencesByUserId")
    assert read["status"] == 200


def test_turning_it_off_gives_statuses_back(tenv):
    tenv.teams("alice", "Busy")
    tenv.poll()
    tenv.teams_settings(enabled=False)
    run = tenv.poll()
    assert "off" in run["message"]
    assert tenv.presence("alice") == {"status": "available", "source": "user"}
