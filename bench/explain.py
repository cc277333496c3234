"""How each figure is measured, and for a missed target, where the time goes (from this run's data)."""

from __future__ import annotations

from collections.abc import Callable
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
    "through the real CLI with a signed-in profile (the page draws the token panel), as a person runs it; the "
    "peer is one pywebview window (Qt backend, private mode like the app, same size and environment) showing a "
    "static page. They alternate, each a new process group, after a dropped warm-up round; a third contender, "
    "the same minimal window showing a copy of the app's own page, splits the difference into page and Python. "
    "Time: from spawn to the page setting `data-ready` on its body - the app's page once it has drawn its first "
    "state (profiles and token) and pywebview's bridge is ready, the peer's on `pywebviewready` - on the page's "
    "own clock (a MutationObserver installed as the document is created), checked against Python's clock. "
    "Beside it, the CPU time the whole "
    "process tree used up to ready (`/proc/PID/task/*/schedstat`): work done, which other programs on the "
    "machine do not shift. Memory: PSS summed over every process in the child's session "
    "(`/proc/PID/smaps_rollup`), a fixed settling time after ready, the same for both.",
    "5": "The app runs under the harness, which drives it through the web engine's DevTools port, with the "
    "benchmark's probe (`bench/probe`: a `sitecustomize` that wraps a few of the app's functions to write "
    "timestamps; only this app process has it). Each round presses Sign in, signs in on the sandbox's page in "
    "the consent window, installs a MutationObserver on the main page, then clicks Allow. Interval: from the "
    "click (consent page clock) to the first animation frame after the new token appears in the token panel "
    "(main page clock); the probe's marks split it into parts. The first round is a dropped warm-up. Beside "
    "it, the sandbox token endpoint's own round trip (a refresh grant on a fresh connection, 3 per round).",
    "6": "The same app process as 5, before it. Each round clicks Sign in on the main page (its clock) and ends "
    "at the first contentful paint of the sandbox's sign-in page in the consent window (Paint Timing: "
    "`performance.timeOrigin` plus the `first-contentful-paint` entry, that page's clock); the sign-in is then "
    "cancelled and the window gone before the next round. The peer runs at the same time under the same X "
    "server: a minimal pywebview window whose page asks Python over pywebview's bridge to open a second bare "
    "window (the consent window's size) on the sandbox's authorize URL for the same profile (a fresh state and "
    "PKCE challenge each round, as a sign-in makes it); it ends at the same paint. Alternately, after a dropped "
    "warm-up round.",
    "7": "Two workspaces against the same sandbox: the measured profile alone, and the same profile among 99 "
    "more, each with a cached token (copies of a real one, saved through the store as a sign-in saves them). "
    "7a times the app's cold start as in 4 (the same signed-in profile, so the same token panel, beside a "
    "profile menu of 1 or 100); 7b times `token -p NAME` as in 1. Interleaved, a dropped warm-up round each.",
    "8": "Its own sandbox issuing 5-second access tokens (refresh token kept), a signed-in profile, the app "
    "launched by the harness with auto refresh on (its default), running until the sandbox counted the planned "
    "refreshes. A sampler reads the token panel through the DevTools port about ten times a second and looks "
    "the token up in the sandbox's issue log (polled every 20 ms): shown after its expiry is one moment; a "
    'MutationObserver in the page adds every moment its countdown says "Expired". A cycle is one token\'s '
    "life, from its issue until a refresh replaced it: exactly one refresh belongs in it (one sooner than the "
    "token was due counts as a second). Memory: the PSS of the app's whole process tree right after each "
    "refresh; the medians of 5 cycles from the cycle named on, and of the last 5, are compared (1 each in "
    "quick runs). Figures 8 and 9 run at the same time.",
    "9": "Its own sandbox and workspace (5-second tokens, refresh token kept); four threads each run "
    "`python -m zephr_desktop token -p soak` in a loop with a 0.2 s pause, until the sandbox counted the planned "
    "refreshes. Each printed token is looked up in the sandbox's issue log at the moment its call returned. "
    "Cycles as in 8. 9c: in each cycle, the longest call that started within a third of a lifetime of the "
    "refresh, against the call that made the refresh (the earliest to print the new token): a call that waits "
    "on the lock waits for that one refresh, so the longest is at most about twice it.",
}


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _largest(imports: dict[str, Any]) -> str:
    return ", ".join(f"{name} {us / 1000:.1f} ms" for name, us in imports.get("largest_beyond_bare_us", []))


