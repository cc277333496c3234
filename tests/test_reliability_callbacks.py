"""Reliability, items 1 and 2: forged, malformed and flooding traffic at the sign-in listener.

tests/test_listener.py covers each request at the listener's level. Here the whole sign-in
runs (LoginFlow against the sandbox, the scripted user's consent) with the junk thrown at its
listener first: nothing the junk sends is accepted, nothing stops the listener, and the
genuine redirect sent afterwards still ends in a stored, working token.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import evidence, rawhttp, secrets_scan
from support.signin import account_status, add_profile, quiet_store, sign_in
from support.user import ScriptedUser

from zephr_desktop.errors import AccessDeniedError, AuthorizationError, CallbackError, PortInUseError, ZephrError
from zephr_desktop.listener import CallbackListener
from zephr_desktop.login import LoginFlow
from zephr_desktop.loopback import MAX_CONNECTIONS
from zephr_desktop.sandbox import Client, Sandbox
from zephr_desktop.store import TokenStore

TESTS = Path(__file__).resolve().parent
CODE_LIKE = "kcpa10fzqa9nmut95duwok0c"  # the shape of a Zephr code, not one the sandbox issued
REFUSED = {400, 404, 405, 414, 431, 505}  # every answer junk may get; never 200 (accepted) or 409 (over)


class PendingSignIn:
    """A LoginFlow whose listener is up, whose wait() runs, and whose consent is already given."""

    def __init__(self, sb: Sandbox, name: str = "demo") -> None:
        self.sb = sb
        self.profile = add_profile(sb, name)
        self.store = quiet_store()
        self.flow = LoginFlow(self.profile, self.store.get_client_secret(name), store=self.store, timeout=60)
        url = self.flow.start()
        self.port = int(urlsplit(self.flow.redirect_uri).port or 0)
        self.state = parse_qs(urlsplit(url).query)["state"][0]
        user = ScriptedUser()
        self.redirect = user.consent(url)  # the genuine redirect: held back until the junk is done
        user.http.close()
        self.genuine_query = urlsplit(self.redirect).query
        self.code = parse_qs(self.genuine_query)["code"][0]
        self.finished_at = 0.0
        self._pool = ThreadPoolExecutor(1)
        self.result = self._pool.submit(self.flow.wait)
        self.result.add_done_callback(lambda _: setattr(self, "finished_at", time.perf_counter()))

    def still_waiting(self) -> bool:
        return not self.result.done()

    def complete(self) -> requests.Response:
        """Send the genuine redirect as the browser would; returns the listener's page."""
        page = requests.get(self.redirect, timeout=10)
        secrets_scan.collect("listener result page", page.text)
        return page

    def close(self) -> None:
        self.flow.cancel()
        self._pool.shutdown(wait=True)


@pytest.fixture
def pending(sandbox: Sandbox) -> Iterator[PendingSignIn]:
    sign = PendingSignIn(sandbox)
    yield sign
    sign.close()


