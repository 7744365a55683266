"""``python -m demo_app.launcher`` (``make demo``): everything comes up, and everything it started goes down."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures_services import free_port

pytestmark = pytest.mark.slow


def children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid``: {pid: command line}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def demo(tmp_path, database_url, nginx_path):
    """The launcher, started in ``tmp_path`` on free ports; waits for its banner."""
    ports = {"DEMO_PORT": free_port(), "SBC_PORT": free_port(), "EMULATOR_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEMO_PUBLIC_URL", "DEMO_SBC_URL")}
    env.update({k: str(v) for k, v in ports.items()}, DATABASE_URL=database_url, PYTHONUNBUFFERED="1",
               DEMO_API_TOKEN="launcher-token",
               # demo_app is not in the library's wheel: it runs from the checkout, as `make demo` does there.
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                        env.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "demo_app.launcher"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.2):
            assert process.poll() is None, "launcher exited early:\n" + "".join(lines)
            assert time.monotonic() < deadline, "no banner after 120 s:\n" + "".join(lines)
        started = children_of(process.pid)
        yield process, ports, lines, started, tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in started:  # whatever the launcher failed to stop
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_launcher_starts_everything_and_sigterm_stops_it(demo):
    process, ports, lines, started, workdir = demo
    output = "".join(lines)
    for expected in ("sysadmin / sysadmin", "admin@acme / admin", "admin@globex / admin", "launcher-token",
                     f"http://localhost:{ports['DEMO_PORT']}/admin/login", f"https://localhost:{ports['SBC_PORT']}",
                     "registered application"):
        assert expected in output
    assert any("pbx365 worker" in cmd for cmd in started.values())
    assert any("pbx365 scheduler" in cmd for cmd in started.values())

    tenants = requests.get(f"http://127.0.0.1:{ports['DEMO_PORT']}/api/tenants", timeout=10,
                           headers={"Authorization": "Bearer launcher-token"})
    assert [t["slug"] for t in tenants.json()] == ["acme", "globex"]
    certificate = workdir / ".demo" / "sbc" / "sbc.crt"
    page = requests.get(f"https://127.0.0.1:{ports['SBC_PORT']}/login?tenant=acme", verify=str(certificate),
                        timeout=10)
    assert page.status_code == 200 and "Acme Corp" in page.text

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not any(listening(port) for port in ports.values())
    assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
                   for pid in started)


def test_launcher_stops_everything_when_a_child_dies(demo):
    process, ports, lines, started, _workdir = demo
    worker = next(pid for pid, cmd in started.items() if "pbx365 worker" in cmd)
    os.kill(worker, signal.SIGKILL)
    assert process.wait(30) == 1
    assert "worker exited with code" in "".join(lines)
    assert not any(listening(port) for port in ports.values())
