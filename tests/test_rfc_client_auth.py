"""RFC 6749 2.3.1 through the CLI: in form mode the Basic credentials are form-urlencoded first;
Zephr's JSON mode keeps sending them raw. The sandbox's RFC mode reads them as strictly as a
certified server does ('+' is a space, a bare '%' is 400), so a raw secret would fail there."""

from __future__ import annotations

import base64

import pytest
from support import evidence
from support.cli import call
from support.signin import account_status, cli_add_profile, cli_login

from zephr_desktop.sandbox import Client, Sandbox
from zephr_desktop.token_client import basic_credentials

CLIENT_ID = "rfc-app+1"  # a '+' in the ID too: a raw one reads "rfc-app 1" at an RFC server
SECRETS = [
    "100%pure-secret",
    "plus+and:colon/slash=equals",
    "sp ac€ üm la ut ß",
    "%41%2B%zz-looks-escaped",
]


def add_profile(env: dict[str, str], sb: Sandbox, secret: str, *extra: str) -> None:
    cli_add_profile(env, sb.url, sb.token_url, *extra, client_id=CLIENT_ID, secret=secret)


@pytest.mark.reliability("rfc6749")
@pytest.mark.parametrize(
    ("mode", "secret"),
    [("rfc", s) for s in SECRETS] + [("zephr", SECRETS[0]), ("zephr", SECRETS[1])],
    ids=[f"rfc-{i}" for i in range(len(SECRETS))] + ["zephr-percent", "zephr-plus"],
)
def test_client_secret_basic_with_awkward_secrets(
    sandbox: Sandbox, child_env: dict[str, str], mode: str, secret: str
) -> None:
    sandbox.settings.mode = mode
    sandbox.register_client(Client(CLIENT_ID, secret, ["http://127.0.0.1:8765/callback"], "RFC app"))
    add_profile(child_env, sandbox, secret, *(("--token-format", "form") if mode == "rfc" else ()))
    login = cli_login(child_env).result
    assert login.code == 0, login.err
    assert call(child_env, "refresh").code == 0
    token = call(child_env, "token").out.strip()
    assert token == sandbox.issued[-1]["access_token"] and account_status(sandbox, token) == 200
    exchange, refresh = sandbox.token_requests
    expected = "application/x-www-form-urlencoded" if mode == "rfc" else "application/json"
    for request in (exchange, refresh):
        assert request["authorization"] == "basic" and request["content_type"] == expected, request
        assert "client_secret" not in request["keys"]
    evidence.record(
        case=f"client_secret_basic, {mode} mode, secret with {sorted(set(secret) & set('%+:/= üé€ß'))}",
        token_requests=2,
    )


def test_a_raw_secret_is_what_a_strict_rfc_server_refuses(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    """The control: the same secret sent the Zephr way (JSON mode, raw Basic) to the RFC-mode sandbox."""
    sandbox.settings.mode = "rfc"
    sandbox.register_client(Client(CLIENT_ID, SECRETS[0], ["http://127.0.0.1:8765/callback"], "RFC app"))
    add_profile(child_env, sandbox, SECRETS[0])  # token_format json: raw Basic
    login = cli_login(child_env).result
    assert login.code == 1 and "not properly encoded" in login.err, login.err


@pytest.mark.parametrize(
    ("client_id", "secret", "form", "raw"),
    [
        ("cid", "s:e/c+r=t", False, b"cid:s:e/c+r=t"),
        ("cid", "s:e/c+r=t", True, b"cid:s%3Ae%2Fc%2Br%3Dt"),
        ("app:1", "100% sure", True, b"app%3A1:100%25+sure"),
        ("cid", "ümlaut€", True, b"cid:%C3%BCmlaut%E2%82%AC"),
        ("cid", "ümlaut€", False, "cid:ümlaut€".encode()),
    ],
)
def test_basic_credentials_per_mode(client_id: str, secret: str, form: bool, raw: bytes) -> None:
    header = basic_credentials(client_id, secret, form_encoded=form)
    assert base64.b64decode(header.removeprefix("Basic ")) == raw
