"""The one-shot loopback listener that receives the authorization redirect (DESIGN.md section 1, steps 3 and 6).

The decisions are pure: :func:`parse_head` reads a request head and :meth:`Rules.decide` says
what to answer and whether it is the callback that ends the wait. :class:`CallbackListener`
binds the redirect URI's exact host and port before the authorize URL is shown, serves them
with the thin server in ``loopback`` (a thread and one request per connection), hands the
accepted callback to :meth:`~CallbackListener.wait`, and stops once the callback's page is out.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import html
import logging
import re
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ListenerError, LoginCancelledError, LoginTimeoutError
from .loopback import MAX_HEAD_BYTES, LoopbackServer, bind, head_end
from .resources import asset_text
from .urls import check_redirect_uri

log = logging.getLogger("zephr_desktop.listener")

#: What is bound for each host a redirect URI may name (as ``urlsplit`` spells it); never 0.0.0.0.
#: Browsers resolve ``localhost`` themselves to both loopback addresses (RFC 6761), whatever the
#: hosts file says, so both are bound: another program on the other one would get the code.
BIND_ADDRESSES = {"127.0.0.1": ("127.0.0.1",), "::1": ("::1",), "localhost": ("127.0.0.1", "::1")}
_HOST_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_HEADERS = MAX_QUERY_FIELDS = 100
REPORT_WAIT = 1.0  # how long the result page waits for report()
_PAGE_FLUSH_WAIT = 1.5  # how long close() lets the accepted request's page finish
_MAX_MESSAGE_CHARS = 2000
_VERSION = re.compile(r"HTTP/(\d{1,9})\.(\d{1,9})")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
)
# Used only if assets/result.html is missing from a broken install: the page must still render.
_FALLBACK_TEMPLATE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>$title</title></head>'
    '<body><main class="$tone"><h1>$title</h1><p>$message</p></main></body></html>'
)


@dataclass(frozen=True, repr=False)
class Callback:
    """The query of the accepted redirect: first value per key, all values, and the raw query."""

    params: dict[str, str]
    multi: dict[str, list[str]]
    raw_query: str

    def __repr__(self) -> str:
        # The query carries the authorization code: a repr in a log or traceback must not.
        return f"Callback(keys={sorted(self.multi)!r})"


@dataclass(frozen=True)
class Head:
    """A request line and its headers (names lower-case, in the order sent)."""

    method: str
    target: str
    version: str = "HTTP/1.1"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The answer to one request; ``callback`` is set only for the one that ends the wait."""

    status: int
    title: str
    message: str
    tone: str = "error"
    allow: str = ""
    callback: Callback | None = None


def _error(status: HTTPStatus, message: str = "") -> Outcome:
    # Never quotes the request: it may carry the code and state.
    generic = f"The request could not be handled ({status.value} {status.phrase})."
    return Outcome(status, status.phrase, message or generic)


def parse_head(data: bytes) -> Head | Outcome:
    """The head at the start of ``data`` (all of it if no blank line came), or the error to answer."""
    end = head_end(data)
    if end < 0 and len(data) >= MAX_HEAD_BYTES:
        too_long = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if b"\n" in data else HTTPStatus.REQUEST_URI_TOO_LONG
        return _error(too_long)
    text = data[: end if end >= 0 else len(data)].decode("latin-1").rstrip("\r\n")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    words = lines[0].split()
    version = _VERSION.fullmatch(words[2]) if len(words) == 3 else None
    if len(words) == 2 or (version is not None and int(version[1]) < 1):
        return _error(HTTPStatus.BAD_REQUEST, "HTTP/1.0 or later is required.")
    if version is None:
        return _error(HTTPStatus.BAD_REQUEST)
    if int(version[1]) >= 2:
        return _error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    if len(lines) - 1 > MAX_HEADERS:
        return _error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
    fields = [line.partition(":") for line in lines[1:]]
    if not all(colon and _HEADER_NAME.fullmatch(name) for name, colon, _ in fields):
        return _error(HTTPStatus.BAD_REQUEST)
    return Head(words[0], words[1], words[2], tuple((name.lower(), value.strip()) for name, _, value in fields))


def own_hosts(port: int) -> frozenset[str]:
    """The Host values that name the listener on this port (browsers leave out port 80)."""
    names = frozenset(f"{name}:{port}" for name in _HOST_NAMES)
    return names | frozenset(_HOST_NAMES) if port == 80 else names


