"""What is wrong with a profile, found before anyone signs in (``profile check``, the form's Check button).

Four questions, one finding each, every problem with its fix:

- site: does the site answer, over TLS that verifies?
- authorize: does the authorize endpoint take the client ID and redirect URI? It should answer
  with a sign-in page or a redirect (to a login page, or to the redirect URI); an error page, or
  a redirect carrying ``error=``, means it refused the request.
- token_endpoint and client: a made-up authorization code is exchanged by the app's own token
  request. ``invalid_grant`` means the client was authenticated and only the code was wrong
  (credentials accepted); ``invalid_client`` or 401 means the credentials were refused; no
  answer, a 404 or a web page means the token URL is wrong.

Nothing is signed in or stored; the made-up code matches no grant. The secret is sent only to
the token endpoint, as a sign-in would send it, and appears in no finding.
"""

from __future__ import annotations

import html.parser
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from .discovery import Answer, Fetch, http_get
from .errors import InvalidClientError, InvalidGrantError, NetworkError, TokenEndpointError, ZephrError
from .oauth import AuthRequest, server_text
from .profile import SCOPES, Profile
from .urls import DEFAULT_TOKEN_URL

OK, PROBLEM, SKIPPED = "ok", "problem", "not checked"
#: What is read of a page the authorize endpoint answers with (enough for an error message).
MAX_PAGE = 64 * 1024
_REDIRECT_WORDS = re.compile(r"redirect[ _-]?ur[il]|redirect_uri|callback", re.IGNORECASE)
_CLIENT_WORDS = re.compile(r"client|application", re.IGNORECASE)

#: ``exchange(profile, client_secret, request, code)``: the app's token exchange (oauth.exchange_code).
Exchange = Callable[[Profile, str | None, AuthRequest, str], Any]


@dataclass(frozen=True)
class Finding:
    """One answer: which check, ok / problem / not checked, and one line of words (with the fix)."""

    check: str  # "site", "authorize", "token_endpoint", "client"
    status: str
    message: str

    @property
    def ok(self) -> bool:
        """False only for a problem."""
        return self.status != PROBLEM

    def as_dict(self) -> dict[str, str]:
        """What ``--json`` prints and the page gets."""
        return {"check": self.check, "status": self.status, "message": self.message}


def _exchange_code(profile: Profile, client_secret: str | None, request: AuthRequest, code: str) -> Any:
    from .token_client import exchange_code

    return exchange_code(profile, client_secret, request, code)


def check_profile(
    profile: Profile,
    client_secret: str | None,
    *,
    fetch: Fetch | None = None,
    exchange: Exchange = _exchange_code,
) -> list[Finding]:
    """Probe the profile's site, authorize endpoint and token endpoint; one finding per question."""
    if fetch is None:
        verify = profile.tls_verify

        def fetch(url: str, *, name: str, setting: str) -> Answer:
            return http_get(url, name=name, setting=setting, verify=verify, limit=MAX_PAGE, accept="text/html")

    request = AuthRequest.new(profile)
    site = _check_site(profile, fetch)
    token_endpoint, client = _check_token(profile, client_secret, request, exchange)
    if site.ok or _origin(profile.authorization_endpoint) != _origin(profile.site_url):
        authorize = _check_authorize(profile, request, fetch, credentials_ok=client.status == OK)
    else:
        authorize = Finding("authorize", SKIPPED, "The authorize endpoint is on the site's server, which is down.")
    return [site, authorize, token_endpoint, client]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _zephr(profile: Profile) -> bool:
    return profile.token_format == "json"


def _screen(profile: Profile) -> str:
    """Where the person finds the client's settings."""
    return (
        "the site's Third Party Authentication screen"
        if _zephr(profile)
        else f"the client's settings on the authorization server ({urlsplit(profile.authorization_endpoint).hostname})"
    )


# -- the site ------------------------------------------------------------------------------------
def _check_site(profile: Profile, fetch: Fetch) -> Finding:
    try:
        answer = fetch(profile.site_url, name="the site", setting="site URL")
    except NetworkError as exc:
        return Finding("site", PROBLEM, exc.message)
    return Finding("site", OK, f"The site {profile.site_url} answers (HTTP {answer.status}).")


