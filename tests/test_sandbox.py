"""The Zephr sandbox over real loopback sockets, with requests as the client."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPSConnection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import pytest
import requests
from support import evidence

from zephr_desktop.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FAULTS,
    TEST_USERS,
    Client,
    Sandbox,
    SandboxSettings,
    main,
)

REDIRECT = "http://127.0.0.1:8765/callback"
READ = "user.account:read user.profile:read"
ALL = "user.account:read user.profile:read user.profile:update"
CODE = re.compile(r"[a-z0-9]{24}")
T = 5  # seconds: every request has a deadline


# --- helpers -----------------------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    """A verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The raw Basic header, as curl -u builds it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def auth_params(challenge: str | None = None, **overrides: str) -> dict[str, str]:
    """A valid authorization request for the default client."""
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": READ,
        "state": "st-" + secrets.token_hex(4),
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | overrides


def sign_in(sb: Sandbox, http: requests.Session, email: str = "joe@example.com") -> None:
    """Sign the session in through the login form."""
    form = {"email": email, "password": TEST_USERS[email]["password"], "next": "/zephr/oauth2/config"}
    r = http.post(f"{sb.url}/zephr/login", data=form, allow_redirects=False, timeout=T)
    assert r.status_code == 302, r.text


def grant(sb: Sandbox, http: requests.Session, params: dict[str, str], allow: bool = True) -> requests.Response:
    """The consent page's POST."""
    return http.post(f"{sb.url}/zephr/oauth2/grant", json={**params, "allow": allow}, timeout=T)


def new_code(
    sb: Sandbox, http: requests.Session, scope: str = READ, **overrides: str
) -> tuple[str, str, dict[str, str]]:
    """A fresh code (with PKCE): code, verifier, the request's params."""
    verifier, challenge = pkce()
    params = auth_params(challenge, scope=scope, **overrides)
    r = grant(sb, http, params)
    assert r.status_code == 200, r.text
    return r.json()["code"], verifier, params


def exchange(
    sb: Sandbox, code: str, verifier: str | None, redirect_uri: str = REDIRECT, **kw: Any
) -> requests.Response:
    """Zephr's token request: JSON body, raw Basic credentials."""
    body = {"code": code, "redirect_uri": redirect_uri, "grant_type": "authorization_code"}
    if verifier is not None:
        body["code_verifier"] = verifier
    kw.setdefault("headers", basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))
    kw.setdefault("json", body)
    return requests.post(sb.token_url, timeout=T, **kw)


def token_for(sb: Sandbox, http: requests.Session, scope: str = READ) -> dict[str, Any]:
    """A complete token response for the signed-in session's user."""
    code, verifier, _ = new_code(sb, http, scope)
    r = exchange(sb, code, verifier)
    assert r.status_code == 200, r.text
    return dict(r.json())


