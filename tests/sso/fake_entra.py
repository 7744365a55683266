"""A tiny OpenID provider over HTTPS whose token endpoint hands out ID tokens the test minted itself.

Used for the ID-token part of the negative matrix (wrong tenant, wrong ``aud``, expired, bad signature,
``alg: none``, nonce mismatch): the portal's real code path fetches the discovery document and JWKS from it and
redeems the code at its token endpoint, as with Entra. Its signing keys are the test's own RSA keys.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask, jsonify, request
from werkzeug.serving import make_server


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


class SigningKey:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def jwk(self) -> dict:
        n = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": _b64(n.n), "e": _b64(n.e), "alg": "RS256"}

    def sign(self, claims: dict, **header: Any) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, **header})


def _tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake entra test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2)).add_extension(x509.BasicConstraints(ca=True, path_length=0),
                                                                     critical=True).sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class FakeEntra:
    """The provider. ``next_id_token`` is a callable (claims defaults -> compact JWT) the token endpoint uses."""

    def __init__(self, directory: Path) -> None:
        self.keys = [SigningKey()]
        self.next_id_token: Callable[[dict], str] | None = None
        self.token_requests: list[dict] = []
        #: Another host name for the issuer (as 21Vianet's login.partner.microsoftonline.cn); None: this server.
        self.issuer_host: str | None = None
        ca, cert, key = _tls(directory)
        self.ca_path = str(ca)
        app = Flask("fake_entra")
        app.add_url_rule("/<tid>/v2.0/.well-known/openid-configuration", view_func=self._discovery)
        app.add_url_rule("/<tid>/discovery/v2.0/keys", view_func=self._jwks)
        app.add_url_rule("/<tid>/oauth2/v2.0/token", view_func=self._token, methods=["POST"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
        self.base_url = f"https://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()

    def issuer(self, tid: str) -> str:
        return f"https://{self.issuer_host}/{tid}/v2.0" if self.issuer_host else f"{self.base_url}/{tid}/v2.0"

    def _discovery(self, tid: str):
        b = self.base_url
        return jsonify({"issuer": self.issuer(tid), "authorization_endpoint": f"{b}/{tid}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{b}/{tid}/oauth2/v2.0/token", "jwks_uri": f"{b}/{tid}/discovery/v2.0/keys",
                        "end_session_endpoint": f"{b}/{tid}/oauth2/v2.0/logout",
                        "id_token_signing_alg_values_supported": ["RS256"]})

    def _jwks(self, tid: str):
        return jsonify({"keys": [k.jwk() for k in self.keys]})

    def _token(self, tid: str):
        self.token_requests.append({**request.form, "header": jwt.get_unverified_header(
            request.form.get("client_assertion", ""))})
        now = int(time.time())
        defaults = {"iss": self.issuer(tid), "tid": tid, "aud": request.form.get("client_id"),
                    "iat": now, "nbf": now, "exp": now + 3600, "sub": "pairwise-subject", "ver": "2.0"}
        assert self.next_id_token is not None, "the test did not say which ID token to answer with"
        return jsonify({"token_type": "Bearer", "access_token": "opaque", "expires_in": 3599,
                        "id_token": self.next_id_token(defaults)})


def unsigned(claims: dict) -> str:
    """An ``alg: none`` JWT (empty signature)."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
