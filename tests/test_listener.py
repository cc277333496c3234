"""The loopback redirect listener, over real sockets."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.rawhttp import exchange

from zephr_desktop.errors import ConfigError, ListenerError, LoginCancelledError, LoginTimeoutError, PortInUseError
from zephr_desktop.listener import (
    BIND_ADDRESSES,
    Callback,
    CallbackListener,
    Head,
    Outcome,
    Rules,
    own_hosts,
    parse_head,
    render,
    with_report,
)
from zephr_desktop.loopback import MAX_HEAD_BYTES, bind
from zephr_desktop.resources import asset_text, assets_dir
from zephr_desktop.urls import check_redirect_uri

STATE = "st-" + secrets.token_urlsafe(16)
CODE = "kcpa10fzqa9nmut95duwok0c"
GOOD_QUERY = f"code={CODE}&state={STATE}"
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "connection": "close",
    "content-type": "text/html; charset=utf-8",
}
REFUSED_TEXT = "does not belong to the sign-in in progress"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def parse_response(raw: bytes) -> Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {raw[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body, raw)


def build_request(
    port: int,
    target: str,
    *,
    method: str = "GET",
    host: str | None = "",
    version: str = "HTTP/1.1",
    headers: tuple[str, ...] = (),
) -> bytes:
    """A raw request; host "" means the listener's own 127.0.0.1:PORT, None means no Host header."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host or f'127.0.0.1:{port}'}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def request(port: int, target: str, **kwargs: Any) -> Response:
    return parse_response(exchange(port, build_request(port, target, **kwargs)))


def assert_secure_headers(resp: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name
    assert int(resp.headers["content-length"]) == len(resp.body) or resp.body == b""


def assert_still_waiting(listener: CallbackListener) -> None:
    with pytest.raises(LoginTimeoutError):
        listener.wait(0)


def complete(listener: CallbackListener, query: str = GOOD_QUERY, **kwargs: Any) -> tuple[Callback, Response]:
    """Send the genuine callback, take it from wait(), report success, return both ends."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, listener.port, f"/callback?{query}", **kwargs)
        callback = listener.wait(5)
        listener.report(True, "ok")
        return callback, future.result(5)


def wait_refused(port: int, deadline: float = 2.0) -> None:
    """Poll until nothing listens on the port any more."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    pytest.fail(f"port {port} still accepts connections")


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def listener() -> Iterator[CallbackListener]:
    with CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE, read_timeout=2.0) as lis:
        yield lis


# -- the decisions, without sockets ----------------------------------------------------

PORT = 8765
RULES = Rules("/callback", STATE, own_hosts(PORT))
OWN = (("host", f"127.0.0.1:{PORT}"),)


def head(target: str, method: str = "GET", version: str = "HTTP/1.1", host: str | None = f"127.0.0.1:{PORT}") -> Head:
    return Head(method, target, version, (("host", host),) if host is not None else ())


