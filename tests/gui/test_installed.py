"""The app as a user installs it: a built wheel in a fresh venv, and ``pipx install`` of a clone.

Nothing here runs from the checkout: the commands are the installed launchers, run from a
temp dir with no PYTHONPATH, so a page, icon or result page missing from the wheel fails the
test. Dependencies come from the package index as for any user (pip's cache makes it quick).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import REPO, GuiApp
from support.user import ScriptedUser
from test_desktop_app import icon_sizes, wm_class
from test_desktop_entry import entry_keys, exec_args, validate

import zephr_desktop
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

INSTALL_TIMEOUT = 600
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
SHIPPED_ASSETS = {
    "index.html",
    "app.js",
    "style.css",
    "result.html",
    "icon.svg",
    *(f"icons/hicolor/{n}x{n}/apps/zephr-desktop.png" for n in SIZES),
}


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """An environment that cannot reach the checkout: no PYTHONPATH, no app overrides, no control channel."""
    return {k: v for k, v in base.items() if not k.startswith(("ZEPHR_", "PYTHONPATH", "PYTHONHOME"))}


def sh(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=stdin)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout, as `pip wheel .` builds it."""
    out = tmp_path_factory.mktemp("dist")
    sh(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--wheel-dir", str(out), "-q"],
        env=clean_env(dict(os.environ)),
        cwd=out,
        timeout=INSTALL_TIMEOUT,
    )
    wheels = list(out.glob("zephr_desktop-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture
def gui(tmp_path: Path) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=INSTALL_TIMEOUT) as app:
        yield app


def test_the_wheel_carries_the_assets_inside_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    shipped = {n.removeprefix("zephr_desktop/assets/") for n in names if n.startswith("zephr_desktop/assets/")}
    assert shipped >= SHIPPED_ASSETS
    assert not any(n.startswith(("assets/", "tests/", "bench/")) for n in names)
    assert f"zephr_desktop-{zephr_desktop.__version__}.dist-info/entry_points.txt" in names


def start_sandbox(launcher: Path, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str, str]:
    """`zephr-desktop sandbox` on a free port; returns it with its site and token URLs from the banner."""
    proc = subprocess.Popen(
        [str(launcher), "sandbox", "--port", "0", "--any-port", "--quiet"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    banner = ""
    deadline = time.monotonic() + 60
    while "token URL:" not in banner:
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, f"the sandbox did not start:\n{banner}"
        banner += line
    site = re.search(r"site URL:\s+(\S+)", banner)
    token = re.search(r"token URL:\s+(\S+)", banner)
    assert site and token, banner
    return proc, site.group(1), token.group(1)


def page_pixels(gui: GuiApp, window: int) -> bytes:
    """The window's pixels as raw RGB (ImageMagick's import)."""
    time.sleep(0.5)
    return subprocess.run(
        ["import", "-window", str(window), "-depth", "8", "rgb:-"],
        env={**os.environ, "DISPLAY": gui.display or ""},
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def accent_pixels(rgb: bytes) -> int:
    """How many pixels are the page's indigo (its stylesheet's accent and the header's icon)."""
    count = 0
    for i in range(0, len(rgb) - 2, 3):
        r, g, b = rgb[i], rgb[i + 1], rgb[i + 2]
        if b > 170 and r < 120 and g < 110 and b - r > 90:
            count += 1
    return count


def test_a_built_wheel_in_a_fresh_venv_runs_the_cli_the_sandbox_and_the_app(
    wheel: Path, gui: GuiApp, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    work = tmp_path / "work"  # the current dir of every command: not the checkout
    work.mkdir()
    base = clean_env(dict(os.environ))
    sh([sys.executable, "-m", "venv", str(venv)], env=base, cwd=work)
    sh(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        env=base,
        cwd=work,
        timeout=INSTALL_TIMEOUT,
    )
    launcher = venv / "bin" / "zephr-desktop"
    env = clean_env(gui.env())  # the test's XDG dirs and X display; keyring: none (file secret store)

    # --version, and the package and its assets come from the venv, not from the checkout.
    version = sh([str(launcher), "--version"], env=env, cwd=work)
    assert version.stdout.strip() == f"zephr-desktop {zephr_desktop.__version__}"
    where = sh(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import zephr_desktop.resources as r; print(r.__file__); print(r.assets_dir())",
        ],
        env=env,
        cwd=work,
    )
    module, assets = (Path(line) for line in where.stdout.split())
    assert module.is_relative_to(venv) and assets == module.parent / "assets"
    assert all((assets / name).is_file() for name in SHIPPED_ASSETS)

    # The sandbox: start, probe, and (at the end) stop.
    sandbox, site, token_url = start_sandbox(launcher, env, work)
    try:
        assert requests.get(f"{site}/zephr/oauth2/config", timeout=10).status_code == 200

        # A sign-in through the CLI; the listener's result page comes from the installed assets.
        added = sh(
            [
                str(launcher),
                "profile",
                "add",
                "demo",
                "--site",
                site,
                "--token-url",
                token_url,
                "--client-id",
                DEFAULT_CLIENT_ID,
                "--redirect-uri",
                "http://127.0.0.1:0/callback",
                "--client-secret-stdin",
            ],
            env=env,
            cwd=work,
            stdin=DEFAULT_CLIENT_SECRET + "\n",
        )
        assert "Saved profile 'demo'" in added.stderr
        login = subprocess.Popen(
            [str(launcher), "login", "--no-browser", "--timeout", "30"],
            env=env,
            cwd=work,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert login.stdout is not None
        url = login.stdout.readline().strip()
        page = ScriptedUser().approve(url)
        _out, err = login.communicate(timeout=30)
        assert login.returncode == 0, err
        assert page.status_code == 200 and "Signed in" in page.text and "<title>" in page.text
        token = sh([str(launcher), "token"], env=env, cwd=work).stdout.strip()
        assert token
        account = sh([str(launcher), "api", "account"], env=env, cwd=work)
        assert "joe@example.com" in account.stdout

        # The menu entry, written by the installed command, names the installed launcher.
        sh([str(launcher), "desktop-entry", "install"], env=env, cwd=work)
        entry = Path(env["XDG_DATA_HOME"]) / "applications" / "zephr-desktop.desktop"
        validate(entry)
        keys = entry_keys(entry.read_text())
        command = exec_args(keys["Exec"])
        assert command == [str(launcher)]

        # The app, started as the menu starts it: its window, WM_CLASS, icon and page.
        with open(gui.tmp / "installed-app.log", "wb") as log:
            gui.app = subprocess.Popen(
                command,
                env=env,
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        window = int(gui.wait_for(lambda: gui.find_windows("^Zephr Desktop$"), "the main window", timeout=90)[0])
        assert wm_class(gui, window) == ("zephr-desktop", keys["StartupWMClass"])
        assert icon_sizes(gui, window) == {(n, n) for n in SIZES}
        # Loaded: the page's stylesheet and header icon paint indigo; a missing page would not.
        # (The header icon alone paints about 500 such pixels; the page's primary buttons bring it into thousands.)
        gui.wait_for(lambda: accent_pixels(page_pixels(gui, window)) > 1500, "the page to be drawn", timeout=60)
        gui.screenshot("installed-app", window)
        gui.close_window(window)
        assert gui.app.wait(30) == 0
        assert "Traceback" not in (gui.tmp / "installed-app.log").read_text(errors="replace")

        sh([str(launcher), "desktop-entry", "remove"], env=env, cwd=work)
        assert not entry.exists()
    finally:
        sandbox.send_signal(signal.SIGINT)
        try:
            assert sandbox.wait(20) == 0
        finally:
            if sandbox.poll() is None:
                sandbox.kill()
                sandbox.wait()
            assert sandbox.stderr is not None
            sandbox.stderr.close()


def test_pipx_install_from_a_clone_then_uninstall(tmp_path: Path) -> None:
    """The README's route: `pipx install .` in a clone, the menu entry, then removing both."""
    pipx_env = {
        **clean_env(dict(os.environ)),
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    pipx = [sys.executable, "-m", "pipx"]
    sh([*pipx, "install", "."], env=pipx_env, cwd=REPO, timeout=INSTALL_TIMEOUT)
    launcher = tmp_path / "bin" / "zephr-desktop"
    work = tmp_path / "work"
    work.mkdir()
    assert sh([str(launcher), "--version"], env=pipx_env, cwd=work).stdout.strip() == (
        f"zephr-desktop {zephr_desktop.__version__}"
    )
    python = tmp_path / "pipx" / "venvs" / "zephr-desktop" / "bin" / "python"
    where = sh(
        [str(python), "-c", "import zephr_desktop.resources as r; print(r.assets_dir())"], env=pipx_env, cwd=work
    )
    assets = Path(where.stdout.strip())
    assert assets.is_relative_to(tmp_path / "pipx") and (assets / "index.html").is_file()

    sh([str(launcher), "desktop-entry", "install"], env=pipx_env, cwd=work)
    entry = tmp_path / "data" / "applications" / "zephr-desktop.desktop"
    validate(entry)
    assert exec_args(entry_keys(entry.read_text())["Exec"]) == [str(launcher)]  # pipx's link, stable on upgrades

    sh([str(launcher), "desktop-entry", "remove"], env=pipx_env, cwd=work)
    sh([*pipx, "uninstall", "zephr-desktop"], env=pipx_env, cwd=work)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert not launcher.exists() and not launcher.is_symlink()
    assert not (tmp_path / "pipx" / "venvs" / "zephr-desktop").exists()
