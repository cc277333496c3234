"""The windows show only what they are for: the main window its own page, the consent window the web.

pywebview injects the Python bridge into whatever the main window loads, so a page that got
there would hold the bridge; the consent window shows a remote site, whose links to other
schemes would start desktop programs through ``xdg-open``, and whose title must always say
where the page came from. Each test attacks through a page's
script (over the engine's debugging port) or a real X click, with the system browser
(``BROWSER``) and ``xdg-open``/``xdg-email`` replaced by recorders, and checks what they got.
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import GuiApp, seed_profile
from support import evidence

from zephr_desktop.sandbox import Sandbox

pytestmark = pytest.mark.gui

HARD_TIMEOUT = 90.0
SETTLE = 1.5  # seconds for a navigation, a new window or a launched handler to show up


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The suite's sandbox (conftest.py)."""
    return sandbox


class Launches:
    """What reached the system browser (``BROWSER``) or a desktop handler (``xdg-open``, ``xdg-email``)."""

    def __init__(self, tmp: Path) -> None:
        self.browser_log = tmp / "browser.txt"
        self.handler_log = tmp / "xdg.txt"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for tool in ("xdg-open", "xdg-email"):
            script = bin_dir / tool
            script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {shlex.quote(str(self.handler_log))}\n')
            script.chmod(0o755)
        code = "import sys; open(sys.argv[2], 'a').write(sys.argv[1] + '\\n')"
        self.env = {
            "BROWSER": f"{sys.executable} -c {shlex.quote(code)} %s {shlex.quote(str(self.browser_log))}",
            "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
        }

    @property
    def browser(self) -> list[str]:
        return self.browser_log.read_text().splitlines() if self.browser_log.exists() else []

    @property
    def handlers(self) -> list[str]:
        return self.handler_log.read_text().splitlines() if self.handler_log.exists() else []


@pytest.fixture
def launches(tmp_path: Path) -> Launches:
    return Launches(tmp_path)


@pytest.fixture
def gui(tmp_path: Path, launches: Launches) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env=launches.env) as app:
        app.launch()
        assert app.app_url and app.app_url.startswith("http://127.0.0.1:")
        yield app


def assert_home(gui: GuiApp) -> None:
    """The main window still shows the app's own page, working, and no other page was opened."""
    assert [page["url"] for page in gui.pages()] == [gui.app_url]
    assert gui.js("location.href") == gui.app_url
    assert gui.js("document.body.dataset.ready === 'true' && !!document.querySelector('[data-testid=\"settings\"]')")


def away_from_home(gui: GuiApp) -> int:
    """For the evidence: pages besides the app's own, plus one if the main window shows another URL."""
    return len(gui.pages()) - 1 + (gui.js("location.href") != gui.app_url)


def inject_link(gui: GuiApp, href: str, *, target: str = "main", new_window: bool = False) -> str:
    """Put a big link at the top left of a page (as a hostile page would have it); returns its selector."""
    style = (
        "position:fixed;left:20px;top:20px;z-index:2147483647;padding:20px;font-size:24px;background:#ff0;color:#000"
    )
    gui.js(
        "(function () { var old = document.getElementById('bait'); if (old) old.remove();"
        " var a = document.createElement('a'); a.id = 'bait'; a.textContent = 'Click me';"
        f" a.href = {json.dumps(href)}; a.style.cssText = {json.dumps(style)};"
        f" if ({json.dumps(new_window)}) a.target = '_blank';"
        " document.body.appendChild(a); return true; })()",
        target,
    )
    return "#bait"


@pytest.mark.reliability("main-window-navigation")
def test_a_script_cannot_move_the_main_window(gui: GuiApp, launches: Launches, sb: Sandbox) -> None:
    gui.js(f"location.href = {json.dumps(sb.url + '/by-script')}; true")
    time.sleep(SETTLE)
    assert_home(gui)
    gui.js(f"location.replace({json.dumps(sb.url + '/replaced')}); true")
    frame = (
        f"var f = document.createElement('iframe'); f.src = {json.dumps(sb.url)}; document.body.appendChild(f); true"
    )
    gui.js(frame)
    time.sleep(SETTLE)
    assert_home(gui)
    # The frame stays empty: the sandbox's page never loads inside the app's page.
    tree = gui.cdp("Page.getFrameTree")["frameTree"]
    assert [child["frame"]["url"].startswith(sb.url) for child in tree.get("childFrames", [])] == [False], tree
    assert launches.handlers == []
    loaded = [c["frame"]["url"] for c in tree.get("childFrames", []) if c["frame"]["url"].startswith(sb.url)]
    evidence.record(
        way="script",
        tried=3,
        moved=away_from_home(gui),
        framed=len(loaded),
        handlers=len(launches.handlers),
        browser=len(launches.browser),
    )


