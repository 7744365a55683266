"""The wheel is the product: built from this checkout, installed into a fresh venv, mounted in a host of its own.

Nothing of the source tree is importable there: the venv runs from a folder outside the checkout, with the
minimal host of the integration guide (docs/minimal_host.py). Each pass migrates with ``flask pbx365 db upgrade``,
starts the emulator from the installed package, connects the tenant, renders every tab, runs
``test-connection`` and one user sync through ``flask pbx365 worker``, then runs the host-adapter conformance kit
(``pytest --pbx365-host minimal_host:make_harness``) from the installed package. It runs twice: with the newest releases
pip finds, and with the lowest versions setup.cfg declares.
"""
from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flask_pbx365.testing import default_tenant_fixture, start_emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

RENDER_TABS = r"""
import json
from flask import url_for
from minimal_host import create_app
from flask_pbx365.state import get_state
app = create_app()
client = app.test_client()
client.get("/login")
with app.test_request_context():
    urls = [url_for("pbx365_admin." + tab.endpoint) for tab in get_state(app).tabs]
print(json.dumps({url: client.get(url).status_code for url in urls}))
"""
COUNT_USERS = r"""
from minimal_host import Extension, create_app, db
app = create_app()
with app.app_context():
    print(db.session.query(Extension).count())
"""


def lowest_constraints() -> str:
    """``name==version`` for each ``name>=version`` of setup.cfg's install_requires."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    pins = []
    for line in cfg["options"]["install_requires"].split("\n"):
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\[\]-]+)\s*>=\s*([0-9][^,;\s]*)\s*", line)
        if match:
            name = re.sub(r"\[.*\]", "", match[1])
            pins.append(f"{name}=={match[2]}")
    return "\n".join(pins) + "\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build-src")
    source = build / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                                                "instance", "bench-results", "test-artifacts",
                                                                "__pycache__", ".demo"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                   check=True, timeout=600)
    (found,) = out.glob("flask_pbx365-*.whl")
    return found


def _venv(path: Path, wheel: Path, constraints: Path | None) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)]
    if constraints is not None:
        cmd += ["-c", str(constraints)]
    subprocess.run(cmd, check=True, timeout=900)
    return python


@pytest.mark.parametrize("versions", ["newest", "lowest"])
def test_installed_wheel_migrates_renders_connects_and_syncs(versions, wheel, tmp_path, redis_url):
    constraints = None
    if versions == "lowest":
        constraints = tmp_path / "lowest.txt"
        constraints.write_text(lowest_constraints())
    python = _venv(tmp_path / "venv", wheel, constraints)
    portal = tmp_path / "portal"
    portal.mkdir()
    shutil.copy(ROOT / "docs" / "minimal_host.py", portal / "minimal_host.py")
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "FLASK_APP": "minimal_host",
           "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{portal / 'pbx.db'}", "SECRET_KEY": "smoke"}

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run(list(args), cwd=portal, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == code, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def flask(*args: str) -> str:
        return run(str(python.parent / "flask"), "pbx365", *args)

    where = json.loads(run(str(python), "-c", "import json, importlib.util, flask_pbx365.migrate as m; "
                           "print(json.dumps([m.__file__, str(m.MIGRATIONS_DIR), "
                           "importlib.util.find_spec('demo_app') is None]))"))
    assert str(ROOT) not in where[0] and "site-packages" in where[0]
    assert where[1].startswith(str(tmp_path / "venv")) and Path(where[1], "versions").is_dir()
    assert where[2] is True  # the library's wheel installs no demo_app

    assert "flask_pbx365 database at head" in flask("db", "upgrade")
    (tmp_path / "emulator").mkdir()
    emulator = start_emulator(tmp_path / "emulator", python=str(python))
    try:
        tid = emulator.create_tenant(default_tenant_fixture())
        flask("keys", "generate", "acme", "--out", "public_key.pem")
        app_id = emulator.add_application(tid, displayName="PBX", redirectUris=[],
                                          certificates=[(portal / "public_key.pem").read_text()],
                                          permissions=["User.Read.All"], adminConsent=True)
        flask("configure", "acme", "--client-id", app_id, "--directory-id", tid, "--cloud", "custom",
              "--login-url", emulator.base_url, "--graph-url", emulator.base_url, "--ca-bundle", emulator.ca_path)
        connection = json.loads(flask("test-connection", "acme", "--json"))
        assert connection["ok"] and "User.Read.All" in connection["granted"]
        assert connection["features"]["contacts"] == {"ok": False, "missing": ["Contacts.Read"]}

        tabs = json.loads(run(str(python), "-c", RENDER_TABS))
        assert len(tabs) == 8 and set(tabs.values()) == {200}, tabs

        queued = json.loads(flask("sync", "users", "acme", "--json"))
        assert queued["status"] == "queued"
        flask("worker", "--burst")
        status = json.loads(flask("status", "acme", "--json"))
        run_ = next(r for r in status["runs"] if r["run_id"] == queued["run_id"])
        assert run_["status"] == "done", run_
        created = run_["counts"]["created"]
        members = [u for u in default_tenant_fixture()["users"] if u.get("userType", "Member") == "Member"
                   and u.get("accountEnabled", True)]
        assert created >= 1 and created <= len(members)
        assert int(run(str(python), "-c", COUNT_USERS)) == created

        # The conformance kit ships in the wheel: the guide's host passes it from the installed package.
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "pytest"],
                       check=True, timeout=600)
        kit = run(str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pbx365-host",
                  "minimal_host:make_harness")
        passed = re.search(r"\b(\d+) passed", kit)
        assert passed and int(passed.group(1)) >= 35 and "failed" not in kit and " error" not in kit, kit
    finally:
        emulator.stop()
