"""The desktop app's child processes never inherit ``ZEPHR_CLIENT_SECRET`` (security issue, item 5).

The app is started with the secret in its environment and no secret stored. Once the main
window and the consent window are up (QtWebEngine runs each page in its own processes, the
remote Zephr page included), every process under the app is read from ``/proc/PID/environ``:
none holds the variable or its value. The sign-in then completes, so the app did use it.
(The app's own process still shows it in ``/proc``: that is the environment it was started
with, and the one place the secret is meant to be.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import GuiApp, consent_sign_in, seed_profile, wait_token
from support import evidence

from zephr_desktop.sandbox import DEFAULT_CLIENT_SECRET, Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/PID/environ (Linux)"),
]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    server = Sandbox(settings=SandboxSettings(loopback_any_port=True)).start()
    try:
        yield server
    finally:
        server.stop()


def descendants(pid: int) -> dict[int, str]:
    """Every process under ``pid`` (by parent links in /proc), with its command name."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)], names[int(entry.name)] = int(rest[1]), name
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


@pytest.mark.reliability("client-secret-env")
def test_no_process_under_the_app_inherits_the_client_secret(tmp_path: Path, sb: Sandbox) -> None:
    with GuiApp(tmp_path / "gui", env={"ZEPHR_CLIENT_SECRET": DEFAULT_CLIENT_SECRET}) as gui:
        seed_profile(gui, sb)
        TokenStore(directory=gui.data_dir, notice=lambda _m: None).delete_client_secret("sandbox")
        gui.launch()
        gui.press("sign-in")
        gui.consent_window()
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")
        assert gui.app is not None
        children = descendants(gui.app.pid)
        engines = {pid: name for pid, name in children.items() if "QtWebEngine" in name}
        assert len(engines) >= 2, f"expected web engine processes for both windows, found {children}"
        for pid, name in children.items():
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue
            assert b"ZEPHR_CLIENT_SECRET" not in environ, f"{name} ({pid}) inherited ZEPHR_CLIENT_SECRET"
            assert DEFAULT_CLIENT_SECRET.encode() not in environ, f"{name} ({pid}) holds the client secret"
        consent_sign_in(gui)
        assert wait_token(gui) == sb.issued[-1]["access_token"]
        evidence.record(child="web engine", processes=len(children), engines=len(engines), inherited=0, signed_in=1)
