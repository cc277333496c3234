"""Strict tooling as part of the suite: ruff (lint and format) and mypy must be clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What `ruff format --check` holds to the formatter: every path here must stay formatted.
# Add a file once it is formatted; when the whole tree is, this becomes LINTED.
FORMATTED: tuple[str, ...] = (
    "scripts/screenshots.py",
    "tests/conftest.py",
    "tests/gui/conftest.py",
    "tests/gui/harness.py",
    "tests/gui/test_bridge_dispatch.py",
    "tests/gui/test_desktop_app.py",
    "tests/gui/test_gui.py",
    "tests/gui/test_gui_consent.py",
    "tests/gui/test_gui_navigation.py",
    "tests/gui/test_gui_page_bridge.py",
    "tests/support/__init__.py",
    "tests/support/cli.py",
    "tests/support/crash_writer.py",
    "tests/support/evidence.py",
    "tests/support/fake_session.py",
    "tests/support/file_keyring.py",
    "tests/support/junk_client.py",
    "tests/support/proxy.py",
    "tests/support/rawhttp.py",
    "tests/support/secrets_scan.py",
    "tests/support/signin.py",
    "tests/support/user.py",
    "tests/test_accounts.py",
    "tests/test_check.py",
    "tests/test_cli.py",
    "tests/test_config_schema.py",
    "tests/test_discovery.py",
    "tests/test_listener.py",
    "tests/test_login.py",
    "tests/test_quality.py",
    "tests/test_redirect_elsewhere.py",
    "tests/test_store.py",
    "zephr_desktop/__init__.py",
    "zephr_desktop/__main__.py",
    "zephr_desktop/accounts.py",
    "zephr_desktop/desktop_entry.py",
    "zephr_desktop/errors.py",
    "zephr_desktop/fasttoken.py",
    "zephr_desktop/fileutil.py",
    "zephr_desktop/gui",
    "zephr_desktop/listener.py",
    "zephr_desktop/loopback.py",
    "zephr_desktop/resources.py",
    "zephr_desktop/sandbox/__init__.py",
    "zephr_desktop/sandbox/__main__.py",
    "zephr_desktop/sandbox/model.py",
    "zephr_desktop/sandbox/routes.py",
    "zephr_desktop/sandbox/server.py",
    "zephr_desktop/sandbox/state.py",
    "zephr_desktop/sandbox/tls.py",
    "zephr_desktop/store.py",
    "zephr_desktop/token_client.py",
    "zephr_desktop/zephr_api.py",
)
LINTED = [d for d in ("zephr_desktop", "tests", "bench", "scripts") if (ROOT / d).is_dir()]


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_clean() -> None:
    proc = _run("ruff", "check", *LINTED, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean() -> None:
    missing = [p for p in FORMATTED if not (ROOT / p).exists()]
    assert not missing, f"FORMATTED names paths that do not exist: {missing}"
    proc = _run("ruff", "format", "--check", *FORMATTED, timeout=120)
    assert proc.returncode == 0, "run `ruff format` on these files:\n" + proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = _run("mypy", timeout=300)  # what to check and how strictly: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, proc.stdout + proc.stderr