DECISIONS = [
    # (what, head, finished, status, accepted)
    ("the genuine callback", head(f"/callback?{GOOD_QUERY}"), False, 200, True),
    ("via localhost", head(f"/callback?{GOOD_QUERY}", host=f"localhost:{PORT}"), False, 200, True),
    ("via [::1]", head(f"/callback?{GOOD_QUERY}", host=f"[::1]:{PORT}"), False, 200, True),
    ("Host in capitals", head(f"/callback?{GOOD_QUERY}", host=f"LOCALHOST:{PORT}"), False, 200, True),
    ("HTTP/1.0 without Host", head(f"/callback?{GOOD_QUERY}", version="HTTP/1.0", host=None), False, 200, True),
    ("percent-encoded path", head(f"/%63allback?{GOOD_QUERY}"), False, 200, True),
    ("Zephr's error, right state", head(f"/callback?error=access_denied&state={STATE}"), False, 200, True),
    ("genuine, but the wait is over", head(f"/callback?{GOOD_QUERY}"), True, 409, False),
    ("wrong state, the wait is over", head("/callback?state=x"), True, 409, False),
    ("foreign Host (DNS rebinding)", head(f"/callback?{GOOD_QUERY}", host=f"evil.example:{PORT}"), False, 400, False),
    ("Host with another port", head(f"/callback?{GOOD_QUERY}", host=f"127.0.0.1:{PORT + 1}"), False, 400, False),
    ("Host without the port", head(f"/callback?{GOOD_QUERY}", host="127.0.0.1"), False, 400, False),
    ("Host with a trailing dot", head(f"/callback?{GOOD_QUERY}", host=f"localhost.:{PORT}"), False, 400, False),
    ("two Host headers", Head("GET", f"/callback?{GOOD_QUERY}", headers=OWN * 2), False, 400, False),
    ("no Host on HTTP/1.1", head(f"/callback?{GOOD_QUERY}", host=None), False, 400, False),
    ("foreign Host on HTTP/1.0", head(f"/callback?{GOOD_QUERY}", "GET", "HTTP/1.0", "evil.example"), False, 400, False),
    ("foreign Host is checked first", head(f"/callback?{GOOD_QUERY}", "POST", host="evil.example"), False, 400, False),
    ("POST", head(f"/callback?{GOOD_QUERY}", "POST"), False, 405, False),
    ("HEAD", head(f"/callback?{GOOD_QUERY}", "HEAD"), False, 405, False),
    ("lower-case get", head(f"/callback?{GOOD_QUERY}", "get"), False, 405, False),
    ("OPTIONS *", head("*", "OPTIONS"), False, 405, False),
    ("absolute-form target", head(f"http://127.0.0.1:{PORT}/callback?{GOOD_QUERY}"), False, 400, False),
    ("other path", head(f"/callback/?{GOOD_QUERY}"), False, 404, False),
    ("root", head(f"/?{GOOD_QUERY}"), False, 404, False),
    ("no state", head(f"/callback?code={CODE}"), False, 400, False),
    ("two states", head(f"/callback?{GOOD_QUERY}&state={STATE}"), False, 400, False),
    ("state with a suffix", head(f"/callback?{GOOD_QUERY}x"), False, 400, False),
    (
        "past the field cap",
        head("/callback?" + "&".join(f"k{i}=v" for i in range(150)) + f"&state={STATE}"),
        False,
        400,
        False,
    ),
]


@pytest.mark.parametrize(
    ("what", "request_head", "finished", "status", "accepted"), DECISIONS, ids=[d[0] for d in DECISIONS]
)
def test_decide(what: str, request_head: Head, finished: bool, status: int, accepted: bool) -> None:
    outcome = RULES.decide(request_head, finished=finished)
    assert (outcome.status, outcome.callback is not None) == (status, accepted)
    assert outcome.allow == ("GET" if status == 405 else "")
    assert outcome.tone == ("info" if status in (200, 409) else "error")  # 200: until report() says more
    for text in (outcome.title, outcome.message):
        assert CODE not in text and STATE not in text
        assert "Zephr" not in text  # the listener serves RFC 6749 servers too: it names no server
    if accepted:
        assert outcome.callback is not None and outcome.callback.params["state"] == STATE
        assert outcome.callback.raw_query == request_head.target.partition("?")[2]


def test_own_hosts_name_every_loopback_spelling_with_the_port_which_only_80_may_leave_out() -> None:
    assert own_hosts(8765) == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert own_hosts(80) == {"127.0.0.1:80", "localhost:80", "[::1]:80", "127.0.0.1", "localhost", "[::1]"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"GET /callback?a=1 HTTP/1.1\r\nHost: h:1\r\nX-Y:  v w \r\n\r\n",
            Head("GET", "/callback?a=1", "HTTP/1.1", (("host", "h:1"), ("x-y", "v w"))),
        ),
        (b"GET / HTTP/1.0\n\n", Head("GET", "/", "HTTP/1.0")),  # bare LF, as http.server takes it
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", Head("POST", "/", "HTTP/1.1", (("content-length", "3"),))),
        (b"GET / HTTP/1.1\r\nHost: h", Head("GET", "/", "HTTP/1.1", (("host", "h"),))),  # the client half-closed
        (b"GET /callback\r\n\r\n", 400),  # HTTP/0.9
        (b"GET / HTTP/0.9\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTX/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1x\r\n\r\n", 400),
        (b"HELLO\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET /" + b"a" * MAX_HEAD_BYTES, 414),
        (b"GET / HTTP/1.1\r\nX: " + b"b" * MAX_HEAD_BYTES, 431),
    ],
)
def test_parse_head(data: bytes, expected: Head | int) -> None:
    parsed = parse_head(data)
    if isinstance(expected, Head):
        assert parsed == expected
    else:
        assert isinstance(parsed, Outcome) and parsed.status == expected and parsed.callback is None


