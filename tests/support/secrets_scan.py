"""A pytest plugin: no secret may show up in a log line, on stderr or in a result page, suite-wide.

While the session runs it collects

- every log record of the app's own loggers (``zephr_desktop.*``) and of Authlib, at DEBUG,
  from every thread of the test process;
- what each ``zephr-desktop`` child process run through ``support.cli`` wrote (``--verbose`` is
  always on there); stdout too, except for ``token``, whose stdout is the token;
- every listener result page the scripted user (``support.user``) or a test received;
- what the test process itself wrote to stderr;

and every secret any sandbox of the session minted or received (client secrets, sessions, codes,
access and refresh tokens, PKCE verifiers, MAC keys): ``pytest_configure`` wraps
``SandboxState.__init__`` so each sandbox state made in the test process is kept, and at the end
each one's ``known_secrets()`` is read, along with the secrets tests ``register`` themselves (from
servers that are not the sandbox). Then any run of more than ``PREFIX_OK`` characters of a secret
in any collected text fails the session: a redacted prefix (``oa_rrc…``) is fine, anything longer
is a leak.

urllib3's own DEBUG lines in the test process are not collected: the scripted user's "browser"
shares that logger, and its request lines legitimately carry the code it is delivering. The
child processes cover urllib3 as the app really configures it (root logger, ``--verbose``).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from zephr_desktop.sandbox.state import SandboxState

#: A redacted prefix of up to this many characters is allowed; one more is a leak.
PREFIX_OK = 8
#: Shorter values (a test client's "s3", a junk "x") would match by chance; real secrets are 24+.
MIN_LENGTH = 12
#: So would test-made values like "a" * 24: a real secret has many different characters.
MIN_DISTINCT = 6
APP_LOGGERS = ("zephr_desktop", "authlib")

_lock = threading.Lock()
_texts: list[tuple[str, str]] = []
_secrets: dict[str, str] = {}
_states: list[SandboxState] = []  # every sandbox state made in this session, read at the end
_patch = pytest.MonkeyPatch()
_current = ["(outside a test)"]
_result: dict[str, Any] = {}
_active = [False]  # only under pytest with this plugin: the benchmarks use the scripted user too


def collect(source: str, text: str | bytes | None) -> None:
    """Keep a text that must not contain a secret; ``source`` says where it came from."""
    if not text or not _active[0]:
        return
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    with _lock:
        _texts.append((f"{_current[0]} | {source}", text))


def register(kind: str, value: str) -> None:
    """Remember a secret value (kind: client_secret, code, access_token, ...)."""
    if len(value) >= MIN_LENGTH and len(set(value)) >= MIN_DISTINCT:
        with _lock:
            _secrets.setdefault(value, kind)


@dataclass(frozen=True)
class Hit:
    """A secret found in a text; ``shown`` is a safe prefix of it, never the value."""

    source: str
    kind: str
    shown: str
    line: str


def scan(texts: Iterable[tuple[str, str]], secrets: dict[str, str]) -> list[Hit]:
    """Every place where more than PREFIX_OK consecutive characters of a secret appear."""
    width = PREFIX_OK + 1
    grams: dict[str, str] = {}
    for value in secrets:
        for i in range(len(value) - width + 1):
            grams.setdefault(value[i : i + width], value)
    if not grams:
        return []
    # Only runs of characters that occur in secrets can hold one: skip ordinary prose fast.
    alphabet = "".join(sorted({c for value in secrets for c in value}))
    runs = re.compile(f"[{re.escape(alphabet)}]{{{width},}}")
    hits: list[Hit] = []
    for source, text in texts:
        for run in runs.finditer(text):
            chunk = run.group()
            for i in range(len(chunk) - width + 1):
                value = grams.get(chunk[i : i + width])
                if value is not None:
                    start = run.start() + i
                    line_start = text.rfind("\n", 0, start) + 1
                    line_end = text.find("\n", start)
                    line = text[line_start : line_end if line_end >= 0 else len(text)]
                    shown = value[:4] + "…"
                    hits.append(Hit(source, secrets[value], shown, line.replace(value, shown)[:160]))
                    break
    return hits


class _Collector(logging.Handler):
    """Formats every record of the app's loggers (message and traceback) into the collection."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] not in APP_LOGGERS:
            return
        try:
            collect(f"log {record.name}", self.format(record))
        except Exception:  # a broken record must not break the test that logged it
            self.handleError(record)


_handler = _Collector()


def _install() -> None:
    # Also after each test: a CLI run in-process (cli.main) replaces the root handlers.
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def _watch_sandbox_states() -> None:
    """Keep every SandboxState made from now on, so its known_secrets() can be read at the end."""
    from zephr_desktop.sandbox.state import SandboxState

    original = SandboxState.__init__

    @functools.wraps(original)
    def init(self: SandboxState, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with _lock:
            _states.append(self)

    _patch.setattr(SandboxState, "__init__", init)


def _register_sandbox_secrets() -> None:
    """Register what every kept sandbox state issued or received."""
    with _lock:
        states = list(_states)
    for state in states:
        for kind, value in state.known_secrets():
            register(kind, value)


def pytest_configure(config: pytest.Config) -> None:
    _watch_sandbox_states()
    _active[0] = True
    _install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _patch.undo()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    _current[0] = item.nodeid
    _install()
    try:
        yield
    finally:
        _current[0] = "(outside a test)"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    collect(f"stderr of the test process ({report.when})", report.capstderr)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from support import evidence

    _register_sandbox_secrets()
    with _lock:
        texts, secrets = list(_texts), dict(_secrets)
    hits = scan(texts, secrets)
    kinds: dict[str, int] = {}
    for kind in secrets.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    sources: dict[str, int] = {}
    for source, _ in texts:
        key = source.split(" | ", 1)[1].split(" ", 1)[0]
        sources[key] = sources.get(key, 0) + 1
    _result.update(
        texts=len(texts),
        characters=sum(len(t) for _, t in texts),
        secrets=len(secrets),
        kinds=kinds,
        sources=sources,
        hits=len(hits),
        report=[f"{h.kind} {h.shown} in {h.source}: {h.line}" for h in hits[:50]],
    )
    evidence.record_row("secrets-scan", **{k: v for k, v in _result.items() if k != "report"})
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _result:
        return
    line = (
        f"secrets scan: {_result['texts']} texts ({_result['characters']} characters) checked for "
        f"{_result['secrets']} secrets: {_result['hits']} leak(s)"
    )
    if not _result["hits"]:
        terminalreporter.write_line(line, green=True)
        return
    terminalreporter.section("secrets scan", sep="=", red=True, bold=True)
    terminalreporter.write_line(line, red=True)
    for entry in _result["report"]:
        terminalreporter.write_line(f"  {entry}")
    terminalreporter.write_line(
        "A secret (more than its first 8 characters) reached a log, stderr or a page: redact it where it is "
        "written (oauth.redact), and run the suite again.",
        red=True,
    )


__all__ = ["MIN_LENGTH", "PREFIX_OK", "Hit", "collect", "register", "scan"]
