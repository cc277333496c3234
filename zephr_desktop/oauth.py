"""The OAuth 2.0 protocol as Zephr speaks it, as values: no HTTP here.

``AuthRequest`` (state, PKCE verifier, authorize URL), ``parse_callback``, ``Token`` (built
only from a token response whose every field has been checked) and scopes. The requests
themselves are in ``token_client``, the rules every request follows in ``transport``.
"""

from __future__ import annotations

import base64
import math
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlencode, urlsplit

from .errors import (
    AccessDeniedError,
    AuthorizationError,
    CallbackError,
    TokenEndpointError,
)
from .paths import refresh_due, refresh_margin
from .profile import Profile

_MAX_SERVER_TEXT = 200
#: RFC 6750 2.1 ``b64token``: what a bearer token (and, here, a refresh token) may consist of.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: RFC 6749 3.3 ``scope-token``.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: Longer tokens are refused: they go into an Authorization header, which servers cap at about 8 KB.
MAX_TOKEN_LENGTH = 8192
#: A longer lifetime is refused: no server means it, and it breaks date arithmetic downstream.
MAX_EXPIRES_IN = 365 * 24 * 3600
MAX_SCOPE_LENGTH = 4096
MAX_USER_ID_LENGTH = 256


def server_text(value: Any, limit: int = _MAX_SERVER_TEXT) -> str:
    """Text a server chose (an error description, a content type), safe to put in a one-line message."""
    # A hostile or broken server must not add lines to stderr or send terminal escapes.
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(value: str | None) -> str:
    """A short, safe prefix of a secret for logs: ``oa_rrc…``."""
    if not value:
        return "-"
    return value[:6] + "…" if len(value) > 6 else "…"