@pytest.mark.parametrize(
    ("report", "title", "tone"),
    [
        (None, "Authorization received", "info"),
        ((True, "x"), "Signed in", "ok"),
        ((False, "It broke."), "Sign-in failed", "error"),
    ],
)
def test_the_accepted_page_follows_the_report(report: tuple[bool, str] | None, title: str, tone: str) -> None:
    accepted = RULES.decide(head(f"/callback?{GOOD_QUERY}"))
    page = with_report(accepted, report)
    assert (page.status, page.title, page.tone, page.callback) == (200, title, tone, accepted.callback)
    if report is not None and not report[0]:
        assert page.message == "It broke."


def test_render_escapes_and_leaves_the_body_out_for_head() -> None:
    outcome = Outcome(405, "Method <not> allowed", 'a "quote" & <b>', allow="GET")
    full = parse_response(render(outcome))
    assert full.status == 405 and full.headers["allow"] == "GET"
    assert_secure_headers(full)
    assert "a &quot;quote&quot; &amp; &lt;b&gt;" in full.text and "<b>" not in full.text
    bare = render(outcome, head_only=True)
    assert bare.endswith(b"\r\n\r\n") and int(parse_response(bare).headers["content-length"]) == len(full.body)


# -- the accepted callback --------------------------------------------------------------


def test_accepted_callback_returns_params_and_success_page(listener: CallbackListener) -> None:
    callback, resp = complete(listener, f"{GOOD_QUERY}&extra=1&extra=2&blank=")
    assert callback.params == {"code": CODE, "state": STATE, "extra": "1", "blank": ""}
    assert callback.multi == {"code": [CODE], "state": [STATE], "extra": ["1", "2"], "blank": [""]}
    assert callback.raw_query == f"{GOOD_QUERY}&extra=1&extra=2&blank="
    assert resp.status == 200
    assert_secure_headers(resp)
    assert "Signed in - you can close this window" in resp.text
    assert CODE not in resp.text and STATE not in resp.text
    assert "<script" not in resp.text.lower() and "http" not in resp.text.split("<body>")[1]
    assert listener.wait(0) is callback  # the outcome stays available
    wait_refused(listener.port)  # one-shot: the port is given up once the page is out


def test_error_callback_with_matching_state_is_accepted(listener: CallbackListener) -> None:
    callback, resp = complete(listener, f"error=access_denied&error_description=no%20thanks&state={STATE}")
    assert callback.params == {"error": "access_denied", "error_description": "no thanks", "state": STATE}
    assert resp.status == 200


def test_callback_repr_hides_the_query(listener: CallbackListener) -> None:
    callback, _ = complete(listener)
    assert CODE not in repr(callback) and STATE not in repr(callback)
    assert "code" in repr(callback)


def test_only_the_first_callback_counts(listener: CallbackListener) -> None:
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(request, listener.port, f"/callback?{GOOD_QUERY}")
        callback = listener.wait(5)
        # The first page waits for report(): a second genuine-looking callback arrives meanwhile.
        second = request(listener.port, f"/callback?code=other&state={STATE}")
        listener.report(True, "ok")
        assert first.result(5).status == 200
    assert second.status == 409
    assert "no longer in progress" in second.text
    assert listener.wait(0).params["code"] == CODE == callback.params["code"]


# -- what is refused, and the wait goes on ----------------------------------------------

BAD_STATE_QUERIES = [
    "",
    f"code={CODE}",
    f"code={CODE}&state=",
    f"code={CODE}&state=wrong",
    f"code={CODE}&state={STATE}x",
    f"code={CODE}&state={STATE[:-1]}",
    f"code={CODE}&state={STATE.upper()}",
    f"code={CODE}&STATE={STATE}",
    f"code={CODE}&state={STATE}&state={STATE}",
    f"code={CODE}&state={STATE}%00",
    f"code={CODE}&state=%20{STATE}",
    f"code={CODE}&state={STATE}%ff",
    f"error=access_denied&state={STATE}0",
    "&".join(f"k{i}=v" for i in range(150)) + f"&state={STATE}",  # past the field cap
]


@pytest.mark.parametrize("query", BAD_STATE_QUERIES)
def test_wrong_or_missing_state_is_refused_and_the_wait_goes_on(listener: CallbackListener, query: str) -> None:
    resp = request(listener.port, f"/callback?{query}")
    assert resp.status == 400
    assert_secure_headers(resp)
    assert REFUSED_TEXT in resp.text
    assert CODE not in resp.text and STATE not in resp.text
    assert_still_waiting(listener)
    callback, good = complete(listener)
    assert good.status == 200 and callback.params["code"] == CODE