def _token_cause(fig: Figure, imports: dict[str, Any], floor_ms: float, bare_ms: float) -> str:
    assert fig.ours is not None and fig.target is not None
    budget = (fig.target - 1.0) * floor_ms
    return (
        f"The floor is {_ms(floor_ms)} (a bare interpreter {_ms(bare_ms)}, platformdirs and json the rest), "
        f"so the target leaves {_ms(budget)} for everything `token` does beyond `import platformdirs, json`; "
        f"it takes {_ms(fig.ours.median - floor_ms)}. Beyond a bare interpreter it imports "
        f"{len(imports.get('beyond_bare') or [])} modules; largest, cumulative from `-X importtime` (they nest): "
        f"{_largest(imports) or 'none measurable'}."
    )


def _bare_cause(fig: Figure, imports: dict[str, Any], floor_ms: float, bare_ms: float) -> str:
    assert fig.ours is not None and fig.target is not None
    return (
        f"A bare interpreter starts in {_ms(bare_ms)}; the target leaves {_ms((fig.target - 1.0) * bare_ms)} for "
        f"everything `token` does beyond it, and it takes {_ms(fig.ours.median - bare_ms)}. Importing platformdirs "
        f"and json alone (the design's floor, 1b's peer) would take {_ms(floor_ms - bare_ms)}. Beyond a bare "
        f"interpreter, cumulative from `-X importtime` (they nest): {_largest(imports) or 'nothing measurable'}."
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
    whole, cpu = x.get("ready_ms"), x.get("cpu_ms")
    assert isinstance(start, dict) and isinstance(loaded, dict) and isinstance(ready, dict)
    assert isinstance(whole, dict)

    def extra_ms(part: dict[str, float]) -> str:
        return _ms(part.get("app", 0.0) - part.get("peer", 0.0))

    split = ""
    if "app_page" in whole:
        split = (
            f" The same minimal window showing the app's own page (its HTML, script and styles; no bridge "
            f"functions, no app Python) is ready in {_ms(whole['app_page'])}: the page itself accounts for "
            f"{_ms(whole['app_page'] - whole['peer'])}, the app's Python side and bridge for "
            f"{_ms(whole['app'] - whole['app_page'])}."
        )
    work = ""
    if isinstance(cpu, dict) and "app" in cpu and "peer" in cpu:
        work = (
            f" In CPU time (all processes, spawn to ready) the app uses {_ms(cpu['app'])} against the peer's "
            f"{_ms(cpu['peer'])}"
            + (f" and the app's page alone {_ms(cpu['app_page'])}" if "app_page" in cpu else "")
            + "."
        )
    return (
        f"Of the app's extra {extra_ms(whole)}: {extra_ms(start)} before `webview.start()` (the app's Python "
        f"start-up: argparse and the CLI, config with tomllib, the store, the session and the page's functions, "
        f"the single-instance rendezvous, reading profiles and the token); {extra_ms(loaded)} from there to "
        f"pywebview's loaded event (Qt and the web engine loading a larger page - styles with two font stacks, a "
        f"20 kB script, icons - the first state computed and handed to the page, 16 bridge functions exposed); "
        f"{extra_ms(ready)} from loaded to ready.{split}{work}"
    )


def _memory_cause(fig: Figure) -> str:
    processes = fig.extra.get("processes", {})
    assert isinstance(processes, dict)
    return (
        f"Both trees have the same shape ({processes.get('app')} and {processes.get('peer')} processes); the "
        "difference is the app's Python side (its modules and the bridge) and its page (script and styles) "
        "in the renderer."
    )


def _parts(fig: Figure) -> str:
    parts = fig.extra.get("parts_ms")
    if not isinstance(parts, dict) or not parts:
        return ""
    return "; ".join(f"{label} {value} ms" for label, value in parts.items())


def _allow_cause(fig: Figure) -> str:
    parts = _parts(fig)
    where = (
        f" Medians of its parts (from the probe's marks, {fig.extra.get('split_rounds')} rounds): {parts}."
        if parts
        else ""
    )
    return (
        "The interval holds the consent page's grant POST and the redirect to the listener (a navigation of "
        "the consent window to another origin), the code exchange (Authlib over a new connection), saving the "
        "token, and the main page's round trip through pywebview's bridge (told by an evaluated script, it "
        f"calls `state()`, whose answer comes back as another evaluated script) and render.{where}"
    )


def _signin_cause(fig: Figure) -> str:
    return (
        "Both wait for the same page from the same server in a new window. The app's click goes through its "
        "bridge to `sign_in`, which reads the client secret, binds the loopback listener and makes the PKCE "
        "pair before asking for the window; the window is built by pywebview on a blank page first, and its "
        "page is then replaced by one on a fresh off-the-record profile of its own (no cookies, no bridge) "
        "before the URL loads. The peer's second window loads the URL in pywebview's own page on the shared "
        "profile."
    )


def _growth_cause(fig: Figure) -> str:
    if fig.key == "7b":
        return (
            "The fast path reads the validation stamp, which lists every profile name, and the token file of "
            "the profile asked for: the other 99 are never opened."
        )
    return (
        "With 100 profiles the page's first state holds 100 profile entries (the profile menu is drawn with "
        "100 options), and `profiles.toml` is 100 times larger to parse and validate before `init` answers."
    )


def _soak_memory_cause(fig: Figure) -> str:
    x = fig.extra
    uss, own = x.get("uss_mib"), x.get("python_uss_mib")
    where = ""
    if isinstance(uss, dict) and isinstance(own, dict) and None not in (*uss.values(), *own.values()):
        tree_growth = float(uss["late"]) - float(uss["early"])
        own_growth = float(own["late"]) - float(own["early"])
        where = (
            f" Of the private pages (USS), the tree grew by {tree_growth:.1f} MiB: the app's own process "
            f"(Python, Qt and the compositor) by {own_growth:.1f} MiB, the web engine's other processes (the "
            f"main page's renderer) by {tree_growth - own_growth:.1f} MiB."
        )
    sizes = x.get("page_size")
    page = ""
    if isinstance(sizes, dict) and len(sizes) == 2:
        (first, a), (last, b) = sorted(sizes.items(), key=lambda kv: int(kv[0]))
        page = (
            f" The page itself does not grow: [elements, pending bridge callbacks] {a} at cycle {first}, "
            f"{b} at cycle {last}."
        )
    collected = x.get("collected_pss_mib")
    back = ""
    if isinstance(collected, (int, float)) and fig.peer is not None and fig.peer.median:
        back = (
            f" After the last cycle the page's engine was asked for a full garbage collection (DevTools' "
            f"HeapProfiler.collectGarbage): the tree's PSS then read {collected:.1f} MiB, "
            f"{collected / fig.peer.median:.2f}x cycle {x.get('memory_from')}'s - the growth is garbage the "
            "engine had not yet collected, not memory the app keeps."
            if fig.target is not None and collected / fig.peer.median <= fig.target
            else f" After the last cycle a full garbage collection of the page's engine (DevTools' "
            f"HeapProfiler.collectGarbage) left the tree's PSS at {collected:.1f} MiB, "
            f"{collected / fig.peer.median:.2f}x cycle {x.get('memory_from')}'s: most of it is kept, not garbage."
        )
    return (
        "Each refresh pushes the new state to the page, which draws the token panel again (new token text, "
        "scope chips, expiry): the old elements and the pushed script's strings become garbage of the page's "
        "engine (Blink and V8), collected when the engine decides to, not at once. PSS also shares library "
        "pages with every other process on the machine that maps them, so it moves when other programs start "
        f"or stop.{page}{where}{back}"
    )


def _pair_names(value: object, first: str, second: str, unit: str) -> str:
    if not isinstance(value, dict):
        return "-"
    return f"from {value.get(first)} {unit} to {value.get(second)} {unit}"


def _count_cause(fig: Figure) -> str:
    x = fig.extra
    if fig.key == "8a":
        return (
            f"{x.get('expired_samples')} samples of the token panel showed a token after its expiry, and the "
            f'page\'s countdown said "Expired" {x.get("page_expired")} times.'
        )
    if fig.key == "9a":
        return f"{x.get('failed')} calls failed; the rest printed tokens past their expiry."
    ours = fig.ours
    bad = [int(v) for v in ours.values if v != fig.target] if ours is not None else []
    return (
        f"{len(bad)} cycles did not have exactly one refresh ({', '.join(map(str, bad[:10]))}): a refresh "
        "sooner than the token was due, a second refresh of the same token."
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
        return (
            f"Medians of ours: exchange {x.get('exchange_ms')} ms, save {x.get('save_ms')} ms, the listener's "
            f"part (the rest of the interval) {x.get('listener_ms')} ms."
        )
    if fig.key == "4a":
        retried = x.get("starts_retried") or []
        hangs = (
            f" Starts that never got ready and were retried: {len(retried)} ({'; '.join(map(str, retried))})."
            if isinstance(retried, list) and retried
            else " No start hung."
        )
        whole = x.get("ready_ms")
        page = (
            f" The minimal window showing the app's own page (no bridge, no app Python): ready in "
            f"{whole['app_page']} ms."
            if isinstance(whole, dict) and "app_page" in whole
            else ""
        )
        return (
            f"Spawn to `webview.start()` (the Python side: imports, profiles, the bridge object): "
            f"{_pair(x.get('to_start_ms'), 'ms')}; then to pywebview's loaded event (Qt, the web engine, the "
            f"page): {_pair(x.get('start_to_loaded_ms'), 'ms')}; then to ready: "
            f"{_pair(x.get('loaded_to_ready_ms'), 'ms')}; page clock to Python (a clock check, not counted): "
            f"{_pair(x.get('page_to_python_hop_ms'), 'ms')}; CPU time of the process tree to ready: "
            f"{_pair(x.get('cpu_ms'), 'ms')}.{page}{hangs}"
        )
    if fig.key == "4b":
        return (
            f"USS (private pages only, which other programs on the machine cannot shift): "
            f"{_pair(x.get('uss_mib'), 'MiB')}; processes: {_pair(x.get('processes'), '')}; weighed "
            f"{x.get('settle_s')} s after ready."
        )
    if fig.key == "5":
        parts = _parts(fig)
        return (
            f"{x.get('timed_by_frame')} of {x.get('rounds')} rounds were timed at the first frame after the "
            f"change (the others at the change itself)." + (f" Medians of the parts: {parts}." if parts else "")
        )
    if fig.key == "7a":
        return f"CPU time of the process tree to ready: {_pair_names(x.get('cpu_ms'), 'one', 'many', 'ms')}."
    if fig.key in ("8a", "8b", "8c"):
        ages = x.get("refresh_age_s") or {}
        age = (
            f"; a token's age when refreshed: median {ages.get('median')} s (min {ages.get('min')}, max "
            f"{ages.get('max')})"
            if isinstance(ages, dict) and ages
            else ""
        )
        if fig.key == "8a":
            return (
                f"{x.get('samples')} samples of the token panel ({x.get('blank_samples')} without a token shown, "
                f"{x.get('unknown_samples')} with one the sandbox never issued){age}."
            )
        if fig.key == "8c":
            return (
                f"USS (private pages) {_pair_names(x.get('uss_mib'), 'early', 'late', 'MiB')}; of that, the "
                f"app's own process {_pair_names(x.get('python_uss_mib'), 'early', 'late', 'MiB')}; "
                f"{x.get('processes')} processes."
            )
        return f"{len(fig.ours.values) if fig.ours else 0} cycles counted{age}."
    if fig.key in ("9a", "9b", "9c"):
        return (
            f"{x.get('calls')} calls by {x.get('loops')} loops ({x.get('pause_s')} s pause), median "
            f"{x.get('call_median_ms')} ms; {x.get('failed')} failed; {x.get('unknown_tokens')} printed a "
            "token the sandbox never issued."
        )
    return ""


_QUEUED = (
    "Calls that found the token due queued on the profile's lock for longer than one refresh: "
    "each waits for the refreshing call, then reads the token it saved."
)
# The cause of a missed target, by figure key (the token figures need the import profile: see explain()).
_CAUSES: dict[str, Callable[[Figure], str]] = {
    "3": _callback_cause,
    "4a": _start_cause,
    "4b": _memory_cause,
    "5": _allow_cause,
    "6": _signin_cause,
    "7a": _growth_cause,
    "7b": _growth_cause,
    "8c": _soak_memory_cause,
    "8a": _count_cause,
    "8b": _count_cause,
    "9a": _count_cause,
    "9b": _count_cause,
    "9c": lambda _fig: _QUEUED,
}


def explain(figures: list[Figure], imports: dict[str, Any]) -> None:
    """Fill in each figure's method and details, and a cause where its target is missed."""
    by_key = {f.key: f for f in figures}
    floor = by_key.get("1b")
    bare = by_key.get("1a")
    have_floor = bool(floor and floor.peer and bare and bare.peer)
    for fig in figures:
        fig.method = METHODS.get(fig.key[0], "")
        if fig.ours is not None and fig.ours.values:
            fig.detail = _detail(fig)
        if fig.met is not False:
            continue
        if fig.key in ("1a", "1b", "1c") and have_floor:
            assert floor is not None and floor.peer is not None and bare is not None and bare.peer is not None
            cause = _bare_cause if fig.key == "1a" else _token_cause
            fig.cause = cause(fig, imports, floor.peer.median, bare.peer.median)
        elif fig.key in _CAUSES:
            fig.cause = _CAUSES[fig.key](fig)
