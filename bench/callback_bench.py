"""Figure 3: from the redirect hitting the loopback listener to the token in hand.

Both flows run in this process against the same sandbox, alternately, and are timed over
the same interval: from the moment the "browser" sends its GET to the redirect URI until the
flow's blocking call returns the token (``LoginFlow.wait()``; ``run_local_server()``). The
sign-in and the click on Allow happen before that interval, through the scripted user.

Fairness: Zephr wants the token request as JSON with Basic auth. Ours re-encodes Authlib's
form body in a registered client-auth method; the peer gets the equivalent, a
requests-oauthlib ``access_token_request`` compliance hook that re-encodes its form body as
JSON. Both talk to the sandbox in its default, strict ``zephr`` mode. The peer also gets the
two oauthlib switches any http loopback setup needs (insecure transport for http, and relaxed
scope checking because Zephr echoes the scopes comma-separated). Ours also saves the token
(token file and secret file, fsynced); the peer only returns it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from zephr_desktop import login
from zephr_desktop.login import LoginFlow
from zephr_desktop.oauth import Token
from zephr_desktop.sandbox import DEFAULT_CLIENT_SECRET, Client, Sandbox
from zephr_desktop.store import TokenStore

from .env import Workspace, has_module
from .fixtures import FLOW_TIMEOUT, SCOPES, add_profile, browser_get, scripted_user, store_for
from .stats import BenchError, Figure, interleave, samples

PEER_CLIENT_ID = "google-auth-oauthlib-peer"
PEER_LABEL = "google-auth-oauthlib InstalledAppFlow.run_local_server"


# The quick mode holds every figure to 1.5 times its target, but this one misses its target by design.
UNGUARDED = (
    "missed by design: ours saves the token (fsynced files, under the lock) before wait() returns, the "
    "peer returns it from memory; the quick mode only checks that it is measured"
)


def _timed_get(redirect: str, flow_done: Callable[[float], float]) -> float:
    """GET the redirect URI as the browser does; returns the flow's finish time minus the send time."""
    sent = time.perf_counter()
    status = browser_get(redirect)
    if status != 200:
        raise BenchError(f"the redirect listener answered {status}")
    return flow_done(sent)


def _finish(thread: threading.Thread, box: dict[str, Any], what: str) -> Callable[[float], float]:
    def done(sent: float) -> float:
        thread.join(FLOW_TIMEOUT)
        if "error" in box:
            raise BenchError(f"{what} failed: {box['error']!r}")
        if "at" not in box:
            raise BenchError(f"{what} did not return within {FLOW_TIMEOUT:.0f} s")
        return float(box["at"]) - sent

    return done


def _timed_saves(store: TokenStore, saves: list[float]) -> None:
    """Record how long each ``store.save`` takes (this store only), to show what saving costs."""
    save = store.save

    def timed(profile: str, token: Token) -> None:
        started = time.perf_counter()
        try:
            save(profile, token)
        finally:
            saves.append(time.perf_counter() - started)

    store.save = timed  # type: ignore[method-assign]


@contextlib.contextmanager
def _timed_exchanges(times: list[float]) -> Iterator[None]:
    """Record how long each of LoginFlow's code exchanges takes (the request to the token endpoint)."""
    exchange = login.exchange_code

    def timed(*args: Any, **kwargs: Any) -> Token:
        started = time.perf_counter()
        try:
            return exchange(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - started)

    login.exchange_code = timed  # login.py calls it through its module namespace
    try:
        yield
    finally:
        login.exchange_code = exchange


def ours_runner(ws: Workspace, sb: Sandbox, saves: list[float]) -> Callable[[], float]:
    """One sign-in with zephr-desktop's LoginFlow per call; returns the timed interval in seconds."""
    profile = add_profile(ws, sb, "callback")
    store = store_for(ws)
    _timed_saves(store, saves)
    user = scripted_user()

    def once() -> float:
        flow = LoginFlow(profile, DEFAULT_CLIENT_SECRET, store=store, timeout=FLOW_TIMEOUT)
        redirect = user.consent(flow.start())
        box: dict[str, Any] = {}

        def wait() -> None:
            try:
                box["token"] = flow.wait()
                box["at"] = time.perf_counter()
            except Exception as exc:  # reported by _finish on the timing thread
                box["error"] = exc

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        return _timed_get(redirect, _finish(thread, box, "zephr-desktop's LoginFlow"))

    return once


