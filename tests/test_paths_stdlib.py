"""The fast path's stdlib locations (``paths.xdg_user_dir``) agree with platformdirs wherever they answer.

``token`` with a fresh cached token computes its config and data dirs with the standard library
on Linux (importing platformdirs costs more than the rest of the call); everywhere else, and in
every case the stdlib rule leaves open, platformdirs stays the one source. Both are compared here
for every combination of XDG_CONFIG_HOME, XDG_DATA_HOME and HOME unset, empty, blank, relative,
absolute, absolute with a trailing slash, and the root.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_config_path, user_data_path
from support.cli import run
from support.signin import cli_add_profile, cli_login

from zephr_desktop import paths

VALUES = {
    "unset": None,
    "empty": "",
    "blank": "  ",
    "relative": "rel/dir",
    "dot": "./dir",
    "absolute": "/abs/dir",
    "trailing": "/abs/dir/",
    "root": "/",
}
linux = pytest.mark.skipif(sys.platform != "linux", reason="the stdlib rule is Linux's; elsewhere platformdirs answers")


def _set(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@linux
@pytest.mark.parametrize(("config", "data", "home"), list(itertools.product(VALUES, repeat=3)))
def test_stdlib_dirs_match_platformdirs(monkeypatch: pytest.MonkeyPatch, config: str, data: str, home: str) -> None:
    for name in ("ANDROID_DATA", "ANDROID_ROOT"):
        monkeypatch.delenv(name, raising=False)
    _set(monkeypatch, "XDG_CONFIG_HOME", VALUES[config])
    _set(monkeypatch, "XDG_DATA_HOME", VALUES[data])
    _set(monkeypatch, "HOME", VALUES[home])
    for ours, theirs, variable in (
        (paths.xdg_user_dir("XDG_CONFIG_HOME", ".config"), user_config_path, VALUES[config]),
        (paths.xdg_user_dir("XDG_DATA_HOME", ".local/share"), user_data_path, VALUES[data]),
    ):
        absolute = variable is not None and variable.startswith("/")
        blank = variable is None or not variable.strip()
        if absolute or (blank and VALUES[home] is not None and VALUES[home].startswith("/")):
            assert ours is not None, "the stdlib rule must answer here, or the fast path never applies"
        if ours is None:
            continue  # platformdirs answers for the fast path too
        assert Path(ours) == theirs(paths.APP_NAME, appauthor=False)


def test_elsewhere_platformdirs_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/abs/home")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert paths.xdg_user_dir("XDG_CONFIG_HOME", ".config") is None
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("ANDROID_DATA", "/data")
    monkeypatch.setenv("ANDROID_ROOT", "/system")
    assert paths.xdg_user_dir("XDG_CONFIG_HOME", ".config") is None


LOADS_DOCUMENTS = [
    b'{"a": 1, "b": [1.5, -2e3, true, false, null, "x\\u00e9\\n"], "c": {"d": NaN, "e": -Infinity}}',
    b' \n{"x": 1}\n ',
    b"[]",
    b'"s"',
    b"12",
    b'{"a":1}{"b":2}',
    b'{"a":',
    b"",
    b"   ",
    b'{"a":1,}',
    b'{"a":"\x01"}',
    b'{"a": 1e400, "b": -0.0, "c": 12345678901234567890}',
    b'{"dup": 1, "dup": 2}',
    '{"é": "ü"}'.encode(),
]


@pytest.mark.parametrize("raw", LOADS_DOCUMENTS)
def test_loads_is_json_loads(raw: bytes) -> None:
    try:
        expected: object = ("ok", repr(json.loads(raw)))
    except ValueError:
        expected = ("error",)
    try:
        got: object = ("ok", repr(paths.loads(raw)))
    except ValueError:
        got = ("error",)
    assert got == expected


def test_loads_refuses_what_only_json_would_decode() -> None:
    """A BOM or UTF-16: json.loads takes them, the fast path's reader sends them to the full path."""
    for raw in (b'\xef\xbb\xbf{"a": 1}', '{"a": 1}'.encode("utf-16")):
        assert json.loads(raw) == {"a": 1}
        with pytest.raises(ValueError):
            paths.loads(raw)


def test_loads_reads_the_apps_own_files() -> None:
    issued = paths.issuer("https://news.example.com", "https://console.example.com/token", "client", "https://x/a")
    document = paths.token_document(
        access_token="t" * 40,
        token_type="bearer",
        expires_at=2e9,
        obtained_at=1e9,
        scopes=["a", "b"],
        user_id=None,
        refresh_ref="ref",
        issued_by=issued,
    )
    assert paths.loads(document) == json.loads(document)
    stamp = paths.stamp_document([1, 2, 3], "demo", {"demo": issued})
    assert paths.read_stamp(stamp, [1, 2, 3]) == ("demo", {"demo": issued})


HEAVY = (
    "platformdirs",
    "pathlib",
    "json",
    "re",
    "typing",
    "tomllib",
    "argparse",
    "zephr_desktop.config",
    "zephr_desktop.profile",
    "zephr_desktop.urls",
)
PROBE = """
import runpy, sys
before = set(sys.modules)
sys.argv = ['zephr-desktop'] + sys.argv[1:]
try:
    runpy.run_module('zephr_desktop', run_name='__main__')
finally:
    print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {heavy} or m in {heavy}), file=sys.stderr)
"""


@linux
def test_fast_path_loads_nothing_a_bare_interpreter_does_not(child_env: dict[str, str], sandbox: Any) -> None:
    """On Linux with an absolute HOME (and XDG dirs), a cached token costs no platformdirs, pathlib, json or re."""
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    issued = sandbox.issued[-1]["access_token"]
    assert run(child_env, "token").out.strip() == issued  # the full path leaves the stamp
    env = {**child_env, "HOME": "/nonexistent-home"}
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        assert env[variable].startswith("/")
    code = PROBE.replace("{heavy}", repr(set(HEAVY)))
    proc = subprocess.run([sys.executable, "-c", code, "token"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == issued, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