def junk_table(port: int, query: str) -> list[tuple[str, bytes, set[int]]]:
    """Hand-written junk: forged callbacks, then the genuine query delivered in ways that must be refused."""

    def req(target: str | bytes, **kwargs: object) -> bytes:
        return rawhttp.build(port, target, **kwargs)  # type: ignore[arg-type]

    forged = f"/callback?code={CODE_LIKE}&state=forged"
    genuine = f"/callback?{query}"
    keep_alive = ("Connection: keep-alive",)
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n"
    post = req(genuine, method="POST", headers=("Content-Length: 3",), body=b"a=b")
    return [
        # The sender does not know the state (an attacker, another app, an old tab).
        ("wrong state", req(forged), {400}),
        ("no state", req(f"/callback?code={CODE_LIKE}"), {400}),
        ("no code, wrong state", req("/callback?state=forged"), {400}),
        ("code twice, wrong state", req("/callback?code=a&code=b&state=forged"), {400}),
        ("error with description, no state", req("/callback?error=access_denied&error_description=Denied%21"), {400}),
        ("error without description, wrong state", req("/callback?error=server_error&state=forged"), {400}),
        ("empty query", req("/callback"), {400}),
        ("1 MB query", req("/callback?state=" + "x" * 1_000_000), {414}),
        ("broken percent-encoding", req("/callback?code=%zz%&state=%E2%82%"), {400}),
        ("invalid UTF-8", req(b"/callback?code=\xff\xfe&state=\xc3\x28"), {400}),
        ("binary (a TLS hello)", tls_hello, {400}),
        ("70 KB header", req(forged, headers=("X-Big: " + "b" * 70_000,)), {431}),
        ("HTTP/1.0, no Host, wrong state", req(forged, host=None, version="HTTP/1.0"), {400}),
        ("favicon", req("/favicon.ico"), {404}),
        ("pipelined keep-alive, three forged", req(forged, headers=keep_alive) * 3, {400}),
        # The genuine code and state, sent the wrong way: refused, and still good afterwards.
        ("genuine query, foreign Host (DNS rebinding)", req(genuine, host=f"evil.example:{port}"), {400}),
        ("genuine query, Host without the port", req(genuine, host="127.0.0.1"), {400}),
        ("genuine query, two Host headers", req(genuine, headers=(f"Host: evil.example:{port}",)), {400}),
        ("genuine query, no Host on HTTP/1.1", req(genuine, host=None), {400}),
        ("genuine query, HTTP/1.0 with a foreign Host", req(genuine, host="evil.example", version="HTTP/1.0"), {400}),
        ("genuine query, HTTP/0.9", req(genuine, version=""), {400}),
        ("genuine query, HTTP/2.0", req(genuine, version="HTTP/2.0"), {505}),
        ("genuine query, absolute-form target", req(f"http://127.0.0.1:{port}{genuine}"), {400}),
        ("genuine query, other path", req(f"/callback/?{query}"), {404}),
        ("genuine query, path /", req(f"/?{query}"), {404}),
        ("genuine query, POST with a body", post, {405}),
        ("genuine query, HEAD", req(genuine, method="HEAD"), {405}),
        ("genuine query, PUT", req(genuine, method="PUT"), {405}),
        ("genuine query, OPTIONS", req(genuine, method="OPTIONS"), {405}),
        (
            "pipelined keep-alive: junk, then the genuine query",
            req("/favicon.ico", headers=keep_alive) + req(genuine),
            {404},
        ),
    ]


# -- hypothesis: random requests, never knowing the state ---------------------------------

METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "get", "BREW"]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "", "HTTP/2.0", "HTTP/1.1x", "HTTPS/1.1"]
PATHS = ["/callback", "/callback/", "/", "/favicon.ico", "//callback", "/CALLBACK", "/%63allback", "/callback;x", "*"]
HEADERS = [
    "Connection: keep-alive",
    "Expect: 100-continue",
    "Transfer-Encoding: chunked",
    "Content-Length: 3",
    "Content-Length: -1",
    "Cookie: blaize_session=x",
    "X-Forwarded-Host: 127.0.0.1",
    "Upgrade: websocket",
]
# Each turns the real state into a different one (never an equivalent spelling such as %41 for A).
NEAR_STATES: list[Callable[[str], str]] = [
    lambda s: s[:-1],
    lambda s: s + "x",
    lambda s: s.swapcase(),
    lambda s: "%20" + s,
    lambda s: s + "%00",
    lambda s: s[1:] + s[0],
    lambda s: s[::-1],
    lambda s: f"{s}&state={s}",
]


def _encode(raw: bytes) -> bytes:
    """Raw bytes for a request line or header: CR, LF, space and # escaped, everything else as is."""
    return b"".join(b"%%%02X" % b if b in b"\r\n #" else bytes([b]) for b in raw)


values = st.one_of(
    st.tuples(st.just("near"), st.integers(0, len(NEAR_STATES) - 1)),
    st.tuples(st.just("raw"), st.binary(max_size=40)),
    st.tuples(st.just("code"), st.just(CODE_LIKE)),
)
requests_st = st.fixed_dictionaries(
    {
        "method": st.one_of(st.sampled_from(METHODS), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)),
        "path": st.one_of(st.sampled_from(PATHS), st.binary(max_size=30).map(lambda b: b"/" + _encode(b))),
        "pairs": st.lists(
            st.tuples(st.sampled_from(["code", "state", "error", "error_description", "State", ""]), values), max_size=6
        ),
        "host": st.sampled_from(["own", "localhost", "foreign", "none", "wrong port", "[::1]"]),
        "version": st.sampled_from(VERSIONS),
        "headers": st.lists(st.one_of(st.sampled_from(HEADERS), st.binary(max_size=40).map(_encode)), max_size=4),
        "body": st.binary(max_size=64),
    }
)


