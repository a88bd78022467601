"""A self-signed certificate for tests of TLS endpoints (``ssl:``), made by ``openssl``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Make a self-signed certificate for the IP address *host* and its key in *folder*, as
    PEM files; return ``(key, cert)``. Needs the ``openssl`` program (Debian: ``apt-get
    install openssl``): :class:`FileNotFoundError` says so when it is missing."""
    if shutil.which("openssl") is None:
        raise FileNotFoundError("openssl is not installed (Debian: apt-get install openssl)")
    key, cert = Path(folder) / "key.pem", Path(folder) / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", key, "-out", cert, "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName=IP:{host}"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert
