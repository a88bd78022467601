"""Options declared once and checked by the kernel, from settings and from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from channels_core.exceptions import ImproperlyConfigured, PluginError
from channels_core.options import Option, boolean, check_options, resolve_options
from channels_core.protocols import ProtocolSpec
from channels_core.settings import parse_settings
from channels_core.testing.processes import run, write_settings

CHANNELS = Path(sys.executable).parent / "channels"


def no_listeners(server):
    return []


def refuse_odd(value: int) -> None:
    if value % 2:
        raise ValueError(f"{value} is odd: use an even number, such as 2")


OPTIONS = (
    Option("timeout", "Seconds.", default=10.0, type=float, above=0),
    Option("size", "Bytes.", default=8, type=int, minimum=1, maximum=64),
    Option("rate", "Per second.", default=0, type=float, minimum=0),
    Option("verbose", "Talk.", default=False, type=bool),
    Option("mode", "How.", default="text", choices=("text", "pdu")),
    Option("host", "Where.", default=None),
    Option("listen", "Addresses.", default=(), multiple=True),
    Option("even", "Even.", default=2, type=int, validator=refuse_odd),
    Option("ratio", "Fraction.", default=0.5, type=float, above=0, maximum=1,
           fix="set it to a fraction above 0, such as 0.5."),
)  # fmt: skip
SPEC = ProtocolSpec("probe", no_listeners, options=OPTIONS)


def error_for(**given) -> str:
    with pytest.raises(ImproperlyConfigured) as error:
        check_options("probe", OPTIONS, given)
    return str(error.value)


@pytest.mark.parametrize(
    ("given", "sentence"),
    [
        ({"timeout": 0}, "['timeout'] is 0; set it to a number above 0."),
        ({"timeout": True}, "['timeout'] is True; set it to a number above 0."),
        ({"timeout": "10"}, "['timeout'] is '10'; set it to a number above 0."),
        ({"timeout": float("nan")}, "['timeout'] is nan; set it to a number above 0."),
        ({"size": 0}, "['size'] is 0; set it to a whole number from 1 to 64."),
        ({"size": 65}, "['size'] is 65; set it to a whole number from 1 to 64."),
        ({"size": 8.0}, "['size'] is 8.0; set it to a whole number from 1 to 64."),
        ({"rate": -1}, "['rate'] is -1; set it to a number of 0 or more."),
        ({"verbose": 1}, "['verbose'] is 1; set it to True or False."),
        ({"mode": "fax"}, "['mode'] is 'fax'; use one of 'text', 'pdu'."),
        ({"mode": None}, "['mode'] is None; use one of 'text', 'pdu'."),
        ({"host": 5}, "['host'] is 5; set it to a string, or None."),
        ({"listen": "a"}, "['listen'] is 'a'; set it to a list of values, each a string."),
        (
            {"listen": ["a", 1]},
            "['listen'] is ['a', 1]; set it to a list of values, each a string.",
        ),
        ({"even": 3}, "['even'] is 3; 3 is odd: use an even number, such as 2."),
        ({"ratio": 2}, "['ratio'] is 2; set it to a fraction above 0, such as 0.5."),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_key_value_and_fix(given, sentence):
    assert error_for(**given) == "CHANNELS['OPTIONS']['probe']" + sentence


def test_good_values_pass():
    check_options(
        "probe",
        OPTIONS,
        {
            "timeout": 1,  # an int where a float is asked
            "size": 64,
            "rate": 0,
            "verbose": True,
            "mode": "pdu",
            "host": None,  # the default is None, so None is allowed
            "listen": ("a", "b"),
            "even": 4,
            "ratio": 1,
        },
    )


def test_an_unknown_option_lists_the_known_ones():
    with pytest.raises(ImproperlyConfigured, match=r"has the unknown option 'timout'; the prot"):
        check_options("probe", OPTIONS, {"timout": 1})


def test_command_line_values_name_the_flag_and_the_option():
    flagged = Option("timeout", "Seconds.", default=1.0, type=float, above=0,
                     flags=("-t", "--probe-timeout"))  # fmt: skip
    spec = ProtocolSpec("probe", no_listeners, options=(flagged, OPTIONS[1]))
    for overrides, sentence in (
        (
            {"timeout": -1.0},
            "--probe-timeout: the option probe['timeout'] is -1.0; set it to a number above 0.",
        ),
        (
            {"size": 0},
            "--option probe.size: the option probe['size'] is 0; set it to a whole number from "
            "1 to 64.",
        ),
    ):
        with pytest.raises(ImproperlyConfigured) as error:
            resolve_options([spec], parse_settings(), {"probe": overrides})
        assert str(error.value) == sentence


def test_settings_values_are_checked_when_options_are_resolved():
    settings = parse_settings(channels={"OPTIONS": {"probe": {"mode": "fax"}}})
    with pytest.raises(ImproperlyConfigured, match=r"\['mode'\] is 'fax'; use one of"):
        resolve_options([SPEC], settings)


def test_the_declaration_gives_the_command_line_converter():
    assert OPTIONS[0].convert is float
    assert OPTIONS[3].convert is boolean
    assert OPTIONS[5].convert is str
    custom = Option("seconds", "Seconds.", default=60, type=int, convert=lambda raw: int(raw) * 60)
    assert custom.convert("2") == 120


def test_nullable_follows_the_default_unless_said():
    assert Option("a", "A.").nullable is True
    assert Option("b", "B.", default="x").nullable is False
    assert Option("c", "C.", default=1, type=int, nullable=True).problem(None) is None


@pytest.mark.parametrize(
    ("declaration", "fragment"),
    [
        ({"type": list}, "has type=<class 'list'>: use str, int, float, bool or object"),
        ({"type": str, "minimum": 1, "default": "x"}, "has bounds but type=str"),
        ({"type": int, "default": 0, "above": 0}, "has the default 0, which its own declaration"),
        ({"choices": ("a", "b"), "default": "c"}, "has the default 'c'"),
    ],
)
def test_a_bad_declaration_is_a_plugin_error(declaration, fragment):
    with pytest.raises(PluginError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        Option("bad", "Bad.", **declaration)


def test_the_registry_checks_the_settings_of_every_installed_protocol(tmp_path):
    write_settings(tmp_path, "bad_udp", CHANNELS={"OPTIONS": {"udp": {"max_clients": 0}}})
    result = run([CHANNELS, "--pythonpath", tmp_path, "--settings", "bad_udp", "plugins"])
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "CHANNELS['OPTIONS']['udp']['max_clients'] is 0; set it to a whole number of "
        "addresses, such as 10000."
    )


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ("--http-timeout", "-1"),
            "--http-timeout: the option http['http_timeout'] is -1.0; set it to a positive "
            "number of seconds, such as 10.",
        ),
        (
            ("--option", "http.root_path=app/"),
            "--root-path: the option http['root_path'] is 'app/'; start it with '/' and leave "
            "off the trailing '/', such as '/app', or leave it empty.",
        ),
        (
            ("--protocol", "http", "--protocol", "udp", "--udp", "localhost:9000"),
            "--udp: the option udp['listen'] is ['localhost:9000']; 'localhost:9000' is not a "
            "UDP address: write HOST:PORT with an IP address, such as 127.0.0.1:9000 or "
            "[::1]:9000.",
        ),
    ],
)
def test_serve_checks_command_line_values_before_listening(args, sentence):
    # Worker mode needs no routing: the options are what stops start-up.
    result = run([CHANNELS, "serve", "--mode", "worker", *args])
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == sentence


def test_a_flag_that_does_not_convert_is_a_usage_error():
    result = run([CHANNELS, "serve", "--http-timeout", "soon"])
    assert result.returncode == 2
    assert "argument --http-timeout: invalid float value: 'soon'" in result.stderr
    joined = run([CHANNELS, "serve", "--proxy-headers=maybe"])
    assert joined.returncode == 2
    assert (
        "argument --proxy-headers: 'maybe' is not a boolean; use true or false (on or off)"
        in joined.stderr
    )
    # A boolean flag takes the next word only when it is a boolean: any other word is the
    # positional module:attribute, as in Daphne (--proxy-headers my_project.asgi:application).
    apart = run([CHANNELS, "serve", "--proxy-headers", "maybe"])
    assert apart.returncode == 2
    assert "argument app: 'maybe' is not of the form module:attribute" in apart.stderr


def test_a_declaration_naming_the_boolean_converter_means_bool():
    # Declarations written before options were typed said type=boolean; they keep working.
    option = Option("verbose", help="Say more.", default=False, type=boolean)
    assert option.type is bool
    assert option.convert is boolean
    assert option.problem(1) is not None