ROUTING_CASES = [
    # (method, target, host, version, status); host "" = the listener's own 127.0.0.1:PORT
    ("GET", "/favicon.ico", "", "HTTP/1.1", 404),
    ("GET", "/", "", "HTTP/1.1", 404),
    ("GET", "/callback/", "", "HTTP/1.1", 404),
    ("GET", f"/callbackx?{GOOD_QUERY}", "", "HTTP/1.1", 404),
    ("GET", f"/other/callback?{GOOD_QUERY}", "", "HTTP/1.1", 404),
    ("POST", "/callback", "", "HTTP/1.1", 405),
    ("PUT", f"/callback?{GOOD_QUERY}", "", "HTTP/1.1", 405),
    ("HEAD", f"/callback?{GOOD_QUERY}", "", "HTTP/1.1", 405),
    ("DELETE", "/favicon.ico", "", "HTTP/1.1", 405),
    ("OPTIONS", "*", "", "HTTP/1.1", 405),
    ("BREW", "/callback", "", "HTTP/1.1", 405),
    ("GET", f"/callback?{GOOD_QUERY}", "evil.example:{port}", "HTTP/1.1", 400),
    ("GET", f"/callback?{GOOD_QUERY}", "127.0.0.1:{other}", "HTTP/1.1", 400),
    ("GET", f"/callback?{GOOD_QUERY}", "127.0.0.1", "HTTP/1.1", 400),
    ("GET", f"/callback?{GOOD_QUERY}", "localhost.:{port}", "HTTP/1.1", 400),
    ("POST", f"/callback?{GOOD_QUERY}", "evil.example:{port}", "HTTP/1.1", 400),  # Host is checked first
    ("GET", f"/callback?{GOOD_QUERY}", None, "HTTP/1.1", 400),
    ("GET", "/favicon.ico", None, "HTTP/1.1", 400),
    ("GET", f"/callback?{GOOD_QUERY}", "evil.example:{port}", "HTTP/1.0", 400),
    ("GET", "/favicon.ico", None, "HTTP/1.0", 404),
    ("GET", "/favicon.ico", "LocalHost:{port}", "HTTP/1.1", 404),
    ("GET", "/favicon.ico", "[::1]:{port}", "HTTP/1.1", 404),
    ("GET", "http://127.0.0.1:{port}/callback?" + GOOD_QUERY, "", "HTTP/1.1", 400),
    ("GET", f"/callback?{GOOD_QUERY}", "", "HTTP/2.0", 505),
    ("GET", f"/callback?{GOOD_QUERY}", "", "HTTX/1.1", 400),
]


@pytest.mark.parametrize(("method", "target", "host", "version", "status"), ROUTING_CASES)
def test_routing(
    listener: CallbackListener, method: str, target: str, host: str | None, version: str, status: int
) -> None:
    port = listener.port
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1) if host else host
    resp = request(port, target.format(port=port), method=method, host=host, version=version)
    assert resp.status == status
    assert_secure_headers(resp)
    if status == 405:
        assert resp.headers["allow"] == "GET"
    if method == "HEAD":
        assert resp.body == b""
    assert CODE not in resp.raw.decode("latin-1") and STATE not in resp.raw.decode("latin-1")
    assert_still_waiting(listener)
    assert complete(listener)[1].status == 200


def test_two_host_headers_are_refused(listener: CallbackListener) -> None:
    port = listener.port
    resp = request(port, f"/callback?{GOOD_QUERY}", headers=(f"Host: evil.example:{port}",))
    assert resp.status == 400
    assert_still_waiting(listener)


@pytest.mark.parametrize("host", [None, "{port}"])
def test_http10_callback_is_accepted_with_or_without_host(listener: CallbackListener, host: str | None) -> None:
    host = f"localhost:{listener.port}" if host else None
    callback, resp = complete(listener, version="HTTP/1.0", host=host)
    assert resp.status == 200 and callback.params["code"] == CODE


@pytest.mark.parametrize(
    "query",
    ["code=%zz&state=%zz", "code=%ff%fe&state=%ff%fe", "state=%", "%%%%&&==;;", "code=%C3%28&state=%E2%82"],
)
def test_broken_percent_encoding_is_refused_not_fatal(listener: CallbackListener, query: str) -> None:
    resp = request(listener.port, f"/callback?{query}")
    assert resp.status == 400 and REFUSED_TEXT in resp.text
    assert_still_waiting(listener)
    assert complete(listener)[1].status == 200