@pytest.mark.reliability("main-window-navigation")
def test_a_popup_opens_nothing(gui: GuiApp, launches: Launches, sb: Sandbox) -> None:
    gui.js(f"window.open({json.dumps(sb.url + '/popup')}); true")
    gui.js("window.open('zoommtg://zoom.us/join?confno=1'); true")
    time.sleep(SETTLE)
    assert_home(gui)
    assert launches.browser == [] and launches.handlers == []
    evidence.record(
        way="window.open",
        tried=2,
        moved=away_from_home(gui),
        handlers=len(launches.handlers),
        browser=len(launches.browser),
    )


@pytest.mark.reliability("main-window-navigation")
def test_a_clicked_link_goes_to_the_system_browser(gui: GuiApp, launches: Launches, sb: Sandbox) -> None:
    gui.press(selector=inject_link(gui, sb.url + "/clicked"))
    gui.wait_for(lambda: launches.browser, "the link to reach the system browser")
    assert launches.browser == [sb.url + "/clicked"]
    assert_home(gui)

    gui.press(selector=inject_link(gui, sb.url + "/new-window", new_window=True))
    gui.wait_for(lambda: len(launches.browser) > 1, "the new-window link to reach the system browser")
    time.sleep(SETTLE)
    assert launches.browser == [sb.url + "/clicked", sb.url + "/new-window"]
    assert_home(gui)

    other_clicks = 0
    for href in ("zoommtg://zoom.us/join?confno=1", "file:///etc/passwd"):
        for new_window in (False, True):
            gui.press(selector=inject_link(gui, href, new_window=new_window))
            other_clicks += 1
    time.sleep(SETTLE)
    assert_home(gui)
    assert launches.browser == [sb.url + "/clicked", sb.url + "/new-window"]
    assert launches.handlers == []
    evidence.record(
        way="click",
        tried=2 + other_clicks,
        web_links=2,
        other_links=other_clicks,
        moved=away_from_home(gui),
        handlers=len(launches.handlers),
        browser=len(launches.browser),
    )


def drop(gui: GuiApp, url: str, x: int = 300, y: int = 300, target: str = "main") -> None:
    """Drag a URL onto the page and drop it (the engine's input domain: xdotool has nothing to drag)."""
    data = {"items": [{"mimeType": "text/uri-list", "data": url}]}
    for kind in ("dragEnter", "dragOver", "drop"):
        params = {"type": kind, "x": x, "y": y, "data": {**data, "dragOperationsMask": 1}}
        gui.cdp("Input.dispatchDragEvent", params, target)


@pytest.mark.reliability("main-window-navigation")
def test_a_dropped_url_does_not_load_in_the_main_window(gui: GuiApp, launches: Launches, sb: Sandbox) -> None:
    dropped = (f"{sb.url}/dropped", "zoommtg://zoom.us/join?confno=1", "file:///etc/passwd")
    for url in dropped:
        drop(gui, url)
    time.sleep(SETTLE)
    assert_home(gui)
    assert launches.handlers == []
    # The person's own drop of a web link may open it in their browser; nothing else goes anywhere.
    assert set(launches.browser) <= {f"{sb.url}/dropped"}, launches.browser
    evidence.record(
        way="drop",
        tried=len(dropped),
        moved=away_from_home(gui),
        handlers=len(launches.handlers),
        browser=len(launches.browser),
    )


# -- the consent window: http and https only ----------------------------------------------------------------
HANDLER_LINKS = {
    "zoom": "zoommtg://zoom.us/join?confno=123456789",
    "teams": "ms-teams://teams.microsoft.com/l/meetup-join/x",
    "mail": "mailto:someone@example.com?subject=hi",
    "file": "file:///etc/passwd",
    "zoom-new-window": "zoommtg://zoom.us/join?confno=987654321",
}


