"""Reliability, item 3: every way the token endpoint can fail, through the real CLI.

Each fault ends `zephr-desktop refresh` (and, for a representative set, `login`) in its own
one-line message that says what to do; the token stored before is still there and still works.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import evidence, secrets_scan
from support.cli import call
from support.signin import (
    account_status,
    add_profile,
    cli_login,
    edit_keeping_sign_in,
    error_line,
    sign_in,
    stored_token,
)
from support.user import ScriptedUser

from zephr_desktop.oauth import Token
from zephr_desktop.sandbox import Sandbox, SandboxSettings

READ_TIMEOUT = "0.5"  # ZEPHR_DESKTOP_HTTP_TIMEOUT for the timeout case: the sandbox waits longer
SANDBOX_DELAY = 1.5


@dataclass(frozen=True)
class Fault:
    """One way the token endpoint fails: how to cause it, and what the message must say."""

    name: str
    provoke: Callable[[Sandbox, dict[str, str]], None]
    words: str  # what sets this message apart from every other one
    fix: str  # the next step the message gives
    tls: bool = False

    def __str__(self) -> str:
        return self.name


def _fault(name: str) -> Callable[[Sandbox, dict[str, str]], None]:
    def provoke(sb: Sandbox, env: dict[str, str]) -> None:
        sb.settings.fault = name

    return provoke


def _slow(sb: Sandbox, env: dict[str, str]) -> None:
    sb.settings.delay = SANDBOX_DELAY
    env["ZEPHR_DESKTOP_HTTP_TIMEOUT"] = READ_TIMEOUT


def _stopped(sb: Sandbox, env: dict[str, str]) -> None:
    sb.stop()


def _untrusted(sb: Sandbox, env: dict[str, str]) -> None:
    env.pop("REQUESTS_CA_BUNDLE", None)  # the profile has no ca_bundle either


FAULTS = [
    Fault("invalid_grant", _fault("invalid_grant"), "(400 invalid_grant", "Sign in again with `zephr-desktop login`"),
    Fault("400_empty", _fault("400_empty"), "answered 400 with an empty body", "Check the profile's token URL"),
    Fault("invalid_client", _fault("invalid_client"), "(401 invalid_client", "Check the client ID and secret"),
    Fault("401_html", _fault("401_html"), "(401 with an HTML page)", "Check the client ID and secret"),
    Fault("500", _fault("500"), "failed on its side (500,", "Try again in a minute"),
    Fault("502_html", _fault("502_html"), "failed on its side (502, an HTML page)", "Try again in a minute"),
    Fault(
        "200_non_json",
        _fault("200_non_json"),
        "answered 200 with an HTML page instead of a JSON token",
        "it may point at a web page",
    ),
    Fault(
        "200_no_access_token",
        _fault("200_no_access_token"),
        "answered 200 without an access_token",
        "Check the profile's token URL",
    ),
    Fault("token_type_mac", _fault("token_type_mac"), "issued a 'mac' token", "only bearer tokens"),
    Fault("huge_body", _fault("huge_body"), "with over 1 MB of data", "Check the profile's token URL"),
    Fault("drop", _fault("drop"), "closed the connection without answering", "Try again"),
    Fault("read timeout", _slow, f"did not answer within {READ_TIMEOUT} s", "ZEPHR_DESKTOP_HTTP_TIMEOUT"),
    Fault("connection refused", _stopped, "(connection refused)", "sandbox is running"),
    Fault("TLS untrusted", _untrusted, "TLS verification failed", "set ca_bundle in the profile", tls=True),
]


def _restore(sb: Sandbox) -> None:
    sb.settings.fault = None
    sb.settings.delay = 0.0
    sb.start()  # after "connection refused": the same port, the same tokens


@pytest.fixture
def sb(free_port: int, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox on a fixed port (it comes back on the same one after stop()), https if the case asks."""
    tls = bool(getattr(request, "param", False))
    sandbox = Sandbox(port=free_port, tls=tls, settings=SandboxSettings(loopback_any_port=True)).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def signed_in(sb: Sandbox, monkeypatch: pytest.MonkeyPatch, **fields: object) -> Token:
    """A profile for the sandbox with a valid stored token (over https, trusting its certificate for now)."""
    user = ScriptedUser()
    if sb.cert_path:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.cert_path)
        user.http.verify = sb.cert_path
    token = sign_in(add_profile(sb, **fields), user=user)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    return token