# -- the authorize endpoint --------------------------------------------------------------------------
def _check_authorize(profile: Profile, request: AuthRequest, fetch: Fetch, *, credentials_ok: bool) -> Finding:
    endpoint = profile.authorization_endpoint
    try:
        answer = fetch(request.url, name="the authorize endpoint", setting="authorize URL (or site URL)")
    except NetworkError as exc:
        return Finding("authorize", PROBLEM, exc.message)
    location = answer.headers.get("location")
    if 300 <= answer.status < 400 and location:
        target = urljoin(request.url, location)
        params = parse_qs(urlsplit(target).query)
        back = _same_address(target, request.redirect_uri)
        if "error" not in params:
            where = "straight back to the redirect URI" if back else "on to a sign-in page"
            return Finding(
                "authorize",
                OK,
                f"The authorize endpoint {endpoint} accepts the client ID and redirect URI (it redirects {where}).",
            )
        code = server_text(params["error"][0], 60)
        description = server_text((params.get("error_description") or [""])[0], 160)
        shown = f"{code}: {description}" if description else code
        if back and code != "invalid_scope":
            # Sent back to the redirect URI: the server trusts the client and the URI, not the rest.
            return Finding(
                "authorize",
                PROBLEM,
                f"The authorize endpoint accepts the client ID and redirect URI but refused the "
                f"sign-in request ({shown}). Check the profile's scopes and pkce setting against the server's needs.",
            )
        return _refused(profile, request, shown, code, description, credentials_ok)
    if 200 <= answer.status < 300:
        return Finding("authorize", OK, f"The authorize endpoint {endpoint} answers with a sign-in page.")
    if answer.status == 404:
        return Finding(
            "authorize",
            PROBLEM,
            f"The authorize endpoint {endpoint} does not exist (404). Check the profile's site "
            "URL (the site's live domain)" + (" and its authorize URL." if profile.authorize_url else "."),
        )
    error, sentences = _page_text(answer)
    shown = f"{answer.status}: “{_sentence(sentences)}”" if sentences else f"{answer.status}"
    return _refused(profile, request, shown, error, " ".join(sentences), credentials_ok)


def _refused(
    profile: Profile, request: AuthRequest, shown: str, error: str | None, text: str, credentials_ok: bool
) -> Finding:
    """The finding for an authorize endpoint that refused: the redirect URI, the client ID, a scope, or unclear."""
    endpoint = profile.authorization_endpoint
    screen = _screen(profile)
    if error == "invalid_scope":
        zephrs = f" (Zephr's are {', '.join(SCOPES)})" if _zephr(profile) else ""
        return Finding(
            "authorize",
            PROBLEM,
            f"The authorize endpoint refused the scopes {' '.join(profile.scopes)} ({shown}). "
            f"Ask only for scopes the server offers{zephrs}.",
        )
    if _REDIRECT_WORDS.search(text):
        any_port = (
            " (port 0 asks for any free port, which only a server that accepts any loopback port takes)"
            if urlsplit(request.redirect_uri).port == 0
            else ""
        )
        return Finding(
            "authorize",
            PROBLEM,
            f"The authorize endpoint refused the redirect URI {request.redirect_uri} ({shown}). "
            f"Register exactly {request.redirect_uri} on {screen}, or set the profile's redirect URI to one that "
            f"is registered{any_port}.",
        )
    if error in ("invalid_client", "unauthorized_client") or _CLIENT_WORDS.search(text):
        return Finding(
            "authorize",
            PROBLEM,
            f"The authorize endpoint refused the client ID '{profile.client_id}' ({shown}). "
            f"Copy the client ID from {screen}.",
        )
    if not _zephr(profile):
        return Finding(
            "authorize",
            PROBLEM,
            f"The authorize endpoint {endpoint} answered with an error ({shown}) instead of a "
            f"sign-in page. Check the client ID and that {request.redirect_uri} is registered exactly on {screen}.",
        )
    known = "The client ID and secret are right, so the" if credentials_ok else "The"
    return Finding(
        "authorize",
        PROBLEM,
        f"The authorize endpoint {endpoint} answered with an error ({shown}) instead of a "
        f"sign-in page. {known} first suspect is the site's Allowed Origins (Third Party Authentication screen): "
        f"the app's window sends no Origin or Referer; then check the client ID and that {request.redirect_uri} "
        "is registered exactly.",
    )


def _same_address(url: str, redirect_uri: str) -> bool:
    a, b = urlsplit(url), urlsplit(redirect_uri)
    return (a.scheme, a.hostname, a.port, a.path.rstrip("/")) == (b.scheme, b.hostname, b.port, b.path.rstrip("/"))


_BLOCKS = frozenset(
    (
        "title",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "p",
        "div",
        "li",
        "br",
        "hr",
        "td",
        "th",
        "center",
        "section",
        "header",
        "footer",
        "main",
        "pre",
        "code",
        "dd",
        "dt",
        "label",
        "button",
    )
)