def refresh(sb: Sandbox, refresh_token: str, headers: dict[str, str] | None = None) -> requests.Response:
    """Zephr's refresh request: exactly grant_type and refresh_token."""
    body = {"refresh_token": refresh_token, "grant_type": "refresh_token"}
    auth = headers if headers is not None else basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    return requests.post(sb.token_url, json=body, headers=auth, timeout=T)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A sandbox with default (strict) settings."""
    with Sandbox(settings=SandboxSettings()) as sandbox:
        yield sandbox


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def joe(sb: Sandbox, http: requests.Session) -> requests.Session:
    """A session signed in as joe@example.com."""
    sign_in(sb, http)
    return http


# --- the whole flow -----------------------------------------------------------------------------
def test_full_scripted_flow(sb: Sandbox, http: requests.Session) -> None:
    verifier, challenge = pkce()
    params = auth_params(challenge)
    r = http.get(f"{sb.url}/zephr/oauth2", params=params, allow_redirects=False, timeout=T)
    assert r.status_code == 302
    login_url = r.headers["Location"]
    assert login_url.startswith("/zephr/login?")
    page = http.get(sb.url + login_url, timeout=T)
    assert page.status_code == 200
    for marker in ('id="email"', 'id="password"', 'id="sign-in"', "joe@example.com", "ada@example.com"):
        assert marker in page.text
    # Posting to the login URL itself carries `next` in the query string.
    form = {"email": "joe@example.com", "password": "zephr-sandbox"}
    r = http.post(sb.url + login_url, data=form, allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"].startswith("/zephr/oauth2?")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("blaize_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = http.get(sb.url + r.headers["Location"], allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"].startswith("/zephr/oauth2/authorize-consent?")
    assert query_of(r.headers["Location"]) == params
    page = http.get(sb.url + r.headers["Location"], timeout=T)
    assert page.status_code == 200
    for marker in ('id="allow"', 'id="deny"', "Zephr Desktop (sandbox)", "See your profile", "Joe Blow"):
        assert marker in page.text
    r = grant(sb, http, params)
    assert r.status_code == 200
    assert r.json()["state"] == params["state"] and CODE.fullmatch(r.json()["code"])
    r = exchange(sb, r.json()["code"], verifier)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Content-Type"] == "application/json"
    token = r.json()
    assert list(token) == ["scope", "access_token", "token_type", "expires_in", "refresh_token", "user_id"]
    assert token["scope"] == "user.account:read, user.profile:read"
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    assert token["access_token"].startswith("oa_") and CODE.fullmatch(token["access_token"][3:])
    assert CODE.fullmatch(token["refresh_token"])
    assert token["user_id"] == TEST_USERS["joe@example.com"]["user_id"]
    assert sb.issued == [token]
    assert sb.token_requests == [
        {
            "content_type": "application/json",
            "authorization": "basic",
            "keys": ["code", "code_verifier", "grant_type", "redirect_uri"],
            "grant_type": "authorization_code",
            "query_keys": [],
        }
    ]
    stats = sb.stats
    assert (stats["authorize"], stats["grant"], stats["token_authorization_code"], stats["token_errors"]) == (
        2,
        1,
        1,
        0,
    )
    consent = http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T)
    assert consent.json() == {"consent": ["user.account:read", "user.profile:read"]}


def test_pages_are_self_contained_and_locked_down(sb: Sandbox, joe: requests.Session) -> None:
    r = joe.get(f"{sb.url}/zephr/oauth2/authorize-consent", params=auth_params(), timeout=T)
    csp = r.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in r.text
    assert "frame-ancestors 'none'" in csp and r.headers["Referrer-Policy"] == "no-referrer"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)
    assert "prefers-color-scheme: dark" in r.text


def test_request_values_are_escaped_in_pages(sb: Sandbox, joe: requests.Session) -> None:
    evil = "</script><img src=x onerror=alert(1)>"
    page = joe.get(f"{sb.url}/zephr/oauth2/authorize-consent", params=auth_params(state=evil), timeout=T)
    assert page.status_code == 200 and evil not in page.text
    error = joe.get(f"{sb.url}/zephr/oauth2/error", params={"error": evil, "error_description": evil}, timeout=T)
    assert error.status_code == 200 and evil not in error.text and "&lt;/script&gt;" in error.text


# --- authorization endpoint ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"client_id": ""},
        {"redirect_uri": "http://127.0.0.1:9999/callback"},
        {"redirect_uri": "http://127.0.0.1:8765/callback/"},
        {"redirect_uri": "http://localhost:8765/callback"},
        {"redirect_uri": ""},
    ],
    ids=["unknown-client", "no-client", "other-port", "trailing-slash", "other-host", "no-redirect"],
)
def test_untrusted_authorization_requests_are_not_redirected(
    sb: Sandbox, http: requests.Session, overrides: dict[str, str]
) -> None:
    r = http.get(f"{sb.url}/zephr/oauth2", params=auth_params(**overrides), allow_redirects=False, timeout=T)
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": ""}, "invalid_request"),
        ({"state": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "user.account:read admin"}, "invalid_scope"),
        ({"scope": "user.account:read,user.profile:read"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "x" * 43}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
    ids=["no-scope", "no-state", "token", "unknown-scope", "comma-scopes", "plain", "no-method", "short", "no-chal"],
)
def test_authorization_errors_go_back_to_the_redirect_uri(
    sb: Sandbox, http: requests.Session, overrides: dict[str, str], error: str
) -> None:
    params = auth_params(**overrides)
    r = http.get(f"{sb.url}/zephr/oauth2", params=params, allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT + "?")
    back = query_of(r.headers["Location"])
    assert back["error"] == error and back["error_description"]
    assert back.get("state") == (params["state"] or None)


def test_repeated_parameter_is_invalid_request(sb: Sandbox, http: requests.Session) -> None:
    query = urlencode(auth_params()) + "&scope=user.profile:update"
    r = http.get(f"{sb.url}/zephr/oauth2?{query}", allow_redirects=False, timeout=T)
    assert r.status_code == 302 and query_of(r.headers["Location"])["error"] == "invalid_request"


def test_signed_in_user_goes_straight_to_consent(sb: Sandbox, joe: requests.Session) -> None:
    r = joe.get(f"{sb.url}/zephr/oauth2", params=auth_params(), allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"].startswith("/zephr/oauth2/authorize-consent?")


@pytest.mark.parametrize(
    ("any_port", "uri", "ok"),
    [
        (False, "http://127.0.0.1:8765/callback", True),
        (False, "http://127.0.0.1:40123/callback", False),
        (True, "http://127.0.0.1:40123/callback", True),
        (True, "http://localhost:40123/callback", False),
        (True, "http://127.0.0.1:40123/other", False),
        (True, "https://127.0.0.1:40123/callback", False),
    ],
)
def test_loopback_redirect_port_rule(sb: Sandbox, joe: requests.Session, any_port: bool, uri: str, ok: bool) -> None:
    sb.settings.loopback_any_port = any_port
    r = joe.get(f"{sb.url}/zephr/oauth2", params=auth_params(redirect_uri=uri), allow_redirects=False, timeout=T)
    assert (r.status_code == 302) is ok
    if ok:  # and the code is bound to that exact URI
        code, verifier, _ = new_code(sb, joe, redirect_uri=uri)
        assert exchange(sb, code, verifier, redirect_uri=REDIRECT if uri != REDIRECT else uri + "/").status_code == 400
        code, verifier, _ = new_code(sb, joe, redirect_uri=uri)
        assert exchange(sb, code, verifier, redirect_uri=uri).status_code == 200


# --- login, consent, grant -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("email", "password"),
    [("joe@example.com", "wrong"), ("nobody@example.com", "zephr-sandbox"), ("joe@example.com", "")],
)
def test_wrong_password_shows_the_form_again(sb: Sandbox, http: requests.Session, email: str, password: str) -> None:
    r = http.post(f"{sb.url}/zephr/login", data={"email": email, "password": password, "next": "/x"}, timeout=T)
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert 'id="error"' in r.text and 'id="sign-in"' in r.text


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "http://evil.example/"],
)
def test_login_never_redirects_off_site(sb: Sandbox, http: requests.Session, next_url: str) -> None:
    form = {"email": "joe@example.com", "password": "zephr-sandbox", "next": next_url}
    r = http.post(f"{sb.url}/zephr/login", data=form, allow_redirects=False, timeout=T)
    assert r.status_code == 200 and "Location" not in r.headers and "Signed in" in r.text


def test_login_accepts_same_origin_absolute_next(sb: Sandbox, http: requests.Session) -> None:
    form = {"email": "ada@example.com", "password": "zephr-sandbox", "next": f"{sb.url}/zephr/oauth2/config?a=1"}
    r = http.post(f"{sb.url}/zephr/login", data=form, allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"] == "/zephr/oauth2/config?a=1"


def test_popup_sign_in_gives_the_session_and_tells_the_opener(sb: Sandbox, http: requests.Session) -> None:
    login = http.get(f"{sb.url}/zephr/login?next=/zephr/oauth2/config", timeout=T)
    assert 'id="popup-sign-in"' in login.text and "window.open('/zephr/popup-id'" in login.text
    form = http.get(f"{sb.url}/zephr/popup-id", timeout=T)
    assert form.status_code == 200 and 'id="continue"' in form.text and 'action="/zephr/popup-id"' in form.text
    wrong = http.post(f"{sb.url}/zephr/popup-id", data={"email": "joe@example.com", "password": "no"}, timeout=T)
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers and 'id="error"' in wrong.text
    assert http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T).status_code == 401
    done = http.post(f"{sb.url}/zephr/popup-id", data={"email": "joe@example.com", "password": "zephr-sandbox"},
                     timeout=T)  # fmt: skip
    assert done.status_code == 200 and "HttpOnly" in done.headers["Set-Cookie"]
    assert "window.opener.postMessage({ type: 'zephr-popup-signed-in' }, window.location.origin)" in done.text
    assert "window.close()" in done.text
    # The cookie the popup got is the site's session: the opener, sharing it, is signed in.
    assert http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T).status_code == 200


def test_grant_needs_a_session_and_json(sb: Sandbox, http: requests.Session) -> None:
    assert grant(sb, http, auth_params()).status_code == 401
    assert grant(sb, http, auth_params()).json() == {"error": "unauthorized"}
    sign_in(sb, http)
    form = http.post(f"{sb.url}/zephr/oauth2/grant", data={**auth_params(), "allow": "true"}, timeout=T)
    assert form.status_code == 415
    bad = grant(sb, http, auth_params(redirect_uri="http://127.0.0.1:1/cb"))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    no_allow = http.post(f"{sb.url}/zephr/oauth2/grant", json=auth_params(), timeout=T)
    assert no_allow.status_code == 400
    http.post(f"{sb.url}/zephr/logout", data={"next": "/"}, timeout=T)
    assert grant(sb, http, auth_params()).status_code == 401


@pytest.mark.parametrize(("allow", "auto_deny"), [(False, False), (True, True), (False, True)])
def test_deny_answers_access_denied(sb: Sandbox, joe: requests.Session, allow: bool, auto_deny: bool) -> None:
    sb.settings.auto_deny = auto_deny
    params = auth_params()
    r = grant(sb, joe, params, allow=allow)
    assert r.status_code == 401 and r.json() == {"state": params["state"], "error": "access_denied"}


def test_consent_api(sb: Sandbox, http: requests.Session) -> None:
    assert http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T).status_code == 401
    sign_in(sb, http)
    assert http.get(f"{sb.url}/zephr/oauth2/consent/", timeout=T).status_code == 400
    assert http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T).json() == {"consent": []}
    new_code(sb, http, scope="user.profile:update")
    new_code(sb, http, scope="user.account:read")
    got = http.get(f"{sb.url}/zephr/oauth2/consent/{DEFAULT_CLIENT_ID}", timeout=T).json()
    assert got == {"consent": ["user.account:read", "user.profile:update"]}
    assert http.get(f"{sb.url}/zephr/oauth2/consent/other", timeout=T).json() == {"consent": []}


def test_config_and_logo(sb: Sandbox, http: requests.Session) -> None:
    config = http.get(f"{sb.url}/zephr/oauth2/config", timeout=T).json()
    assert set(config) >= {"logo_url", "title", "identifier_placeholder", "background_colour"}
    logo = http.get(config["logo_url"], timeout=T)
    assert logo.status_code == 200 and logo.headers["Content-Type"] == "image/svg+xml"


# --- token endpoint strictness ---------------------------------------------------------------------------
def _form_body(sb: Sandbox, code: str, verifier: str) -> requests.Response:
    data = {"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": verifier}
    return requests.post(sb.token_url, data=data, headers=basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=T)


def _urlencoded_basic(sb: Sandbox, code: str, verifier: str) -> requests.Response:
    headers = basic(quote_plus(DEFAULT_CLIENT_ID), quote_plus(DEFAULT_CLIENT_SECRET))
    return exchange(sb, code, verifier, headers=headers)


def _secret_in_body(sb: Sandbox, code: str, verifier: str) -> requests.Response:
    body = {"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": verifier}
    body |= {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
    return exchange(sb, code, verifier, headers={}, json=body)


def _body(sb: Sandbox, **body: str) -> requests.Response:
    return requests.post(sb.token_url, json=body, headers=basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=T)


Case = Callable[[Sandbox, str, str], requests.Response]
STRICT: list[tuple[str, Case, int, str]] = [
    ("form-encoded", _form_body, 400, "invalid_request"),
    (
        "no-content-type",
        lambda sb, c, v: exchange(sb, c, v, json=None, data=json.dumps({"code": c})),
        400,
        "invalid_request",
    ),
    (
        "wrong-secret",
        lambda sb, c, v: exchange(sb, c, v, headers=basic(DEFAULT_CLIENT_ID, "nope")),
        401,
        "invalid_client",
    ),
    ("urlencoded-basic", _urlencoded_basic, 401, "invalid_client"),
    (
        "unknown-client",
        lambda sb, c, v: exchange(sb, c, v, headers=basic("who", DEFAULT_CLIENT_SECRET)),
        401,
        "invalid_client",
    ),
    ("no-client-auth", lambda sb, c, v: exchange(sb, c, v, headers={}), 401, "invalid_client"),
    ("secret-in-body", _secret_in_body, 401, "invalid_client"),
    ("bearer-not-basic", lambda sb, c, v: exchange(sb, c, v, headers=bearer("x")), 401, "invalid_client"),
    ("bad-base64", lambda sb, c, v: exchange(sb, c, v, headers={"Authorization": "Basic !!"}), 401, "invalid_client"),
    ("wrong-redirect", lambda sb, c, v: exchange(sb, c, v, redirect_uri=REDIRECT + "/"), 400, "invalid_grant"),
    ("missing-verifier", lambda sb, c, v: exchange(sb, c, None), 400, "invalid_grant"),
    ("bad-verifier", lambda sb, c, v: exchange(sb, c, pkce()[0]), 400, "invalid_grant"),
    ("unknown-code", lambda sb, c, v: exchange(sb, "a" * 24, v), 400, "invalid_grant"),
    (
        "missing-code",
        lambda sb, c, v: _body(sb, redirect_uri=REDIRECT, grant_type="authorization_code"),
        400,
        "invalid_request",
    ),
    ("missing-grant-type", lambda sb, c, v: _body(sb, code=c, redirect_uri=REDIRECT), 400, "invalid_request"),
    ("password-grant", lambda sb, c, v: _body(sb, grant_type="password", username="u"), 400, "unsupported_grant_type"),
    ("json-array", lambda sb, c, v: exchange(sb, c, v, json=[c]), 400, "invalid_request"),
]


@pytest.mark.parametrize(("case", "status", "error"), [s[1:] for s in STRICT], ids=[s[0] for s in STRICT])
def test_token_endpoint_refusals(sb: Sandbox, joe: requests.Session, case: Case, status: int, error: str) -> None:
    code, verifier, _ = new_code(sb, joe)
    r = case(sb, code, verifier)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["error_description"]
    assert r.headers["Content-Type"] == "application/json"
    assert ("Basic" in r.headers.get("WWW-Authenticate", "")) is (status == 401)
    assert sb.issued == [] and sb.stats["token_errors"] == 1


def test_form_body_is_refused_with_a_json_hint(sb: Sandbox, joe: requests.Session) -> None:
    code, verifier, _ = new_code(sb, joe)
    r = _form_body(sb, code, verifier)
    assert r.status_code == 400 and "application/json" in r.json()["error_description"]
    assert exchange(sb, code, verifier).status_code == 200  # a refused request does not burn the code


def test_recorded_shapes_never_hold_values(sb: Sandbox, joe: requests.Session) -> None:
    code, verifier, _ = new_code(sb, joe)
    _form_body(sb, code, verifier)
    shape = sb.token_requests[-1]
    assert shape["content_type"] == "application/x-www-form-urlencoded" and shape["authorization"] == "basic"
    assert shape["keys"] == ["code", "code_verifier", "grant_type", "redirect_uri"]
    dumped = json.dumps(sb.token_requests)
    assert code not in dumped and verifier not in dumped and DEFAULT_CLIENT_SECRET not in dumped


def test_code_is_single_use_and_replay_revokes_its_tokens(sb: Sandbox, joe: requests.Session) -> None:
    code, verifier, _ = new_code(sb, joe)
    first = exchange(sb, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    assert requests.get(f"{sb.url}/blaize/account", headers=bearer(access), timeout=T).status_code == 200
    again = exchange(sb, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert requests.get(f"{sb.url}/blaize/account", headers=bearer(access), timeout=T).status_code == 401
    assert refresh(sb, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_failed_redemption_burns_the_code(sb: Sandbox, joe: requests.Session) -> None:
    code, verifier, _ = new_code(sb, joe)
    assert exchange(sb, code, "v" * 43).status_code == 400
    assert exchange(sb, code, verifier).json()["error"] == "invalid_grant"


def test_code_expires(sb: Sandbox, joe: requests.Session) -> None:
    sb.settings.code_lifetime = 0.2
    code, verifier, _ = new_code(sb, joe)
    time.sleep(0.3)
    r = exchange(sb, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "expired" in r.json()["error_description"]


def test_code_is_bound_to_its_client(sb: Sandbox, joe: requests.Session) -> None:
    sb.register_client(Client("other-app", "other-secret", [REDIRECT], "Other"))
    code, verifier, _ = new_code(sb, joe)
    r = exchange(sb, code, verifier, headers=basic("other-app", "other-secret"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_without_pkce_needs_no_verifier(sb: Sandbox, joe: requests.Session) -> None:
    r = grant(sb, joe, auth_params())
    assert exchange(sb, r.json()["code"], None).status_code == 200


@pytest.mark.parametrize("where", ["query", "body"])
def test_public_client_authenticates_with_client_id(sb: Sandbox, joe: requests.Session, where: str) -> None:
    sb.register_client(Client("public-app", None, [REDIRECT], "Public"))
    code, verifier, _ = new_code(sb, joe, client_id="public-app")
    body = {"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": verifier}
    url = sb.token_url + ("?client_id=public-app" if where == "query" else "")
    if where == "body":
        body["client_id"] = "public-app"
    r = requests.post(url, json=body, timeout=T)
    assert r.status_code == 200, r.text
    assert sb.token_requests[-1]["authorization"] == "none"


def _form_body_urlencoded_basic(sb: Sandbox, code: str, verifier: str) -> requests.Response:
    data = {"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": verifier}
    headers = basic(quote_plus(DEFAULT_CLIENT_ID), quote_plus(DEFAULT_CLIENT_SECRET))
    return requests.post(sb.token_url, data=data, headers=headers, timeout=T)


def _form_body_secret_in_body(sb: Sandbox, code: str, verifier: str) -> requests.Response:
    data = {
        "code": code,
        "redirect_uri": REDIRECT,
        "grant_type": "authorization_code",
        "code_verifier": verifier,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
    }
    return requests.post(sb.token_url, data=data, timeout=T)


@pytest.mark.parametrize(
    "case",
    [_form_body_urlencoded_basic, _form_body_secret_in_body, _urlencoded_basic, _secret_in_body],
    ids=["form+basic", "form+post", "json+basic", "json+post"],
)
def test_rfc_mode_accepts_rfc_clients(sb: Sandbox, joe: requests.Session, case: Case) -> None:
    sb.settings.mode = "rfc"
    code, verifier, _ = new_code(sb, joe)
    r = case(sb, code, verifier)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "bearer"


RFC_BASIC: list[tuple[str, str, int, str]] = [
    # (secret, how the Basic credentials encode it, status, error): RFC 6749 2.3.1 as certified servers read it
    ("a+b", "raw", 401, "invalid_client"),  # '+' reads as a space
    ("100%", "raw", 400, "invalid_request"),  # a bare '%' is not an escape
    ("%zz", "raw", 400, "invalid_request"),
    ("%41", "raw", 401, "invalid_client"),  # decodes to "A"
    ("caf\u00e9", "latin-1", 400, "invalid_request"),  # %E9 alone is not UTF-8
    ("a+b", "encoded", 200, ""),
    ("100%", "encoded", 200, ""),
    ("%41", "encoded", 200, ""),
    ("s p:a/c=e é€", "encoded", 200, ""),
    ("co:lon/sl=ash", "raw", 401, "invalid_client"),  # the client ID's '+' reads as a space too
]


@pytest.mark.parametrize(("secret", "how", "status", "error"), RFC_BASIC)
def test_rfc_mode_reads_basic_credentials_as_rfc_6749_says(
    sb: Sandbox, joe: requests.Session, secret: str, how: str, status: int, error: str
) -> None:
    sb.settings.mode = "rfc"
    sb.register_client(Client("rfc:client+1", secret, [REDIRECT], "RFC client"))
    verifier, challenge = pkce()
    code = grant(sb, joe, auth_params(challenge, client_id="rfc:client+1")).json()["code"]
    if how == "raw":
        header = basic("rfc:client+1", secret)
    elif how == "encoded":
        header = basic(quote_plus("rfc:client+1"), quote_plus(secret))
    else:
        header = basic(quote_plus("rfc:client+1"), quote_plus(secret, encoding="latin-1"))
    data = {"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": verifier}
    r = requests.post(sb.token_url, data=data, headers=header, timeout=T)
    assert r.status_code == status, r.text
    if error:
        assert r.json()["error"] == error
        if status == 400:
            assert "not properly encoded" in r.json()["error_description"]


def test_zephr_mode_reads_basic_credentials_raw(sb: Sandbox, joe: requests.Session) -> None:
    code, verifier, _ = new_code(sb, joe)
    assert exchange(sb, code, verifier).status_code == 200  # the default secret holds ':', '/', '+' and '='


def test_concurrent_exchanges_get_distinct_tokens(sb: Sandbox, joe: requests.Session) -> None:
    codes = [new_code(sb, joe) for _ in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda cv: exchange(sb, cv[0], cv[1]), codes))
    assert all(r.status_code == 200 for r in answers)
    assert len({r.json()["access_token"] for r in answers}) == 12
    assert sb.stats["token_authorization_code"] == 12


# --- refresh ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rotate", "returns", "has_refresh", "old_alive"),
    [(False, False, False, True), (False, True, True, True), (True, False, True, False)],
    ids=["zephr-default", "returns-same", "rotation"],
)
def test_refresh(
    sb: Sandbox, joe: requests.Session, rotate: bool, returns: bool, has_refresh: bool, old_alive: bool
) -> None:
    sb.settings.rotate_refresh_tokens = rotate
    sb.settings.refresh_returns_refresh_token = returns
    first = token_for(sb, joe)
    r = refresh(sb, first["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == READ  # the reference's space-joined form
    assert body["access_token"] != first["access_token"] and body["access_token"].startswith("oa_")
    assert ("refresh_token" in body) is has_refresh
    if returns:
        assert body["refresh_token"] == first["refresh_token"]
    if rotate:
        assert body["refresh_token"] != first["refresh_token"]
        assert refresh(sb, body["refresh_token"]).status_code == 200
    again = refresh(sb, first["refresh_token"])
    assert (again.status_code == 200) is old_alive
    if not old_alive:
        assert again.json()["error"] == "invalid_grant"
    assert sb.issued[1] == body
    assert requests.get(f"{sb.url}/blaize/profile", headers=bearer(body["access_token"]), timeout=T).status_code == 200


@pytest.mark.parametrize(
    ("token", "headers", "error"),
    [
        ("nope", None, "invalid_grant"),
        (None, {"Authorization": "Basic " + base64.b64encode(b"other-app:other-secret").decode()}, "invalid_grant"),
        (None, basic(DEFAULT_CLIENT_ID, "bad"), "invalid_client"),
    ],
    ids=["unknown", "other-client", "bad-secret"],
)
def test_refresh_refusals(
    sb: Sandbox, joe: requests.Session, token: str | None, headers: dict[str, str] | None, error: str
) -> None:
    sb.register_client(Client("other-app", "other-secret", [REDIRECT], "Other"))
    real = token_for(sb, joe)["refresh_token"]
    r = refresh(sb, token or real, headers)
    assert r.json()["error"] == error
    assert r.status_code == (401 if error == "invalid_client" else 400)


def test_refresh_scope_may_only_narrow(sb: Sandbox, joe: requests.Session) -> None:
    rt = token_for(sb, joe)["refresh_token"]
    auth = basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    wide = {"grant_type": "refresh_token", "refresh_token": rt, "scope": ALL}
    assert requests.post(sb.token_url, json=wide, headers=auth, timeout=T).json()["error"] == "invalid_scope"
    narrow = requests.post(sb.token_url, json=wide | {"scope": "user.account:read"}, headers=auth, timeout=T)
    assert narrow.json()["scope"] == "user.account:read"


# --- faults ---------------------------------------------------------------------------------------------------
def _is_json(r: requests.Response) -> bool:
    try:
        r.json()
    except ValueError:
        return False
    return True


FAULT_CHECKS: dict[str, Callable[[requests.Response], bool]] = {
    "invalid_grant": lambda r: r.status_code == 400 and r.json()["error"] == "invalid_grant",
    "400_empty": lambda r: r.status_code == 400 and r.content == b"",
    "invalid_client": lambda r: (
        r.status_code == 401 and r.json()["error"] == "invalid_client" and "Basic" in r.headers["WWW-Authenticate"]
    ),
    "401_html": lambda r: r.status_code == 401 and r.headers["Content-Type"].startswith("text/html"),
    "500": lambda r: r.status_code == 500,
    "502_html": lambda r: r.status_code == 502 and r.headers["Content-Type"].startswith("text/html"),
    "200_non_json": lambda r: r.status_code == 200 and not _is_json(r),
    "200_no_access_token": lambda r: (
        r.status_code == 200 and "access_token" not in r.json() and "token_type" in r.json()
    ),
    "token_type_mac": lambda r: r.status_code == 200 and r.json()["token_type"] == "mac",
    "huge_body": lambda r: r.status_code == 200 and len(r.content) > 1024 * 1024 and "access_token" in r.json(),
}


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "drop"])
def test_faults(sb: Sandbox, joe: requests.Session, fault: str) -> None:
    code, verifier, _ = new_code(sb, joe)
    sb.settings.fault = fault
    r = exchange(sb, code, verifier)
    assert FAULT_CHECKS[fault](r), (r.status_code, r.headers, r.content[:200])
    assert sb.issued == [] and sb.stats["token_errors"] == 1
    sb.settings.fault = None  # a fault answers before the code is looked at: it still works
    assert exchange(sb, code, verifier).status_code == 200


def test_fault_drop_closes_without_an_answer(sb: Sandbox, joe: requests.Session) -> None:
    sb.settings.fault = "drop"
    with pytest.raises(requests.ConnectionError):
        refresh(sb, "anything")
    assert len(sb.token_requests) == 1


def test_delay_trips_a_read_timeout(sb: Sandbox) -> None:
    sb.settings.delay = 0.6
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(sb.token_url, json={}, timeout=(T, 0.2))
    assert time.monotonic() - started < 0.5
    sb.settings.delay = 0.0
    assert refresh(sb, "x").status_code == 400  # the server is fine afterwards


def test_every_fault_name_is_checked() -> None:
    assert set(FAULT_CHECKS) | {"drop"} == set(FAULTS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("fault", "502"), ("mode", "oauth"), ("expires_in", -1), ("expires_in", 1.5), ("delay", -0.1)],
)
def test_settings_refuse_nonsense(field: str, value: object) -> None:
    settings = SandboxSettings()
    with pytest.raises(ValueError):
        setattr(settings, field, value)
    with pytest.raises(ValueError):
        SandboxSettings(**{field: value})  # type: ignore[arg-type]


# --- Public API ------------------------------------------------------------------------------------------------
def test_blaize_account_and_profile(sb: Sandbox, joe: requests.Session) -> None:
    token = token_for(sb, joe, ALL)["access_token"]
    account = requests.get(f"{sb.url}/blaize/account", headers=bearer(token), timeout=T)
    assert account.json() == {
        "identifiers": {"email_address": "joe@example.com"},
        "tracking_id": TEST_USERS["joe@example.com"]["tracking_id"],
        "email_verified": True,
    }
    url = f"{sb.url}/blaize/profile"
    assert requests.get(url, headers=bearer(token), timeout=T).json() == {"first_name": "Joe", "surname": "Blow"}
    patched = requests.patch(url, json={"nickname": "JB", "surname": None}, headers=bearer(token), timeout=T)
    assert patched.json() == {"first_name": "Joe", "nickname": "JB"}
    put = requests.put(url, json={"first_name": "Joseph"}, headers=bearer(token), timeout=T)
    assert put.json() == {"first_name": "Joseph"}
    assert requests.get(url, headers=bearer(token), timeout=T).json() == {"first_name": "Joseph"}
    nested = requests.put(url, json={"a": {"b": 1}}, headers=bearer(token), timeout=T)
    assert nested.status_code == 400
    assert sb.stats["api"] == 6


@pytest.mark.parametrize(
    ("method", "path", "scope", "status"),
    [
        ("GET", "/blaize/account", "user.profile:read", 403),
        ("GET", "/blaize/profile", "user.account:read", 403),
        ("PUT", "/blaize/profile", READ, 403),
        ("PATCH", "/blaize/profile", READ, 403),
        ("GET", "/blaize/account", "user.account:read", 200),
        ("PATCH", "/blaize/profile", "user.profile:update", 200),
    ],
)
def test_blaize_scopes(sb: Sandbox, joe: requests.Session, method: str, path: str, scope: str, status: int) -> None:
    token = token_for(sb, joe, scope)["access_token"]
    r = requests.request(method, sb.url + path, json={"x": "y"}, headers=bearer(token), timeout=T)
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer oa_unknown"}, {"Authorization": "Token abc"}],
    ids=["none", "empty", "unknown", "scheme"],
)
def test_blaize_refuses_bad_tokens(sb: Sandbox, headers: dict[str, str]) -> None:
    r = requests.get(f"{sb.url}/blaize/account", headers=headers, timeout=T)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_token_in_query_string_is_not_accepted(sb: Sandbox, joe: requests.Session) -> None:
    token = token_for(sb, joe)["access_token"]
    assert requests.get(f"{sb.url}/blaize/account?access_token={token}", timeout=T).status_code == 401


def test_access_token_expires(sb: Sandbox, joe: requests.Session) -> None:
    sb.settings.expires_in = 1
    token = token_for(sb, joe)
    assert token["expires_in"] == 1
    assert requests.get(f"{sb.url}/blaize/account", headers=bearer(token["access_token"]), timeout=T).status_code == 200
    time.sleep(1.05)
    r = requests.get(f"{sb.url}/blaize/account", headers=bearer(token["access_token"]), timeout=T)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert refresh(sb, token["refresh_token"]).status_code == 200  # refresh tokens outlive it


# --- HTTP edges --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/favicon.ico", 404),
        ("GET", "/zephr/oauth2/", 404),
        ("GET", "/zephr/oauth2/token", 405),
        ("DELETE", "/blaize/profile", 405),
        ("POST", "/blaize/account", 405),
    ],
)
def test_unknown_paths_and_methods(sb: Sandbox, method: str, path: str, status: int) -> None:
    assert requests.request(method, sb.url + path, timeout=T).status_code == status


def test_bodies_over_one_megabyte_are_refused(sb: Sandbox) -> None:
    big = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
    r = requests.post(sb.token_url, data=big, headers={"Content-Type": "application/json"}, timeout=T)
    assert r.status_code == 413
    assert sb.token_requests == []


def test_chunked_bodies_are_refused(sb: Sandbox) -> None:
    r = requests.post(sb.token_url, data=iter([b"{}"]), headers={"Content-Type": "application/json"}, timeout=T)
    assert r.status_code == 411


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("evil.example:{port}", False),  # DNS rebinding: the attacker's name, pointed at 127.0.0.1
        ("evil.example", False),
        ("127.0.0.1.evil.example:{port}", False),
        ("localhost.:{port}", False),
        ("127.0.0.1:{other}", False),
        ("127.0.0.1", False),  # the port is not 80
        ("joe@127.0.0.1:{port}", False),
        ("", False),
        ("127.0.0.1:{port}", True),
        ("LocalHost:{port}", True),
        ("localhost:{port}", True),
        ("[::1]:{port}", True),
    ],
)
@pytest.mark.reliability("sandbox-host")
def test_a_foreign_host_header_is_refused_on_every_route(sb: Sandbox, host: str, answered: bool) -> None:
    other = sb.port + 1 if sb.port < 65535 else sb.port - 1
    headers = {"Host": host.format(port=sb.port, other=other)}
    with requests.Session() as session:
        sign_in(sb, session)
        code, verifier, _ = new_code(sb, session)
        access = token_for(sb, session)["access_token"]
        cookie = {"Cookie": f"blaize_session={session.cookies['blaize_session']}"}  # whatever Host says
    signed_in = {**headers, **cookie}
    before = sb.stats
    calls = [
        requests.get(f"{sb.url}/zephr/oauth2/config", headers=headers, timeout=T),
        requests.get(
            f"{sb.authorize_url}?{urlencode(auth_params())}", headers=signed_in, allow_redirects=False, timeout=T
        ),
        requests.post(
            f"{sb.url}/zephr/oauth2/grant", json={**auth_params(), "allow": True}, headers=signed_in, timeout=T
        ),
        exchange(sb, code, verifier, headers={**headers, **basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)}),
        requests.get(f"{sb.url}/blaize/account", headers={**headers, **bearer(access)}, timeout=T),
    ]
    statuses = [r.status_code for r in calls]
    if answered:
        assert statuses == [200, 302, 200, 200, 200]
        answered_count = len([s for s in statuses if s < 400])
        evidence.record(host=headers["Host"], foreign=False, routes=len(calls), answered=answered_count)
        return
    assert statuses == [400] * len(calls)
    assert all(r.json()["error"] == "invalid_request" and "Host" in r.json()["error_description"] for r in calls)
    assert sb.stats == before, "a request with a foreign Host reached a route"
    assert access not in "".join(r.text for r in calls)
    evidence.record(
        host=headers["Host"],
        foreign=True,
        routes=len(calls),
        refused=statuses.count(400),
        reached=sb.stats != before,
        leaked=access in "".join(r.text for r in calls),
    )


@pytest.mark.parametrize(
    ("extra", "version", "status"),
    [
        (("Host: evil.example:{port}",), "HTTP/1.1", 400),  # two Host headers, the first one ours
        ((), "HTTP/1.1", 200),
        (None, "HTTP/1.1", 400),  # no Host at all
        (None, "HTTP/1.0", 200),  # HTTP/1.0 may leave it out; browsers never do
    ],
)
def test_host_header_count(sb: Sandbox, extra: tuple[str, ...] | None, version: str, status: int) -> None:
    lines = [f"GET /zephr/oauth2/config {version}", "Connection: close"]
    if extra is not None:
        lines += [f"Host: 127.0.0.1:{sb.port}", *(h.format(port=sb.port) for h in extra)]
    with socket.create_connection(("127.0.0.1", sb.port), timeout=T) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = sock.makefile("rb").read()
    assert answer.split(b" ", 2)[1] == str(status).encode()


def test_only_loopback_hosts() -> None:
    with pytest.raises(ValueError):
        Sandbox(host="0.0.0.0")
    assert main(["--host", "192.0.2.1"]) == 2


def test_stop_frees_the_port_and_ends_kept_alive_connections() -> None:
    sb = Sandbox().start()
    port = sb.port
    with requests.Session() as session:
        assert session.get(f"{sb.url}/zephr/oauth2/config", timeout=T).status_code == 200
        sb.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://127.0.0.1:{port}/zephr/oauth2/config", timeout=T)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=T):
        pass
    with Sandbox(port=port) as again:
        assert again.port == port
        assert requests.get(f"{again.url}/zephr/oauth2/config", timeout=T).status_code == 200
    sb.stop()  # idempotent


def test_tls_mode_serves_https_with_its_certificate() -> None:
    with Sandbox(tls=True) as sb:
        assert sb.url.startswith("https://127.0.0.1:") and sb.cert_path
        cert = Path(sb.cert_path)
        assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert requests.get(f"{sb.url}/zephr/oauth2/config", verify=sb.cert_path, timeout=T).status_code == 200
        localhost = sb.url.replace("127.0.0.1", "localhost")
        assert requests.get(f"{localhost}/zephr/oauth2/config", verify=sb.cert_path, timeout=T).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sb.url}/zephr/oauth2/config", timeout=T)
        # Also under OpenSSL's strict X.509 rules (the default from Python 3.13 on).
        context = ssl.create_default_context(cafile=sb.cert_path)
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        conn = HTTPSConnection("127.0.0.1", sb.port, context=context, timeout=T)
        try:
            conn.request("GET", "/zephr/oauth2/config")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
        with requests.Session() as session:
            form = {"email": "joe@example.com", "password": "zephr-sandbox", "next": "/"}
            r = session.post(f"{sb.url}/zephr/login", data=form, verify=sb.cert_path, allow_redirects=False, timeout=T)
            assert "Secure" in r.headers["Set-Cookie"]
    assert not cert.exists()


def test_tls_mode_survives_a_plain_http_client() -> None:
    with Sandbox(tls=True) as sb:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{sb.port}/zephr/oauth2/config", timeout=T)
        assert requests.get(f"{sb.url}/zephr/oauth2/config", verify=sb.cert_path, timeout=T).status_code == 200


def test_module_runs_in_the_foreground_and_stops_cleanly_on_ctrl_c(child_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop.sandbox", "--port", "0", "--expires-in", "7", "--rotate"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=child_env,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    timer = threading.Timer(10, proc.kill)
    timer.start()
    try:
        while not any("token URL" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        while not any("test users" in line for line in lines) or len(lines) < 9:
            lines.append(proc.stderr.readline())
        banner = "".join(lines)
        url = re.search(r"site URL:\s+(\S+)", banner)
        assert url, banner
        for expected in (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, REDIRECT, "joe@example.com", "ada@example.com"):
            assert expected in banner
        assert "expires_in 7s" in banner and "rotation on" in banner
        assert requests.get(f"{url.group(1)}/zephr/oauth2/config?secret=1", timeout=T).status_code == 200
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait() == 0
    finally:
        timer.cancel()
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in rest
    assert "GET /zephr/oauth2/config 200" in rest and "secret=1" not in rest