def still_signed_in(sb: Sandbox, env: dict[str, str], before: Token) -> None:
    """The token stored before the failure: still stored, still printed, still accepted by the API."""
    stored = stored_token()
    assert stored == before, "the stored token or its refresh token changed after a failed request"
    printed = call(env, "token")
    assert printed.code == 0 and printed.out == before.access_token + "\n", printed.err
    assert account_status(sb, before.access_token) == 200, "the stored access token no longer works"


def shown(line: str) -> str:
    """The message as the evidence table shows it: without the prefix and the random port."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line.removeprefix("zephr-desktop: "))


def assert_distinct(line: str, fault: Fault | RawAnswer) -> None:
    """The message names this fault and its fix, and reads like no other kind of fault."""
    assert fault.words in line, f"{fault}: the message lacks '{fault.words}': {line}"
    assert fault.fix in line, f"{fault}: the message does not say '{fault.fix}': {line}"
    others = [f.name for f in (*FAULTS, *RAW_ANSWERS) if f.words != fault.words and f.words in line]
    assert not others, f"{fault}: the message reads like {others}: {line}"


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize("sb", [False], indirect=True)
@pytest.mark.parametrize("fault", [f for f in FAULTS if not f.tls], ids=str)
def test_refresh_fault_leaves_the_token_alone(
    sb: Sandbox, fault: Fault, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signed_in(sb, monkeypatch)
    env = dict(child_env)
    fault.provoke(sb, env)
    line = error_line(call(env, "refresh"))
    assert_distinct(line, fault)
    _restore(sb)
    still_signed_in(sb, child_env, before)
    evidence.record(command="refresh", fault=fault.name, message=shown(line))


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize("sb", [True], indirect=True)
@pytest.mark.parametrize("trust", ["none", "profile ca_bundle", "REQUESTS_CA_BUNDLE"])
def test_refresh_over_tls_needs_a_trusted_certificate(
    sb: Sandbox, trust: str, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sb.cert_path is not None
    before = signed_in(sb, monkeypatch, ca_bundle=sb.cert_path if trust == "profile ca_bundle" else None)
    env = dict(child_env)
    if trust == "REQUESTS_CA_BUNDLE":
        env["REQUESTS_CA_BUNDLE"] = sb.cert_path
    result = call(env, "refresh")
    if trust == "none":
        fault = next(f for f in FAULTS if f.tls)
        line = error_line(result)
        assert_distinct(line, fault)
        stored = stored_token()
        assert stored == before
        assert account_status(sb, before.access_token) == 200
        evidence.record(command="refresh", fault=fault.name, message=shown(line))
        return
    assert result.code == 0, result.err
    refreshed = stored_token()
    assert refreshed is not None and refreshed.access_token != before.access_token
    assert call(env, "token").out.strip() == refreshed.access_token
    assert account_status(sb, refreshed.access_token) == 200
    evidence.record(command="refresh", tls_trusted_by=trust)


LOGIN_FAULTS = [
    "invalid_grant",
    "401_html",
    "500",
    "200_no_access_token",
    "token_type_mac",
    "huge_body",
    "drop",
    "read timeout",
]


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize("sb", [False], indirect=True)
@pytest.mark.parametrize("fault", [f for f in FAULTS if f.name in LOGIN_FAULTS], ids=str)
def test_login_fault_stores_nothing_half_way(
    sb: Sandbox, fault: Fault, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signed_in(sb, monkeypatch)
    secrets_file = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "secrets.json"
    keys_before = set(json.loads(secrets_file.read_text()))
    env = dict(child_env)
    fault.provoke(sb, env)
    result, page, _ = cli_login(env)
    line = error_line(result)
    assert_distinct(line, fault)
    assert page.status_code == 200 and "Sign-in failed" in page.text, page.text[:300]
    assert html.escape(fault.words) in page.text, "the result page does not say what failed"
    assert set(json.loads(secrets_file.read_text())) == keys_before, "a failed login left a secret behind"
    _restore(sb)
    still_signed_in(sb, child_env, before)
    secrets_scan.collect("stdout of a failed login", result.out)
    evidence.record(command="login", fault=fault.name, message=shown(line))


@dataclass(frozen=True)
class RawAnswer:
    """A token URL served by a raw socket that answers the token request with these bytes, then stalls."""

    name: str
    scheme: str
    answer: bytes
    words: str
    fix: str

    def __str__(self) -> str:
        return self.name


RAW_ANSWERS = [
    RawAnswer(
        "declares 2 GB, then silence",
        "http",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n{",
        "with over 1 MB of data",
        "Check the profile's token URL",
    ),
    RawAnswer(
        "headers, then the body stalls",
        "http",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{",
        f"did not answer within {READ_TIMEOUT} s",
        "ZEPHR_DESKTOP_HTTP_TIMEOUT",
    ),
    RawAnswer(
        "not HTTP (an SSH banner)",
        "http",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        "answered something that is not HTTP",
        "Check the token URL's scheme and port",
    ),
    RawAnswer(
        "https:// on a plain http port",
        "https",
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        "The TLS handshake with",
        "scheme and port match the server",
    ),
]


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """host:port of a one-connection server that sends the case's bytes and then keeps silent."""
    answer: bytes = request.param.answer
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)
                stop.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        thread.join(5)


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize("sb", [False], indirect=True)
@pytest.mark.parametrize(("case", "raw_server"), [(c, c) for c in RAW_ANSWERS], ids=str, indirect=["raw_server"])
def test_a_token_url_answering_nonsense_is_refused_clearly(
    sb: Sandbox, case: RawAnswer, raw_server: str, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signed_in(sb, monkeypatch)
    edit_keeping_sign_in(token_url=f"{case.scheme}://{raw_server}/zephr/oauth2/token")
    line = error_line(call({**child_env, "ZEPHR_DESKTOP_HTTP_TIMEOUT": READ_TIMEOUT}, "refresh"))
    assert_distinct(line, case)
    assert stored_token() == before
    evidence.record(command="refresh", fault=case.name, message=shown(line))


def test_the_fault_table_covers_every_sandbox_fault() -> None:
    from zephr_desktop.sandbox import FAULTS as SANDBOX_FAULTS

    assert {f.name for f in FAULTS} >= set(SANDBOX_FAULTS)


TIMEOUT_SETTINGS = [
    ("", (10.0, 30.0)),
    ("2", (2.0, 2.0)),
    (" 1.5 , 60 ", (1.5, 60.0)),
    ("soon", None),
    ("0", None),
    ("-1", None),
    ("1,2,3", None),
    ("nan", None),
    ("inf", None),
]


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize(("raw", "expected"), TIMEOUT_SETTINGS)
def test_the_http_timeout_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[float, float] | None
) -> None:
    from zephr_desktop.errors import ConfigError
    from zephr_desktop.transport import HTTP_TIMEOUT_ENV, http_timeout

    monkeypatch.setenv(HTTP_TIMEOUT_ENV, raw)
    if expected is not None:
        assert http_timeout() == expected
        return
    with pytest.raises(ConfigError) as info:
        http_timeout()
    assert HTTP_TIMEOUT_ENV in str(info.value) and "CONNECT,READ" in str(info.value)


@pytest.mark.reliability("token-faults")
@pytest.mark.parametrize("sb", [False], indirect=True)
def test_a_bad_timeout_setting_is_one_clear_line(
    sb: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = signed_in(sb, monkeypatch)
    line = error_line(call({**child_env, "ZEPHR_DESKTOP_HTTP_TIMEOUT": "soon"}, "refresh"))
    assert "ZEPHR_DESKTOP_HTTP_TIMEOUT='soon' is not a timeout" in line, line
    still_signed_in(sb, child_env, before)
