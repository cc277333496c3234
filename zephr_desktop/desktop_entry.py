"""The app in the desktop's menu: a freedesktop.org ``.desktop`` file and the icon theme files.

``install()`` writes, under the user's XDG data dir (``$XDG_DATA_HOME``, else ``~/.local/share``):

- ``applications/zephr-desktop.desktop``, whose ``Exec`` is the absolute path of the installed
  ``zephr-desktop`` launcher and whose ``StartupWMClass`` is the class the app's windows carry
  (``WM_CLASS``; Qt takes it from the application name), so docks group the windows under it;
- ``icons/hicolor/scalable/apps/zephr-desktop.svg`` and one PNG per size in
  ``icons/hicolor/<N>x<N>/apps/zephr-desktop.png``, copied from the shipped assets (the PNGs
  are rendered from the SVG when the icon changes, by ``scripts/render_icons``).

``remove()`` deletes exactly those files. Directories stay: other apps share them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ZephrError
from .fileutil import make_dirs
from .paths import user_data_home as data_home
from .resources import assets_dir

APP_ID = "zephr-desktop"  # the .desktop file's name, the icon's name and the windows' WM_CLASS
DESKTOP_FILE = f"{APP_ID}.desktop"
LAUNCHER = "zephr-desktop"
ICON_THEME = "hicolor"
# Reserved in an Exec argument (Desktop Entry Specification, "The Exec key"): such an argument is quoted.
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
_EXEC_ESCAPED_IN_QUOTES = set('"`$\\')


@dataclass(frozen=True)
class Planned:
    """One file ``install()`` writes: where, and the bytes."""

    path: Path
    data: bytes


def supported() -> bool:
    """True on the desktops that read freedesktop.org menu entries (Linux and the BSDs)."""
    return sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd", "dragonfly"))


def find_launcher() -> Path:
    """The absolute path of the installed ``zephr-desktop`` command that is running (or beside it)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates: list[Path] = []
    if argv0 is not None and argv0.name == LAUNCHER:
        candidates.append(Path(os.path.abspath(argv0)))  # keep a symlink (pipx's ~/.local/bin) as it is
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / LAUNCHER)  # `python -m zephr_desktop` in the same environment
    found = shutil.which(LAUNCHER)
    if found:
        candidates.append(Path(os.path.abspath(found)))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ZephrError(
        "Cannot find the installed zephr-desktop command to put in the menu entry. Install the app "
        "(`pipx install .` in a clone, or `pip install` into a virtual environment) and run "
        "`zephr-desktop desktop-entry install` with that command."
    )


def _string_value(text: str) -> str:
    """Escape a value of type string (backslash first, then the control characters the spec names)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def exec_argument(arg: str) -> str:
    """One Exec argument: quoted when it holds a reserved character, ``%`` doubled, then string-escaped."""
    if any(ch in arg for ch in "\n\r"):
        raise ZephrError(f"The path {arg!r} contains a line break; a menu entry cannot start it. Reinstall elsewhere.")
    if any(ch in _EXEC_RESERVED for ch in arg):
        arg = '"' + "".join("\\" + ch if ch in _EXEC_ESCAPED_IN_QUOTES else ch for ch in arg) + '"'
    return _string_value(arg.replace("%", "%%"))


def render_entry(launcher: Path) -> str:
    """The ``.desktop`` file's text for this launcher."""
    exe = exec_argument(str(launcher))
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.4",
            "Name=Zephr Desktop",
            "GenericName=OAuth Token Helper",
            "Comment=Sign in to a Zephr site, click Allow and copy the user's OAuth 2.0 access token",
            f"Exec={exe}",
            f"TryExec={_string_value(str(launcher))}",
            f"Icon={APP_ID}",
            "Terminal=false",
            "Categories=Development;WebDevelopment;",
            "Keywords=Zephr;OAuth;token;sign in;",
            "StartupNotify=true",
            f"StartupWMClass={APP_ID}",
            "Actions=demo;",
            "",
            "[Desktop Action demo]",
            "Name=Try the Demo (built-in sandbox)",
            f"Exec={exe} --demo",
            "",
        ]
    )


def _icon_sources() -> list[tuple[Path, Path]]:
    """(asset, path relative to the data dir) for the SVG and every shipped PNG size."""
    assets = assets_dir()
    theme = Path("icons") / ICON_THEME
    pairs = [(assets / "icon.svg", theme / "scalable" / "apps" / f"{APP_ID}.svg")]
    shipped = assets / "icons" / ICON_THEME
    for png in sorted(shipped.glob(f"*/apps/{APP_ID}.png")):
        pairs.append((png, theme / png.relative_to(shipped)))
    if len(pairs) == 1 or not pairs[0][0].is_file():
        raise ZephrError(f"The app's icons are missing from {assets}; reinstall zephr-desktop.")
    return pairs


def planned(home: Path | None = None, launcher: Path | None = None) -> list[Planned]:
    """Every file ``install()`` writes, icons first and the menu entry last."""
    home = home or data_home()
    files = [Planned(home / rel, src.read_bytes()) for src, rel in _icon_sources()]
    entry = render_entry(launcher or find_launcher())
    files.append(Planned(home / "applications" / DESKTOP_FILE, entry.encode("utf-8")))
    return files


def _owned_paths(home: Path) -> list[Path]:
    return [home / rel for _src, rel in _icon_sources()] + [home / "applications" / DESKTOP_FILE]


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a world-readable file (menus and icon themes are not secret)."""
    make_dirs(path.parent)  # what is missing is made 0700, like the app's own dirs, whatever the umask
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _require_support() -> None:
    if not supported():
        raise ZephrError(
            "Menu entries through `desktop-entry` are for Linux desktops (freedesktop.org). On macOS and "
            "Windows, start the app with `zephr-desktop` or pin it from the running window."
        )


def install(home: Path | None = None, launcher: Path | None = None) -> list[Path]:
    """Write the menu entry and the icons; returns the paths written (the ``.desktop`` file last)."""
    _require_support()
    files = planned(home, launcher)
    for item in files:
        _write(item.path, item.data)
    return [item.path for item in files]


def remove(home: Path | None = None) -> list[Path]:
    """Delete what ``install()`` writes; returns the paths that were there."""
    _require_support()
    removed: list[Path] = []
    for path in reversed(_owned_paths(home or data_home())):  # the menu entry first, then its icons
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
