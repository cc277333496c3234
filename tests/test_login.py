"""The sign-in flow and the refresh rule, with a fake token endpoint at the session seam (no HTTP
to a token server; the loopback listener is real)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from support.fake_session import FakeTokenEndpoint, token_json

from zephr_desktop.errors import InvalidGrantError, NotLoggedInError, ZephrError
from zephr_desktop.login import LoginFlow, ensure_fresh_token, refresh_token_now
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.store import TokenStore

PROFILE = Profile.create(
    name="news", site_url="https://news.example.com", client_id="cid", redirect_uri="http://127.0.0.1:0/callback"
)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "data", notice=lambda _: None)


def _sign_in(flow: LoginFlow, **callback: str) -> tuple[Token | ZephrError, requests.Response]:
    """Start the flow, send the browser's redirect to the listener, and return (wait()'s outcome, the page)."""
    url = flow.start()
    state = parse_qs(urlsplit(url).query)["state"][0]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(flow.wait)
        page = requests.get(f"{flow.redirect_uri}?{urlencode({'state': state, **callback})}", timeout=10)
        try:
            return pending.result(10), page
        except ZephrError as exc:
            return exc, page


def test_a_sign_in_exchanges_the_code_and_saves_the_token(store: TokenStore) -> None:
    fake = FakeTokenEndpoint().answer(token_json(1))
    flow = LoginFlow(PROFILE, "s3cret", store=store, clock=lambda: 1000.0, session_factory=fake)
    token, page = _sign_in(flow, code="c0de")
    assert isinstance(token, Token) and token.access_token == "oa_access1" and token.expires_at == 4600.0
    assert page.status_code == 200 and "Signed in" in page.text
    (call,) = fake.calls
    assert call.client_secret == "s3cret" and call.grant["code"] == "c0de"
    assert call.grant["redirect_uri"] == flow.redirect_uri  # the bound port, not :0
    assert store.load(PROFILE) == token


def test_a_refused_exchange_stores_nothing_and_says_so_on_the_page(store: TokenStore) -> None:
    fake = FakeTokenEndpoint().answer(InvalidGrantError("Zephr refused the grant (400 invalid_grant)."))
    outcome, page = _sign_in(LoginFlow(PROFILE, "s3cret", store=store, session_factory=fake), code="c0de")
    assert isinstance(outcome, InvalidGrantError)
    assert "Sign-in failed" in page.text and "invalid_grant" in page.text
    assert store.load(PROFILE) is None


def test_a_denied_consent_asks_the_token_endpoint_nothing(store: TokenStore) -> None:
    fake = FakeTokenEndpoint()
    outcome, _ = _sign_in(LoginFlow(PROFILE, None, store=store, session_factory=fake), error="access_denied")
    assert isinstance(outcome, ZephrError) and "denied" in outcome.message
    assert fake.calls == [] and store.load(PROFILE) is None


# -- keeping the token fresh -------------------------------------------------------------------------
def _stored(store: TokenStore, expires_at: float, refresh: str | None = "refresh1") -> Token:
    token = Token("oa_access1", "bearer", expires_at, 1000.0, ("user.account:read",), "u1", refresh)
    with store.refresh_lock("news"):
        store.save(PROFILE, token)
    return token


def test_a_fresh_token_is_used_without_a_request(store: TokenStore) -> None:
    old = _stored(store, expires_at=4600.0)
    fake = FakeTokenEndpoint()
    token = ensure_fresh_token(PROFILE, store=store, clock=lambda: 2000.0, session_factory=fake)
    assert token.access_token == old.access_token and token.expires_at == old.expires_at
    assert fake.opened == 0  # nor was the secret store read: the cached token has no refresh token
    assert token.refresh_token is None


def test_a_due_token_is_refreshed_and_saved(store: TokenStore) -> None:
    _stored(store, expires_at=4600.0)
    fake = FakeTokenEndpoint().answer(token_json(2, refresh_token=None))
    new = ensure_fresh_token(PROFILE, store=store, clock=lambda: 4590.0, session_factory=fake)
    assert new.access_token == "oa_access2" and new.refresh_token == "refresh1"  # kept: none came back
    assert fake.calls[0].grant == {"grant_type": "refresh_token", "refresh_token": "refresh1"}
    assert store.load(PROFILE) == new


def test_refresh_now_refreshes_a_fresh_token(store: TokenStore) -> None:
    _stored(store, expires_at=4600.0)
    fake = FakeTokenEndpoint().answer(token_json(2))
    new = refresh_token_now(PROFILE, store=store, session_factory=fake)
    assert new.refresh_token == "refresh2" and store.load(PROFILE) == new


def test_a_failed_refresh_keeps_the_old_token(store: TokenStore) -> None:
    old = _stored(store, expires_at=1.0)
    fake = FakeTokenEndpoint().answer(InvalidGrantError("refused"))
    with pytest.raises(InvalidGrantError):
        ensure_fresh_token(PROFILE, store=store, session_factory=fake)
    assert store.load(PROFILE) == old


def test_no_refresh_token_means_signing_in_again(store: TokenStore) -> None:
    _stored(store, expires_at=1.0, refresh=None)
    fake = FakeTokenEndpoint()
    with pytest.raises(NotLoggedInError, match="gave no refresh token"):
        ensure_fresh_token(PROFILE, store=store, session_factory=fake)
    assert fake.opened == 0


def test_no_token_at_all(store: TokenStore) -> None:
    with pytest.raises(NotLoggedInError, match="zephr-desktop login --profile news"):
        ensure_fresh_token(PROFILE, store=store, session_factory=FakeTokenEndpoint())