@dataclass(frozen=True)
class Rules:
    """What one sign-in's listener accepts: its callback path (percent-decoded), state and Host names."""

    path: str
    state: str
    hosts: frozenset[str]

    def decide(self, head: Head, *, finished: bool = False) -> Outcome:
        """The answer to ``head``; ``finished``: a callback was accepted already, or the wait was cancelled."""
        if not self._host_ok(head):
            return _error(
                HTTPStatus.BAD_REQUEST, "This request was not addressed to the zephr-desktop sign-in listener."
            )
        if head.method != "GET":
            return dataclasses.replace(_error(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET is answered here."), allow="GET")
        if not head.target.startswith("/"):  # absolute-form or `*`: never sent by a browser to us
            return _error(HTTPStatus.BAD_REQUEST, "The request target is not a path.")
        path, _, query = head.target.partition("?")
        if unquote(path, errors="replace") != self.path:
            return _error(HTTPStatus.NOT_FOUND, "Nothing here: this address only receives the sign-in response.")
        if finished:
            over = "This sign-in is no longer in progress (it already finished or was cancelled)."
            return Outcome(
                409, "Sign-in already finished", f"{over} You can close this window and return to the app.", tone="info"
            )
        try:
            multi = parse_qs(query, keep_blank_values=True, errors="replace", max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:  # too many fields
            multi = {}
        states = [s.encode("utf-8", "replace") for s in multi.get("state", [])]
        # One state only, compared in constant time; anything else is not our sign-in.
        if len(states) != 1 or not hmac.compare_digest(states[0], self.state.encode("utf-8", "replace")):
            return Outcome(
                400,
                "Not the sign-in in progress",
                "This sign-in response does not belong to the sign-in in progress. It may come from an earlier "
                "attempt or another app. Return to the app and sign in again if it is still waiting.",
            )
        callback = Callback({k: v[0] for k, v in multi.items()}, {k: list(v) for k, v in multi.items()}, query)
        return with_report(Outcome(200, "", "", callback=callback), None)

    def _host_ok(self, head: Head) -> bool:
        """Exactly one Host, naming this listener (a DNS-rebinding page sends its own name)."""
        hosts = [value.lower() for name, value in head.headers if name == "host"]
        if not hosts:
            # HTTP/1.0 may omit Host. A rebinding attack needs a browser, which always sends it,
            # and a Host-less request still needs the secret state to be accepted.
            return head.version == "HTTP/1.0"
        return len(hosts) == 1 and hosts[0] in self.hosts


def with_report(accepted: Outcome, report: tuple[bool, str] | None) -> Outcome:
    """The accepted callback's page once the flow has said how the sign-in ended (None: not yet)."""
    if report is None:
        title, message, tone = "Authorization received", "Authorization received - return to the app", "info"
    elif report[0]:
        title, message, tone = "Signed in", "Signed in - you can close this window", "ok"
    else:
        title, message, tone = "Sign-in failed", report[1], "error"
    return dataclasses.replace(accepted, title=title, message=message, tone=tone)


@functools.lru_cache(maxsize=1)
def _template() -> string.Template:
    try:
        return string.Template(asset_text("result.html"))
    except (OSError, UnicodeDecodeError):
        log.debug("assets/result.html is unreadable; using the built-in page")
        return string.Template(_FALLBACK_TEMPLATE)


def render(outcome: Outcome, *, head_only: bool = False) -> bytes:
    """The whole response: the page with every value HTML-escaped, fixed security headers, Connection: close."""
    page = {"title": outcome.title, "message": outcome.message, "tone": outcome.tone}
    body = _template().safe_substitute({k: html.escape(v) for k, v in page.items()}).encode("utf-8")
    status = HTTPStatus(outcome.status)
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))), *_SECURITY_HEADERS]
    headers += [("Connection", "close"), *([("Allow", outcome.allow)] if outcome.allow else [])]
    head = f"HTTP/1.1 {status.value} {status.phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + (b"" if head_only else body)


# -- the listener ---------------------------------------------------------------------------------