@pytest.mark.parametrize(("raw_code", "decoded"), [("%ff%fe", "\ufffd\ufffd"), ("%zz", "%zz"), ("a+b%20c", "a b c")])
def test_odd_encoding_in_an_accepted_callback_is_decoded_with_replacement(
    listener: CallbackListener, raw_code: str, decoded: str
) -> None:
    callback, resp = complete(listener, f"code={raw_code}&state={STATE}")
    assert resp.status == 200 and callback.params["code"] == decoded


@pytest.mark.parametrize(
    ("data", "statuses"),
    [
        (b"GET /callback?" + b"a" * 1_000_000 + b"&state=x HTTP/1.1\r\nHost: h\r\n\r\n", {414, 400}),
        (b"GET /callback HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n", {431, 400}),
        (b"GET /callback HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n", {431, 400}),
        (b"HELLO\r\n\r\n", {400}),
        (b"GET /callback\r\n\r\n", {400}),  # HTTP/0.9
        (b"\x00\xff\xfe garbage \x80\r\n\r\n", {400}),
    ],
    ids=["1MB-query", "70KB-header", "150-headers", "one-word", "http-0.9", "binary"],
)
def test_oversized_and_malformed_requests_get_an_error_and_the_listener_survives(
    listener: CallbackListener, data: bytes, statuses: set[int]
) -> None:
    resp = parse_response(exchange(listener.port, data))
    assert resp.status in statuses
    assert_secure_headers(resp)
    assert_still_waiting(listener)
    assert complete(listener)[1].status == 200


def test_pipelined_requests_get_one_answer_and_close(listener: CallbackListener) -> None:
    port = listener.port
    data = build_request(port, "/favicon.ico") + build_request(port, f"/callback?{GOOD_QUERY}") * 3
    raw = exchange(port, data)
    assert raw.count(b"HTTP/1.1 ") == 1
    resp = parse_response(raw)
    assert resp.status == 404 and resp.headers["connection"] == "close"
    assert_still_waiting(listener)  # the queued callback on that connection was never read
    assert complete(listener)[1].status == 200


def test_a_request_body_is_not_read_but_the_answer_arrives(listener: CallbackListener) -> None:
    port = listener.port
    data = build_request(port, "/callback", method="POST", headers=("Content-Length: 200000",)) + b"x" * 200_000
    resp = parse_response(exchange(port, data))
    assert resp.status == 405


# -- waiting, cancelling, the page and report() ------------------------------------------


def test_wait_times_out_quickly_with_a_named_error(listener: CallbackListener) -> None:
    started = time.monotonic()
    with pytest.raises(LoginTimeoutError) as info:
        listener.wait(0.3)
    assert 0.25 <= time.monotonic() - started < 1.0
    assert "0.3 seconds" in str(info.value) and "again" in str(info.value)


def test_cancel_wakes_wait_and_later_callbacks_are_told_it_is_over(listener: CallbackListener) -> None:
    timer = threading.Timer(0.1, listener.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(LoginCancelledError):
        listener.wait(5)
    assert time.monotonic() - started < 1.0
    timer.join()
    resp = request(listener.port, f"/callback?{GOOD_QUERY}")
    assert resp.status == 409 and "no longer in progress" in resp.text
    with pytest.raises(LoginCancelledError):
        listener.wait(0)


def test_close_wakes_a_pending_wait() -> None:
    lis = CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE).start()
    timer = threading.Timer(0.1, lis.close)
    timer.start()
    with pytest.raises(LoginCancelledError):
        lis.wait(5)
    timer.join()


@pytest.mark.parametrize(
    ("ok", "message", "expected", "absent"),
    [
        (True, "whatever", "Signed in - you can close this window", "whatever"),
        (
            False,
            'Zephr rejected <b>the code</b> & "more" (400 invalid_grant). Run the login again.',
            "Zephr rejected &lt;b&gt;the code&lt;/b&gt; &amp; &quot;more&quot; (400 invalid_grant).",
            "<b>the code</b>",
        ),
    ],
)
def test_report_decides_the_page(
    listener: CallbackListener, ok: bool, message: str, expected: str, absent: str
) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, listener.port, f"/callback?{GOOD_QUERY}")
        listener.wait(5)
        time.sleep(0.2)  # the exchange takes a moment; the page waits for it
        started = time.monotonic()
        listener.report(ok, message)
        resp = future.result(5)
    assert time.monotonic() - started < 0.5  # answered as soon as the report came
    assert resp.status == 200
    assert expected in resp.text and absent not in resp.text