@pytest.fixture
def hostile_site() -> Iterator[str]:
    """A page on a local HTTP server whose links start desktop programs; yields its URL."""
    links = "".join(
        f'<p><a id="{name}" href="{href}"{" target=_blank" if name.endswith("new-window") else ""}'
        f' style="display:block;padding:14px;font-size:20px;background:#fe0">{name}</a></p>'
        for name, href in HANDLER_LINKS.items()
    )
    page = f"<!doctype html><title>Join the meeting</title><body>{links}</body>".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/meeting"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.reliability("consent-schemes")
def test_the_consent_window_follows_only_http_and_https(
    tmp_path: Path, launches: Launches, sb: Sandbox, hostile_site: str
) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env=launches.env) as gui:
        seed_profile(gui, sb)
        gui.launch()
        gui.press("sign-in")
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")
        # The site's page sends the person on to a page of its own (here another local server).
        gui.js(f"location.href = {json.dumps(hostile_site)}; true", target="consent")
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#zoom')", target="consent")
        for name in HANDLER_LINKS:
            gui.press(selector=f"#{name}", target="consent")
            time.sleep(0.3)
        gui.js("location.href = 'zoommtg://zoom.us/join?confno=1'; true", target="consent")
        dropped = (f"{sb.url}/dropped", "zoommtg://zoom.us/join?confno=2", "file:///etc/passwd")
        for url in dropped:
            drop(gui, url, target="consent")
        time.sleep(SETTLE)
        assert launches.handlers == []
        assert launches.browser == []
        assert gui.consent()["open"]
        assert gui.page("consent")["url"] == hostile_site
        assert gui.js("location.href", target="consent") == hostile_site
        assert len(gui.pages()) == 2  # the main window's and this one: no popup
        evidence.record(
            clicks=len(HANDLER_LINKS),
            schemes=sorted({h.split(":")[0] for h in HANDLER_LINKS.values()}),
            scripted=1,
            drops=len(dropped),
            handlers=len(launches.handlers),
            browser=len(launches.browser),
            popups=len(gui.pages()) - 2,
            moved=gui.js("location.href", target="consent") != hostile_site,
        )


# -- the consent window's title: always where the page came from -------------------------------------------
@pytest.mark.reliability("consent-title")
def test_the_consent_window_title_always_says_where_the_page_came_from(tmp_path: Path, sb: Sandbox) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT) as gui:
        seed_profile(gui, sb)
        gui.launch()
        gui.press("sign-in")
        window = gui.consent_window()
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")
        assert gui.window_name(window) == f"127.0.0.1:{sb.port} - http - Sign in to Zephr"

        shown: list[str] = []

        def title_becomes(expected: str) -> None:
            gui.wait_for(lambda: gui.window_name(window) == expected, f"the window title {expected!r}", timeout=10)
            shown.append(gui.window_name(window))

        # A look-alike host (Cyrillic "а"); *.localhost is loopback to the engine, so it loads without DNS.
        gui.js(f"location.href = 'http://аpple.localhost:{sb.port}/'; true", target="consent")
        title_becomes(f"xn--pple-43d.localhost:{sb.port} (аpple.localhost) - http - Sign in to Zephr")

        blob = "URL.createObjectURL(new Blob(['<title>Sign in</title><p>Password:</p>'], {type: 'text/html'}))"
        gui.js(f"location.href = {blob}; true", target="consent")
        gui.wait_js("location.protocol === 'blob:'", target="consent")
        title_becomes("(no trustworthy origin) - Sign in to Zephr")

        gui.js(f"location.href = 'http://127.0.0.1:{sb.port}/'; true", target="consent")
        title_becomes(f"127.0.0.1:{sb.port} - http - Sign in to Zephr")
        gui.js("location.href = 'about:blank'; true", target="consent")
        gui.wait_js("location.href === 'about:blank'", target="consent")
        title_becomes("(no trustworthy origin) - Sign in to Zephr")
        evidence.record(
            pages=len(shown),
            punycode=len([t for t in shown if "xn--" in t]),
            untrusted=len([t for t in shown if t.startswith("(no trustworthy origin)")]),
            blank=len([t for t in shown if not t.strip()]),
            titles=shown,
        )