class CallbackListener:
    """Receives one authorization redirect on the loopback address(es) of the profile's redirect URI."""

    def __init__(self, redirect_uri: str, *, expected_state: str, read_timeout: float = 5.0) -> None:
        if not expected_state:
            raise ValueError("expected_state must not be empty")
        if not read_timeout > 0:
            raise ValueError("read_timeout must be positive")
        self._uri = check_redirect_uri(redirect_uri, listener=True)  # a ConfigError naming the URI and the problem
        parts = urlsplit(self._uri)
        self._host = parts.netloc.rpartition(":")[0]  # as written (case, brackets): it is matched exactly
        self._addresses = BIND_ADDRESSES[str(parts.hostname)]
        self._requested_port = self._port = int(parts.port or 0)
        self._rules = Rules(unquote(parts.path or "/", errors="replace"), expected_state, frozenset())
        self.read_timeout = float(read_timeout)
        self._server: LoopbackServer | None = None
        self._lock = threading.Lock()
        self._outcome = threading.Event()  # set once: a callback was accepted, or the wait was cancelled
        self._callback: Callback | None = None
        self._cancel_message = ""
        self._report: tuple[bool, str] | None = None
        self._reported, self._page_done = threading.Event(), threading.Event()
        self._closed = False

    @property
    def port(self) -> int:
        """The bound port (the configured one before start())."""
        return self._port

    @property
    def redirect_uri(self) -> str:
        """The redirect URI with the bound port; host spelling, path and query as given."""
        if self._requested_port != 0:
            return self._uri  # exactly what was registered, not a re-serialisation
        return urlsplit(self._uri)._replace(netloc=f"{self._host}:{self._port}").geturl()

    def start(self) -> CallbackListener:
        """Bind and listen now (before the authorize URL is shown); returns self."""
        if self._server is not None or self._closed:
            raise ListenerError("This redirect listener was already started; create a new one for a new sign-in.")
        _template()  # load the page now, not while the person waits for it
        sockets = bind(self._addresses, self._requested_port)
        self._port = int(sockets[0].getsockname()[1])
        self._rules = dataclasses.replace(self._rules, hosts=own_hosts(self._port))
        self._server = LoopbackServer(sockets, self._exchange, self.read_timeout)
        log.debug("listening on %s", self.redirect_uri)
        return self

    def wait(self, timeout: float = 300.0) -> Callback:
        """Block until a callback with the expected state arrives; raises LoginTimeoutError or LoginCancelledError."""
        if self._server is None and not self._outcome.is_set():
            raise ListenerError("The redirect listener was not started; call start() before wait().")
        if not self._outcome.wait(max(0.0, timeout)):
            raise LoginTimeoutError(
                f"No sign-in response arrived within {timeout:g} seconds. "
                "Run the login again and finish signing in before the time limit."
            )
        if self._callback is None:
            raise LoginCancelledError(self._cancel_message)
        return self._callback

    def report(self, ok: bool, message: str) -> None:
        """Tell the result page how the sign-in ended (shown if it arrives within about a second)."""
        with self._lock:
            if self._report is None:
                self._report = (bool(ok), str(message)[:_MAX_MESSAGE_CHARS])
        self._reported.set()

    def cancel(self) -> None:
        """Stop waiting: a pending or later wait() raises LoginCancelledError."""
        self._finish_waiting("Sign-in cancelled. Run the login again to start over.")

    def close(self) -> None:
        """Stop serving and close the sockets (the port is free when this returns); idempotent."""
        with self._lock:
            already, self._closed = self._closed, True
            accepted = self._callback is not None
        if already:
            return
        self._finish_waiting(
            "Sign-in stopped: the redirect listener closed before the sign-in response arrived. Run the login again."
        )
        self._reported.set()  # no report is coming any more: render the page now
        if accepted:
            self._page_done.wait(_PAGE_FLUSH_WAIT)  # a CLI exits right after close(): the page goes first
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> CallbackListener:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _finish_waiting(self, message: str) -> None:
        with self._lock:
            if not self._outcome.is_set():
                self._cancel_message = message
                self._outcome.set()

    def _exchange(self, data: bytes, send: Callable[[bytes], None]) -> None:
        """Answer one request (on its connection's thread); the accepted callback's page waits for report()."""
        head = parse_head(data)
        if isinstance(head, Outcome):
            outcome, head = head, Head("-", "-")
        else:
            with self._lock:
                outcome = self._rules.decide(head, finished=self._outcome.is_set() or self._closed)
                if outcome.callback is not None:
                    self._callback = outcome.callback
                    self._outcome.set()
        try:
            if outcome.callback is not None:
                self._reported.wait(REPORT_WAIT)
                with self._lock:
                    outcome = with_report(outcome, self._report)
            # Only method, path and status: the query carries the code and state.
            log.debug("%.20s %.200r -> %d", head.method, head.target.partition("?")[0], outcome.status)
            send(render(outcome, head_only=head.method == "HEAD"))
        finally:
            if outcome.callback is not None:
                self._page_done.set()
                if self._server is not None:
                    self._server.close()  # one-shot: free the port now that the answer is out
