"""How each figure is measured, and for a missed target, where the time goes (from this run's data)."""

from __future__ import annotations

from typing import Any

from .stats import Figure

METHODS = {
    "1": "Each contender is a new process timed from spawn to exit, as a script calling "
    "`$(zephr-desktop token)` waits for it. Contenders are interleaved in rotating order "
    "(A B C D, B C D A, ...) after one dropped warm-up round, with the same interpreter, environment "
    "(throwaway XDG dirs, the fail keyring, bytecode caching on) and working directory. The token is "
    "real: signed in against the sandbox, cached and fresh.",
    "2": "As 1, two contenders on two profiles. Before each refreshing run (untimed) the cached token is "
    "made due (5 s left of 50 min), so every run refreshes against the sandbox (JSON body, Basic auth; "
    "the sandbox's counter confirms one refresh per run). Secrets come from the 0600 file store: there "
    "is no keyring here.",
    "3": "Both flows run in the benchmark process against the same sandbox, alternately, and are timed over "
    "the same interval: from the GET sent to the redirect URI (plain http.client, as the browser) until "
    "the blocking call returns the token (`LoginFlow.wait()`; `InstalledAppFlow.run_local_server()`). "
    "Sign-in and Allow happen before it, through the scripted user. Zephr wants JSON with Basic auth: "
    "ours re-encodes Authlib's form body in its client-auth method; the peer gets the equivalent, a "
    "requests-oauthlib `access_token_request` compliance hook that sends its form fields as JSON, and "
    "both talk to the sandbox in its strict default mode (no `rfc` mode). The peer also gets oauthlib's "
    "`OAUTHLIB_INSECURE_TRANSPORT` (http loopback) and `OAUTHLIB_RELAX_TOKEN_SCOPE` (Zephr echoes scopes "
    "comma-separated). Ours saves the token (fsynced files); the peer returns it from memory. Ours' parts are "
    "timed by thin wrappers around `login.exchange_code` and the store's `save`; the rest is the listener's.",
    "4": "Under a private Xvfb (the GUI tests' harness). The app is `zephr-desktop gui --profile NAME` run "
    "through the real CLI with a signed-in profile (the page draws the token panel), without the test "
    "control channel; the peer is one pywebview window (Qt backend, private mode like the app, same size "
    "and environment) showing a static page. They alternate, each a new process group, after a dropped "
    "warm-up round; a third contender, the same minimal window showing a copy of the app's own page, splits "
    "the difference into page and Python. Time: from spawn to the page setting `data-ready` on its body - "
    "the app's page once its first bridge call (`init`) has drawn it, the peer's on `pywebviewready` - on "
    "the page's own clock (a MutationObserver for the app; the peer's script stamps itself), checked against "
    "Python's clock. Memory: PSS summed over every process in the child's session "
    "(`/proc/PID/smaps_rollup`), a fixed settling time after ready, the same for both.",
    "5": "The harness launches the app with its test control channel; each round presses Sign in, signs in "
    "on the sandbox's page in the consent window, installs a MutationObserver on the main page, then clicks "
    "Allow. Interval: from the click (consent page clock) to the first animation frame after the new token "
    "appears in the token panel (main page clock). The first round is a dropped warm-up. Beside it, the "
    "sandbox token endpoint's own round trip (a refresh grant on a fresh connection, 3 per round).",
}


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _token_cause(fig: Figure, imports: dict[str, Any], floor_ms: float, bare_ms: float) -> str:
    assert fig.ours is not None and fig.target is not None
    largest = ", ".join(f"{name} {us / 1000:.1f} ms" for name, us in imports.get("largest_beyond_floor_us", []))
    budget = (fig.target - 1.0) * floor_ms
    return (
        f"The floor is {_ms(floor_ms)} (a bare interpreter {_ms(bare_ms)}, platformdirs and json the rest), "
        f"so the target leaves {_ms(budget)} for everything `token` does beyond `import platformdirs, json`; "
        f"it takes {_ms(fig.ours.median - floor_ms)}. Almost all of it is imports: the cached path loads "
        f"{imports.get('beyond_floor')} modules the floor does not ({imports.get('modules')} in all, floor "
        f"{imports.get('floor_modules')}). Largest, cumulative from `-X importtime` (they nest): {largest}."
    )


def _callback_cause(fig: Figure) -> str:
    assert fig.peer is not None
    x = fig.extra
    return (
        f"Ours does three things inside the interval: the code exchange ({x.get('exchange_ms')} ms: Authlib, "
        f"a new connection to the token endpoint), saving the token before `wait()` returns "
        f"({x.get('save_ms')} ms: the refresh token into the secret store, the token file, the superseded "
        f"refresh token removed - fsynced atomic writes under a file lock) and the listener's part "
        f"({x.get('listener_ms')} ms: handing the callback from the listener's thread to the flow, answering "
        f"the browser after the exchange, closing). The peer's whole interval is {_ms(fig.peer.median)}: one "
        f"thread, the same kind of exchange, no save (it returns the token from memory)."
    )