def test_page_answers_within_about_a_second_without_report(listener: CallbackListener) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, listener.port, f"/callback?{GOOD_QUERY}")
        listener.wait(5)
        resp = future.result(5)
    elapsed = time.monotonic() - started
    assert 0.8 <= elapsed <= 1.5
    assert resp.status == 200 and "Authorization received - return to the app" in resp.text


def test_close_right_after_wait_still_delivers_the_page_at_once() -> None:
    lis = CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE).start()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, lis.port, f"/callback?{GOOD_QUERY}")
        lis.wait(5)
        started = time.monotonic()
        lis.close()
        resp = future.result(5)
    assert time.monotonic() - started < 0.8
    assert resp.status == 200 and "Authorization received" in resp.text


def test_idle_connections_do_not_delay_the_real_callback(listener: CallbackListener) -> None:
    idle: list[socket.socket] = []
    try:
        for i in range(20):
            sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
            idle.append(sock)
            if i % 2:
                sock.sendall(b"GET /callback?sta")  # half a request, never finished
        started = time.monotonic()
        callback, resp = complete(listener)
        assert time.monotonic() - started < 1.0
        assert resp.status == 200 and callback.params["code"] == CODE
    finally:
        for sock in idle:
            sock.close()


def test_a_trickling_client_is_cut_off_at_the_read_deadline() -> None:
    with CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE, read_timeout=0.5) as lis:
        with socket.create_connection(("127.0.0.1", lis.port), timeout=5) as sock:
            started = time.monotonic()
            cut = None
            for byte in b"GET /callback?state=" + b"x" * 40:
                try:
                    sock.sendall(bytes([byte]))  # each byte well inside the per-read timeout
                except OSError:
                    cut = time.monotonic() - started
                    break
                time.sleep(0.1)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        cut = time.monotonic() - started
                        break
                except BlockingIOError:
                    pass
                except OSError:
                    cut = time.monotonic() - started
                    break
                finally:
                    sock.setblocking(True)
        assert cut is not None and cut < 1.5, "a slow client kept its connection past the read deadline"


# -- binding ---------------------------------------------------------------------------


def test_port_in_use_names_the_port() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            CallbackListener(f"http://127.0.0.1:{port}/callback", expected_state=STATE).start()
    assert info.value.port == port
    assert f"Port {port} on 127.0.0.1 is already in use" in str(info.value)
    assert "redirect URI" in str(info.value) and "Third Party Authentication" in str(info.value)


def test_a_second_listener_on_the_same_port_is_refused(listener: CallbackListener) -> None:
    with pytest.raises(PortInUseError):
        CallbackListener(f"http://localhost:{listener.port}/callback", expected_state=STATE).start()


def test_port_is_free_after_close_without_traffic() -> None:
    lis = CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE).start()
    port = lis.port
    lis.close()
    with socket.socket() as sock:  # no SO_REUSEADDR: nothing at all may be left on the port
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_port_is_free_at_once_for_the_next_sign_in_after_a_callback() -> None:
    with CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE) as first:
        port = first.port
        complete(first)
    wait_refused(port, deadline=0.1)
    uri = f"http://127.0.0.1:{port}/callback"
    with CallbackListener(uri, expected_state=STATE) as second:
        assert second.port == port and second.redirect_uri == uri
        assert complete(second)[1].status == 200


