"""paths: the one copy of the locations, the token file's format, the stamp and the refresh rule."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from zephr_desktop import paths
from zephr_desktop.errors import UnsafePathError
from zephr_desktop.fileutil import atomic_write, check_private, ensure_private_dir
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile

ISSUER = paths.issuer(
    "https://news.example.com",
    "https://console.zephr.com/zephr/oauth2/token",
    "abc123",
    "https://news.example.com/zephr/oauth2",
)


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        (3600, 61, False),  # long-lived: the margin is 60 s
        (3600, 60, False),
        (3600, 59.9, True),
        (180, 61, False),  # a third of 180 s is also 60 s
        (180, 59, True),
        (30, 10.1, False),  # short-lived: a third of the lifetime
        (30, 9.9, True),
        (3, 1.1, False),
        (3, 0.9, True),
        (3600, 0, True),  # expired
        (3600, -5, True),
    ],
)
def test_refresh_rule_is_min_60s_or_a_third_of_the_lifetime(lifetime: float, left: float, due: bool) -> None:
    now = 1000.0 + lifetime - left
    assert paths.refresh_due(1000.0 + lifetime, 1000.0, now) is due
    # The token model asks the same rule, not a copy of it.
    assert Token("oa_x", "bearer", expires_at=1000.0 + lifetime, obtained_at=1000.0).needs_refresh(now) is due


def test_a_token_without_expiry_is_never_due() -> None:
    assert paths.refresh_due(None, 1000.0, 10**12) is False
    assert paths.refresh_margin(None, 1000.0) == 0.0


def test_locations_follow_platformdirs_and_the_overrides(
    tmp_path: Path, isolated_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = Path(isolated_dirs["XDG_DATA_HOME"]) / "zephr-desktop"
    assert paths.config_file() == Path(isolated_dirs["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"
    assert paths.data_dir() == data
    assert paths.token_file("news") == data / "tokens" / "news.json"
    assert paths.stamp_file() == data / "tokens" / ".validated-profiles.json"
    assert paths.lock_file("news") == data / "locks" / "news.lock"
    assert paths.secrets_file() == data / "secrets.json"
    assert paths.site_session_dir("news") == data / "site-sessions" / "news"
    monkeypatch.setenv("ZEPHR_DESKTOP_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("ZEPHR_DESKTOP_DATA_DIR", str(tmp_path / "d"))
    assert paths.config_file() == tmp_path / "c" / "profiles.toml"
    assert paths.token_file("news") == tmp_path / "d" / "tokens" / "news.json"


def document(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "access_token": "oa_abc",
        "token_type": "bearer",
        "expires_at": 2000.5,
        "obtained_at": 1000.25,
        "scopes": ["user.account:read"],
        "user_id": "u1",
        "refresh_ref": "news/refresh_token/00",
        "issued_by": ISSUER,
    }
    fields.update(changes)
    return paths.token_document(**fields)  # type: ignore[arg-type]


def test_token_document_round_trip_names_its_version_and_issuer() -> None:
    raw = document()
    assert json.loads(raw)["version"] == paths.TOKEN_FORMAT_VERSION == 2
    assert paths.read_token_document(raw) == {
        "access_token": "oa_abc",
        "token_type": "bearer",
        "expires_at": 2000.5,
        "obtained_at": 1000.25,
        "scopes": ["user.account:read"],
        "user_id": "u1",
        "refresh_ref": "news/refresh_token/00",
        "issuer": ISSUER,
    }


def test_a_file_from_before_the_binding_reads_with_no_issuer() -> None:
    legacy = {
        "version": 1,
        "access_token": "oa_abc",
        "token_type": "bearer",
        "expires_at": 2000,
        "obtained_at": 1000,
        "scopes": [],
        "user_id": None,
        "refresh_ref": "news/refresh_token/00",
    }
    record = paths.read_token_document(json.dumps(legacy).encode())
    assert record["issuer"] is None and record["access_token"] == "oa_abc"


@pytest.mark.parametrize(
    "doc",
    [
        b"{broken",
        b"[]",
        json.dumps({"version": 3, "access_token": "a", "obtained_at": 1}).encode(),
        json.dumps({**json.loads(document()), "access_token": ""}).encode(),
        json.dumps({**json.loads(document()), "expires_at": "soon"}).encode(),
        json.dumps({**json.loads(document()), "obtained_at": True}).encode(),
        json.dumps({**json.loads(document()), "scopes": "user.account:read"}).encode(),
        json.dumps({**json.loads(document()), "user_id": 5}).encode(),
        json.dumps({**json.loads(document()), "issuer": None}).encode(),
        json.dumps({**json.loads(document()), "issuer": {"site_url": "https://x.example"}}).encode(),
        json.dumps({k: v for k, v in json.loads(document()).items() if k != "obtained_at"}).encode(),
    ],
)
def test_anything_else_is_not_a_token_file(doc: bytes) -> None:
    with pytest.raises((ValueError, KeyError)):
        paths.read_token_document(doc)


def test_stamp_holds_only_for_the_identity_it_was_written_for() -> None:
    issuers = {"news": ISSUER}
    raw = paths.stamp_document([1, 2, 3], "news", issuers)
    assert paths.read_stamp(raw, [1, 2, 3]) == ("news", issuers)
    assert paths.read_stamp(raw, [1, 2, 4]) is None
    old_format = json.dumps({"config": [1, 2, 3], "default": "news", "profiles": ["news"]}).encode()
    assert paths.read_stamp(old_format, [1, 2, 3]) is None


def test_a_profile_issuer_is_its_site_token_url_and_client() -> None:
    p = Profile.create(name="news", site_url="https://News.example.com/", client_id="abc123")
    assert p.issuer == ISSUER


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes and owners")
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o720, 0o702])
def test_writable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "zephr-desktop"
    target.mkdir()
    os.chmod(target, mode)
    reason = paths.unsafe_reason(target)
    assert reason is not None and str(target) in reason and f"chmod go-w {target}" in reason
    with pytest.raises(UnsafePathError) as info:
        check_private(target)
    assert info.value.path == str(target)
    with pytest.raises(UnsafePathError):
        ensure_private_dir(target)
    with pytest.raises(UnsafePathError):
        atomic_write(target / "profiles.toml", b"x")
    assert not (target / "profiles.toml").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes and owners")
@pytest.mark.parametrize("mode", [0o700, 0o755, 0o750, 0o600, 0o644, 0o400])
def test_private_or_only_readable_is_accepted(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "f"
    target.write_text("")
    os.chmod(target, mode)
    assert paths.unsafe_reason(target) is None
    assert paths.unsafe_reason(tmp_path / "missing") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
def test_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "profiles.toml"
    target.write_text("")
    os.chmod(target, 0o600)
    os.chown(target, 4321, 4321)
    reason = paths.unsafe_reason(target)
    assert reason is not None and "another user (uid 4321)" in reason and str(target) in reason


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_missing_parents_are_made_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        leaf = ensure_private_dir(tmp_path / "home" / ".local" / "share" / "zephr-desktop")
        atomic_write(leaf / "tokens" / "news.json", b"{}")
    finally:
        os.umask(old)
    for directory in (
        tmp_path / "home",
        tmp_path / "home" / ".local",
        tmp_path / "home" / ".local" / "share",
        leaf,
        leaf / "tokens",
    ):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE((leaf / "tokens" / "news.json").stat().st_mode) == 0o600
