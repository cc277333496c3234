#!/usr/bin/env python3
"""Turn the last test run's reliability figures into docs/RELIABILITY.md.

The reliability tests (every test marked ``@pytest.mark.reliability(row)``, in tests/ and tests/gui/,
the attacks of the security rows S1-S14 among them) and the suite-wide secrets scan write what
they tried, how often and what held to tests/artifacts/reliability.json (see
tests/support/evidence.py); this script renders it as a table. Run the suite first:

    python3 -m pytest -q -p no:cacheprovider && python3 scripts/reliability_report.py

(the GUI tests run the real app under Xvfb; rows S1-S4 and S13 come from them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "tests" / "artifacts" / "reliability.json"
OUTPUT = ROOT / "docs" / "RELIABILITY.md"
REGENERATE = "bash scripts/setup && .venv/bin/python -m pytest && .venv/bin/python scripts/reliability_report.py"

Figures = list[dict[str, Any]]


def _sum(figures: Figures, key: str) -> int:
    return sum(int(f.get(key, 0)) for f in figures)


def _with(figures: Figures, key: str) -> Figures:
    return [f for f in figures if key in f]


def _forged(f: Figures) -> tuple[str, str]:
    runs = _with(f, "hand_written")
    redirects = _with(f, "ended_with")
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    times = (
        f"{_sum(runs, 'hand_written')} hand-written + {_sum(runs, 'random')} random (Hypothesis) requests "
        f"at a waiting sign-in; {len(redirects)} malformed redirects carrying the right state"
    )
    held = (
        f"no junk accepted (random ones answered {shown}); the listener kept serving; the genuine redirect "
        f"then completed {_sum(runs, 'signed_in')} sign-in(s), token stored and accepted by /blaize/account. "
        "Each malformed redirect ended the sign-in with its own error "
        f"({', '.join(sorted({r['ended_with'] for r in redirects}))}), nothing stored, no token request"
    )
    return times, held


def _load(f: Figures) -> tuple[str, str]:
    runs = _with(f, "junk_before")
    if not runs:
        return "-", "-"
    r = runs[-1]
    times = (
        f"{r['junk_before']} junk requests from {r['clients']} concurrent clients before the genuine "
        f"callback and {r['junk_during']} more while it was handled; {r['idle']} idle connections held open"
    )
    held = (
        f"sign-in finished {r['wait_seconds'] * 1000:.0f} ms and the page arrived "
        f"{r['page_seconds'] * 1000:.0f} ms after the callback was sent (limit 1 s); threads "
        f"{r['threads'][0]} -> {r['threads'][1]}, open fds {r['fds'][0]} -> {r['fds'][1]}; port free after"
    )
    return times, held


def _faults(f: Figures) -> tuple[str, str]:
    refresh = [x for x in f if x.get("command") == "refresh" and "fault" in x]
    login = [x for x in f if x.get("command") == "login"]
    trusted = [x["tls_trusted_by"] for x in f if "tls_trusted_by" in x]
    times = (
        f"`refresh` under {len(refresh)} faults ({'; '.join(x['fault'] for x in refresh)}); `login` under "
        f"{len(login)}; `refresh` over https trusted by {' and by '.join(trusted) or '-'}"
    )
    distinct = len({x["message"] for x in refresh})
    held = (
        f"{distinct} distinct one-line messages for {len(refresh)} faults (faults of one kind, such as a slow "
        "answer and a stalled body, share theirs), each with its fix (table below); exit 1, no traceback; the "
        "token stored before unchanged, printed by `token`, accepted by /blaize/account; a failed login stored "
        "nothing; https worked with either trust setting"
    )
    return times, held


def _race(f: Figures) -> tuple[str, str]:
    parts = [
        f"{x['meeting']}: {x['refresh_requests']} refresh request(s), {x['same_token']}/{x['processes']} "
        f"printed the same token, {x['waited_for_the_refresher']} waited for the refresher"
        for x in f
    ]
    times = (
        f"{len(f)} rounds of {f[0]['processes'] if f else 0} `zephr-desktop token` processes, expired token, "
        "sandbox rotating refresh tokens"
    )
    return times, "; ".join(parts) + "; no invalid_grant"


def _crash(f: Figures) -> tuple[str, str]:
    if not f:
        return "-", "-"
    r = f[-1]
    o = r["outcomes"]
    old = next((v for k, v in o.items() if k.startswith("old")), 0)
    new = next((v for k, v in o.items() if k.startswith("new")), 0)
    times = (
        f"{r['kills']} SIGKILLs at random points of a save (window {r['window_ms']} ms, one save "
        f"{r['save_ms']} ms) in {r['seconds']} s; {o.get('saves completed', 0)} saves completed"
    )
    held = (
        f"the store always loaded an intact access+refresh pair: the old one {old} times, the new one "
        f"{new} times, never a mix or nothing (left behind: {r['leftover_temp_files']} temp files, "
        f"{r['orphaned_refresh_tokens']} unreferenced refresh tokens; see below)"
    )
    return times, held


def _scan(f: Figures) -> tuple[str, str]:
    scan = _with(f, "texts")
    perms = _with(f, "umask")
    cli = _with(f, "commands")
    if not scan:
        return "-", "-"
    s = scan[-1]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s["kinds"].items()))
    sources = ", ".join(f"{n} {k}" for k, n in sorted(s["sources"].items()))
    times = (
        f"{s['texts']} texts ({s['characters']} characters: {sources}) x {s['secrets']} secrets ({kinds}); "
        f"{sum(c['commands'] for c in cli)} verbose CLI commands checked on their own; permissions under "
        f"umask {', '.join(p['umask'] for p in perms)}"
    )
    held = (
        f"{s['hits']} leak(s) of more than 8 characters of a secret; files 0600, dirs 0700 whatever the umask; "
        "token file, secrets.json and data dir loosened by hand were tightened with a warning"
    )
    return times, held


def _storage(f: Figures) -> tuple[str, str]:
    stores = [x["store"] for x in f]
    times = f"real CLI processes with: {'; '.join(stores)}"
    notices = [x["notices"] for x in f if "notices" in x]
    held = (
        "with a keyring the client secret and refresh tokens went there and to no file, data dir 0700; "
        f"without one the 0600 file worked and said so {notices[0] if notices else '?'} time(s) in "
        f"{next((x['commands'] for x in f if 'notices' in x), '?')} commands; switching moved the secrets "
        "into the keyring, the cached token kept working without it, the refresh said where the secrets "
        "were, and nothing was lost on the way back"
    )
    return times, held


def _transport(f: Figures) -> tuple[str, str]:
    urls = [x for x in f if "refused" in x]
    cases = [x["case"] for x in f if "case" in x]
    refused = len([x for x in urls if x["refused"] != "-"])
    times = f"{len(urls)} site/token URL pairs in a hand-edited profiles.toml; " + "; ".join(cases)
    held = (
        f"{refused} plain-http non-loopback URLs refused naming file, profile and field, "
        f"{len(urls) - refused} accepted; the redirect was not followed (no secret sent on); TLS could not "
        "be switched off from the environment; insecure_skip_tls_verify warned on every request; both "
        "proxies carried the requests (the http one was the only way to the server)"
    )
    return times, held


def _rfc(f: Figures) -> tuple[str, str]:
    shapes = [x for x in f if "requests" in x]
    keys = " / ".join(", ".join(k) for k in shapes[-1]["requests"]) if shapes else "-"
    basic = [x["case"] for x in _with(f, "token_requests")]
    return (
        "login, token, refresh, api against the sandbox in rfc mode with token_format=form, client_auth=body; "
        f"the same profile against a JSON-only server; {len(basic)} sign-ins and refreshes with "
        "client_secret_basic and secrets holding %, +, :, /, =, spaces and non-ASCII (the sandbox's rfc mode "
        "reads Basic as strictly as RFC 6749 2.3.1 says)",
        f"form-encoded token requests with the credentials in the body ({keys}); against Zephr the message "
        "names token_format; Basic credentials form-urlencoded in form mode and raw in Zephr mode, every "
        "sign-in and refresh accepted",
    )


def _hostile(f: Figures) -> tuple[str, str]:
    runs = _with(f, "command")
    attacks = sorted({x["attack"] for x in runs})
    by_command = {c: len([x for x in runs if x["command"] == c]) for c in sorted({x["command"] for x in runs})}
    held_all = all(x["refused"] and x["stored_unchanged"] for x in runs)
    times = (
        f"{len(attacks)} hostile token responses (escapes, CR/LF, wrong types, absurd lifetimes in access_token, "
        f"refresh_token, token_type, expires_in, scope, user_id), {len(runs)} CLI runs ("
        + ", ".join(f"{n} `{c}`" for c, n in by_command.items())
        + "); a CR/LF token on a first sign-in"
    )
    held = (
        "every one refused with exit 1 and one line naming the field, never a token's value; the stored files "
        "byte for byte unchanged; `status` afterwards clean"
        if held_all
        else "not all refused"
    )
    return times, held


def _no_traceback(f: Figures) -> tuple[str, str]:
    cases = _with(f, "case")
    times = (
        f"{len(cases)} broken inputs ({'; '.join(x['case'] for x in cases)}), "
        f"{_sum(cases, 'commands')} CLI runs without --verbose"
    )
    held = (
        f"{_sum(cases, 'tracebacks')} tracebacks; every failure one `zephr-desktop:` line and exit 1; an "
        "unexpected exception's traceback only in the --verbose log"
    )
    return times, held


def _conformance(f: Figures) -> tuple[str, str]:
    cases = [x["case"] for x in _with(f, "case")]
    refusals = [x for x in f if "message" in x]
    times = (
        "the CLI in RFC mode (token_format form) end to end against oauthlib's WebApplicationServer "
        f"(the client uses Authlib): {'; '.join(cases)}"
    )
    held = (
        "sign-ins and refreshes accepted, rotated refresh tokens followed; each refusal one line naming the "
        "authorization server's host, nothing stored: "
        + "; ".join(f"{x['case']}: {x['message'][:70]}..." for x in refusals)
    )
    return times, held


def _bridge(f: Figures) -> tuple[str, str]:
    runs = [x for x in _with(f, "names") if not x.get("live")]
    live = [x for x in _with(f, "names") if x.get("live")]
    if not runs and not live:
        return "-", "-"
    tried, held = [], []
    if runs:
        r = runs[-1]
        tried.append(
            f"{r['names']} private, dotted and dunder names (e.g. `_store.get_client_secret`, "
            "`_store.directory._flavour.pathmod.os.system`, `sign_in.__func__.__globals__`, "
            "`__class__.__base__.__subclasses__`) called through pywebview's own dispatch on the app's "
            "main window"
        )
        held.append(
            f"{r['resolved']} resolved, {r['answered']} answers reached the page, marker file created: "
            f"{'yes' if r['marker'] else 'no'}; pywebview logged each as not existing; the page's "
            f"{r['functions']} functions still answered"
        )
    if live:
        r = live[-1]
        tried.append(
            f"{r['names']} such names sent by a script in the running app's page "
            "(`pywebview._jsApiCallback`, over the engine's debugging port)"
        )
        held.append(
            f"in the running app: {r['answered']} answered, marker file created: "
            f"{'yes' if r['marker'] else 'no'}; `pywebview.api.state()` still answered"
        )
    return "; ".join(tried), "; ".join(held)


def _copy(f: Figures) -> tuple[str, str]:
    pasted = _with(f, "site")
    refused = sorted({x["refused_by"] for x in f if "refused_by" in x})
    exact = len([x for x in pasted if x["argv_exact"] and not x["ran"]])
    return (
        f"{len(pasted)} odd but RFC 3986-valid site URLs (`$(...)`, `;`, `&`, `'`) copied as curl and run by "
        f"bash; a site URL with `$(touch marker)` given to {', '.join(refused) or '-'}",
        f"{exact}/{len(pasted)} pasted as exactly the intended argv, no command ran; the hostile URL was "
        "refused everywhere, naming the field",
    )


def _navigation(f: Figures) -> tuple[str, str]:
    runs = _with(f, "way")
    if not runs:
        return "-", "-"
    ways = ", ".join(
        f"{_sum([x for x in runs if x['way'] == w], 'tried')} by {w}" for w in dict.fromkeys(x["way"] for x in runs)
    )
    clicks = _with(runs, "web_links")
    times = (
        f"{_sum(runs, 'tried')} attempts to take the app's main window elsewhere ({ways}; scripts set "
        "`location.href`, `location.replace` and an iframe; clicks are real X clicks on injected links to "
        "http, `zoommtg:` and `file:` in this window and a new one; drops of web, `zoommtg:` and `file:` URLs)"
    )
    held = (
        f"the main window left its page {_sum(runs, 'moved')} time(s), framed a foreign page "
        f"{_sum(runs, 'framed')} time(s); desktop handlers started: {_sum(runs, 'handlers')}; the "
        f"{_sum(clicks, 'web_links')} clicked web links went to the system browser "
        f"({_sum(clicks, 'browser')} opened there), the {_sum(clicks, 'other_links')} other-scheme clicks "
        "went nowhere"
    )
    return times, held


def _consent_schemes(f: Figures) -> tuple[str, str]:
    runs = _with(f, "clicks")
    if not runs:
        return "-", "-"
    schemes = sorted({s for x in runs for s in x["schemes"]})
    times = (
        f"{_sum(runs, 'clicks')} real X clicks on links to {', '.join(f'`{s}:`' for s in schemes)} (one "
        f"target=_blank) in a page the consent window was sent to, {_sum(runs, 'scripted')} scripted "
        f"`location.href` to `zoommtg:`, {_sum(runs, 'drops')} dropped URLs"
    )
    held = (
        f"desktop handlers started (`xdg-open`, `xdg-email`): {_sum(runs, 'handlers')}; system browser "
        f"opened: {_sum(runs, 'browser')}; popups: {_sum(runs, 'popups')}; the window left the page "
        f"{_sum(runs, 'moved')} time(s)"
    )
    return times, held


def _consent_title(f: Figures) -> tuple[str, str]:
    runs = _with(f, "titles")
    if not runs:
        return "-", "-"
    times = (
        f"the sign-in page, then {_sum(runs, 'pages')} pages the consent window was sent to by script: a "
        "look-alike IDN host (Cyrillic a), a `blob:` page, back to the site, `about:blank`"
    )
    held = (
        f"blank titles: {_sum(runs, 'blank')}; the IDN host shown in punycode {_sum(runs, 'punycode')} "
        f"time(s) (with its Unicode form beside it); pages without a trustworthy origin marked "
        f"{_sum(runs, 'untrusted')} time(s): " + "; ".join(f"`{t}`" for t in runs[-1]["titles"])
    )
    return times, held


def _secret_env(f: Figures) -> tuple[str, str]:
    runs = _with(f, "child")
    if not runs:
        return "-", "-"
    kinds = sorted({x["child"] for x in runs})
    times = (
        f"`ZEPHR_CLIENT_SECRET` set for {len(runs)} sign-ins, the secret stored nowhere else; the environment of "
        f"every child read back ({', '.join(kinds)}): {_sum(runs, 'processes')} processes in all, "
        f"{_sum(runs, 'engines')} of them QtWebEngine processes (one renders the remote sign-in page)"
    )
    held = (
        f"{_sum(runs, 'inherited')} children inherited the variable or held the secret; "
        f"{_sum(runs, 'signed_in')}/{len(runs)} sign-ins still used it and succeeded"
    )
    return times, held


def _binding(f: Figures) -> tuple[str, str]:
    runs = _with(f, "edit")
    if not runs:
        return "-", "-"
    times = (
        f"a signed-in profile edited in profiles.toml to point elsewhere ({', '.join(x['edit'] for x in runs)}), "
        f"then {_sum(runs, 'commands')} commands (`token`, `api account`, `refresh`, `status`, `status --json`) "
        "with a recording server as the new host"
    )
    held = (
        f"requests that reached the new host: {_sum(runs, 'reached_new_host')}; refreshes sent for the edited "
        f"client: {_sum(runs, 'refreshes_sent')}; signed out with a message naming what changed: "
        f"{_sum(runs, 'signed_out')}/{len(runs)}"
    )
    return times, held


def _permissions(f: Figures) -> tuple[str, str]:
    made = _with(f, "umask")
    refusals = _with(f, "case")
    if not made and not refusals:
        return "-", "-"
    times = (
        f"the CLI run under umask 000 from an empty home ({_sum(made, 'made')} files and directories made); "
        f"{len(refusals)} files or directories of the app made writable by others or given to another uid "
        f"({'; '.join(x['case'] for x in refusals)}), then {_sum(refusals, 'commands')} commands"
    )
    held = (
        f"made with a mode other than 0700/0600: {_sum(made, 'wrong_mode')}; commands refused naming the path "
        f"and the fix: {_sum(refusals, 'refused')}/{_sum(refusals, 'commands')}; config or data changed by a "
        f"refused command: {_sum(refusals, 'changed')}"
    )
    return times, held


def _squatter(f: Figures) -> tuple[str, str]:
    refused = _with(f, "squatter")
    over = _with(f, "callback_over")
    if not refused and not over:
        return "-", "-"
    times = (
        f"{len(refused)} sign-in(s) with a `localhost` redirect URI while another program listened on "
        f"{', '.join(sorted({x['squatter'] for x in refused})) or '-'} at that port; {len(over)} genuine "
        f"callback(s) to `localhost` arriving over {', '.join(sorted({x['callback_over'] for x in over})) or '-'}"
    )
    errors = ", ".join(sorted({x["refused"] for x in refused}))
    held = (
        f"each squatted sign-in refused before the browser opened ({errors} naming the port and address), "
        f"no authorize request, nothing stored; {_sum(over, 'signed_in')} "
        "callback(s) over IPv6 signed in"
    )
    return times, held


def _flood(f: Figures) -> tuple[str, str]:
    runs = _with(f, "flood")
    if not runs:
        return "-", "-"
    times = "; ".join(
        f"{x['flood']} {x['flood_kind']} connections opened in {x['flood_seconds']} s, then more "
        f"kept coming during the callback ({x['flood_total']} in all)"
        for x in runs
    )
    held = "; ".join(
        f"{x['flood_kind']}: the oldest {x['flood_dropped']} dropped first, the genuine callback "
        f"answered in {x['flood_page_seconds'] * 1000:.0f} ms and signed in"
        for x in runs
    )
    return times, held


def _nothing_for_tests(f: Figures) -> tuple[str, str]:
    runs = _with(f, "variable")
    if not runs:
        return "-", "-"
    times = (
        f"{len(runs)} launch(es) of the app with `{runs[-1]['variable']}` naming a file of the user's "
        "(the old test-control channel deleted it and put a socket there)"
    )
    held = (
        f"file intact: {len([x for x in runs if x['victim_intact']])}/{len(runs)}, replaced by a socket: "
        f"{len([x for x in runs if x['control_socket']])}, app running normally: "
        f"{len([x for x in runs if x['alive']])}/{len(runs)}"
    )
    return times, held


def _sandbox_host(f: Figures) -> tuple[str, str]:
    foreign = [x for x in f if x.get("foreign")]
    ours = [x for x in f if x.get("foreign") is False]
    if not foreign:
        return "-", "-"
    times = (
        f"{len(foreign)} foreign Host headers (DNS-rebinding names, a trailing dot, another port, userinfo, "
        f"empty) on {foreign[-1]['routes']} routes each (config, authorize, grant, token, /blaize/account) "
        f"with a valid session and token; {len(ours)} loopback Host forms as the control"
    )
    held = (
        f"{_sum(foreign, 'refused')}/{_sum(foreign, 'routes')} refused with 400 invalid_request naming Host; "
        f"requests that reached a route: {len([x for x in foreign if x['reached']])}; token echoed: "
        f"{len([x for x in foreign if x['leaked']])}; the loopback forms answered {_sum(ours, 'answered')}/"
        f"{_sum(ours, 'routes')}"
    )
    return times, held


ROWS: list[tuple[str, str, str, Callable[[Figures], tuple[str, str]]]] = [
    ("1", "forged-callbacks", "Forged and malformed callbacks", _forged),
    ("2", "listener-load", "Load on the listener", _load),
    ("3", "token-faults", "Token endpoint faults", _faults),
    ("4", "refresh-race", "Refresh, one at a time", _race),
    ("5", "crash-safety", "Crash safety", _crash),
    ("6", "secrets-scan", "Secrets stay secret", _scan),
    ("7", "transport", "Transport", _transport),
    ("8", "secret-storage", "Secret storage", _storage),
    ("9", "rfc6749", "RFC 6749 servers", _rfc),
    ("S1", "page-bridge", "The main window's bridge, called from the page (security item 1)", _bridge),
    ("S2", "main-window-navigation", "The main window shows only its own page (security item 2)", _navigation),
    ("S3", "consent-schemes", "The consent window follows only http and https (security item 3)", _consent_schemes),
    (
        "S4",
        "consent-title",
        "The consent window's title says where the page came from (security item 4)",
        _consent_title,
    ),
    ("S5", "client-secret-env", "The client secret in the environment (security item 5)", _secret_env),
    ("S6", "token-binding", "Tokens bound to the issuer that issued them (security item 6)", _binding),
    ("S7", "file-permissions", "Files another local user could write (security item 7)", _permissions),
    ("S8", "hostile-token-endpoint", "A hostile token endpoint (security item 8)", _hostile),
    ("S9", "no-traceback", "No traceback reaches a person (security item 9)", _no_traceback),
    ("S10", "localhost-squatter", "Another program on the other loopback address (security item 10)", _squatter),
    ("S11", "listener-flood", "A flood of idle and slow connections on the listener (security item 11)", _flood),
    ("S12", "copy-formats", "Copy formats and hostile site URLs (security item 12)", _copy),
    ("S13", "nothing-for-tests", "Nothing for tests ships in the app (security item 13)", _nothing_for_tests),
    ("S14", "sandbox-host", "The sandbox refuses a foreign Host header (security, the sandbox)", _sandbox_host),
    ("R8", "conformance", "An authorization server nobody here wrote (real servers item 8)", _conformance),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(row: dict[str, Any], item: str) -> str:
    tests = row.get("tests", [])
    if item == "6":
        scan = _with(row.get("figures", []), "hits")
        if not scan:
            return "not run"
        if scan[-1]["hits"]:
            return f"**FAILED**: {scan[-1]['hits']} leak(s)"
    if not tests:
        return "not run"
    failed = [t["nodeid"].split("::")[-1] for t in tests if t["outcome"] == "failed"]
    if failed:
        return f"**FAILED** ({len(failed)} of {len(tests)}: {', '.join(failed)})"
    passed = len([t for t in tests if t["outcome"] == "passed"])
    return f"held ({passed}/{len(tests)} tests passed, {sum(t['seconds'] for t in tests):.1f} s)"


def render(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    commit = (doc.get("commit") or "unknown")[:12]
    if doc.get("uncommitted_changes"):
        commit += " plus uncommitted changes"
    session = doc["session"]
    lines = [
        "# Reliability evidence",
        "",
        f"Regenerate: `{REGENERATE}`",
        "",
        f"Generated by `scripts/reliability_report.py` from the test run that finished {doc['finished']} on commit "
        f"{commit} (Python {doc['python']}, {doc['platform']}, {doc['cpus']} CPUs). That run: "
        f"{session['tests']} tests, {session['passed']} passed, {session['failed']} failed, {session['skipped']} "
        f"skipped, in {doc['seconds']} s. Each row's tests are marked `@pytest.mark.reliability(row)` (in "
        "`tests/` and `tests/gui/`); row 6's scan covers the whole suite (`tests/support/secrets_scan.py`). "
        "Rows S1-S14 are the attacks of the security issue, numbered as its items (S14: the sandbox's Host check).",
        "",
        "| # | What was tried | How many times | What held | Result |",
        "|---|---|---|---|---|",
    ]
    for number, key, title, describe in ROWS:
        row = rows.get(key, {"tests": [], "figures": []})
        figures = row.get("figures", [])
        times, held = describe(figures) if figures else ("-", "-")
        verdict = _verdict(row, number)
        if verdict.startswith("**FAILED"):
            held = f"**not all of this held**: {held}"
        lines.append(f"| {number} | {title} | {_cell(times)} | {_cell(held)} | {verdict} |")
    faults = [x for x in rows.get("token-faults", {}).get("figures", []) if "message" in x]
    if faults:
        lines += [
            "",
            "## Messages per token endpoint fault (row 3)",
            "",
            "| command | fault | message |",
            "|---|---|---|",
        ]
        lines += [f"| `{x['command']}` | {x['fault']} | {_cell(x['message'])} |" for x in faults]
    crash = rows.get("crash-safety", {}).get("figures", [])
    if crash:
        c = crash[-1]
        lines += [
            "",
            "## Left behind by killed saves (row 5)",
            "",
            f"After {c['kills']} kills the token always loaded intact, but {c['leftover_temp_files']} temporary "
            f"files (a kill between creating a file's temporary copy and renaming it) and "
            f"{c['orphaned_refresh_tokens']} refresh tokens that no token file names (a kill between storing a "
            "new refresh token and replacing the token file, or before the old one was deleted) were left in the "
            "data dir, all 0600 in a 0700 dir like the live secrets. The store's tidy-up (run by `logout` and "
            "after every refresh, under the profile's refresh lock, which every save holds) then removed them all "
            "and left the live token and its refresh token intact. A system keyring cannot list its entries: "
            "there a kill between the two writes can leave one unreferenced refresh token in the keyring.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=ARTIFACT, help="figures from the last run")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the markdown goes ('-' for stdout)")
    args = parser.parse_args(argv)
    try:
        doc = json.loads(args.input.read_text())
    except FileNotFoundError:
        print(f"No figures at {args.input}: run the test suite first ({REGENERATE}).", file=sys.stderr)
        return 1
    text = render(doc)
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(
            f"Wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