def _json_body(token_url: str, headers: dict[str, str], kwargs: dict[str, Any]) -> tuple[str, dict[str, str], Any]:
    """requests-oauthlib access_token_request hook: send the form fields as a JSON object, as Zephr wants."""
    data = kwargs.get("data") or {}
    body = json.dumps(dict(data))
    return token_url, {**headers, "Content-Type": "application/json"}, {**kwargs, "data": body}


def peer_runner(sb: Sandbox) -> Callable[[], float]:
    """One sign-in with google-auth-oauthlib's InstalledAppFlow per call; returns the timed interval."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    # The peer's loopback redirect URI is http://127.0.0.1:PORT/ (its own fixed path).
    sb.register_client(Client(PEER_CLIENT_ID, DEFAULT_CLIENT_SECRET, ("http://127.0.0.1:8080/",), "peer"))
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the sandbox is http on loopback
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # Zephr answers "a, b"; oauthlib would call that a change
    config = {
        "installed": {
            "client_id": PEER_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "auth_uri": sb.authorize_url,
            "token_uri": sb.token_url,
            "redirect_uris": ["http://127.0.0.1"],
        }
    }
    user = scripted_user()

    def once() -> float:
        flow = InstalledAppFlow.from_client_config(config, scopes=list(SCOPES))
        flow.oauth2session.register_compliance_hook("access_token_request", _json_body)
        urls: queue.Queue[str] = queue.Queue()
        make_url = flow.authorization_url

        def capture(**kwargs: Any) -> Any:
            url, state = make_url(**kwargs)
            urls.put(url)
            return url, state

        flow.authorization_url = capture  # how the bench learns the URL run_local_server builds
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["credentials"] = flow.run_local_server(
                    host="127.0.0.1",
                    port=0,
                    open_browser=False,
                    authorization_prompt_message="",
                    timeout_seconds=int(FLOW_TIMEOUT),
                )
                box["at"] = time.perf_counter()
            except Exception as exc:  # reported by _finish on the timing thread
                box["error"] = exc
                urls.put("")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        url = urls.get(timeout=FLOW_TIMEOUT)
        if not url:
            thread.join(1)
            raise BenchError(f"{PEER_LABEL} failed before the redirect: {box.get('error')!r}")
        redirect = user.consent(url)
        return _timed_get(redirect, _finish(thread, box, PEER_LABEL))

    return once


def callback_figure(ws: Workspace, sb: Sandbox, rounds: int) -> Figure:
    """Figure 3: ours vs google-auth-oauthlib, alternating, same sandbox, same interval."""
    key, label = "3", "callback to token in hand (sandbox)"
    if not has_module("google_auth_oauthlib"):
        return Figure(
            key,
            label,
            "ms",
            None,
            None,
            PEER_LABEL,
            target=1.0,
            error="google-auth-oauthlib is not installed (pip install -e '.[bench]')",
        )
    issued = len(sb.issued)
    saves: list[float] = []
    exchanges: list[float] = []
    with _timed_exchanges(exchanges):
        results = interleave({"ours": ours_runner(ws, sb, saves), "peer": peer_runner(sb)}, rounds)
    if len(sb.issued) - issued != 2 * (rounds + 1):
        raise BenchError("the sandbox did not issue one token per sign-in")
    ours = samples("zephr-desktop LoginFlow", results["ours"], 1000.0)

    def median_ms(values: list[float]) -> float:
        return round(statistics.median(values[1:]) * 1000.0, 2)  # the warm-up round's is dropped like its timing

    rest = [t - s - e for t, s, e in zip(results["ours"], saves[1:], exchanges[1:], strict=True)]
    return Figure(
        key,
        label,
        "ms",
        ours,
        samples(PEER_LABEL, results["peer"], 1000.0),
        PEER_LABEL,
        target=1.0,
        unguarded=UNGUARDED,
        extra={
            "save_ms": median_ms(saves),
            "exchange_ms": median_ms(exchanges),
            "listener_ms": round(statistics.median(rest) * 1000.0, 2),
        },
    )
