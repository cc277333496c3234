"""The CLI's log: one redacted stream on stderr, debug lines only with ``--verbose``.

``RedactingFilter`` scrubs anything that looks like a credential (an Authorization header,
a token, code, verifier, secret or state in a query or JSON body) from every record, as
defence in depth: the code never means to log one.
"""

from __future__ import annotations

import logging
import re
import sys

_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)\b((?:access_|refresh_)?token|code|code_verifier|client_secret|state)=([^&\s\"']+)"),
        r"\1=[redacted]",
    ),
    (
        re.compile(r"(?i)(\"(?:access_token|refresh_token|code|code_verifier|client_secret|state)\"\s*:\s*\")[^\"]*"),
        r"\1[redacted]",
    ),
]


class RedactingFilter(logging.Filter):
    """Scrub anything that looks like a credential from every log record (defence in depth)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for pattern, repl in _SECRET_PATTERNS:
            message = pattern.sub(repl, message)
        record.msg, record.args = message, None
        return True


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    # On the handler too: a logger set to DEBUG elsewhere must not put debug lines (tracebacks) on stderr.
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
