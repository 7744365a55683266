"""Run the demo SBC: nginx terminating TLS on ``SBC_PORT`` and proxying to the portal.

``python -m demo_app.sbc.start --upstream http://127.0.0.1:5000 --port 8444 [--dir DIR]`` runs it in the
foreground; tests and the launcher use :func:`start` / :func:`stop`. nginx runs as the current user with its pid
file, logs and temp files inside the run directory; a self-signed certificate (localhost, 127.0.0.1) is made there
on first use.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


class SBCError(RuntimeError):
    """The SBC could not start (nginx missing, port taken, bad configuration)."""


@dataclass
class SBC:
    """A running SBC."""

    process: subprocess.Popen
    directory: Path
    port: int
    url: str
    certificate: Path


def find_nginx() -> str:
    """Path of the nginx binary, or :class:`SBCError` telling how to install it."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not path:
        raise SBCError("nginx is not installed: run make deps (or tools/ensure-deps.sh nginx)")
    return path


def ensure_certificate(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Path:
    """A self-signed TLS certificate for ``names`` in ``directory`` (``sbc.crt``/``sbc.key``), made if missing."""
    cert_path, key_path = directory / "sbc.crt", directory / "sbc.key"
    if cert_path.exists() and key_path.exists():
        return cert_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo PBX SBC")])
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def render_config(directory: Path, *, upstream: str, port: int, host: str = "127.0.0.1") -> Path:
    """Write ``nginx.conf`` for the run directory and return its path."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    # As root, nginx would hand its workers to "nobody", who cannot use the run directory.
    user = "user root;" if os.geteuid() == 0 else "# runs as the current user"
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    values = {"{{USER_DIRECTIVE}}": user, "{{DIR}}": str(directory.resolve()), "{{LISTEN}}": listen,
              "{{UPSTREAM}}": upstream.rstrip("/")}
    text = TEMPLATE.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


def start(upstream: str, port: int, *, host: str = "127.0.0.1", directory: Path | str | None = None,
          public_host: str = "localhost", timeout: float = 15.0) -> SBC:
    """Start nginx on ``host:port`` (TLS) proxying to ``upstream``; returns once it accepts connections."""
    nginx = find_nginx()
    run_dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="pbx365-sbc-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    certificate = ensure_certificate(run_dir)
    config = render_config(run_dir, upstream=upstream, port=port, host=host)
    error_log = run_dir / "error.log"
    test = subprocess.run([nginx, "-t", "-q", "-p", str(run_dir), "-c", str(config), "-e", str(error_log)],
                          capture_output=True, text=True)
    if test.returncode != 0:
        raise SBCError(f"nginx refused the SBC configuration {config}: {test.stderr.strip()}")
    process = subprocess.Popen([nginx, "-p", str(run_dir), "-c", str(config), "-e", str(error_log),
                                "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise SBCError(f"nginx exited with code {process.returncode} (port {port} taken?): {stderr}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    else:
        stop_process(process)
        raise SBCError(f"nginx did not listen on {host}:{port} within {timeout:.0f}s; see {error_log}")
    return SBC(process, run_dir, port, f"https://{public_host}:{port}", certificate)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop nginx and its workers (its own process group): SIGTERM, then SIGKILL."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    if process.stderr:
        process.stderr.close()


def stop(sbc: SBC) -> None:
    """Stop a running SBC started by :func:`start`."""
    stop_process(sbc.process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", default=f"http://127.0.0.1:{os.environ.get('DEMO_PORT', '5000')}")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SBC_PORT", "8444")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dir", default=None, help="run directory (default: a new temporary directory)")
    args = parser.parse_args(argv)
    try:
        sbc = start(args.upstream, args.port, host=args.host, directory=args.dir)
    except SBCError as exc:
        parser.exit(1, f"sbc: {exc}\n")
    print(f"SBC {sbc.url} -> {args.upstream} (certificate {sbc.certificate})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: stop(sbc))
    try:
        sbc.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(sbc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
