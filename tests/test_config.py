"""Profiles: validation, the TOML file, errors that name file, profile and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import evidence

from zephr_desktop.config import get_profile, load_profiles, remove_profile, save_profile, set_default
from zephr_desktop.errors import ConfigError, ProfileNotFoundError
from zephr_desktop.paths import config_file
from zephr_desktop.profile import DEFAULT_SCOPES, SCOPES, Profile, unknown_scope_warning, with_changes
from zephr_desktop.urls import DEFAULT_TOKEN_URL, check_redirect_uri, how_redirect_is_received, listens_on_loopback

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
        ({"redirect_uri": "ftp://127.0.0.1:8765/cb"}, "redirect_uri", "https://"),
        ({"redirect_uri": "http://0.0.0.0:8765/cb"}, "redirect_uri", "127.0.0.1"),
        ({"redirect_uri": "http://example.com:8765/cb"}, "redirect_uri", "must use https"),
        ({"redirect_uri": "https://app.example.com:0/cb"}, "redirect_uri", "port 0"),
        ({"redirect_uri": "https://user@app.example.com/cb"}, "redirect_uri", "user name"),
        ({"redirect_uri": "https://app.example.com/cb#top"}, "redirect_uri", "fragment"),
        ({"redirect_uri": "https:///cb"}, "redirect_uri", "host"),
        ({"redirect_uri": "http://127.0.0.1/cb"}, "redirect_uri", "port"),
        ({"redirect_uri": "http://127.0.0.1:99999/cb"}, "redirect_uri", "port"),
        ({"scopes": ['user"quoted']}, "scopes", "is not a scope"),
        ({"scopes": ["user.account:read user.profile:read"]}, "scopes", "list each scope separately"),
        ({"authorize_url": "http://news.example.com/auth"}, "authorize_url", "https"),
        ({"authorize_url": "https://news.example.com/auth#x"}, "authorize_url", "fragment"),
        ({"authorize_url": "https://news.example.com/auth?client_id=x"}, "authorize_url", "client_id"),
        ({"authorize_url": "https://news.example.com/a uth"}, "authorize_url", "characters a URL may not hold"),
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
            "[profiles.news]\nsite_url = 'https://n.example.com'\nclient_id = 'a'\nscopes = 'x\\y'\n",
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


@pytest.mark.parametrize(
    "url", ["https://news.example.com/a%2", "https://news.example.com/100%", "https://x.example.com/%zz"]
)
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


@pytest.mark.parametrize(
    ("uri", "listens"),
    [
        ("http://127.0.0.1:8765/callback", True),
        ("http://[::1]:0/cb", True),
        ("https://thirdpartyurl.com/auth/callback", False),  # as in Zephr's own documents
        ("https://ThirdPartyURL.com:8443/auth/callback?app=1", False),
        ("https://127.0.0.1:8765/callback", False),  # no TLS on the listener: caught in the window
    ],
)
def test_registered_redirect_uris_are_kept_exactly_and_say_how_they_are_received(uri: str, listens: bool) -> None:
    profile = Profile.create(**{**GOOD, "redirect_uri": f"  {uri} "})
    assert profile.redirect_uri == uri  # the server compares redirect URIs as strings
    assert listens_on_loopback(uri) is listens
    how = how_redirect_is_received(uri)
    assert uri in how
    assert ("listens" in how) is listens and ("catches the redirect" in how and "paste" in how) is not listens


def test_the_listener_takes_only_loopback_http() -> None:
    assert check_redirect_uri("http://localhost:0/cb", listener=True) == "http://localhost:0/cb"
    with pytest.raises(ConfigError) as info:
        check_redirect_uri("https://thirdpartyurl.com/auth/callback", listener=True)
    assert "http://" in str(info.value) and info.value.field == "redirect_uri"


# -- scopes: any RFC 6749 scope token; Zephr's three offered, others warned about in Zephr mode ---------
@pytest.mark.parametrize(
    "scopes",
    [
        ["openid", "offline_access"],
        ["openid", "profile", "email", "user.account:read"],
        ["https://graph.microsoft.com/.default"],
        ["api://abc/read", "read:org", "a,b"],  # a comma is a scope character (RFC 6749 section 3.3)
        ["!#$%&'()*+-./:;<=>?@[]^_`{|}~"],  # every punctuation mark a scope may hold
    ],
)
def test_any_rfc_6749_scope_token_is_accepted(scopes: list[str], tmp_path: Path) -> None:
    profile = Profile.create(**GOOD, scopes=scopes)
    assert profile.scopes == tuple(scopes)
    save_profile(profile)
    assert load_profiles().profiles["news"].scopes == tuple(scopes)  # and read back from the file


@pytest.mark.parametrize(
    ("scope", "shown"),
    [
        ('user"quoted', "'user\"quoted'"),
        ("back\\slash", "'back\\\\slash'"),
        ("two words", "'two words'"),
        ("tab\there", "'tab\\there'"),
        ("caf\u00e9", "'caf\\xe9'"),
        ("", "''"),
        ("\x1b[2J", "'\\x1b[2J'"),
    ],
)
def test_scopes_outside_rfc_6749_are_refused(scope: str, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        Profile.create(**GOOD, scopes=["openid", scope])
    assert info.value.field == "scopes"
    assert f"{shown} is not a scope" in str(info.value) and "RFC 6749" in str(info.value)
    assert "\x1b" not in str(info.value) and "\t" not in str(info.value)


def test_a_scope_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigError, match="a int is not a scope"):
        Profile.create(**GOOD, scopes=["openid", 3])


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"scopes": ["user.account:read"]}, None),
        ({"scopes": list(SCOPES)}, None),
        ({"scopes": ["openid", "user.account:read"]}, ["'openid'", "is not one of Zephr's scopes", "invalid_scope"]),
        ({"scopes": ["openid", "offline_access"]}, ["'openid', 'offline_access'", "are not"]),
        ({"scopes": ["user.account:read,user.profile:read"]}, ["two scopes run together"]),
        ({"scopes": ["openid", "offline_access"], "token_format": "form"}, None),  # another server's own scopes
    ],
)
def test_unknown_scopes_get_a_warning_in_zephr_mode_only(fields: dict[str, object], words: list[str] | None) -> None:
    warning = unknown_scope_warning(Profile.create(**GOOD, **fields))
    if words is None:
        assert warning is None
    else:
        assert warning is not None and all(w in warning for w in words), warning
        assert ", ".join(SCOPES) in warning  # and it names the ones Zephr knows


# -- the authorize endpoint ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "stored", "used"),
    [
        (None, None, "https://news.example.com/zephr/oauth2"),
        ("", None, "https://news.example.com/zephr/oauth2"),
        ("https://news.example.com/zephr/oauth2/", None, "https://news.example.com/zephr/oauth2"),  # the default
        ("https://Auth.Example.com/oauth2/authorize/", "https://auth.example.com/oauth2/authorize",
         "https://auth.example.com/oauth2/authorize"),
        ("https://login.example.com/tenant/authorize?p=b2c_1_signin",
         "https://login.example.com/tenant/authorize?p=b2c_1_signin",
         "https://login.example.com/tenant/authorize?p=b2c_1_signin"),
        ("http://127.0.0.1:9000/authorize", "http://127.0.0.1:9000/authorize", "http://127.0.0.1:9000/authorize"),
    ],
)  # fmt: skip
def test_authorize_url_defaults_to_zephrs_endpoint(given: str | None, stored: str | None, used: str) -> None:
    profile = Profile.create(**GOOD, authorize_url=given)
    assert (profile.authorize_url, profile.authorization_endpoint) == (stored, used)
    save_profile(profile)
    again = load_profiles().profiles["news"]
    assert again == profile
    assert ("authorize_url" in config_file().read_text()) == (stored is not None)  # an old file stays as it was


def test_the_default_authorize_url_follows_the_site() -> None:
    moved = with_changes(Profile.create(**GOOD), site_url="https://staging.example.com")
    assert moved.authorization_endpoint == "https://staging.example.com/zephr/oauth2"
    pinned = with_changes(Profile.create(**GOOD, authorize_url="https://auth.example.com/authorize"),
                          site_url="https://staging.example.com")  # fmt: skip
    assert pinned.authorization_endpoint == "https://auth.example.com/authorize"
