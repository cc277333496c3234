"""The profile and token lifecycle both front ends share: real files in temp dirs, no fakes needed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from support import evidence
from support.cli import call

from zephr_desktop import accounts
from zephr_desktop.config import Profiles, load_profiles
from zephr_desktop.errors import ConfigError, ProfileNotFoundError
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.store import TokenStore

BASE = {"name": "news", "site_url": "https://news.example.com", "client_id": "news-client"}
NEWS = Profile.create(**BASE)
NOW = 1_000_000.0


def token(*, refresh: str | None = "r-1", expires_at: float | None = NOW + 3600) -> Token:
    return Token("oa_access", "bearer", expires_at=expires_at, obtained_at=NOW - 10,
                 scopes=("user.account:read",), user_id="u-1", refresh_token=refresh)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "data", notice=lambda _m: None)


def secrets_on_disk(store: TokenStore) -> dict[str, str]:
    path = store.directory / "secrets.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize(
    ("change", "signed_out"),
    [
        ({"site_url": "https://other.example.com"}, True),
        ({"client_id": "another-client"}, True),
        ({"token_url": "https://auth.example.com/oauth2/token"}, True),
        ({"authorize_url": "https://auth.example.com/oauth2/authorize"}, True),
        ({"authorize_url": "https://news.example.com/zephr/oauth2"}, False),  # Zephr's, as before
        ({"scopes": ["user.profile:read"]}, False),
        ({"scopes": ["openid", "offline_access"]}, False),
        ({"redirect_uri": "http://127.0.0.1:9999/callback"}, False),
        ({"keep_site_session": True}, False),
        ({"pkce": False, "token_format": "form", "client_auth": "body"}, False),
        ({}, False),
    ],
)
def test_tokens_are_dropped_only_when_the_issuer_changes(
    store: TokenStore, change: dict[str, Any], signed_out: bool
) -> None:
    accounts.save(NEWS, store=store, client_secret="s3cret")
    store.save(NEWS, token())
    saved = accounts.save(Profile.create(**{**BASE, **change}), store=store)
    assert (saved.added, saved.signed_out) == (False, signed_out)
    # Asked for the profile as it was: dropped, not merely bound to the old issuer.
    assert (store.load_cached(NEWS) is None) is signed_out
    assert (store.load(NEWS) is None) is signed_out
    assert store.get_client_secret("news") == "s3cret"  # the secret is the client's, not the token's
    assert load_profiles().get("news") == Profile.create(**{**BASE, **change})


def test_a_new_profile_is_added_with_its_secret_and_becomes_the_default_if_first(store: TokenStore) -> None:
    first = accounts.save(Profile.create(**BASE), store=store, client_secret="s3cret")
    assert (first.added, first.signed_out) == (True, False)
    second = accounts.save(Profile.create(**{**BASE, "name": "stage"}), store=store)
    assert second.added and load_profiles().default == "news"
    accounts.save(Profile.create(**{**BASE, "name": "stage"}), store=store, make_default=True)
    assert load_profiles().default == "stage"
    assert store.get_client_secret("news") == "s3cret" and store.get_client_secret("stage") is None


def test_a_changed_secret_alone_keeps_the_tokens(store: TokenStore) -> None:
    accounts.save(NEWS, store=store, client_secret="old")
    store.save(NEWS, token())
    assert accounts.save(NEWS, store=store, client_secret="new").signed_out is False
    assert store.get_client_secret("news") == "new" and store.load(NEWS) == token()


def test_remove_takes_the_profile_its_tokens_session_and_secret(store: TokenStore) -> None:
    for name in ("news", "stage"):
        profile = Profile.create(**{**BASE, "name": name})
        accounts.save(profile, store=store, client_secret=f"secret-{name}")
        store.save(profile, token(refresh=f"refresh-{name}"))
    cookies = store.site_session_dir("news")
    cookies.mkdir(parents=True)
    (cookies / "Cookies").write_text("a live site session")

    accounts.remove("news", store=store)

    assert set(load_profiles().profiles) == {"stage"} and load_profiles().default is None
    assert store.load_cached(NEWS) is None and not cookies.exists()
    assert sorted(secrets_on_disk(store).values()) == ["refresh-stage", "secret-stage"]
    assert store.load(Profile.create(**{**BASE, "name": "stage"})) == token(refresh="refresh-stage")


def test_removing_an_unknown_profile_deletes_nothing(store: TokenStore) -> None:
    accounts.save(NEWS, store=store, client_secret="s3cret")
    ghost = Profile.create(**{**BASE, "name": "ghost"})
    store.save(ghost, token())  # a token file whose profile is not in profiles.toml
    store.set_client_secret("ghost", "kept")
    with pytest.raises(ProfileNotFoundError, match="No profile named 'ghost'"):
        accounts.remove("ghost", store=store)
    assert store.load(ghost) == token() and store.get_client_secret("ghost") == "kept"


@pytest.mark.parametrize(
    ("had_token", "forget_secret", "had", "secret_left"),
    [
        (True, False, True, "s3cret"),
        (True, True, True, None),
        (False, False, False, "s3cret"),
        (False, True, False, None),
    ],
)
def test_sign_out(store: TokenStore, had_token: bool, forget_secret: bool, had: bool, secret_left: str | None) -> None:
    accounts.save(Profile.create(**BASE), store=store, client_secret="s3cret")
    if had_token:
        store.save(NEWS, token())
    assert accounts.sign_out("news", store=store, forget_client_secret=forget_secret) is had
    assert store.load(NEWS) is None
    assert store.get_client_secret("news") == secret_left
    assert "news" in load_profiles().profiles  # signing out keeps the profile


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        (None, {"signed_in": False}),
        (
            token(),
            {"signed_in": True, "user_id": "u-1", "scopes": ["user.account:read"], "token_type": "bearer",
             "expires_at": "1970-01-12T14:46:40Z", "expires_in": 3600, "expired": False, "refresh_available": True},
        ),
        (
            token(refresh=None, expires_at=NOW - 5),
            {"signed_in": True, "user_id": "u-1", "scopes": ["user.account:read"], "token_type": "bearer",
             "expires_at": "1970-01-12T13:46:35Z", "expires_in": 0, "expired": True, "refresh_available": False},
        ),
        (
            token(expires_at=None),
            {"signed_in": True, "user_id": "u-1", "scopes": ["user.account:read"], "token_type": "bearer",
             "expires_at": None, "expires_in": None, "expired": False, "refresh_available": True},
        ),
    ],
)  # fmt: skip
def test_status_says_what_is_known_and_never_a_secret(
    store: TokenStore, saved: Token | None, expected: dict[str, Any]
) -> None:
    profile = Profile.create(**BASE)
    accounts.save(profile, store=store, client_secret="s3cret")
    if saved is not None:
        store.save(profile, saved)
    info = accounts.status(profile, store, now=NOW)
    assert info == {"profile": "news", "site_url": "https://news.example.com", **expected}
    assert not {"oa_access", "r-1", "s3cret"} & set(json.dumps(info).split('"'))


FORM = {"site_url": "https://news.example.com", "client_id": "abc", "scopes": ["user.account:read"]}


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({**FORM, "site_url": "ftp://x.example.com"}, "site_url", "http(s)"),
        ({**FORM, "site_url": "https://news.example.com/$(touch marker)"}, "site_url", "may not hold"),
        ({**FORM, "token_url": "https://t.example.com/a b"}, "token_url", "may not hold"),
        ({**FORM, "client_id": ""}, "client_id", "client ID"),
        ({**FORM, "redirect_uri": "http://example.com:8765/callback"}, "redirect_uri", "127.0.0.1"),
        ({**FORM, "scopes": []}, "scopes", "at least one"),
        ({**FORM, "name": "bad name!"}, "name", "profile name"),
        ({**FORM, "name": "news"}, "name", "already exists"),
        ({**FORM, "name": "renamed", "original_name": "news"}, "name", "cannot be renamed"),
    ],
)
def test_the_settings_form_is_refused_with_the_field_named(form: dict[str, Any], field: str, words: str) -> None:
    existing = Profiles({"news": Profile.create(**BASE)})
    with pytest.raises(ConfigError) as info:
        accounts.profile_from_form(form, existing)
    assert info.value.field == field and words in info.value.detail


def test_the_settings_form_names_a_new_profile_after_its_site_and_keeps_hidden_fields_on_edit() -> None:
    hidden = Profile.create(**BASE, token_format="form", client_auth="body", pkce=False,
                            authorize_url="https://auth.example.com/authorize")  # fmt: skip
    existing = Profiles({"news": hidden})
    added = accounts.profile_from_form({**FORM, "site_url": "https://Stage.Example.com:8443/"}, existing)
    assert added.name == "Stage.Example.com-8443" and added.site_url == "https://stage.example.com:8443"
    edited = accounts.profile_from_form({**FORM, "name": "news", "original_name": "news"}, existing)
    assert (edited.token_format, edited.client_auth, edited.pkce) == ("form", "body", False)
    assert edited.authorize_url == "https://auth.example.com/authorize"
    assert (edited.client_id, edited.scopes) == ("abc", ("user.account:read",))
    other = accounts.profile_from_form({**FORM, "name": "news", "original_name": "news",
                                        "scopes": ["openid", "user.account:read"]}, existing)  # fmt: skip
    assert other.scopes == ("openid", "user.account:read")


# -- the CLI goes through the same rules ------------------------------------------------
SITE = ("--site", "https://news.example.com", "--client-id", "news-client")


def test_profile_add_again_keeps_the_tokens_unless_the_issuer_changed(child_env: dict[str, str]) -> None:
    assert call(child_env, "profile", "add", "news", *SITE, "--client-secret-stdin", stdin="s3cret\n").code == 0
    store = TokenStore(notice=lambda _m: None)
    store.save(NEWS, token())

    again = call(child_env, "profile", "add", "news", *SITE, "--scope", "user.profile:read")
    assert again.code == 0 and "tokens were removed" not in again.err
    assert store.load(NEWS) == token()  # a new scope keeps the token (before, every re-add dropped it)

    other = call(child_env, "profile", "add", "news", "--site", "https://news.example.com", "--client-id", "other")
    assert other.code == 0 and "tokens were removed" in other.err
    assert store.load(NEWS) is None
    assert store.get_client_secret("news") == "s3cret"


@pytest.mark.reliability("copy-formats")
def test_profile_add_refuses_a_shell_command_in_the_site_url(child_env: dict[str, str]) -> None:
    assert call(child_env, "profile", "add", "news", *SITE).code == 0
    before = load_profiles()
    r = call(child_env, "profile", "add", "news", "--site", "https://news.example.com/$(touch marker)",
             "--client-id", "news-client")  # fmt: skip
    assert (r.code, r.out) == (1, "")
    assert "field 'site_url'" in r.err and "characters a URL may not hold" in r.err
    assert load_profiles() == before
    evidence.record(refused_by="`profile add`")


def test_profile_remove_and_logout_go_through_accounts(child_env: dict[str, str]) -> None:
    assert call(child_env, "profile", "add", "news", *SITE, "--client-secret-stdin", stdin="s3cret\n").code == 0
    store = TokenStore(notice=lambda _m: None)
    store.save(NEWS, token())
    assert json.loads(call(child_env, "status", "--json").out)["refresh_available"] is True
    assert call(child_env, "logout").code == 0
    assert store.load(NEWS) is None and store.get_client_secret("news") == "s3cret"
    assert call(child_env, "profile", "remove", "news").code == 0
    assert store.get_client_secret("news") is None and load_profiles().profiles == {}
    assert secrets_on_disk(store) == {}


@pytest.mark.parametrize(
    ("extra", "warned"),
    [
        (("--scope", "openid", "--scope", "user.account:read"), True),
        (("--scope", "user.account:read"), False),
        (("--scope", "openid", "--token-format", "form"), False),  # another server's own scope
    ],
)
def test_profile_add_warns_about_scopes_zephr_does_not_know(
    child_env: dict[str, str], extra: tuple[str, ...], warned: bool
) -> None:
    r = call(child_env, "profile", "add", "news", *SITE, *extra)
    assert (r.code, r.out) == (0, "")
    assert ("Warning: Profile 'news' asks for 'openid', which is not one of Zephr's scopes" in r.err) is warned, r.err
    assert load_profiles().profiles["news"].scopes == tuple(v for k, v in itertools.pairwise(extra) if k == "--scope")
