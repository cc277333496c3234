"""Security, item 8: a hostile token endpoint cannot plant anything through the CLI.

A token response whose fields carry terminal escapes, header-splitting line breaks, absurd
lifetimes or values of the wrong type is refused field by field before anything is stored:
`login`, `refresh` and `token` end with exit 1 and one line naming the field (never a token's
value), the token stored before stays exactly as it was, and `status` shows it cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from support import evidence, secrets_scan
from support.cli import Result, call, finish
from support.signin import cli_add_profile, error_line, start_login, stored_files
from support.token_server import TokenServer

from zephr_desktop.config import get_profile

SECRET = "hostile-test-client-secret"
USER_ID = "68c0f5ae-f857-408f-a9d6-f511df0f8ae8"


def good(n: int, **fields: Any) -> dict[str, Any]:
    """A good token response; each value registered as a secret with the suite's scan."""
    answer = {
        "scope": "user.account:read, user.profile:read",
        "access_token": f"oa_goodaccess{n:04d}xyzXYZ",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": f"goodrefresh{n:04d}qwertyQ",
        "user_id": USER_ID,
        **fields,
    }
    for key in ("access_token", "refresh_token"):
        if isinstance(answer.get(key), str):
            secrets_scan.register(key, answer[key])
    return answer


@pytest.fixture
def endpoint() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


def add_profile(env: dict[str, str], server: TokenServer) -> None:
    cli_add_profile(env, server.site, server.url, client_id="hostile-client", secret=SECRET)


def login(env: dict[str, str]) -> Result:
    """`login --no-browser`, this test acting as the browser that brings the code back."""
    proc, url = start_login(env)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    callback = f"{query['redirect_uri']}?{urlencode({'code': 'code-from-the-browser', 'state': query['state']})}"
    page = requests.get(callback, timeout=20)
    secrets_scan.collect("listener result page", page.text)
    return finish(proc)


def no_escapes(text: str) -> None:
    bad = sorted({c for c in text if (ord(c) < 32 and c not in "\n") or ord(c) == 127 or c in "\u2028\u2029\u202e"})
    assert not bad, f"control characters reached the terminal: {bad!r}\n{text!r}"


# (name, the response's fields, the field the message must name)
ATTACKS: list[tuple[str, dict[str, Any] | bytes, str]] = [
    ("access_token with ESC (OSC title)", {"access_token": "oa_\x1b]0;pwned\x07abc"}, "access_token"),
    ("access_token with CR/LF (a 2nd header)", {"access_token": "oa_abc\r\nX-Injected: 1"}, "access_token"),
    ("access_token with a space", {"access_token": "oa_abc def"}, "access_token"),
    ("access_token 100 KB", {"access_token": "a" * 100_000}, "access_token"),
    ("access_token a number", {"access_token": 12345}, "access_token"),
    ("refresh_token with LF", {"refresh_token": "rt\nX-Injected: 1"}, "refresh_token"),
    ("refresh_token an object", {"refresh_token": {"a": 1}}, "refresh_token"),
    ("user_id with ANSI escapes", {"user_id": "\x1b[2J\x1b[31mroot\x1b[0m"}, "user_id"),
    ("user_id with a line break", {"user_id": "joe\nSigned in for user admin"}, "user_id"),
    ("user_id with RTL override", {"user_id": "joe\u202enimda"}, "user_id"),
    ("user_id 10 KB", {"user_id": "u" * 10_000}, "user_id"),
    ("scope a number", {"scope": 5}, "scope"),
    ("scope with ESC", {"scope": "user.account:read \x1b[2Jx"}, "scope"),
    ("scope a list with a number", {"scope": ["user.account:read", 7]}, "scope"),
    ("expires_in 1e300", {"expires_in": 1e300}, "expires_in"),
    ("expires_in NaN", b"NaN", "expires_in"),
    ("expires_in -1", {"expires_in": -1}, "expires_in"),
    ("expires_in true", {"expires_in": True}, "expires_in"),
    ("expires_in two years", {"expires_in": 2 * 366 * 86400}, "expires_in"),
    ("token_type a list", {"token_type": ["bearer"]}, "token_type"),
]


def hostile_body(n: int, fields: dict[str, Any] | bytes) -> Any:
    if isinstance(fields, bytes):  # JSON only a lax parser reads: spliced in as raw text
        text = requests.compat.json.dumps({**good(n), "expires_in": 0})
        return text.replace('"expires_in": 0', f'"expires_in": {fields.decode()}').encode()
    return good(n, **fields)


def signed_in(env: dict[str, str], endpoint: TokenServer) -> tuple[dict[str, bytes], str]:
    """A real sign-in whose token is due at once (so `token` asks the endpoint too); (stored files, status)."""
    add_profile(env, endpoint)
    endpoint.answer(200, good(1, expires_in=0))
    first = login(env)
    assert first.code == 0, first.err
    return stored_files(env), call(env, "status", "--json").out


def refused(result: Result, command: str, field: str) -> str:
    """The refusal contract: exit 1, one line naming the field, nothing on stdout, no escapes."""
    line = error_line(result)
    assert f"unusable {field}" in line and "nothing was stored" in line, (command, line)
    assert result.out.strip() == "" or command == "login", f"`{command}` printed {result.out!r}"
    no_escapes(result.err)
    return line.removeprefix("zephr-desktop: ")


