"""`zephr-desktop desktop-entry install|remove`: the menu entry and icons in the user's XDG data dir."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support.cli import run

from zephr_desktop import desktop_entry
from zephr_desktop.errors import ZephrError
from zephr_desktop.resources import assets_dir

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
EXPECTED = {
    "applications/zephr-desktop.desktop",
    "icons/hicolor/scalable/apps/zephr-desktop.svg",
    *(f"icons/hicolor/{n}x{n}/apps/zephr-desktop.png" for n in SIZES),
}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def validate(path: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    assert tool, "desktop-file-validate is missing (Debian: apt-get install desktop-file-utils; scripts/setup does)"
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def entry_keys(text: str, group: str = "Desktop Entry") -> dict[str, str]:
    keys: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and current == group:
            key, value = line.split("=", 1)
            keys[key] = value
    return keys


def unescape_string(value: str) -> str:
    """A desktop file string value as the spec reads it (\\s \\n \\t \\r \\\\)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def exec_args(value: str) -> list[str]:
    """Split an Exec value into arguments as the Desktop Entry Specification's rules read it."""
    text = unescape_string(value)
    args, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        arg = []
        if text[i] == '"':
            i += 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    i += 1
                arg.append(text[i])
                i += 1
            i += 1
        else:
            while i < len(text) and text[i] != " ":
                arg.append(text[i])
                i += 1
        args.append("".join(arg).replace("%%", "%"))
    return args


def sysconfig_scripts() -> str:
    """The running environment's scripts folder (where its zephr-desktop launcher is)."""
    return sysconfig.get_path("scripts")


# -- the icons shipped with the app ----------------------------------------------------------------------------
def test_the_shipped_icons_hold_every_size_rendered_from_the_svg() -> None:
    shipped = assets_dir() / "icons" / "hicolor"
    found = {p.relative_to(shipped).parts[0] for p in shipped.glob("*/apps/zephr-desktop.png")}
    assert found == {f"{n}x{n}" for n in SIZES}
    for n in SIZES:
        assert png_size((shipped / f"{n}x{n}" / "apps" / "zephr-desktop.png").read_bytes()) == (n, n)
    assert (ROOT / "scripts" / "render_icons").is_file()  # how they were made, to make them again


# -- install and remove through the CLI --------------------------------------------------------------------------
def test_install_writes_a_valid_entry_and_the_icons_and_remove_takes_exactly_them(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(child_env["XDG_DATA_HOME"])
    # Things of other apps that are already there, and must stay as they are.
    others = {
        "applications/other-app.desktop": b"[Desktop Entry]\nType=Application\nName=Other\nExec=other\n",
        "icons/hicolor/48x48/apps/other-app.png": b"\x89PNG\r\n\x1a\nnot really",
        "icons/hicolor/index.theme": b"[Icon Theme]\nName=Hicolor\n",
    }
    for rel, data in others.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(data)
    before = files_under(home)

    result = run(child_env, "desktop-entry", "install")
    assert result.code == 0, result.err
    assert "zephr-desktop.desktop" in result.err
    after = files_under(home)
    assert set(after) - set(before) == EXPECTED
    assert {k: after[k] for k in before} == before

    entry_path = home / "applications" / "zephr-desktop.desktop"
    validate(entry_path)
    keys = entry_keys(entry_path.read_text())
    launcher = Path(sysconfig_scripts()) / "zephr-desktop"
    assert exec_args(keys["Exec"]) == [str(launcher)]
    assert launcher.is_absolute() and os.access(launcher, os.X_OK)
    assert unescape_string(keys["TryExec"]) == str(launcher)
    assert (keys["Type"], keys["Name"], keys["Icon"], keys["Terminal"]) == (
        "Application",
        "Zephr Desktop",
        "zephr-desktop",
        "false",
    )
    assert keys["StartupWMClass"] == "zephr-desktop"  # the windows' WM_CLASS: tests/gui checks the real one
    assert exec_args(entry_keys(entry_path.read_text(), "Desktop Action demo")["Exec"]) == [str(launcher), "--demo"]
    assert after["icons/hicolor/scalable/apps/zephr-desktop.svg"] == (assets_dir() / "icon.svg").read_bytes()
    for n in SIZES:
        assert png_size(after[f"icons/hicolor/{n}x{n}/apps/zephr-desktop.png"]) == (n, n)
    for rel in EXPECTED:
        assert oct((home / rel).stat().st_mode & 0o777) == "0o644", rel

    again = run(child_env, "desktop-entry", "install")  # installing twice changes nothing
    assert again.code == 0 and files_under(home) == after

    removed = run(child_env, "desktop-entry", "remove")
    assert removed.code == 0, removed.err
    assert files_under(home) == before
    nothing = run(child_env, "desktop-entry", "remove")
    assert nothing.code == 0 and "no menu entry" in nothing.err
    assert files_under(home) == before


def test_exec_is_the_launcher_that_ran_even_through_a_symlink_in_an_awkward_folder(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    launcher_src = Path(sysconfig_scripts()) / "zephr-desktop"
    folder = tmp_path / 'my apps $HOME "quoted" 100% (x) back\\slash'
    folder.mkdir()
    launcher = folder / "zephr-desktop"
    launcher.symlink_to(launcher_src)
    proc = subprocess.run(
        [str(launcher), "desktop-entry", "install"], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    entry = Path(child_env["XDG_DATA_HOME"]) / "applications" / "zephr-desktop.desktop"
    validate(entry)
    keys = entry_keys(entry.read_text())
    assert exec_args(keys["Exec"]) == [str(launcher)]  # the symlink itself, as pipx's ~/.local/bin one
    assert unescape_string(keys["TryExec"]) == str(launcher)


def test_a_launcher_path_with_a_line_break_is_refused() -> None:
    with pytest.raises(ZephrError, match="line break"):
        desktop_entry.render_entry(Path("/opt/odd\nname/zephr-desktop"))


def test_other_platforms_are_told_plainly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    for call in (desktop_entry.install, desktop_entry.remove):
        with pytest.raises(ZephrError, match="Linux desktops"):
            call(tmp_path)
    assert not any(tmp_path.iterdir())
