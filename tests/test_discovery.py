"""``profile add --issuer``: RFC 8414 / OpenID metadata, checked, capped, and turned into profile fields."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.cli import call
from support.signin import cli_login

from zephr_desktop.config import load_profiles
from zephr_desktop.discovery import (
    MAX_METADATA,
    Answer,
    Metadata,
    discover,
    http_get,
    settings_from,
    well_known_urls,
)
from zephr_desktop.errors import DiscoveryError, NetworkError
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox

ISSUER = "https://auth.example.com"
RFC = "https://auth.example.com/.well-known/oauth-authorization-server"
OIDC = "https://auth.example.com/.well-known/openid-configuration"
GOOD = {
    "issuer": ISSUER,
    "authorization_endpoint": "https://auth.example.com/oauth2/authorize",
    "token_endpoint": "https://auth.example.com/oauth2/token",
    "response_types_supported": ["code"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
}


class FakeWeb:
    """Answers by URL; records what was asked."""

    def __init__(self, pages: dict[str, Answer | Exception]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    def __call__(self, url: str, *, name: str, setting: str) -> Answer:
        self.asked.append(url)
        page = self.pages.get(url, Answer(url, 404, {"content-type": "text/html"}, b"<h1>Not found</h1>"))
        if isinstance(page, Exception):
            raise page
        return page


def json_answer(url: str, value: Any, status: int = 200) -> Answer:
    return Answer(url, status, {"content-type": "application/json"}, json.dumps(value).encode())


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        ("https://auth.example.com", [RFC, OIDC]),
        ("https://auth.example.com/", [RFC, OIDC]),
        # RFC 8414 3.1 inserts the well-known part before the issuer's path; OpenID appends it.
        ("https://sso.example.com/realms/news",
         ["https://sso.example.com/.well-known/oauth-authorization-server/realms/news",
          "https://sso.example.com/realms/news/.well-known/openid-configuration"]),
        ("https://tenant.example.com/", ["https://tenant.example.com/.well-known/oauth-authorization-server",
                                         "https://tenant.example.com/.well-known/openid-configuration"]),
    ],
)  # fmt: skip
def test_well_known_urls(issuer: str, urls: list[str]) -> None:
    assert well_known_urls(issuer) == urls


@pytest.mark.parametrize(
    ("pages", "asked"),
    [
        ({RFC: json_answer(RFC, GOOD)}, [RFC]),
        ({OIDC: json_answer(OIDC, GOOD)}, [RFC, OIDC]),  # RFC 8414's 404s: OpenID's is used
        # A site that answers every path with its web page (200 HTML) is not metadata.
        ({RFC: Answer(RFC, 200, {"content-type": "text/html"}, b"<html>app</html>"), OIDC: json_answer(OIDC, GOOD)},
         [RFC, OIDC]),
        ({RFC: json_answer(RFC, ["not", "an", "object"]), OIDC: json_answer(OIDC, GOOD)}, [RFC, OIDC]),
    ],
)  # fmt: skip
def test_discover_reads_the_first_usable_document(pages: dict[str, Answer], asked: list[str]) -> None:
    web = FakeWeb(pages)  # type: ignore[arg-type]
    meta = discover(ISSUER, fetch=web)
    assert web.asked == asked
    assert meta == Metadata(ISSUER, asked[-1], GOOD["authorization_endpoint"], GOOD["token_endpoint"],
                            ("client_secret_basic", "client_secret_post"))  # fmt: skip


@pytest.mark.parametrize(
    ("issuer", "pages", "words"),
    [
        ("http://auth.example.com", {}, ["--issuer", "https"]),
        ("https://auth.example.com/?tenant=x", {}, ["--issuer", "query"]),
        ("https://auth.example.com/a b", {}, ["--issuer", "may not hold"]),
        (ISSUER, {}, [f"No authorization server metadata found for {ISSUER}", f"{RFC} answered 404",
                      f"{OIDC} answered 404", "--authorize-url and --token-url"]),
        (ISSUER, {RFC: Answer(RFC, 200, {"content-type": "text/html"}, b"<!doctype html><p>hi"),
                  OIDC: Answer(OIDC, 200, {"content-type": "text/plain"}, b"hello")},
         ["answered with an HTML page, not JSON", "answered with something that is not JSON"]),
        (ISSUER, {RFC: Answer(RFC, 302, {"location": "https://auth.example.com/login"})},
         ["answered 302 (a redirect to https://auth.example.com/login)"]),
        (ISSUER, {RFC: Answer(RFC, 200, {}, b"{" * 10, truncated=True)}, [f"over {MAX_METADATA // 1024} KB"]),
        # RFC 8414 3.3: the issuer must be exactly the one given.
        (ISSUER, {RFC: json_answer(RFC, {**GOOD, "issuer": "https://evil.example.net"})},
         ["names issuer 'https://evil.example.net', not 'https://auth.example.com'", "section 3.3",
          "nothing was saved", "--issuer https://evil.example.net"]),
        ("https://auth.example.com/", {RFC: json_answer(RFC, GOOD)},
         ["names issuer 'https://auth.example.com', not 'https://auth.example.com/'"]),
        (ISSUER, {RFC: json_answer(RFC, {k: v for k, v in GOOD.items() if k != "issuer"})}, ["names no issuer"]),
        (ISSUER, {RFC: json_answer(RFC, {**GOOD, "issuer": "https://x.example.com\x1b[2J\nfake line"})},
         ["names issuer 'https://x.example.com [2J fake line'"]),
        (ISSUER, {RFC: json_answer(RFC, {**GOOD, "response_types_supported": ["token", "id_token"]})},
         ["does not offer the authorization-code flow"]),
    ],
)  # fmt: skip
def test_discover_errors_say_what_and_where(issuer: str, pages: dict[str, Answer], words: list[str]) -> None:
    with pytest.raises(DiscoveryError) as info:
        discover(issuer, fetch=FakeWeb(pages))  # type: ignore[arg-type]
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "\n" not in message and "\x1b" not in message


def test_an_unreachable_issuer_is_a_network_error_at_once() -> None:
    web = FakeWeb({RFC: NetworkError("Cannot reach the issuer's metadata ...")})
    with pytest.raises(NetworkError):
        discover(ISSUER, fetch=web)
    assert web.asked == [RFC]  # the other URL is on the same host


META = Metadata(ISSUER, RFC, GOOD["authorization_endpoint"], GOOD["token_endpoint"])


@pytest.mark.parametrize(
    ("methods", "given", "expected", "note"),
    [
        (("client_secret_basic",), {}, {"token_format": "form", "client_auth": "basic"}, "client_secret_basic"),
        (("client_secret_post", "client_secret_basic"), {}, {"client_auth": "basic"}, "client_secret_basic"),
        (("client_secret_post",), {}, {"client_auth": "body"}, "client_secret_post"),
        (("none",), {}, {"client_auth": "body"}, "public clients"),
        (("private_key_jwt",), {"client_auth": "basic"}, {"client_auth": "basic"}, "client_auth: basic (given)"),
        (("client_secret_basic",), {"token_format": "json"}, {"token_format": "json"}, "token_format: json (given)"),
        (("client_secret_basic",), {"token_url": "https://other.example.com/token"},
         {"token_url": "https://other.example.com/token", "authorize_url": GOOD["authorization_endpoint"]},
         "token_url: https://other.example.com/token (given)"),
        (("client_secret_basic",), {"authorize_url": "https://other.example.com/auth"},
         {"authorize_url": "https://other.example.com/auth", "token_url": GOOD["token_endpoint"]},
         "authorize_url: https://other.example.com/auth (given)"),
    ],
)  # fmt: skip
def test_settings_from_metadata(
    methods: tuple[str, ...], given: dict[str, str], expected: dict[str, str], note: str
) -> None:
    meta = Metadata(ISSUER, RFC, GOOD["authorization_endpoint"], GOOD["token_endpoint"], methods)
    found = settings_from(meta, **given)
    assert {k: found.fields[k] for k in expected} == expected
    assert set(found.fields) == {"authorize_url", "token_url", "token_format", "client_auth"}
    assert any(note in line for line in found.notes), found.notes
    assert len(found.notes) == 4  # one line per setting


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (Metadata(ISSUER, RFC, None, GOOD["token_endpoint"]), ["has no authorization_endpoint", "--authorize-url"]),
        (Metadata(ISSUER, RFC, GOOD["authorization_endpoint"], None), ["has no token_endpoint", "--token-url"]),
        (Metadata(ISSUER, RFC, "http://auth.example.com/authorize", GOOD["token_endpoint"]),
         ["authorization_endpoint that cannot be used", "https"]),
        (Metadata(ISSUER, RFC, GOOD["authorization_endpoint"], "https://auth.example.com/token?x=1"),
         ["token_endpoint that cannot be used"]),
        (Metadata(ISSUER, RFC, GOOD["authorization_endpoint"], GOOD["token_endpoint"], ("private_key_jwt",)),
         ["only by private_key_jwt", "--client-auth"]),
    ],
)  # fmt: skip
def test_settings_from_unusable_metadata(meta: Metadata, words: list[str]) -> None:
    with pytest.raises(DiscoveryError) as info:
        settings_from(meta)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_explicit_endpoints_make_missing_ones_in_the_metadata_fine() -> None:
    meta = Metadata(ISSUER, RFC, None, None)
    found = settings_from(meta, authorize_url="https://a.example.com/auth", token_url="https://a.example.com/t")
    assert found.fields["authorize_url"] == "https://a.example.com/auth"


# -- the cap on what is read, against a real socket --------------------------------------------------
class _Huge(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({**GOOD, "issuer": self.server.issuer, "padding": "x" * (MAX_METADATA + 10)}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.endswith("oauth-authorization-server"):
            self.send_header("Content-Length", str(len(body)))  # declared: not read at all
        else:
            self.send_header("Connection", "close")  # undeclared: read up to the cap only
        self.end_headers()
        self.wfile.write(body)
        self.server.sent += 1  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def huge() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    server.issuer = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    server.sent = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_oversized_metadata_is_refused(huge: ThreadingHTTPServer) -> None:
    issuer = huge.issuer  # type: ignore[attr-defined]
    answer = http_get(issuer + "/.well-known/openid-configuration", name="the metadata", setting="issuer URL")
    assert answer.truncated and len(answer.body) == MAX_METADATA
    with pytest.raises(DiscoveryError, match=f"over {MAX_METADATA // 1024} KB.*over {MAX_METADATA // 1024} KB"):
        discover(issuer)


def test_an_issuer_where_nothing_listens(free_port: int) -> None:
    with pytest.raises(NetworkError) as info:
        discover(f"http://127.0.0.1:{free_port}")
    assert "connection refused" in str(info.value) and "issuer URL" in str(info.value)


# -- the CLI against the sandbox's RFC mode ------------------------------------------------------------
@pytest.fixture
def rfc_sandbox(sandbox: Sandbox) -> Sandbox:
    """The suite's sandbox (conftest.py), as an RFC 6749 server that publishes its metadata."""
    sandbox.settings.mode = "rfc"
    return sandbox