def printable(value: Any) -> str:
    """Text for a person's terminal or window: control and format characters shown escaped (``\\x1b``)."""
    text = str(value)
    if all(unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029" for c in text):
        return text
    return "".join(
        c if unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029" else c.encode("unicode_escape").decode()
        for c in text
    )


def is_zephr(profile: Profile) -> bool:
    """True for a Zephr-mode profile (JSON token requests); False for an RFC 6749 server (form mode)."""
    return profile.token_format == "json"


def server_name(profile: Profile, url: str) -> str:
    """How messages name the server behind ``url``: Zephr, or (off Zephr) the authorization server at HOST."""
    if is_zephr(profile):
        return "Zephr"
    return f"the authorization server at {urlsplit(url).hostname}"


def registration(profile: Profile) -> str:
    """Where the client's ID, secret and redirect URIs are registered, for messages' next steps."""
    if is_zephr(profile):
        return "the site's Third Party Authentication screen"
    return f"the client's registration at {urlsplit(profile.token_url).hostname}"


def capitalized(text: str) -> str:
    """``text`` with its first letter upper-case (for a server name that starts a sentence)."""
    return text[:1].upper() + text[1:]


def parse_scopes(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Scopes as a tuple, from Zephr's ``"a b"`` or ``"a, b"`` forms or a list."""
    if value is None:
        return ()
    items = value if not isinstance(value, str) else re.split(r"[,\s]+", value)
    out: list[str] = []
    for item in items:
        item = str(item).strip()
        if item and item not in out:
            out.append(item)
    return tuple(out)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 code challenge for ``verifier`` (RFC 7636 4.2)."""
    import hashlib

    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class AuthRequest:
    """One sign-in attempt: fresh state and PKCE verifier, and the authorize URL."""

    profile: Profile
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str | None = field(repr=False)

    @classmethod
    def new(cls, profile: Profile, redirect_uri: str | None = None) -> AuthRequest:
        """A new attempt with a random single-use state and (if the profile wants it) PKCE."""
        import secrets

        verifier = secrets.token_urlsafe(64) if profile.pkce else None
        return cls(profile, redirect_uri or profile.redirect_uri, secrets.token_urlsafe(32), verifier)

    @property
    def url(self) -> str:
        """The profile's authorize endpoint with the five parameters Zephr requires, plus PKCE."""
        params = {
            "client_id": self.profile.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.profile.scopes),
            "state": self.state,
        }
        if self.code_verifier:
            params["code_challenge"] = s256_challenge(self.code_verifier)
            params["code_challenge_method"] = "S256"
        endpoint = self.profile.authorization_endpoint
        # RFC 6749 3.1: an endpoint's own query is kept, the request's parameters added to it.
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    def code_from(self, params: Mapping[str, Sequence[str]]) -> str:
        """The code from this attempt's callback parameters (see ``parse_callback``)."""
        return parse_callback(params, self.state, profile=self.profile)

    def code_from_url(self, url: str) -> str:
        """The code from the final redirect URL pasted by the person (see ``parse_redirect_url``)."""
        return parse_redirect_url(url, self.state, self.redirect_uri, profile=self.profile)


def parse_callback(params: Mapping[str, Sequence[str]], expected_state: str, *, profile: Profile | None = None) -> str:
    """Return the authorization code from callback query params, checking error, state, code in that order.

    ``profile`` names the server in an error (Zephr unless it is an RFC 6749 profile).
    """
    errors = params.get("error") or []
    if errors:
        _raise_authorization_error(params, profile)
    states = params.get("state") or []
    import hmac

    if len(states) != 1 or not hmac.compare_digest(states[0].encode(), expected_state.encode()):
        raise CallbackError(
            "The redirect does not belong to this sign-in (its state does not match). "
            "Start the sign-in again and use the newest link."
        )
    codes = params.get("code") or []
    if len(codes) != 1 or not codes[0]:
        raise CallbackError("The redirect carries no single authorization code. Start the sign-in again.")
    return codes[0]


def _raise_authorization_error(params: Mapping[str, Sequence[str]], profile: Profile | None) -> NoReturn:
    """The callback's ``?error=`` as an AuthorizationError (AccessDeniedError for a Deny)."""
    error = server_text((params.get("error") or [""])[0])
    descriptions = params.get("error_description") or []
    description = server_text(descriptions[0]) if descriptions and descriptions[0] else None
    detail = f" ({description})" if description else ""
    if error == "access_denied":
        raise AccessDeniedError(
            f"Sign-in was denied on the consent page{detail}. Run it again and click Allow.",
            error=error,
            description=description,
        )
    # The authorize endpoint is on the site, so off Zephr the site's host names the server.
    server = server_name(profile, profile.site_url) if profile else "Zephr"
    where = registration(profile) if profile else "the site's Third Party Authentication screen"
    raise AuthorizationError(
        f"{capitalized(server)} refused the sign-in: {error}{detail}. Check the profile's client ID, scopes "
        f"and redirect URI against {where}.",
        error=error,
        description=description,
    )


def parse_redirect_url(url: str, expected_state: str, redirect_uri: str, *, profile: Profile | None = None) -> str:
    """Return the code from a redirect URL pasted by the person."""
    parts = urlsplit(url.strip())
    expected = urlsplit(redirect_uri)
    if not parts.query or parts.path.rstrip("/") != expected.path.rstrip("/"):
        raise CallbackError(
            f"That is not the redirect URL. Paste the whole address the browser ended on "
            f"(it starts with {expected.scheme}://{expected.hostname}:...{expected.path}?code=...)."
        )
    return parse_callback(parse_qs(parts.query, keep_blank_values=True), expected_state, profile=profile)


@dataclass(frozen=True)
class Token:
    """An access token with what Zephr told about it; ``expires_at`` is epoch seconds."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None
    obtained_at: float
    scopes: tuple[str, ...] = ()
    user_id: str | None = None
    refresh_token: str | None = field(default=None, repr=False)

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative when expired), None if the server gave no lifetime."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def refresh_margin(self) -> float:
        """Refresh when less than ``min(60 s, a third of the lifetime)`` remains (``paths.refresh_margin``)."""
        return refresh_margin(self.expires_at, self.obtained_at)

    def needs_refresh(self, now: float | None = None) -> bool:
        """True when the token is expired or within the refresh margin."""
        return refresh_due(self.expires_at, self.obtained_at, time.time() if now is None else now)

    def is_expired(self, now: float | None = None) -> bool:
        """True once ``expires_at`` has passed."""
        left = self.seconds_left(now)
        return left is not None and left <= 0

    @classmethod
    def from_response(
        cls,
        data: Mapping[str, Any],
        obtained_at: float,
        previous: Token | None = None,
        *,
        source: str = "The token endpoint",
    ) -> Token:
        """Build from a token endpoint's JSON once every field passes ``check_token_response``.

        A response without ``refresh_token`` (or ``scope``, ``user_id``) keeps the previous token's.
        """
        check_token_response(data, source)
        expires_in = data.get("expires_in")
        expires_at = obtained_at + float(expires_in) if expires_in is not None else None
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        scopes = parse_scopes(data.get("scope")) or (previous.scopes if previous else ())
        user_id = data.get("user_id")
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "bearer"),
            expires_at=expires_at,
            obtained_at=obtained_at,
            scopes=scopes,
            user_id=str(user_id) if user_id not in (None, "") else (previous.user_id if previous else None),
            refresh_token=str(refresh) if refresh else None,
        )


# -- what a token response may hold (RFC 6749 5.1, RFC 6750 2.1) ---------------------------------------
def _kind(value: Any) -> str:
    """A JSON value's kind, for messages that must not quote it."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def _token_problem(value: Any) -> str | None:
    # Never quotes the value: it may be a live token.
    if not isinstance(value, str):
        return f"{_kind(value)}, not a string"
    if len(value) > MAX_TOKEN_LENGTH:
        return f"{len(value)} characters long; at most {MAX_TOKEN_LENGTH} are accepted"
    if not B64TOKEN.fullmatch(value):
        return "it holds characters no bearer token has; RFC 6750 allows letters, digits, -._~+/ and = at the end"
    return None


def _type_problem(value: Any) -> str | None:
    return None if isinstance(value, str) else f"{_kind(value)}, not a string"


def _expires_in_problem(value: Any) -> str | None:
    # RFC 6749 5.1: seconds as a number. A numeric string is tolerated only as whole seconds,
    # which is what Authlib can read.
    shown = server_text(repr(value), 40)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{shown}: not a number of seconds"
    if not math.isfinite(value) or value < 0:
        return f"{shown}: not a number of seconds from 0 up"
    if value > MAX_EXPIRES_IN:
        return f"{shown}: more than a year, at most {MAX_EXPIRES_IN} s are accepted"
    return None


def _scope_problem(value: Any) -> str | None:
    if isinstance(value, str):
        items = [item for item in re.split(r"[ ,]+", value) if item]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        return f"{_kind(value)}, not a string or a list of strings"
    if sum(len(item) + 1 for item in items) > MAX_SCOPE_LENGTH:
        return f"over {MAX_SCOPE_LENGTH} characters"
    if not all(SCOPE_TOKEN.fullmatch(item) for item in items):
        return 'characters outside RFC 6749 scope tokens (printable ASCII but space, " and \\)'
    return None


def _user_id_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"{_kind(value)}, not a string"
    text = str(value)
    if len(text) > MAX_USER_ID_LENGTH:
        return f"{len(text)} characters long; at most {MAX_USER_ID_LENGTH} are accepted"
    if printable(text) != text:
        return "it holds control characters (line breaks, terminal escapes)"
    return None


_FIELD_PROBLEMS = (
    ("access_token", _token_problem),
    ("refresh_token", _token_problem),
    ("token_type", _type_problem),
    ("expires_in", _expires_in_problem),
    ("scope", _scope_problem),
    ("user_id", _user_id_problem),
)


def check_token_response(data: Mapping[str, Any], source: str = "The token endpoint") -> None:
    """Raise TokenEndpointError naming the first unusable field of a successful token response.

    ``source`` starts the message (e.g. ``The token endpoint https://...``). A token's value is
    never quoted; other fields only escaped and shortened. Unknown fields are ignored.
    """
    if data.get("access_token") in (None, ""):
        raise TokenEndpointError(
            f"{source} answered 200 without an access_token. Check the profile's token URL.", status=200
        )
    for name, problem_of in _FIELD_PROBLEMS:
        value = data.get(name)
        problem = None if value is None or (value == "" and name != "access_token") else problem_of(value)
        if problem:
            raise TokenEndpointError(
                f"{source} sent an unusable {name} ({problem}); nothing was stored. Check the profile's token URL.",
                status=200,
            )
    token_type = data.get("token_type") or "bearer"
    if token_type.lower() != "bearer":
        raise TokenEndpointError(
            f"{source} issued a '{server_text(token_type, 40)}' token; only bearer tokens are supported. Check "
            "the profile's token URL.",
            status=200,
        )
