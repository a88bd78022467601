"""TLS for real: ``channels serve`` on an ``ssl:`` endpoint, with a certificate the test makes.

``openssl`` (Debian's package; ``.ci/run`` installs it) makes a self-signed certificate for
127.0.0.1; HTTPS and WSS clients check the server against it. A certificate or key that is
missing or not PEM stops start-up with one sentence.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import start_process
from channels_ws.testing import WebSocketClient

TESTS = Path(__file__).resolve().parents[1]
HTTP_PROJECT = TESTS / "http" / "http_project"
WS_PROJECT = TESTS / "websocket" / "ws_project"
LISTENING = r"http listening on ssl:0:\S+ → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs openssl (Debian: apt-get install openssl)"
)


def serve(project: Path, settings: str, endpoint: str, *args: str):
    """``channels serve`` of a test project on *endpoint*."""
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            *("--pythonpath", project, "--settings", settings, "serve", *args),
            *("--endpoint", endpoint),
        ]
    )


def tls_endpoint(key: Path, cert: Path) -> str:
    return f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test's certificate, and checks the host name."""
    return ssl.create_default_context(cafile=str(cert))


def test_https_requests_see_the_https_scheme(certificate):
    key, cert = certificate
    with serve(HTTP_PROJECT, "http_project.settings", tls_endpoint(key, cert)) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=TIMEOUT, context=client_context(cert)
        )
        try:
            connection.request("GET", "/meta/")
            reply = connection.getresponse()
            assert reply.status == 200
            assert json.loads(reply.read())["scheme"] == "https"
            # Keep-alive over TLS; Django's views see a secure request without any proxy header.
            connection.request("GET", "/secure/")
            reply = connection.getresponse()
            assert (reply.status, reply.read()) == (200, b"secure=True")
        finally:
            connection.close()
        # A client that does not trust the certificate is refused by its own TLS check.
        untrusting = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                untrusting.request("GET", "/hello/")
        finally:
            untrusting.close()
        assert server.terminate() == 0


def test_wss_connections_echo_and_close_cleanly(certificate):
    key, cert = certificate
    with serve(
        WS_PROJECT,
        "ws_project.settings",
        tls_endpoint(key, cert),
        *("--protocol", "http", "--protocol", "websocket"),
    ) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        with WebSocketClient.connect(port, "/echo/", ssl_context=client_context(cert)) as client:
            client.send_text("over tls")
            assert client.receive() == "over tls"
            client.send_bytes(b"\x00\x01")
            assert client.receive() == b"\x00\x01"
            assert client.close() == 1000
        assert server.terminate() == 0


@pytest.mark.parametrize(
    ("endpoint", "sentence"),
    [
        (
            "ssl:0:interface=127.0.0.1:privateKey={missing}",
            "names '{missing}', which cannot be read (No such file or directory); give "
            "privateKey= (and certKey=",
        ),
        (
            "ssl:0:interface=127.0.0.1:privateKey={not_pem}",
            "names a private key or certificate that OpenSSL refuses",
        ),
    ],
)
def test_a_bad_certificate_path_is_one_sentence_at_start_up(tmp_path, endpoint, sentence):
    missing, not_pem = tmp_path / "nope" / "key.pem", tmp_path / "notes.txt"
    not_pem.write_text("not a key\n")
    endpoint = endpoint.format(missing=missing, not_pem=not_pem)
    with serve(HTTP_PROJECT, "http_project.settings", endpoint) as server:
        assert server.popen.wait(TIMEOUT) == 1
        assert sentence.format(missing=missing) in server.output
        assert "Traceback" not in server.output


def test_without_the_tls_extra_the_sentence_names_it(certificate):
    key, cert = certificate
    # The same server in a process where pyOpenSSL cannot be imported.
    with start_process(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['OpenSSL'] = None; from channels_core.cli import main; "
            "sys.exit(main())",
            *("--pythonpath", HTTP_PROJECT, "--settings", "http_project.settings", "serve"),
            *("--endpoint", tls_endpoint(key, cert)),
        ]
    ) as server:
        assert server.popen.wait(TIMEOUT) == 1
        assert "needs TLS support, which is not installed" in server.output
        assert "pip install 'channels-core[tls]'." in server.output
        assert "Traceback" not in server.output
