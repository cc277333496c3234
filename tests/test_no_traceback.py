"""Security, item 9: no command ever prints a Python traceback.

Whatever breaks - a token file of the right JSON but wrong types (as an older version could
write it), a profiles.toml of an unexpected shape, a data dir that is a file - the person
sees one line on stderr; the traceback goes to the ``--verbose`` log only.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import evidence
from support.cli import Result, run

from zephr_desktop import cli
from zephr_desktop.cli import tokens

SITE = ("--site", "https://news.example.com", "--client-id", "news-client")


def plain(env: dict[str, str], *args: str) -> Result:
    """The CLI as a person runs it: a process of its own, no --verbose."""
    return run(env, *args, verbose=False)


def one_line_or_none(result: Result) -> str:
    """The contract: no traceback; a failure is exit 1 and exactly one `zephr-desktop: ` line."""
    assert "Traceback" not in result.err, f"a traceback reached stderr:\n{result.err}"
    lines = result.err.splitlines()
    if result.code == 0:
        assert len(lines) <= 1, result.err
        return ""
    assert result.code == 1, (result.code, result.err)
    assert len(lines) == 1 and lines[0].startswith("zephr-desktop: "), result.err
    return lines[0]


def token_file(env: dict[str, str], **fields: Any) -> Path:
    """A token file as the previous version wrote it, with ``fields`` overriding (raw JSON text allowed)."""
    doc: dict[str, Any] = {
        "version": 1,
        "access_token": "oa_oldversiontoken1",
        "token_type": "bearer",
        "expires_at": 4102444800.0,
        "obtained_at": 1700000000.0,
        "scopes": ["user.account:read"],
        "user_id": "u1",
        "refresh_ref": None,
    }
    text = json.dumps({**doc, **{k: f"@{k}@" for k in fields}})
    for key, raw in fields.items():
        text = text.replace(f'"@{key}@"', raw)
    path = Path(env["XDG_DATA_HOME"]) / "zephr-desktop" / "tokens" / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


# (what is broken, how to break it, commands to run)
TOKEN_FILES = [
    ("expires_at 1e300", {"expires_at": "1e300"}),
    ("expires_at inf", {"expires_at": "1e999"}),
    ("expires_at NaN", {"expires_at": "NaN"}),
    ("scopes [5]", {"scopes": "[5, null]"}),
    ("user_id an object", {"user_id": '{"a": 1}'}),
    ("access_token a list", {"access_token": '["x"]'}),
    ("obtained_at a string", {"obtained_at": '"yesterday"'}),
    ("not an object", {}),
]


@pytest.mark.reliability("no-traceback")
@pytest.mark.parametrize(("case", "fields"), TOKEN_FILES, ids=[c[0] for c in TOKEN_FILES])
def test_a_token_file_of_wrong_types_is_one_line(child_env: dict[str, str], case: str, fields: dict[str, str]) -> None:
    assert plain(child_env, "profile", "add", "demo", *SITE).code == 0
    path = token_file(child_env, **fields)
    if not fields:
        path.write_text("[1, 2]")
    commands = (("status",), ("status", "--json"), ("token",), ("refresh",), ("api", "account"), ("logout",))
    for command in commands:  # logout last: it removes the file
        one_line_or_none(plain(child_env, *command))
    evidence.record(case=f"token file: {case}", commands=len(commands), tracebacks=0)


PROFILE_FILES = [
    ("profiles = 5", "profiles = 5\n"),
    ("an array of tables", "[[profiles]]\na = 1\n"),
    ("a profile that is a string", '[profiles]\ndemo = "x"\n'),
    ("scopes a number", '[profiles.demo]\nsite_url = "https://n.example.com"\nclient_id = "c"\nscopes = 5\n'),
    ("default a number", 'default = 5\n[profiles.demo]\nsite_url = "https://n.example.com"\nclient_id = "c"\n'),
    ("not UTF-8", b"\xff\xfe[profiles]"),
    ("a directory", None),
]


@pytest.mark.reliability("no-traceback")
@pytest.mark.parametrize(("case", "content"), PROFILE_FILES, ids=[c[0] for c in PROFILE_FILES])
def test_a_profiles_file_of_an_unexpected_shape_is_one_line(
    child_env: dict[str, str], case: str, content: str | bytes | None
) -> None:
    config = Path(child_env["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"
    config.parent.mkdir(parents=True, mode=0o700)
    if content is None:
        config.mkdir()
    elif isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content)
    for command in (("status",), ("token",), ("profile", "list"), ("profile", "show", "demo"), ("login",)):
        one_line_or_none(plain(child_env, *command))
    evidence.record(case=f"profiles.toml: {case}", commands=5, tracebacks=0)


@pytest.mark.reliability("no-traceback")
@pytest.mark.parametrize("which", ["XDG_DATA_HOME", "XDG_CONFIG_HOME"])
def test_a_data_or_config_dir_that_is_a_file_is_one_line(child_env: dict[str, str], which: str) -> None:
    if which == "XDG_DATA_HOME":
        assert plain(child_env, "profile", "add", "demo", *SITE).code == 0
    target = Path(child_env[which]) / "zephr-desktop"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        for child in sorted(target.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        target.rmdir()
    target.write_text("not a directory")
    for command in (("status",), ("token",), ("logout",), ("refresh",)):
        line = one_line_or_none(plain(child_env, *command))
        assert line, f"`{' '.join(command)}` succeeded with {which} a file"
    evidence.record(case=f"{which}/zephr-desktop a file", commands=4, tracebacks=0)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """cli.main configures the root logger for its process; in this one, put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.reliability("no-traceback")
@pytest.mark.usefixtures("root_logging")
def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_verbose_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object, stdin: object) -> int:
        raise RuntimeError("the token oa_abcdefghijklmnop was here")

    monkeypatch.setattr(tokens, "cmd_status", broken)
    assert cli.main(["status"], stdin=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "(RuntimeError)" in err and "--verbose" in err and "oa_abcdef" not in err, err
    assert cli.main(["--verbose", "status"], stdin=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and err.rstrip().splitlines()[-1].startswith("zephr-desktop: ")