def _start_cause(fig: Figure) -> str:
    x = fig.extra
    start, loaded, ready = x.get("to_start_ms"), x.get("start_to_loaded_ms"), x.get("loaded_to_ready_ms")
    whole = x.get("ready_ms")
    assert isinstance(start, dict) and isinstance(loaded, dict) and isinstance(ready, dict)
    assert isinstance(whole, dict)

    def extra_ms(part: dict[str, float]) -> str:
        return _ms(part.get("app", 0.0) - part.get("peer", 0.0))

    split = ""
    if "app_page" in whole:
        split = (
            f" The same minimal window showing the app's own page (its HTML, script and styles; no bridge, "
            f"no app Python) is ready in {_ms(whole['app_page'])}: the page itself accounts for "
            f"{_ms(whole['app_page'] - whole['peer'])}, the app's Python side and bridge for "
            f"{_ms(whole['app'] - whole['app_page'])}."
        )
    return (
        f"Of the app's extra {extra_ms(whole)}: {extra_ms(start)} before `webview.start()` (the app's Python "
        f"start-up: argparse and the CLI, the GUI modules and what they import - config with tomllib, store, "
        f"login, oauth, logging, dataclasses - and reading profiles and the token); {extra_ms(loaded)} from there to "
        f"pywebview's loaded event (Qt and the web engine loading a larger page, and the bridge object exposed "
        f"to it); {extra_ms(ready)} from loaded to ready (the page's first bridge call, `init`, which reads the "
        f"profiles and the cached token - not the secret store - then the first render)."
        f"{split}"
    )


def _memory_cause(fig: Figure) -> str:
    processes = fig.extra.get("processes", {})
    assert isinstance(processes, dict)
    return (
        f"Both trees have the same shape ({processes.get('app')} and {processes.get('peer')} processes); the "
        "difference is the app's Python side (its modules and the bridge) and its page (script and styles) "
        "in the renderer."
    )


def _allow_cause(fig: Figure) -> str:
    return (
        "The interval holds the consent page's grant POST, the redirect to the listener, the code exchange "
        "(Authlib over a new connection), saving the token, closing the consent window, and the main page's "
        "`state()` round trip and render."
    )


def _pair(value: object, unit: str) -> str:
    """``app X / peer Y`` from an {"app": X, "peer": Y} extra."""
    if not isinstance(value, dict):
        return "-"
    suffix = f" {unit}" if unit else ""
    return f"app {value.get('app')}{suffix}, peer {value.get('peer')}{suffix}"


def _detail(fig: Figure) -> str:
    """What else this run measured about a figure (breakdowns, cross-checks)."""
    x = fig.extra
    if fig.key == "2":
        return f"The sandbox counted {x.get('refreshes_seen')} refreshes (the warm-up round's included)."
    if fig.key == "3":
        return (f"Medians of ours: exchange {x.get('exchange_ms')} ms, save {x.get('save_ms')} ms, the listener's "
                f"part (the rest of the interval) {x.get('listener_ms')} ms.")
    if fig.key == "4a":
        retried = x.get("starts_retried") or []
        hangs = (f" Starts that never got ready and were retried: {len(retried)} ({'; '.join(map(str, retried))})."
                 if isinstance(retried, list) and retried else " No start hung.")
        whole = x.get("ready_ms")
        page = (f" The minimal window showing the app's own page (no bridge, no app Python): ready in "
                f"{whole['app_page']} ms." if isinstance(whole, dict) and "app_page" in whole else "")
        return (f"Spawn to `webview.start()` (the Python side: imports, profiles, the bridge object): "
                f"{_pair(x.get('to_start_ms'), 'ms')}; then to pywebview's loaded event (Qt, the web engine, the "
                f"page): {_pair(x.get('start_to_loaded_ms'), 'ms')}; then to ready: "
                f"{_pair(x.get('loaded_to_ready_ms'), 'ms')}; page clock to Python (a clock check, not counted): "
                f"{_pair(x.get('page_to_python_hop_ms'), 'ms')}.{page}{hangs}")
    if fig.key == "4b":
        return (f"USS (private pages only, which other programs on the machine cannot shift): "
                f"{_pair(x.get('uss_mib'), 'MiB')}; processes: {_pair(x.get('processes'), '')}; weighed "
                f"{x.get('settle_s')} s after ready.")
    if fig.key == "5":
        return (f"{x.get('timed_by_frame')} of {x.get('rounds')} rounds were timed at the first frame after the "
                "change (the others at the change itself).")
    return ""


def explain(figures: list[Figure], imports: dict[str, Any]) -> None:
    """Fill in each figure's method and details, and a cause where its target is missed."""
    by_key = {f.key: f for f in figures}
    floor = by_key.get("1b")
    bare = by_key.get("1a")
    for fig in figures:
        fig.method = METHODS.get(fig.key[0], "")
        if fig.ours is not None and fig.ours.values:
            fig.detail = _detail(fig)
        if fig.met is not False:
            continue
        if fig.key in ("1b", "1c") and floor and floor.peer and bare and bare.peer:
            fig.cause = _token_cause(fig, imports, floor.peer.median, bare.peer.median)
        elif fig.key == "3":
            fig.cause = _callback_cause(fig)
        elif fig.key == "4a":
            fig.cause = _start_cause(fig)
        elif fig.key == "4b":
            fig.cause = _memory_cause(fig)
        elif fig.key == "5":
            fig.cause = _allow_cause(fig)