def test_profile_add_issuer_then_sign_in(child_env: dict[str, str], rfc_sandbox: Sandbox) -> None:
    r = call(child_env, "profile", "add", "rfc", "--issuer", rfc_sandbox.url, "--client-id", DEFAULT_CLIENT_ID,
             "--redirect-uri", "http://127.0.0.1:0/callback", "--client-secret-stdin",
             stdin=DEFAULT_CLIENT_SECRET + "\n")  # fmt: skip
    assert (r.code, r.out) == (0, ""), r.err
    assert f"Read the server's metadata from {rfc_sandbox.url}/.well-known/oauth-authorization-server" in r.err
    assert f"token_url: {rfc_sandbox.token_url} (from the metadata)" in r.err
    assert "token_format: form" in r.err and "client_auth: basic (the server supports client_secret_basic)" in r.err
    assert "Register this redirect URI for the client on the authorization server" in r.err
    profile = load_profiles().profiles["rfc"]
    assert (profile.site_url, profile.token_url) == (rfc_sandbox.url, rfc_sandbox.token_url)
    assert (profile.token_format, profile.client_auth) == ("form", "basic")
    shown = json.loads(call(child_env, "profile", "show", "rfc").out)
    assert shown["authorize_url"] == rfc_sandbox.authorize_url

    result, _, url = cli_login(child_env)
    assert url.startswith(rfc_sandbox.authorize_url + "?"), url
    assert result.code == 0, result.err
    request = rfc_sandbox.token_requests[-1]
    assert request["content_type"] == "application/x-www-form-urlencoded" and request["authorization"] == "basic"


def test_profile_add_issuer_refuses_zephr_mode_sandbox(child_env: dict[str, str], sandbox: Sandbox) -> None:
    r = call(child_env, "profile", "add", "z", "--issuer", sandbox.url, "--client-id", DEFAULT_CLIENT_ID)
    assert (r.code, r.out) == (1, "")
    assert "No authorization server metadata found" in r.err and "answered 404" in r.err
    assert "Traceback" not in r.err and load_profiles().profiles == {}


def test_profile_add_needs_a_site_or_an_issuer(child_env: dict[str, str]) -> None:
    r = call(child_env, "profile", "add", "x", "--client-id", "abc")
    assert r.code == 2 and "--site URL" in r.err and "--issuer URL" in r.err