def still_signed_in(env: dict[str, str], before: dict[str, bytes], status_before: str) -> None:
    """What was stored is byte for byte what it was, and `status` shows it, cleanly."""
    assert stored_files(env) == before, "a refused token response changed what is stored"
    status = call(env, "status")
    assert status.code == 0 and "Traceback" not in status.err, status.err
    assert f"user id:   {USER_ID}" in status.out, status.out
    no_escapes(status.out + status.err)
    assert call(env, "status", "--json").out == status_before


@pytest.mark.reliability("hostile-token-endpoint")
def test_every_hostile_field_is_refused_by_refresh(endpoint: TokenServer, child_env: dict[str, str]) -> None:
    before, status_before = signed_in(child_env, endpoint)
    for n, (case, fields, field) in enumerate(ATTACKS, start=2):
        endpoint.answer(200, hostile_body(n, fields))
        line = refused(call(child_env, "refresh"), "refresh", field)
        assert stored_files(child_env) == before, f"{case}: `refresh` changed what is stored"
        evidence.record(
            attack=case,
            command="refresh",
            refused=True,
            stored_unchanged=True,
            message=line.replace(endpoint.url, "TOKEN_URL"),
        )
    still_signed_in(child_env, before, status_before)


#: The attacks as reported, each also through `login` and `token`.
REPORTED = [
    "access_token with ESC (OSC title)",
    "access_token with CR/LF (a 2nd header)",
    "user_id with ANSI escapes",
    "scope a number",
    "expires_in 1e300",
]


@pytest.mark.reliability("hostile-token-endpoint")
@pytest.mark.parametrize("case", REPORTED)
def test_reported_attacks_through_login_and_token(endpoint: TokenServer, child_env: dict[str, str], case: str) -> None:
    fields, field = next((f, name) for c, f, name in ATTACKS if c == case)
    before, status_before = signed_in(child_env, endpoint)
    endpoint.answer(200, hostile_body(2, fields))
    for command in ("login", "token"):
        result = login(child_env) if command == "login" else call(child_env, command)
        line = refused(result, command, field)
        assert stored_files(child_env) == before, f"`{command}` changed what is stored"
        evidence.record(
            attack=case,
            command=command,
            refused=True,
            stored_unchanged=True,
            message=line.replace(endpoint.url, "TOKEN_URL"),
        )
    still_signed_in(child_env, before, status_before)


@pytest.mark.reliability("hostile-token-endpoint")
def test_a_hostile_first_sign_in_stores_nothing(endpoint: TokenServer, child_env: dict[str, str]) -> None:
    add_profile(child_env, endpoint)
    endpoint.answer(200, good(1, access_token="oa_abc\r\nX-Injected: 1"))
    line = error_line(login(child_env))
    assert "unusable access_token" in line and "oa_abc" not in line, line
    status = call(child_env, "status")
    assert status.code == 0 and "not signed in" in status.out, status.out
    token = call(child_env, "token")
    assert token.code == 1 and token.out == "" and "No token for profile 'demo'" in token.err
    evidence.record(attack="CR/LF access_token on the first sign-in", refused=True, stored=False)


@pytest.mark.reliability("hostile-token-endpoint")
def test_a_good_response_with_unusual_but_valid_fields_is_taken(
    endpoint: TokenServer, child_env: dict[str, str]
) -> None:
    """The checks refuse only what is wrong: RFC 6749 lets these through, and so does the app."""
    add_profile(child_env, endpoint)
    access = "eyJhbGciOi.JIUzI1NiJ9-_~+/abc=="
    secrets_scan.register("access_token", access)
    endpoint.answer(
        200,
        good(
            1,
            access_token=access,
            token_type="Bearer",
            expires_in="3600",
            scope=["openid", "user.account:read"],
            user_id="Zoë Æsir",
            refresh_token=None,
        ),
    )
    result = login(child_env)
    assert result.code == 0, result.err
    assert call(child_env, "token").out == access + "\n"
    status = call(child_env, "status")
    assert "user id:   Zoë Æsir" in status.out and "scopes:    openid, user.account:read" in status.out, status.out


@pytest.mark.reliability("hostile-token-endpoint")
def test_status_escapes_what_an_older_version_stored_unchecked(child_env: dict[str, str]) -> None:
    """Before the checks, a server's escapes went into the token file as they came; `status` shows them escaped."""
    assert call(child_env, "profile", "add", "demo", "--site", "https://news.example.com", "--client-id", "c").code == 0
    path = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "tokens" / "demo.json"
    path.parent.mkdir(parents=True, mode=0o700)
    # Bound to the profile (a file from before the binding is only "signed out", its fields never shown).
    path.write_text(
        requests.compat.json.dumps(
            {
                "version": 2,
                "access_token": "oa_oldtoken",
                "token_type": "bearer",
                "expires_at": 4102444800.0,
                "obtained_at": 1700000000.0,
                "scopes": ["user.account:read\x1b[2J"],
                "user_id": "\x1b[31mroot\r\nuser id: x",
                "refresh_ref": None,
                "issuer": get_profile("demo").issuer,
            }
        )
    )
    path.chmod(0o600)
    status = call(child_env, "status")
    no_escapes(status.out + status.err)
    if status.code == 0:
        assert "user id:   \\x1b[31mroot\\r\\nuser id: x" in status.out, status.out
        assert "scopes:    user.account:read\\x1b[2J" in status.out, status.out
    else:
        error_line(status)  # refusing such a file is as good, in one line
    evidence.record(stored_by_an_older_version="escapes in user_id and scopes", shown_escaped=status.code == 0)