def _random_request(port: int, state: str, draw: dict[str, object]) -> bytes:
    parts = []
    for key, (kind, value) in draw["pairs"]:  # type: ignore[attr-defined]
        text = NEAR_STATES[value](state).encode() if kind == "near" else value if kind == "raw" else value.encode()
        parts.append(key.encode() + b"=" + _encode(text))
    target = draw["path"] if isinstance(draw["path"], bytes) else str(draw["path"]).encode()
    if parts:
        target += b"?" + b"&".join(parts)
    host = {
        "own": "",
        "localhost": f"localhost:{port}",
        "foreign": f"evil.example:{port}",
        "none": None,
        "wrong port": f"127.0.0.1:{port + 1}",
        "[::1]": f"[::1]:{port}",
    }[str(draw["host"])]
    data = rawhttp.build(port, target, method=str(draw["method"]), host=host, version=str(draw["version"]))
    headers: list[bytes | str] = draw["headers"]  # type: ignore[assignment]
    extra = b"".join((h if isinstance(h, bytes) else h.encode()) + b"\r\n" for h in headers)
    return data[:-2] + extra + b"\r\n" + draw["body"]  # type: ignore[operator]


@pytest.mark.reliability("forged-callbacks")
def test_forged_and_malformed_callbacks_then_the_genuine_one_signs_in(pending: PendingSignIn, sandbox: Sandbox) -> None:
    table = junk_table(pending.port, pending.genuine_query)
    code = pending.code
    for name, data, expected in table:
        raw = rawhttp.exchange(pending.port, data)
        status = rawhttp.status_of(raw)
        assert status in expected, f"{name}: the listener answered {status}, expected one of {sorted(expected)}"
        assert raw.count(b"HTTP/1.1 ") == 1, f"{name}: more than one answer on one connection"
        assert code not in raw.decode("latin-1"), f"{name}: the answer repeats the authorization code"
        secrets_scan.collect(f"listener answer to junk ({name})", rawhttp.body_of(raw))
        assert pending.still_waiting(), f"{name}: the sign-in stopped waiting after junk"

    statuses: dict[int | None, int] = {}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(draw=requests_st)
    def throw(draw: dict[str, object]) -> None:
        raw = rawhttp.exchange(pending.port, _random_request(pending.port, pending.state, draw))
        status = rawhttp.status_of(raw)
        statuses[status] = statuses.get(status, 0) + 1
        assert status in REFUSED, f"random junk got {status}: {raw[:200]!r}"
        assert pending.still_waiting()

    throw()
    page = pending.complete()
    assert page.status_code == 200 and "Signed in" in page.text, (page.status_code, page.text[:300])
    token = pending.result.result(10)
    stored = pending.store.load(pending.profile)
    assert stored is not None and stored.access_token == token.access_token
    assert stored.refresh_token == token.refresh_token == sandbox.issued[-1]["refresh_token"]
    assert sandbox.stats["token_authorization_code"] == 1, "the code was exchanged more than once"
    assert account_status(sandbox, token.access_token) == 200
    evidence.record(
        hand_written=len(table),
        random=sum(statuses.values()),
        statuses={str(k): v for k, v in sorted(statuses.items(), key=str)},
        signed_in=1,
    )


SERVER_REDIRECTS = [
    # (name, query without state, error raised, words in its message)
    ("no code", {}, CallbackError, "no single authorization code"),
    ("empty code", {"code": ""}, CallbackError, "no single authorization code"),
    ("code twice", {"code": ["a" * 24, "b" * 24]}, CallbackError, "no single authorization code"),
    (
        "error with description",
        {"error": "invalid_scope", "error_description": "Unknown scope"},
        AuthorizationError,
        "invalid_scope (Unknown scope)",
    ),
    (
        "error without description",
        {"error": "server_error"},
        AuthorizationError,
        "Zephr refused the sign-in: server_error.",
    ),
    ("access denied", {"error": "access_denied"}, AccessDeniedError, "click Allow"),
    (
        "description with new lines and escapes",
        {"error": "x", "error_description": "one\nzephr-desktop: two\x1b[2J"},
        AuthorizationError,
        "x (one zephr-desktop: two [2J)",
    ),
]


