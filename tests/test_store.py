"""The token store: file fallback, keyring, atomic token+refresh pairs, permissions."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from zephr_desktop.errors import SecretStoreError, UnsafePathError
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile, with_changes
from zephr_desktop.secret_store import FileBackend, KeyringBackend, MigratingBackend, default_backend
from zephr_desktop.store import TokenStore, take_env_client_secret

NEWS = Profile.create(name="news", site_url="https://news.example.com", client_id="abc123")
OTHER = Profile.create(name="other", site_url="https://other.example.com", client_id="abc123")


def token(n: int, refresh: str | None = "r") -> Token:
    return Token(
        f"oa_access{n}",
        "bearer",
        expires_at=2000.0 + n,
        obtained_at=1000.0,
        scopes=("user.account:read",),
        user_id="u1",
        refresh_token=f"{refresh}{n}" if refresh else None,
    )


def test_file_fallback_says_so_once(tmp_path: Path) -> None:
    said: list[str] = []
    b1 = default_backend(tmp_path, said.append)
    b2 = default_backend(tmp_path, said.append)
    assert isinstance(b1, FileBackend) and isinstance(b2, FileBackend)
    assert len(said) == 1 and "no system keyring" in said[0]


def test_save_load_round_trip_and_permissions(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    loaded = store.load(NEWS)
    assert loaded == token(1)
    cached = store.load_cached(NEWS)
    assert cached is not None and cached.has_refresh
    assert cached.token.refresh_token is None  # the cache file never holds it
    raw = store.token_path("news").read_text()
    assert "r1" not in json.loads(raw).values()
    assert stat.S_IMODE(store.token_path("news").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.token_path("news").parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_replacing_a_token_drops_the_old_refresh_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    store.save(NEWS, token(2))
    secrets = json.loads((tmp_path / "secrets.json").read_text())
    assert list(secrets.values()) == ["r2"]
    assert store.load(NEWS) == token(2)
    assert store.delete("news") is True
    assert store.load(NEWS) is None
    assert json.loads((tmp_path / "secrets.json").read_text()) == {}


def test_token_file_readable_by_others_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    os.chmod(store.token_path("news"), 0o644)
    assert store.load_cached(NEWS) is not None
    assert stat.S_IMODE(store.token_path("news").stat().st_mode) == 0o600
    assert "readable by other users" in caplog.text


def test_damaged_token_file_is_a_clear_error(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.token_path("news").parent.mkdir(parents=True)
    store.token_path("news").write_text("{broken")
    with pytest.raises(SecretStoreError, match=r"damaged.*logout"):
        store.load(NEWS)
    store.save(NEWS, token(3))  # a new sign-in repairs it
    assert store.load(NEWS) == token(3)


def test_client_secret_override_wins_and_the_environment_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.set_client_secret("news", "stored")
    assert store.get_client_secret("news") == "stored"
    monkeypatch.setenv("ZEPHR_CLIENT_SECRET", "from-env")
    assert store.get_client_secret("news") == "stored"  # the store never reads the environment itself
    taken = take_env_client_secret()
    assert taken == "from-env" and "ZEPHR_CLIENT_SECRET" not in os.environ
    assert take_env_client_secret() is None
    overridden = TokenStore(tmp_path, notice=lambda _: None, client_secret_override=taken)
    assert overridden.get_client_secret("news") == "from-env"
    monkeypatch.setenv("ZEPHR_CLIENT_SECRET", "")
    assert take_env_client_secret() is None  # empty means unset


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A usable keyring (file-backed) for the duration of a test."""
    ring = tmp_path / "ring.json"
    monkeypatch.setenv("ZEPHR_TEST_KEYRING_FILE", str(ring))
    import keyring.core

    keyring.core.set_keyring(keyring.core.load_keyring("support.file_keyring.FileKeyring"))
    try:
        yield ring
    finally:
        keyring.core.set_keyring(keyring.core.load_keyring("keyring.backends.fail.Keyring"))


