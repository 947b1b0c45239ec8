"""``gatehouse hub serve --certfile --keyfile`` serves the API over TLS."""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.store import init_hub
from tests.hub.conftest import TIMEOUT_S


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse hub test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / "hub.crt", directory / "hub.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
    return certfile, keyfile


def test_the_hub_serves_https_with_the_given_certificate(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    admin = init_hub(data, event_id=3)
    certfile, keyfile = _self_signed(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatehouse", "hub", "serve", "--data", str(data), "--port", str(port),
         "--certfile", str(certfile), "--keyfile", str(keyfile)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # uvicorn announces the address once it listens
            seen.append(line)
            if "Uvicorn running on" in line:
                break
        assert f"https://127.0.0.1:{port}" in "".join(seen), "".join(seen)
        context = ssl.create_default_context(cafile=str(certfile))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=TIMEOUT_S) as c:
            assert c.get("/healthz").json()["status"] == "ok"
            assert c.get("/api/v1/zones", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S) as plain:
            try:
                r = plain.get("/healthz")
                assert r.status_code != 200
            except httpx.TransportError:
                pass  # a plain-http client is refused outright
    finally:
        proc.terminate()
        proc.wait(TIMEOUT_S)
        assert proc.stderr is not None
        proc.stderr.close()