@pytest.mark.reliability("forged-callbacks")
@pytest.mark.parametrize(("name", "query", "error", "words"), SERVER_REDIRECTS, ids=[c[0] for c in SERVER_REDIRECTS])
def test_a_malformed_redirect_with_the_right_state_ends_the_sign_in_cleanly(
    sandbox: Sandbox, name: str, query: dict[str, object], error: type[ZephrError], words: str
) -> None:
    """With the real state the redirect is Zephr's own: it ends the sign-in, with the reason and nothing stored."""
    profile = add_profile(sandbox)
    store = quiet_store()
    flow = LoginFlow(profile, store.get_client_secret("demo"), store=store, timeout=20)
    url = flow.start()
    state = parse_qs(urlsplit(url).query)["state"][0]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(flow.wait)
        page = requests.get(f"{flow.redirect_uri}?{urlencode({**query, 'state': state}, doseq=True)}", timeout=10)
        with pytest.raises(error) as info:
            pending.result(10)
    message = info.value.message
    assert type(info.value) is error
    assert words in message, message
    assert "\n" not in message and "\x1b" not in message, f"server text broke the one-line message: {message!r}"
    assert page.status_code == 200 and "Sign-in failed" in page.text
    secrets_scan.collect("listener result page", page.text)
    assert store.load(profile) is None, "a failed sign-in stored a token"
    assert sandbox.token_requests == [], "a code that failed the checks was sent to the token endpoint"
    evidence.record(case=name, ended_with=error.__name__)


# -- item 2: load --------------------------------------------------------------------------

JUNK_BEFORE = 1000  # answered before the genuine callback is sent
JUNK_DURING = 200  # still coming while it is handled
JUNK_CLIENTS = 20
IDLE_CONNECTIONS = 50


