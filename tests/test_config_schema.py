"""profiles.toml's format version: older files are upgraded in place with a backup, newer ones refused untouched."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from support.cli import call, run
from support.signin import cli_add_profile, cli_login, error_line

from zephr_desktop import fileutil
from zephr_desktop.config import SCHEMA_VERSION, load_profiles, save_profile
from zephr_desktop.errors import ConfigError
from zephr_desktop.paths import config_file
from zephr_desktop.profile import Profile

# Today's format before the version key: comments and layout a person may have written by hand.
OLD_FILE = b"""# my Zephr sites
default = "news"   # the one I use most

[profiles.news]
site_url = "https://news.example.com"
client_id = "abc123"
scopes = ["user.account:read"]

[profiles.staging]   # staging site
site_url = "https://staging.example.com"
client_id = "def456"
token_url = "https://staging.example.com/zephr/oauth2/token"
"""

NEWER_FILE = b"""schema = 2
default = "news"

[profiles.news]
site_url = "https://news.example.com"
client_id = "abc123"
sign_in_with = "passkey"   # something this release does not know
"""


def write_config(data: bytes) -> Path:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def listing(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the config dir: its bytes and mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir()) if p.is_file()}


# -- an older file -------------------------------------------------------------------------------------
def test_a_file_without_a_schema_is_upgraded_in_place_with_a_backup(child_env: dict[str, str]) -> None:
    path = write_config(OLD_FILE)
    result = run(child_env, "profile", "list")
    assert result.code == 0, result.err
    assert "* news\thttps://news.example.com" in result.out and "staging" in result.out

    upgraded = path.read_bytes()
    assert upgraded == b"schema = 1\n" + OLD_FILE  # the version key, and everything the person wrote kept
    backup = path.with_name("profiles.toml.bak-0")
    assert backup.read_bytes() == OLD_FILE
    for file in (path, backup):
        assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert {p.name for p in path.parent.iterdir()} == {"profiles.toml", "profiles.toml.bak-0"}  # no temp left

    # Upgraded once: later commands read it as it is, and the backup is not multiplied.
    before = listing(path.parent)
    assert run(child_env, "profile", "show", "staging").code == 0
    assert run(child_env, "profile", "list").code == 0
    assert listing(path.parent) == before
    profiles = load_profiles()
    assert profiles.default == "news"
    assert profiles.get("staging").token_url == "https://staging.example.com/zephr/oauth2/token"


def test_writing_an_older_file_upgrades_it_and_keeps_every_profile(child_env: dict[str, str]) -> None:
    path = write_config(OLD_FILE)
    added = call(child_env, "profile", "add", "third", "--site", "https://third.example.com", "--client-id", "x")
    assert added.code == 0, added.err
    text = path.read_text()
    assert text.startswith(f"schema = {SCHEMA_VERSION}\n")
    assert set(load_profiles().profiles) == {"news", "staging", "third"}
    assert path.with_name("profiles.toml.bak-0").read_bytes() == OLD_FILE


def test_an_upgrade_interrupted_after_the_backup_leaves_the_old_file_and_finishes_next_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_config(OLD_FILE)
    real_write = fileutil.atomic_write
    writes: list[Path] = []

    def crash_on_the_second_write(target: Path, data: bytes) -> None:
        writes.append(target)
        if len(writes) == 2:
            raise OSError(28, "No space left on device", str(target))
        real_write(target, data)

    monkeypatch.setattr(fileutil, "atomic_write", crash_on_the_second_write)
    assert set(load_profiles().profiles) == {"news", "staging"}  # the profiles are still read
    assert writes == [path.with_name("profiles.toml.bak-0"), path]  # the backup is written first
    assert path.read_bytes() == OLD_FILE
    assert path.with_name("profiles.toml.bak-0").read_bytes() == OLD_FILE

    monkeypatch.setattr(fileutil, "atomic_write", real_write)
    load_profiles()
    assert path.read_bytes() == b"schema = 1\n" + OLD_FILE
    assert sorted(p.name for p in path.parent.iterdir()) == ["profiles.toml", "profiles.toml.bak-0"]


def test_a_different_older_backup_is_never_overwritten() -> None:
    path = write_config(OLD_FILE)
    earlier = path.with_name("profiles.toml.bak-0")
    earlier.write_bytes(b"# an earlier copy the person kept\n")
    load_profiles()
    assert earlier.read_bytes() == b"# an earlier copy the person kept\n"
    assert path.with_name("profiles.toml.bak-0.1").read_bytes() == OLD_FILE
    assert path.read_bytes() == b"schema = 1\n" + OLD_FILE


def test_an_invalid_older_file_is_not_upgraded() -> None:
    broken = OLD_FILE.replace(b'client_id = "def456"', b'client_id = "has space"')
    path = write_config(broken)
    with pytest.raises(ConfigError, match="field 'client_id'"):
        load_profiles()
    assert path.read_bytes() == broken
    assert not path.with_name("profiles.toml.bak-0").exists()


# -- the current file -------------------------------------------------------------------------------------
def test_a_current_file_carries_the_schema_and_is_only_read(child_env: dict[str, str]) -> None:
    save_profile(Profile.create(name="news", site_url="https://news.example.com", client_id="abc123"))
    path = config_file()
    assert path.read_text().startswith(f"schema = {SCHEMA_VERSION}\n")
    before = listing(path.parent)
    for args in (("profile", "list"), ("profile", "show", "news"), ("status",), ("status", "--json")):
        assert call(child_env, *args).code == 0
    assert listing(path.parent) == before


@pytest.mark.parametrize(
    ("value", "words"),
    [("'1'", "got '1'"), ("true", "got True"), ("0", "got 0"), ("1.5", "got 1.5"), ("-3", "got -3")],
)
def test_a_schema_that_is_not_a_version_is_refused(value: str, words: str) -> None:
    text = f"schema = {value}\n".encode() + OLD_FILE
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_profiles()
    message = str(info.value)
    assert str(path) in message and "field 'schema'" in message and words in message
    assert path.read_bytes() == text


# -- a newer file -------------------------------------------------------------------------------------------
NEWER_MESSAGE = "written by a newer zephr-desktop (schema 2); upgrade the app"

COMMANDS: list[tuple[str, ...]] = [
    ("profile", "list"),
    ("profile", "show", "news"),
    ("profile", "add", "other", "--site", "https://other.example.com", "--client-id", "x"),
    ("profile", "add", "news", "--site", "https://news.example.com", "--client-id", "abc123", "--default"),
    ("profile", "use", "news"),
    ("profile", "remove", "news"),
    ("login", "--no-browser", "--timeout", "5"),
    ("token",),
    ("token", "--profile", "news"),
    ("status",),
    ("status", "--json"),
    ("refresh",),
    ("logout",),
    ("logout", "--all"),
    ("api", "account"),
]


def test_a_newer_file_is_refused_by_every_command_and_never_rewritten(child_env: dict[str, str]) -> None:
    path = write_config(NEWER_FILE)
    before = listing(path.parent)
    for args in COMMANDS:
        result = call(child_env, *args, stdin="\n")
        line = error_line(result)
        assert NEWER_MESSAGE in line and str(path) in line, (args, line)
        assert listing(path.parent) == before, f"`{' '.join(args)}` changed the config dir"


def test_a_newer_file_is_refused_in_process_and_never_rewritten() -> None:
    path = write_config(NEWER_FILE)
    for attempt in (
        load_profiles,
        lambda: save_profile(Profile.create(name="x", site_url="https://x.example.com", client_id="x")),
    ):
        with pytest.raises(ConfigError, match=r"newer zephr-desktop \(schema 2\)"):
            attempt()
        assert path.read_bytes() == NEWER_FILE


def test_a_newer_file_replacing_a_validated_one_stops_the_fast_token_path(
    child_env: dict[str, str], sandbox: Any
) -> None:
    """A newer release rewrote the file after `token` last validated it: `token` must not trust its stamp."""
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, name="news")
    result = cli_login(child_env).result
    assert result.code == 0, result.err
    assert run(child_env, "token").code == 0  # validates the file and leaves the fast path's stamp
    fast = run(child_env, "token", verbose=False)  # as a person runs it: the fast path (--verbose is not)
    assert fast.code == 0 and fast.out.strip()

    path = config_file()
    newer = path.with_name("newer.tmp")
    newer.write_bytes(NEWER_FILE.replace(b"https://news.example.com", sandbox.url.encode()))
    os.replace(newer, path)
    before = listing(path.parent)
    line = error_line(run(child_env, "token", verbose=False))
    assert NEWER_MESSAGE in line
    assert listing(path.parent) == before


def test_an_upgrade_that_cannot_be_written_is_said_and_the_file_still_works(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(OLD_FILE)

    def refuse(target: Path, data: bytes) -> None:
        raise OSError(30, "Read-only file system", str(target))

    monkeypatch.setattr(fileutil, "atomic_write", refuse)
    with caplog.at_level(logging.WARNING, logger="zephr_desktop.config"):
        assert load_profiles().default == "news"
    assert path.read_bytes() == OLD_FILE
    assert any("could not upgrade" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
