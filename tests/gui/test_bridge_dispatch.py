"""The main window's bridge as the page reaches it: pywebview's own dispatch on the window the app builds.

pywebview 6 resolves a name the page calls with ``window._functions.get(name)`` and then
``getattr`` along the dotted path on ``js_api``. These tests build the real main window
(``shell.create_main_window``, no GUI started), put a recording stand-in where the web engine
goes, and call ``webview.util.js_bridge_call`` as the page's ``pywebview.api`` calls do.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webview
from support import evidence
from webview.util import inject_pywebview, js_bridge_call

from zephr_desktop.config import save_profile
from zephr_desktop.gui.api import NO_ATTRIBUTES
from zephr_desktop.gui.session import Session
from zephr_desktop.gui.shell import DesktopShell, create_main_window
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.store import TokenStore

SURFACE = {
    "init", "state", "select_profile", "save_profile", "remove_profile", "sign_in", "cancel_sign_in",
    "open_in_browser", "refresh", "set_auto_refresh", "copy", "copy_text", "test_token", "sign_out", "secret_status",
    "check_profile", "about",
}  # fmt: skip
SECRET = "client-s3cret-value"
ACCESS = "oa_dispatch_access_token"


class RecordingEngine:
    """Stands where pywebview's web engine goes: records every script pywebview asks it to run."""

    renderer = "qtwebengine"

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self._lock = threading.Lock()

    def evaluate_js(self, script: str, uid: str, parse_json: bool = True, *_rest: Any) -> None:
        with self._lock:
            self.scripts.append(script)

    def answer(self, name: str, value_id: str, timeout: float = 10.0) -> Any:
        """What call ``value_id`` of ``name`` handed back to the page (pywebview answers on a thread)."""
        callback = f'window.pywebview._returnValuesCallbacks["{name}"]["{value_id}"]('
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                # Window.evaluate_js wraps each script in eval("...") with JS string escapes.
                scripts = [_unescape(m) for s in self.scripts for m in re.findall(r'eval\("((?:[^"\\]|\\.)*)"\)', s)]
            for script in scripts:
                if script.startswith(callback):
                    # js_bridge_call answers ({value: '<the JSON, as a JS string>'}).
                    quoted = re.fullmatch(r"\{value: '((?:[^'\\]|\\.)*)'\}\)", script[len(callback) :])
                    assert quoted is not None, script
                    return json.loads(_unescape(quoted.group(1)))
            time.sleep(0.01)
        raise AssertionError(f"no answer to {name} ({value_id}) within {timeout} s")


def _unescape(js: str) -> str:
    """The text of a JS string literal's body (the escapes pywebview writes: \\\\ \\" \\' \\n \\r)."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), js, flags=re.DOTALL)


@pytest.fixture
def window(tmp_path: Path) -> Iterator[tuple[Any, RecordingEngine]]:
    news = Profile.create(name="news", site_url="https://news.example.com", client_id="news-client")
    save_profile(news)
    store = TokenStore(notice=lambda _m: None)
    store.set_client_secret("news", SECRET)
    store.save(news, Token(ACCESS, "bearer", expires_at=time.time() + 3600, obtained_at=time.time(),
                             refresh_token="refresh-s3cret"))  # fmt: skip
    shell = DesktopShell()
    session = Session(shell, store=store)
    built = create_main_window(session, shell)
    engine = RecordingEngine()
    try:
        assert built._initialize(engine)  # what webview.start() does with its GUI backend
        inject_pywebview(engine.renderer, built)  # what the engine runs on page load: builds pywebview.api
        assert built.events.loaded.wait(10)
        yield built, engine
    finally:
        session.shutdown()
        shell.close()
        webview.windows.remove(built)


def test_the_page_is_given_exactly_its_functions(window: tuple[Any, RecordingEngine]) -> None:
    _, engine = window
    finish = [s for s in engine.scripts if "_createApi(JSON.parse(" in s]
    assert len(finish) == 1
    listed = json.loads(re.search(r"JSON\.parse\('(.*)'\)\);", finish[0]).group(1))  # type: ignore[union-attr]
    assert {entry["func"] for entry in listed} == SURFACE and len(listed) == len(SURFACE)


def test_the_page_functions_answer_through_the_dispatch(window: tuple[Any, RecordingEngine]) -> None:
    built, engine = window
    js_bridge_call(built, "state", [], "1")
    state = engine.answer("state", "1")
    assert state["ok"] and state["current"] == "news" and state["token"]["access_token"] == ACCESS
    js_bridge_call(built, "secret_status", ["news"], "2")
    assert engine.answer("secret_status", "2") == {"ok": True, "has_secret": True}
    js_bridge_call(built, "select_profile", ["ghost"], "3")
    assert "No profile named 'ghost'" in engine.answer("select_profile", "3")["error"]
    assert SECRET not in "".join(engine.scripts)


ATTACKS: list[tuple[str, list[Any]]] = [
    # What the bridge object used to lead to: its own attributes, the store, the shell.
    ("_store.get_client_secret", ["news"]),
    ("_session._store.get_client_secret", ["news"]),
    ("_store.load", ["news"]),
    ("_shell.open_browser", ["https://attacker.example/"]),
    ("_store.directory._flavour.pathmod.os.system", ["touch {marker}"]),
    ("_store._secrets.get", ["news/client_secret"]),
    # From a page function to its globals, closure and code.
    ("sign_in.__func__.__globals__", []),
    ("copy.__func__.__globals__", []),
    ("sign_in.__globals__", []),
    ("state.__closure__", []),
    ("copy.__wrapped__", ["token"]),
    ("init.__code__", []),
    # From whatever object pywebview was given (even None has a class).
    ("__class__.__base__.__subclasses__", []),
    ("__class__.__init__.__globals__", []),
    ("__init__.__globals__", []),
    ("__getattribute__", ["__class__"]),
    ("__reduce_ex__", [2]),
    ("__dict__", []),
    ("__dir__", []),
    ("__class__", []),
    # Names that are not functions at all.
    ("", []),
    (".", []),
    ("state.", []),
    ("nonexistent", []),
]


@pytest.mark.reliability("page-bridge")
def test_private_dotted_and_dunder_names_resolve_to_nothing(
    window: tuple[Any, RecordingEngine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built, engine = window
    marker = tmp_path / "marker"
    caplog.set_level(logging.ERROR, logger="pywebview")
    before = len(engine.scripts)
    threads = threading.active_count()
    for n, (name, params) in enumerate(ATTACKS):
        args = [p.format(marker=marker) if isinstance(p, str) else p for p in params]
        caplog.clear()
        js_bridge_call(built, name, args, f"a{n}")
        assert f"Function {name}() does not exist" in caplog.text, name
    time.sleep(0.5)  # had any name resolved, pywebview would have run it on a thread and answered the page
    answered = len(engine.scripts) - before
    evidence.record(names=len(ATTACKS), resolved=0, answered=answered, marker=marker.exists(),
                    functions=len(built._functions))  # fmt: skip
    assert not marker.exists()
    assert answered == 0, engine.scripts[before:]
    assert threading.active_count() <= threads
    js_bridge_call(built, "state", [], "after")  # the page's own functions still answer
    assert engine.answer("state", "after")["current"] == "news"


def test_the_object_given_as_js_api_answers_no_attribute() -> None:
    for name in ("__class__", "__dict__", "__init__", "__getattribute__", "_store", "state", "x"):
        assert getattr(NO_ATTRIBUTES, name, None) is None, name
    assert dir(NO_ATTRIBUTES) == []
