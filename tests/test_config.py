"""Profiles: validation, the TOML file, errors that name file, profile and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import evidence

from zephr_desktop.config import (
    DEFAULT_SCOPES,
    DEFAULT_TOKEN_URL,
    Profile,
    get_profile,
    load_profiles,
    remove_profile,
    save_profile,
    set_default,
)
from zephr_desktop.errors import ConfigError, ProfileNotFoundError
from zephr_desktop.paths import config_file

GOOD = {"name": "news", "site_url": "https://news.example.com/", "client_id": "abc123"}


def test_defaults_and_normalisation() -> None:
    p = Profile.create(**GOOD)
    assert p.site_url == "https://news.example.com"
    assert p.token_url == DEFAULT_TOKEN_URL
    assert p.redirect_uri == "http://127.0.0.1:8765/callback"
    assert p.scopes == DEFAULT_SCOPES
    assert (p.pkce, p.token_format, p.client_auth, p.keep_site_session) == (True, "json", "basic", False)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": "bad name"}, None, "profile name"),
        ({"site_url": "http://news.example.com"}, "site_url", "https"),
        ({"site_url": "ftp://x"}, "site_url", "http(s)"),
        ({"site_url": ""}, "site_url", "URL"),
        ({"token_url": "http://console.example.com/t"}, "token_url", "https"),
        ({"client_id": ""}, "client_id", "client ID"),
        ({"client_id": "has space"}, "client_id", "client ID"),
        ({"redirect_uri": "https://127.0.0.1:8765/cb"}, "redirect_uri", "http://"),
        ({"redirect_uri": "http://0.0.0.0:8765/cb"}, "redirect_uri", "127.0.0.1"),
        ({"redirect_uri": "http://example.com:8765/cb"}, "redirect_uri", "127.0.0.1"),
        ({"redirect_uri": "http://127.0.0.1/cb"}, "redirect_uri", "port"),
        ({"redirect_uri": "http://127.0.0.1:99999/cb"}, "redirect_uri", "port"),
        ({"scopes": ["user.everything"]}, "scopes", "unknown scope"),
        ({"scopes": []}, "scopes", "at least one"),
        ({"token_format": "xml"}, "token_format", "json, form"),
        ({"client_auth": "jwt"}, "client_auth", "basic, body"),
        ({"pkce": "yes"}, "pkce", "true or false"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle", "not a readable file"),
        ({"colour": "red"}, "colour", "unknown setting"),
    ],
)
def test_invalid_fields_name_the_field(change: dict[str, object], field: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Profile.create(**{**GOOD, **change})
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize("site", ["http://127.0.0.1:8780", "http://localhost:1234", "http://[::1]:80"])
def test_plain_http_allowed_for_loopback(site: str) -> None:
    assert Profile.create(**{**GOOD, "site_url": site}).site_url == site


def test_scopes_accept_both_zephr_separators() -> None:
    assert Profile.create(**GOOD, scopes="user.account:read, user.profile:update").scopes == (
        "user.account:read",
        "user.profile:update",
    )


def test_round_trip_and_default(tmp_path: Path) -> None:
    save_profile(Profile.create(**GOOD))
    save_profile(Profile.create(**{**GOOD, "name": "staging", "scopes": ["user.profile:read"]}))
    profiles = load_profiles()
    assert set(profiles.profiles) == {"news", "staging"}
    assert profiles.default == "news"  # the first one added
    assert get_profile().name == "news"
    assert get_profile("staging").scopes == ("user.profile:read",)
    set_default("staging")
    assert get_profile().name == "staging"
    remove_profile("staging")
    assert load_profiles().default is None
    assert get_profile().name == "news"  # the only one left
    assert oct(config_file().stat().st_mode & 0o777) == "0o600"
    assert oct(config_file().parent.stat().st_mode & 0o777) == "0o700"


def test_missing_profile_errors() -> None:
    with pytest.raises(ProfileNotFoundError, match="No profile yet"):
        get_profile()
    save_profile(Profile.create(**GOOD))
    with pytest.raises(ProfileNotFoundError, match=r"No profile named 'nope'.*known: news"):
        get_profile("nope")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not = [valid", "not valid TOML"),
        (
            "[profiles.news]\nsite_url = 'https://n.example.com'\nclient_id = 'a'\nscopes = 'x.y'\n",
            "profile 'news', field 'scopes'",
        ),
        ("[profiles.news]\nsite_url = 'https://n.example.com'\n", "profile 'news', field 'client_id'"),
        ("default = 'ghost'\n", "field 'default'"),
        ("profiles = 3\n", "field 'profiles'"),
        ("extra = 1\n", "field 'extra'"),
    ],
)
def test_malformed_file_names_file_profile_field(text: str, words: str) -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profiles()
    assert str(path) in str(info.value)
    assert words in str(info.value)
    assert path.read_text() == text  # never rewritten behind the person's back


@pytest.mark.parametrize("field", ["site_url", "token_url", "redirect_uri"])
@pytest.mark.parametrize(
    ("tail", "shown"),
    [
        ("/$(touch marker)", "' '"),  # the space: $, ( and ) alone are RFC 3986 sub-delims
        ("/a`id`", "'`'"),
        ('/"quoted"', "'\"'"),
        ("/a{b}", "'{' '}'"),
        ("/a\\b", "'\\\\'"),
        ("/a|b", "'|'"),
        ("/a<b>", "'<' '>'"),
        ("/a\nb", "'\\n'"),
        ("/a\x1b[2Jb", "'\\x1b'"),
        ("/caf\u00e9", "'\\xe9'"),
    ],
)
def test_urls_with_characters_outside_rfc_3986_are_refused(field: str, tail: str, shown: str) -> None:
    base = {"site_url": "https://news.example.com", "token_url": DEFAULT_TOKEN_URL,
            "redirect_uri": "http://127.0.0.1:8765/callback"}[field]  # fmt: skip
    with pytest.raises(ConfigError) as info:
        Profile.create(**{**GOOD, field: base + tail})
    assert info.value.field == field
    assert "characters a URL may not hold" in str(info.value) and shown in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)  # the message itself stays one clean line


@pytest.mark.parametrize("url", ["https://news.example.com/a%2", "https://news.example.com/100%", "https://x.example.com/%zz"])
def test_a_percent_must_start_an_escape(url: str) -> None:
    with pytest.raises(ConfigError, match="does not start a %XX escape") as info:
        Profile.create(**{**GOOD, "site_url": url})
    assert info.value.field == "site_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.com/a$(id)b",  # odd but RFC 3986: the copy formats quote it
        "https://news.example.com/it's;a&b=c!*+,~",
        "https://xn--caf-dma.example.com/%20x",
        "https://[2001:db8::1]:8443/zephr",
    ],
)
def test_odd_but_valid_urls_are_kept(url: str) -> None:
    assert Profile.create(**{**GOOD, "site_url": url}).site_url == url


@pytest.mark.reliability("copy-formats")
def test_a_profiles_file_with_a_shell_command_in_the_site_url_is_refused() -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    text = "[profiles.news]\nsite_url = 'https://news.example.com/$(touch marker)'\nclient_id = 'a'\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profiles()
    assert str(path) in str(info.value) and "profile 'news', field 'site_url'" in str(info.value)
    assert "characters a URL may not hold" in str(info.value)
    assert path.read_text() == text
    evidence.record(refused_by="profiles.toml")
