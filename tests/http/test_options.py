"""The http options: checked with one sentence per bad value; endpoints they open."""

from __future__ import annotations

import pytest

from channels_core.exceptions import ImproperlyConfigured
from channels_core.options import check_options
from channels_core.protocols import boolean
from channels_http.plugin import OPTIONS, endpoints
from channels_http.upgrade import upgrade_token


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"http_timeout": 0},
            "CHANNELS['OPTIONS']['http']['http_timeout'] is 0; set it to a positive number of "
            "seconds, such as 10.",
        ),
        (
            {"max_body_size": "1k"},
            "CHANNELS['OPTIONS']['http']['max_body_size'] is '1k'; set it to a positive number "
            "of bytes, such as 65536.",
        ),
        (
            {"port": 70000},
            "CHANNELS['OPTIONS']['http']['port'] is 70000; set it to a TCP port number between "
            "0 and 65535, or None.",
        ),
        (
            {"endpoint": "tcp:8000"},
            "CHANNELS['OPTIONS']['http']['endpoint'] is 'tcp:8000'; set it to a list of Twisted "
            "endpoint strings, such as ['tcp:8000:interface=127.0.0.1', 'unix:/run/app.sock'].",
        ),
        (
            {"root_path": "app/"},
            "CHANNELS['OPTIONS']['http']['root_path'] is 'app/'; start it with '/' and leave off "
            "the trailing '/', such as '/app', or leave it empty.",
        ),
        (
            {"proxy_headers": "yes"},
            "CHANNELS['OPTIONS']['http']['proxy_headers'] is 'yes'; set it to True or False.",
        ),
    ],
)
def test_bad_options_are_one_sentence(options, message):
    with pytest.raises(ImproperlyConfigured) as error:
        check_options("http", OPTIONS, options)
    assert str(error.value) == message


def test_endpoints_from_options():
    assert endpoints({}) == ["tcp:8000:interface=127.0.0.1"]
    assert endpoints({"bind": "::1", "port": 9000}) == ["tcp:9000:interface=\\:\\:1"]
    assert endpoints({"endpoint": ["tcp:1"], "unix_socket": "/tmp/s", "fd": 3}) == [
        "tcp:1",
        "unix:/tmp/s",
        "fd:fileno=3",
    ]
    assert endpoints({"unix_socket": "/tmp/s", "port": 8001}) == [
        "unix:/tmp/s",
        "tcp:8001:interface=127.0.0.1",
    ]


def test_boolean():
    assert boolean("Yes") is True
    assert boolean("off") is False
    with pytest.raises(ValueError, match="'maybe' is not a boolean; use true or false"):
        boolean("maybe")


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([[b"connection", b"keep-alive, Upgrade"], [b"upgrade", b"WebSocket"]], "websocket"),
        ([[b"upgrade", b"websocket"]], None),
        ([[b"connection", b"upgrade"]], None),
        ([[b"connection", b"upgrade"], [b"upgrade", b"h2c, websocket"]], "h2c"),
    ],
)
def test_upgrade_token(headers, token):
    assert upgrade_token(headers) == token