def _still_open(sock: socket.socket) -> bool:
    """True while the listener has neither answered, closed nor reset the connection."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer or EOF: the connection was dealt with
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def _resources() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def _settled(target: tuple[int, int] | None = None, deadline: float = 8.0) -> tuple[int, int]:
    """Threads and fds once they stop changing (or reach target): connection threads end on their own."""
    end = time.monotonic() + deadline
    last, stable = _resources(), 0
    while time.monotonic() < end:
        gc.collect()
        time.sleep(0.05)
        now = _resources()
        if now == target:
            return now
        stable = stable + 1 if now == last else 0
        last = now
        if target is None and stable >= 6:
            return now
    return last


@pytest.mark.reliability("listener-load")
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open fds through /proc (Linux)")
def test_the_genuine_callback_wins_under_load(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    profile = add_profile(sandbox)
    warm = ScriptedUser()
    sign_in(profile, user=warm)  # imports, the page template, the sandbox's first connections
    warm.http.close()
    baseline = _settled()

    pending = PendingSignIn(sandbox, "load")
    idle: list[socket.socket] = []
    junk: subprocess.Popen[str] | None = None
    try:
        for i in range(IDLE_CONNECTIONS):  # slowloris: connected, then silent, half of them mid-request
            sock = socket.create_connection(("127.0.0.1", pending.port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /callback?state=")
            idle.append(sock)
        args = (pending.port, JUNK_BEFORE + JUNK_DURING, JUNK_CLIENTS, JUNK_BEFORE)
        junk = subprocess.Popen(
            [sys.executable, "-m", "support.junk_client", *map(str, args)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env,
            cwd=TESTS,
        )
        assert junk.stdout is not None
        assert junk.stdout.readline().strip() == "mark", "the junk client stopped early"
        assert pending.still_waiting(), "junk ended the sign-in"
        held = sum(_still_open(sock) for sock in idle)
        assert held == IDLE_CONNECTIONS, f"only {held} of {IDLE_CONNECTIONS} idle connections were still open"
        started = time.perf_counter()
        page = pending.complete()
        page_seconds = time.perf_counter() - started
        token = pending.result.result(10)
        wait_seconds = pending.finished_at - started
        summary = json.loads(junk.stdout.readline())
        assert junk.wait(30) == 0
    finally:
        for sock in idle:
            sock.close()
        if junk is not None:
            if junk.poll() is None:
                junk.kill()
                junk.wait()
            if junk.stdout is not None:
                junk.stdout.close()
        pending.close()

    assert page.status_code == 200 and "Signed in" in page.text
    assert quiet_store().load(pending.profile) == token
    # wait() returns once the code is exchanged and the token saved; the page follows report().
    assert wait_seconds < 1.0, f"the sign-in took {wait_seconds:.3f} s to finish after the callback was sent"
    assert page_seconds < 1.0, f"the genuine callback took {page_seconds:.3f} s to answer under load"
    assert summary["sent"] == JUNK_BEFORE + JUNK_DURING
    for outcome, count in summary["outcomes"].items():
        phase, kind, answer = outcome.split(": ")
        allowed = {"None"} if kind.startswith("half a request") else {str(s) for s in REFUSED}
        if phase == "after":  # the sign-in may be over: "already finished", dropped from the queue, refused
            allowed |= {"409", "None", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError"}
        assert answer in allowed, f"{count} junk request(s) of kind '{kind}' sent {phase} the callback got {answer}"

    after = _settled(baseline)
    assert after[0] == baseline[0], f"threads: {baseline[0]} before, {after[0]} after: {threading.enumerate()}"
    assert after[1] == baseline[1], f"open fds: {baseline[1]} before, {after[1]} after"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pending.port), timeout=2).close()
    with socket.socket() as probe:  # free for the next sign-in (which sets SO_REUSEADDR too)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", pending.port))
        probe.listen()
    with CallbackListener(f"http://127.0.0.1:{pending.port}/callback", expected_state="next") as again:
        assert again.port == pending.port
    evidence.record(
        junk_before=JUNK_BEFORE,
        junk_during=JUNK_DURING,
        clients=JUNK_CLIENTS,
        idle=IDLE_CONNECTIONS,
        page_seconds=round(page_seconds, 3),
        wait_seconds=round(wait_seconds, 3),
        threads=[baseline[0], after[0]],
        fds=[baseline[1], after[1]],
        outcomes=summary["outcomes"],
    )


# -- issue: a flood of idle or slow connections -------------------------------------------

FLOOD = 600  # more than the listener keeps open at once


@pytest.fixture
def open_files() -> Iterator[None]:
    """Room for the flood's sockets and the listener's, in this one process."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * FLOOD
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the open-file limit ({hard}) is too low for {FLOOD} connections")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Flood:
    """Idle connections (or ones stopped mid-head, slowloris-style) to the listener, opened in order."""

    def __init__(self, port: int, kind: str) -> None:
        self.port, self.kind = port, kind
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep_up, daemon=True)

    def open(self, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.kind == "partial heads":  # half of them stop in the request line, half in the headers
                started = f"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nX-".encode()
                sock.sendall(b"GET /callback?state=" if len(self.sockets) % 2 else started)
            self.sockets.append(sock)

    def keep_up(self) -> None:
        """Go on opening more, as an attacker would, until close()."""
        self._keeper.start()

    def _keep_up(self) -> None:
        while not self._stop.wait(0.002):
            with contextlib.suppress(OSError):
                self.open(1)

    def close(self) -> None:
        self._stop.set()
        if self._keeper.is_alive():
            self._keeper.join()
        for sock in self.sockets:
            sock.close()


@pytest.mark.reliability("listener-flood")
@pytest.mark.parametrize("kind", ["idle", "partial heads"])
def test_the_genuine_callback_gets_through_a_flood_of_idle_connections(
    pending: PendingSignIn, sandbox: Sandbox, open_files: None, kind: str
) -> None:
    flood = Flood(pending.port, kind)
    try:
        began = time.monotonic()
        flood.open(FLOOD)
        # The listener keeps at most MAX_CONNECTIONS open: the oldest flood connections go first.
        while sum(map(_still_open, flood.sockets)) > MAX_CONNECTIONS and time.monotonic() < began + 2:
            time.sleep(0.05)
        still = [_still_open(sock) for sock in flood.sockets]
        flood_seconds = time.monotonic() - began
        assert pending.still_waiting(), "the flood ended the sign-in"
        flood.keep_up()
        started = time.perf_counter()
        page = pending.complete()
        page_seconds = time.perf_counter() - started
        token = pending.result.result(10)
    finally:
        flood.close()
    assert page.status_code == 200 and "Signed in" in page.text, (page.status_code, page.text[:300])
    assert page_seconds < 3, f"the genuine callback took {page_seconds:.2f} s under the flood"
    assert quiet_store().load(pending.profile) == token and account_status(sandbox, token.access_token) == 200
    dropped = [i for i, is_open in enumerate(still) if not is_open]
    kept = [i for i, is_open in enumerate(still) if is_open]
    assert kept and len(kept) <= MAX_CONNECTIONS, f"{len(kept)} of {FLOOD} flood connections were open"
    assert max(dropped) < min(kept), "a newer connection was dropped while an older one was kept"
    evidence.record(
        flood=FLOOD,
        flood_kind=kind,
        flood_dropped=len(dropped),
        flood_total=len(flood.sockets),
        flood_seconds=round(flood_seconds, 3),
        flood_page_seconds=round(page_seconds, 3),
    )


# -- issue: `localhost` and another program on the other loopback address -----------------

LOCAL_CLIENT = Client(
    client_id="local-app", client_secret="local-secret", redirect_uris=["http://localhost:8765/callback"]
)


def _local_flow(sandbox: Sandbox, port: int) -> tuple[LoginFlow, TokenStore]:
    sandbox.register_client(LOCAL_CLIENT)
    profile = add_profile(
        sandbox,
        "local",
        client_id=LOCAL_CLIENT.client_id,
        secret=LOCAL_CLIENT.client_secret,
        redirect_uri=f"http://localhost:{port}/callback",
    )
    store = quiet_store()
    return LoginFlow(profile, store.get_client_secret("local"), store=store, timeout=20), store


def _deliver_over_ipv6(redirect: str) -> bytes:
    """What a browser that tries ::1 first for localhost sends (and gets back)."""
    parts = urlsplit(redirect)
    port = int(parts.port or 80)
    data = rawhttp.build(port, f"{parts.path}?{parts.query}", host=f"localhost:{port}")
    return rawhttp.exchange(port, data, host="::1")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.reliability("localhost-squatter")
@pytest.mark.skipif(not _ipv6_loopback(), reason="IPv6 loopback is not available on this machine")
def test_a_program_on_ipv6_loopback_never_gets_the_code_for_localhost(sandbox: Sandbox) -> None:
    with socket.socket(socket.AF_INET6) as squatter:  # another user's program, there before the sign-in
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("::1", 0))
        squatter.listen()
        squatter.settimeout(5)
        port = squatter.getsockname()[1]
        flow, store = _local_flow(sandbox, port)
        try:
            url = flow.start()
        except PortInUseError as exc:
            refused = exc
        else:  # the attack, as it goes when the sign-in starts anyway
            with ThreadPoolExecutor(1) as pool:
                sent = pool.submit(_deliver_over_ipv6, ScriptedUser().consent(url))
                conn, _ = squatter.accept()
                with conn:
                    got = conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                sent.result(10)
            flow.cancel()
            stolen = b"code=" in got
            pytest.fail(f"the sign-in started with [::1]:{port} taken; the program there got the code: {stolen}")
    assert f"Port {port} on [::1] is already in use" in refused.message, refused.message
    assert store.load(flow.profile) is None and sandbox.stats["authorize"] == 0
    evidence.record(squatter="[::1]", refused=type(refused).__name__)


@pytest.mark.reliability("localhost-squatter")
@pytest.mark.skipif(not _ipv6_loopback(), reason="IPv6 loopback is not available on this machine")
def test_a_localhost_callback_arriving_on_ipv6_signs_in(sandbox: Sandbox) -> None:
    flow, store = _local_flow(sandbox, 0)
    url = flow.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(flow.wait)
        try:
            raw = _deliver_over_ipv6(ScriptedUser().consent(url))
        finally:
            flow.cancel()  # harmless once the callback was taken
        token = pending.result(10)
    assert rawhttp.status_of(raw) == 200 and "Signed in" in rawhttp.body_of(raw)
    assert store.load(flow.profile) == token and account_status(sandbox, token.access_token) == 200
    evidence.record(callback_over="::1", signed_in=1)