def test_localhost_binds_both_loopback_addresses_and_nothing_else() -> None:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback is not available on this machine")
    with CallbackListener("http://localhost:0/cb", expected_state=STATE) as lis:
        port = lis.port
        assert lis.redirect_uri == f"http://localhost:{port}/cb"
        assert request(port, "/nope", host=f"localhost:{port}").status == 404
        # Linux routes all of 127/8 to loopback: a socket on 0.0.0.0 would answer 127.0.0.2 too.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=1):
            pass
        # Browsers try ::1 first for localhost: the callback arriving there is the one received.
        data = build_request(port, f"/cb?{GOOD_QUERY}", host=f"localhost:{port}")
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(exchange, port, data, host="::1")
            assert lis.wait(5).params["code"] == CODE
            lis.report(True, "ok")
            assert parse_response(future.result(5)).status == 200
    wait_refused(port)
    with pytest.raises(OSError), socket.create_connection(("::1", port), timeout=1):
        pass  # both sockets are closed with the listener


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "SO_REUSEADDR"])
def test_localhost_refuses_to_start_when_another_program_holds_the_port_on_ipv6(reuse: bool) -> None:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback is not available on this machine")
    with socket.socket(socket.AF_INET6) as squatter:
        if reuse:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("::1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            CallbackListener(f"http://localhost:{port}/callback", expected_state=STATE).start()
        with socket.socket() as probe:  # and 127.0.0.1 was let go again
            probe.bind(("127.0.0.1", port))
    assert info.value.port == port
    assert f"Port {port} on [::1] is already in use" in str(info.value)
    assert "localhost means both 127.0.0.1 and [::1]" in str(info.value)


def test_an_address_missing_from_this_machine_is_skipped_only_after_the_first() -> None:
    # ::2 is not assigned here, as ::1 is not on a machine without IPv6: nobody can listen there.
    sockets = bind(("127.0.0.1", "::2"), 0)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.1"]
    finally:
        for sock in sockets:
            sock.close()
    with pytest.raises(ListenerError, match=r"Cannot listen on \[::2\] port 0"):
        bind(("::2", "127.0.0.1"), 0)


def test_ipv6_loopback() -> None:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback is not available on this machine")
    with CallbackListener("http://[::1]:0/callback", expected_state=STATE) as lis:
        assert lis.redirect_uri == f"http://[::1]:{lis.port}/callback"
        data = build_request(lis.port, f"/callback?{GOOD_QUERY}", host=f"[::1]:{lis.port}")
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(exchange, lis.port, data, host="::1")
            assert lis.wait(5).params["code"] == CODE
            lis.report(True, "ok")
            assert parse_response(future.result(5)).status == 200


@pytest.mark.parametrize(
    ("uri", "pattern"),
    [
        ("http://127.0.0.1:0/callback", "http://127.0.0.1:{port}/callback"),
        ("http://LocalHost:0/a/b", "http://LocalHost:{port}/a/b"),
        ("http://127.0.0.1:0", "http://127.0.0.1:{port}"),
        ("http://127.0.0.1:0/cb?app=1", "http://127.0.0.1:{port}/cb?app=1"),
    ],
)
def test_redirect_uri_carries_the_bound_port(uri: str, pattern: str) -> None:
    with CallbackListener(uri, expected_state=STATE) as lis:
        assert lis.port > 0
        assert lis.redirect_uri == pattern.format(port=lis.port)


def test_redirect_uri_with_its_own_query_still_matches_the_path() -> None:
    with CallbackListener("http://127.0.0.1:0/cb?app=1", expected_state=STATE) as lis, ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, lis.port, f"/cb?app=1&{GOOD_QUERY}")
        assert lis.wait(5).params == {"app": "1", "code": CODE, "state": STATE}
        lis.report(True, "ok")
        assert future.result(5).status == 200


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1:8765/callback",
        "ftp://127.0.0.1:8765/callback",
        "http://0.0.0.0:8765/callback",
        "http://example.com:8765/callback",
        "http://192.168.1.2:8765/callback",
        "http://127.0.0.2:8765/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:port/callback",
        "http://user:pw@127.0.0.1:8765/callback",
        "http://127.0.0.1:8765/callback#frag",
        "127.0.0.1:8765/callback",
        "",
    ],
)
def test_unusable_redirect_uris_are_refused_by_name(uri: str) -> None:
    with pytest.raises(ConfigError) as info:  # the one validator, config.check_redirect_uri
        CallbackListener(uri, expected_state=STATE)
    assert f"'{uri}'" in str(info.value) and info.value.field == "redirect_uri"
    assert not isinstance(info.value, ListenerError)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LocalHost", "[::1]"])
def test_every_host_the_validator_accepts_has_addresses_to_bind(host: str) -> None:
    uri = check_redirect_uri(f"http://{host}:0/callback")
    assert urlsplit(uri).hostname in BIND_ADDRESSES


def test_lifecycle_misuse() -> None:
    lis = CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE)
    with pytest.raises(ListenerError):
        lis.wait(0.1)
    lis.close()  # before start: harmless
    lis.close()
    with pytest.raises(ListenerError):
        lis.start()
    with CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE).start() as started:
        with pytest.raises(ListenerError):
            started.start()
        port = started.port
    started.close()  # idempotent
    wait_refused(port, deadline=0.1)
    with pytest.raises(ValueError):
        CallbackListener("http://127.0.0.1:0/callback", expected_state="")


# -- nothing secret leaks ----------------------------------------------------------------


