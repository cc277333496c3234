"""The main window's bridge, attacked from its own page's script in the running app (issue 8, item 1).

pywebview's script in the page sends a call as ``pywebview._jsApiCallback(name, params, id)``
over the Qt web channel (``_QWebChannel.objects.external.call``), and Python resolves the name
first among the exposed functions, then with ``getattr`` along its dots on the ``js_api``
object. Here the page itself (through the engine's debugging port, as any script in it could)
asks for private, dotted and dunder names, among them one that would run ``os.system`` and
create a marker file, and one that would return the client secret: none resolves, nothing
answers, nothing runs, while the page's own ``pywebview.api.state()`` still answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import GuiApp
from support import evidence

from zephr_desktop.config import save_profile
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.store import TokenStore

pytestmark = pytest.mark.gui

SECRET = "client-s3cret-from-the-store"
ACCESS = "oa_page_bridge_access_token"


def attacks(marker: Path) -> list[tuple[str, list[object]]]:
    shell = f"touch {marker}"
    return [
        # What the bridge object once led to: the store, its secrets, the shell.
        ("_store.get_client_secret", ["news"]),
        ("_session._store.get_client_secret", ["news"]),
        ("_store.directory._flavour.pathmod.os.system", [shell]),
        ("_session._store.directory._flavour.pathmod.os.system", [shell]),
        ("_store._secrets.get", ["news/client_secret"]),
        ("_shell.open_browser", ["https://attacker.example/"]),
        # From a page function to its globals and code, and from whatever pywebview was given.
        ("state.__globals__", []),
        ("sign_in.__func__.__globals__", []),
        ("copy.__wrapped__", ["token"]),
        ("__class__.__init__.__globals__", []),
        ("__init__.__globals__", []),
        ("__class__.__base__.__subclasses__", []),
        ("__getattribute__", ["__class__"]),
        ("__dict__", []),
        ("_functions", []),
        ("nonexistent", []),
    ]


@pytest.fixture
def gui(tmp_path: Path) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=90.0) as app:
        profile = Profile.create(name="news", site_url="https://news.example.com", client_id="news-client")
        save_profile(profile, path=app.config_path)
        store = TokenStore(directory=app.data_dir, notice=lambda _m: None)
        store.set_client_secret("news", SECRET)
        now = time.time()
        store.save(profile, Token(ACCESS, "bearer", expires_at=now + 3600, obtained_at=now, refresh_token="r-s3cret"))
        app.launch()
        yield app


CALL = """
(function (name, params, id) {
  var answers = window.__answers = window.__answers || {};
  var callbacks = window.pywebview._returnValuesCallbacks;
  callbacks[name] = callbacks[name] || {};
  callbacks[name][id] = function (answer) { answers[name + ' ' + id] = answer; };
  window.pywebview._jsApiCallback(name, params, id);
  return true;
})(%s, %s, %s)
"""


def call(gui: GuiApp, name: str, params: list[object], call_id: str) -> None:
    """What any script in the page can do: pywebview's own way to call Python, with a callback for the answer."""
    assert gui.js(CALL % (json.dumps(name), json.dumps(params), json.dumps(call_id))) is True


@pytest.mark.reliability("page-bridge")
def test_private_dotted_and_dunder_names_called_from_the_page_resolve_to_nothing(gui: GuiApp, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    log_before = gui.app_log.read_text(errors="replace")
    # The control first: the same raw call, with a name the page is given, is answered.
    call(gui, "state", [], "control")
    answered = gui.wait_js("window.__answers && window.__answers['state control']", what="the control call's answer")
    assert json.loads(answered["value"])["current"] == "news"

    sent = attacks(marker)
    for n, (name, params) in enumerate(sent):
        call(gui, name, params, f"a{n}")

    def logged() -> str:
        return gui.app_log.read_text(errors="replace")[len(log_before) :]

    # Calls are looked up in the order sent; the last one is a name nothing has, so once it is
    # refused, every name has been looked up.
    gui.wait_for(lambda: "Function nonexistent() does not exist" in logged(), "the last call to be looked up")
    time.sleep(1.5)  # had a name resolved, pywebview would have run it on a thread and answered by now
    answers = gui.js("window.__answers")
    evidence.record(names=len(sent), answered=len(answers) - 1, marker=marker.exists(), live=True)
    assert not marker.exists()
    assert list(answers) == ["state control"], answers
    refused = [name for name, _ in sent if f"Function {name}() does not exist" in logged()]
    assert refused == [name for name, _ in sent]  # each one reached Python and was refused there
    assert SECRET not in json.dumps(answers) and SECRET not in gui.app_log.read_text(errors="replace")

    # The page's own functions still work, through the page's own API object.
    state = gui.js("pywebview.api.state()")
    assert state["ok"] and state["current"] == "news" and state["token"]["access_token"] == ACCESS
    assert gui.alive()