def test_switching_from_file_to_keyring_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = TokenStore(tmp_path / "data", notice=lambda _: None)
    assert isinstance(before.secrets, FileBackend)
    before.set_client_secret("news", "s3cret")
    before.save(NEWS, token(1))
    ring = tmp_path / "ring.json"
    monkeypatch.setenv("ZEPHR_TEST_KEYRING_FILE", str(ring))
    import keyring.core

    keyring.core.set_keyring(keyring.core.load_keyring("support.file_keyring.FileKeyring"))
    try:
        after = TokenStore(tmp_path / "data", notice=lambda _: None)
        assert isinstance(after.secrets, MigratingBackend)
        assert after.get_client_secret("news") == "s3cret"
        assert after.load(NEWS) == token(1)
        assert json.loads((tmp_path / "data" / "secrets.json").read_text()) == {}  # moved, not copied
        assert "s3cret" in ring.read_text() and "r1" in ring.read_text()
        after.save(NEWS, token(2))
        assert after.load(NEWS) == token(2)
    finally:
        keyring.core.set_keyring(keyring.core.load_keyring("keyring.backends.fail.Keyring"))


def test_keyring_backend_keeps_secrets_off_disk(tmp_path: Path, file_keyring: Path) -> None:
    ring = file_keyring
    said: list[str] = []
    store = TokenStore(tmp_path / "data", notice=said.append)
    assert isinstance(store.secrets, KeyringBackend)
    store.set_client_secret("news", "s3cret")
    store.save(NEWS, token(1))
    assert said == []
    assert not (tmp_path / "data" / "secrets.json").exists()
    on_disk = "".join(p.read_text() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert "s3cret" not in on_disk and "r1" not in on_disk
    assert "s3cret" in ring.read_text()
    assert store.load(NEWS) == token(1)


def test_delete_and_tidy_clear_what_killed_saves_left(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    store.save(OTHER, token(2))
    store.secrets.set("news/refresh_token/deadbeef", "orphan")  # stored, then the save was killed
    stale = store.token_path("news").parent / ".news.json.abc123.tmp"
    stale.write_text("half")
    fresh = store.token_path("news").parent / ".news.json.def456.tmp"
    fresh.write_text("a save in progress")
    os.utime(stale, (0, 0))
    with store.refresh_lock("news"):
        assert store.tidy("news") == 2  # the orphan and the old temp file; a recent one may be a live save
    assert fresh.exists() and not stale.exists()
    assert store.load(NEWS) == token(1) and store.load(OTHER) == token(2)
    store.secrets.set("news/refresh_token/cafe", "orphan again")
    assert store.delete("news") is True
    left = json.loads((tmp_path / "secrets.json").read_text())
    assert list(left.values()) == ["r2"]  # only the other profile's live refresh token


def test_delete_forgets_the_kept_site_session(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    cookies = store.site_session_dir("news")
    cookies.mkdir(parents=True)
    (cookies / "Cookies").write_text("session")
    store.delete("news")
    assert not cookies.exists()


def test_an_unchanged_refresh_token_is_not_stored_again(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    before = json.loads((tmp_path / "secrets.json").read_text())
    kept = Token("oa_new", "bearer", expires_at=9000.0, obtained_at=5000.0, refresh_token="r1")
    store.save(NEWS, kept)
    assert json.loads((tmp_path / "secrets.json").read_text()) == before  # same key, same value
    assert store.load(NEWS) == kept
    store.save(NEWS, token(2))  # rotated: a new key, the old one gone
    assert list(json.loads((tmp_path / "secrets.json").read_text()).values()) == ["r2"]


@pytest.mark.parametrize(
    ("saved", "has_refresh"),
    [(token(1), True), (token(1, refresh=None), False)],
)
def test_load_cached_is_a_value_that_says_whether_a_refresh_token_was_kept(
    tmp_path: Path, saved: Token, has_refresh: bool
) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    assert store.load_cached(NEWS) is None
    store.save(NEWS, saved)
    cached = store.load_cached(NEWS)
    assert cached is not None and cached.has_refresh is has_refresh
    assert cached.token == Token(**{**saved.__dict__, "refresh_token": None})
    store.check_refresh_token_reachable(NEWS)  # kept in the store in use (or none at all): no error


def test_a_refresh_token_kept_in_another_secret_store_is_named(tmp_path: Path, file_keyring: Path) -> None:
    in_keyring = TokenStore(tmp_path / "data", notice=lambda _: None)
    in_keyring.save(NEWS, token(1))
    file_only = TokenStore(tmp_path / "data", secrets=FileBackend(tmp_path / "data" / "secrets.json"))
    assert file_only.load(NEWS) == Token(**{**token(1).__dict__, "refresh_token": None})
    with pytest.raises(SecretStoreError, match=r"not in the secret store in use now \(the file store\)"):
        file_only.check_refresh_token_reachable(NEWS)
    in_keyring.check_refresh_token_reachable(NEWS)


class CountingBackend(FileBackend):
    """The file backend, counting reads: a signed-out profile's refresh token is never read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[str] = []

    def get(self, key: str) -> str | None:
        self.reads.append(key)
        return super().get(key)


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("site_url", "https://elsewhere.example.com", "site"),
        ("token_url", "https://elsewhere.example.com/token", "token URL"),
        ("client_id", "another-client", "client ID"),
        ("authorize_url", "https://elsewhere.example.com/authorize", "authorize URL"),
    ],
)
def test_a_token_counts_only_for_the_issuer_it_was_saved_for(
    tmp_path: Path, field: str, value: str, label: str
) -> None:
    secrets = CountingBackend(tmp_path / "secrets.json")
    store = TokenStore(tmp_path, secrets=secrets, notice=lambda _: None)
    store.save(NEWS, token(1))
    assert json.loads(store.token_path("news").read_text())["issuer"] == NEWS.issuer
    edited = with_changes(NEWS, **{field: value})
    secrets.reads.clear()
    assert store.load_cached(edited) is None and store.load(edited) is None
    assert secrets.reads == [], "the refresh token of a signed-out profile was read"
    why = store.signed_out_reason(edited)
    assert why is not None and f"issued for {label} {NEWS.issuer[field]}" in why and value in why
    # Nothing is lost: the profile as it was still has its token, and other edits keep it.
    assert store.load(NEWS) == token(1) and store.signed_out_reason(NEWS) is None
    unrelated = with_changes(NEWS, scopes=["user.profile:read"], redirect_uri="http://127.0.0.1:9/cb")
    assert store.load(unrelated) == token(1)
    # Signing in for the edited profile replaces the pair and drops the old refresh token.
    store.save(edited, token(2))
    assert store.load(edited) == token(2) and store.load(NEWS) is None
    assert list(json.loads((tmp_path / "secrets.json").read_text()).values()) == ["r2"]


def test_a_token_file_without_an_issuer_is_signed_out_not_an_error(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, notice=lambda _: None)
    store.save(NEWS, token(1))
    doc = json.loads(store.token_path("news").read_text())
    doc["version"] = 1
    del doc["issuer"]
    store.token_path("news").write_text(json.dumps(doc))
    assert store.load_cached(NEWS) is None and store.load(NEWS) is None
    assert "earlier zephr-desktop" in (store.signed_out_reason(NEWS) or "")
    assert store.delete("news") is True  # logout still finds and removes its refresh token
    assert json.loads((tmp_path / "secrets.json").read_text()) == {}


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("target", ["data dir", "tokens dir", "token file", "secrets.json"])
def test_files_another_user_could_write_are_refused(tmp_path: Path, target: str) -> None:
    data = tmp_path / "data"
    store = TokenStore(data, notice=lambda _: None)
    store.save(NEWS, token(1))
    path = {
        "data dir": data,
        "tokens dir": data / "tokens",
        "token file": store.token_path("news"),
        "secrets.json": data / "secrets.json",
    }[target]
    os.chmod(path, path.stat().st_mode | 0o020)
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    with pytest.raises(UnsafePathError, match=f"chmod go-w {path}"):
        store.load(NEWS)
    with pytest.raises(UnsafePathError):
        store.save(NEWS, token(2))
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