def test_code_and_state_never_reach_logs_or_stderr(
    listener: CallbackListener, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    port = listener.port
    request(port, f"/callback?code={CODE}&state=wrong")
    request(port, f"/favicon.ico?code={CODE}&state={STATE}")
    request(port, f"/callback?code={CODE}&state={STATE}", method="POST")
    request(port, f"/callback?code={CODE}&state={STATE}", host="evil.example")
    exchange(port, f"GET /callback?code={CODE}&state={STATE} HTTP/9.9\r\n\r\n".encode())
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request, port, f"/callback?{GOOD_QUERY}")
        listener.wait(5)
        listener.report(False, "The exchange failed.")
        resp = future.result(5)
    listener.close()
    out, err = capfd.readouterr()
    for secret in (CODE, STATE):
        assert secret not in caplog.text
        assert secret not in out + err
        assert secret not in resp.raw.decode("utf-8")
    messages = [r.getMessage() for r in caplog.records if r.name == "zephr_desktop.listener"]
    assert "GET '/callback' -> 400" in messages
    assert "GET '/favicon.ico' -> 404" in messages
    assert "POST '/callback' -> 405" in messages
    assert "GET '/callback' -> 200" in messages
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "zephr_desktop.listener")


# -- random traffic ----------------------------------------------------------------------

NEAR_STATES = [STATE[:-1], STATE + "x", STATE.upper(), " " + STATE, STATE + "%00", STATE + "&state=" + STATE]
PATHS = ["/callback", "/callback/", "/", "/favicon.ico", "//callback", "/CALLBACK", "/%63allback", "/callback;x"]
HOSTS = ["", "evil.example:{port}", "localhost:{port}", "127.0.0.1:1", None]


def _target_text(raw: bytes) -> str:
    """Bytes as a request-target: controls, space and # percent-encoded, the rest raw (even broken %)."""
    return "".join(f"%{b:02X}" if b <= 0x20 or b in (0x7F, 0x23) else chr(b) for b in raw)


paths = st.one_of(st.sampled_from(PATHS), st.binary(max_size=30).map(lambda b: "/" + _target_text(b)))
queries = st.one_of(
    st.binary(max_size=300).map(_target_text),
    st.lists(
        st.tuples(
            st.sampled_from(["code", "state", "error", "State", "", "x"]),
            st.one_of(st.sampled_from(NEAR_STATES), st.binary(max_size=40).map(_target_text)),
        ),
        max_size=6,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
)


def _genuine(port: int, raw: bytes) -> bool:
    """Whether the listener's own rules accept ``raw``: a real callback the random traffic happened to build.

    The generator can build one (``/%63allback?x=STATE&state=STATE`` is ``/callback`` with the state,
    once). Such a request is not random traffic, and the listener is right to accept it.
    """
    head = parse_head(raw)
    if not isinstance(head, Head):
        return False
    accepted = Rules("/callback", STATE, own_hosts(port)).decide(head).callback
    if accepted is None:
        return False
    # Accepted only as what it is: the callback path, our state exactly once.
    assert unquote(head.target.partition("?")[0], errors="replace") == "/callback", head.target
    assert accepted.multi["state"] == [STATE], accepted
    return True


def test_random_requests_are_never_accepted_and_the_real_one_still_is() -> None:
    with CallbackListener("http://127.0.0.1:0/callback", expected_state=STATE, read_timeout=2.0) as lis:
        port = lis.port
        assert _genuine(port, build_request(port, f"/%63allback?x={STATE}&state={STATE}"))
        assert not _genuine(port, build_request(port, f"/%63allback?x={STATE}&state={STATE}", host="evil.example"))

        @settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(path=paths, query=queries, host=st.sampled_from(HOSTS))
        def throw(path: str, query: str, host: str | None) -> None:
            raw = build_request(port, f"{path}?{query}", host=host and host.format(port=port))
            assume(not _genuine(port, raw))
            resp = parse_response(exchange(port, raw))
            assert resp.status in {400, 404, 405, 414, 431}
            assert_secure_headers(resp)
            assert_still_waiting(lis)

        throw()
        callback, resp = complete(lis)
        assert resp.status == 200 and callback.params["code"] == CODE


# -- resources ---------------------------------------------------------------------------


def test_result_template_is_self_contained() -> None:
    assert (assets_dir() / "result.html").is_file()
    page = asset_text("result.html")
    for placeholder in ("$title", "$message", "$tone"):
        assert placeholder in page
    assert "prefers-color-scheme: dark" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page and "@import" not in page
    with pytest.raises(ValueError):
        asset_text("../pyproject.toml")