class _Text(html.parser.HTMLParser):
    """The visible text of a page, a line per block (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _page_text(answer: Answer) -> tuple[str | None, list[str]]:
    """An error page's OAuth error code (if it says one) and its sentences, each made safe for one line."""
    raw = answer.body.decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        description = data.get("error_description") or data.get("message") or ""
        code = server_text(error, 60) if isinstance(error, str) else None
        text = f"{code or ''} {description if isinstance(description, str) else ''}"
    else:
        code = None
        parser = _Text()
        try:
            parser.feed(raw)
            parser.close()
        except (AssertionError, ValueError):  # html.parser gives up on some broken markup
            pass
        text = "".join(parser.parts)
    pieces = (server_text(piece, 1000) for piece in re.split(r"\n|(?<=[.!?])\s+", text))
    return code, [piece for piece in pieces if piece][:100]


def _sentence(sentences: list[str]) -> str:
    """The sentence of an error page that says what is wrong: the one naming it, else the first ones."""
    for pattern in (_REDIRECT_WORDS, _CLIENT_WORDS):
        for sentence in sentences:
            if pattern.search(sentence):
                return server_text(sentence, 160)
    return server_text(" ".join(sentences), 160)


# -- the token endpoint and the client credentials -----------------------------------------------------
def _check_token(
    profile: Profile, client_secret: str | None, request: AuthRequest, exchange: Exchange
) -> tuple[Finding, Finding]:
    url = profile.token_url
    made_up = "check" + secrets.token_hex(10)  # the shape of a code, matching no grant
    reachable = Finding("token_endpoint", OK, f"The token endpoint {url} answers as an OAuth token endpoint.")
    try:
        exchange(profile, client_secret, request, made_up)
    except InvalidGrantError:
        how = "client ID and secret" if client_secret else "client ID (a public client, no secret)"
        return reachable, Finding(
            "client", OK, f"The token endpoint accepts the {how} (a made-up code was refused as invalid_grant)."
        )
    except InvalidClientError as exc:
        if not client_secret:
            fix = (
                "No client secret is stored for the profile: add it (`zephr-desktop profile add` with "
                "--client-secret-stdin, or the settings form)."
            )
        else:
            fix = f"Check the client ID and secret on {_screen(profile)} and store them again."
        answer = f"{exc.status} {exc.error}" if exc.status else str(exc.error)
        refused = f"The token endpoint refused the client credentials ({answer}). {fix}"
        return reachable, Finding("client", PROBLEM, refused)
    except NetworkError as exc:
        return Finding("token_endpoint", PROBLEM, exc.message), _not_checked()
    except TokenEndpointError as exc:
        return _token_refusal(profile, exc), _not_checked()
    except ZephrError as exc:
        return Finding("token_endpoint", PROBLEM, exc.message), _not_checked()
    return (
        Finding(
            "token_endpoint",
            PROBLEM,
            f"The token endpoint {url} issued a token for a made-up code: it does not check "
            "codes, so it is not a real authorization server. Check the profile's token URL.",
        ),
        _not_checked(),
    )


def _not_checked() -> Finding:
    return Finding("client", SKIPPED, "The client credentials could not be checked without a working token endpoint.")


def _token_refusal(profile: Profile, exc: TokenEndpointError) -> Finding:
    url = profile.token_url
    status = exc.status
    if status is not None and status >= 500:
        return Finding(
            "token_endpoint",
            PROBLEM,
            f"The token endpoint {url} fails on its side ({status}). Try again later; if it "
            "persists, check the profile's token URL.",
        )
    if exc.error and status not in (404, 405):
        detail = f": {server_text(exc.description, 160)}" if exc.description else ""
        return Finding(
            "token_endpoint",
            PROBLEM,
            f"The token endpoint {url} refused the app's token request ({status} "
            f"{exc.error}{detail}). Check the profile's token_format (json for Zephr, form for RFC 6749 servers) "
            "and client_auth.",
        )
    if status is not None and 300 <= status < 400:
        return Finding("token_endpoint", PROBLEM, exc.message)
    what = f"{status}{f' {exc.error}' if exc.error else ''}" if status is not None else "something unusable"
    zephrs = f" (Zephr's: {DEFAULT_TOKEN_URL}, or {profile.site_url}/zephr/oauth2/token)" if _zephr(profile) else ""
    return Finding(
        "token_endpoint",
        PROBLEM,
        f"The token URL {url} is not an OAuth token endpoint (it answered {what} to a "
        f"token request). Set the profile's token URL to the server's token endpoint{zephrs}.",
    )
