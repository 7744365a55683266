"""The host-adapter conformance kit, run the way a vendor runs it: ``pytest --pbx365-host MODULE:FACTORY``.

It must pass for demo_app's DemoHost and for a small in-memory host that shares nothing with the demo, and it
must name the broken guarantee of a host with a planted bug.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_kit(spec: str, tmp_path: Path, **env: str) -> dict[str, str]:
    """Run the kit in a fresh pytest; returns ``{test name: passed|failed|skipped}``."""
    report = tmp_path / f"kit-{len(list(tmp_path.iterdir()))}.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pbx365-host", spec,
         f"--junitxml={report}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **env})
    assert report.exists(), f"the kit did not run:\n{done.stdout}\n{done.stderr}"
    outcome = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome[name] = "failed"
        elif case.find("skipped") is not None:
            outcome[name] = "skipped"
        else:
            outcome[name] = "passed"
    outcome["__exit__"] = str(done.returncode)
    return outcome


def kit_tests() -> set[str]:
    import flask_pbx365.conformance as kit

    return {name for name in vars(kit) if name.startswith("test_")}


@pytest.mark.parametrize("spec", ["tests.hosts.demo_harness:make_harness", "tests.hosts.memory_host:make_harness"])
def test_the_kit_passes_for_a_conforming_host(spec, tmp_path, redis_url):
    outcome = run_kit(spec, tmp_path, KIT_REDIS_URL=redis_url)
    assert outcome.pop("__exit__") == "0", outcome
    assert {name.split("[")[0] for name in outcome} == kit_tests(), "the kit did not run every check"
    skipped = {name for name, result in outcome.items() if result == "skipped"}
    # The in-memory host keeps no transaction and has no call state, and says so; everything else ran.
    assert skipped == (set() if "demo" in spec else {"test_writes_join_the_extensions_transaction",
                                                     "test_a_rolled_back_batch_leaves_nothing",
                                                     "test_call_state_when_the_host_reports_it"})


@pytest.mark.parametrize("broken, caught", [
    ("DuplicatesOnUpsert", "test_personal_entries_are_upserted_by_key"),
    ("ListsUserMadeEntries", "test_entries_the_user_made_are_never_listed_or_touched"),
    ("OverwritesWithNone", "test_an_update_changes_given_fields_and_leaves_none_alone"),
    ("IgnoresTakenExtensions", "test_a_taken_extension_is_refused_with_extension_in_use"),
    ("AdminOfEveryTenant", "test_a_tenant_admin_administers_their_tenant_only"),
    ("CrashesOnMissingUsers", "test_a_call_for_a_missing_user_raises_a_pbx365_error[update_user]"),
    ("HidesDisabledUsers", "test_disabled_users_stay_listed_and_can_be_enabled_again"),
    ("WebSignInMakesAdmins", "test_a_web_sign_in_grants_no_admin_rights"),
])
def test_the_kit_names_a_planted_bug(broken, caught, tmp_path):
    outcome = run_kit("tests.hosts.broken_hosts:make_broken_harness", tmp_path, KIT_BROKEN_HOST=broken)
    assert outcome.pop("__exit__") == "1"
    assert outcome[caught] == "failed", {k: v for k, v in outcome.items() if v == "failed"}


def test_a_bad_factory_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pbx365-host",
                           "tests.hosts.no_such_module:make"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "cannot import tests.hosts.no_such_module" in done.stdout + done.stderr
