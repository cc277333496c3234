"""The sandbox's protocol logic and in-memory state, free of HTTP: one lock guards it all."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .model import SCOPES, TEST_USERS, Client, SandboxSettings, is_loopback_host

STAT_NAMES = (
    "authorize",
    "login",
    "grant",
    "token_authorization_code",
    "token_refresh_token",
    "token_errors",
    "api",
)

_ALPHANUM = string.ascii_lowercase + string.digits
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_AUTH_KEYS = ("client_id", "response_type", "redirect_uri", "scope", "state")
_PKCE_KEYS = ("code_challenge", "code_challenge_method")


def random_alnum(length: int = 24) -> str:
    """A random string of lowercase letters and digits, the shape of Zephr's codes and tokens."""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(length))


def s256(verifier: str) -> str:
    """The RFC 7636 S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthError(Exception):
    """An RFC 6749 error answer: status, error code and a human description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class UntrustedRequestError(Exception):
    """The authorization request names no usable client or redirect URI: never redirect."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class RedirectError(Exception):
    """An authorization request error to send back to the (trusted) redirect URI."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthParams:
    """A validated authorization request (the same set the consent page posts to /grant)."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The request parameters, as sent in the authorize URL and the grant JSON."""
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
            "state": self.state,
        }
        if self.code_challenge:
            params["code_challenge"] = self.code_challenge
            params["code_challenge_method"] = self.code_challenge_method or "S256"
        return params


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code is bound to."""

    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    expires_at: float


@dataclass(frozen=True)
class TokenGrant:
    """What an access or refresh token is bound to; family is the code it descends from."""

    client_id: str
    email: str
    scopes: tuple[str, ...]
    family: str
    expires_at: float | None = None


def redirect_matches(requested: str, registered: str, any_port: bool) -> bool:
    """Exact match, or (any_port) loopback URIs equal but for the port (RFC 8252 7.3)."""
    if requested == registered:
        return True
    if not any_port:
        return False
    want, have = urlsplit(requested), urlsplit(registered)
    try:
        want.port, have.port  # noqa: B018 - parsing the ports raises on a malformed one
    except ValueError:
        return False
    return (
        want.scheme == have.scheme == "http"
        and have.hostname is not None
        and is_loopback_host(have.hostname)
        and want.hostname == have.hostname
        and want.username is None
        and want.path == have.path
        and want.query == have.query
        and not want.fragment
    )


def single_values(query: Mapping[str, list[str]]) -> tuple[dict[str, str], set[str]]:
    """First value of each parameter, and the names that appeared more than once."""
    return {k: v[0] for k, v in query.items()}, {k for k, v in query.items() if len(v) > 1}


def validate_authorization(
    values: Mapping[str, str],
    duplicates: Collection[str],
    lookup: Callable[[str], Client | None],
    any_port: bool,
) -> AuthParams:
    """Check an authorization request the way RFC 6749 4.1.1/4.1.2.1 and RFC 7636 ask."""
    client_id, redirect_uri = _trusted_client(values, duplicates, lookup, any_port)
    state = values.get("state") or None

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(error, description, redirect_uri, state)

    if duplicates:
        raise fail("invalid_request", f"Repeated parameter: {', '.join(sorted(duplicates))}.")
    for key in ("response_type", "scope", "state"):
        if not values.get(key):
            raise fail("invalid_request", f"The {key} parameter is required.")
    if values["response_type"] != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    scopes = tuple(values["scope"].split())
    if not scopes:
        raise fail("invalid_request", "The scope parameter is required.")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise fail("invalid_scope", f"Unknown scope: {', '.join(unknown)}.")
    challenge = values.get("code_challenge") or None
    method = values.get("code_challenge_method") or None
    problem = _pkce_problem(challenge, method)
    if problem:
        raise fail("invalid_request", problem)
    return AuthParams(client_id, redirect_uri, tuple(dict.fromkeys(scopes)), values["state"], challenge, method)


def _trusted_client(
    values: Mapping[str, str],
    duplicates: Collection[str],
    lookup: Callable[[str], Client | None],
    any_port: bool,
) -> tuple[str, str]:
    """The client ID and redirect URI, once both are known to be safe to redirect to."""
    client_id = values.get("client_id", "")
    if not client_id or "client_id" in duplicates:
        raise UntrustedRequestError("The request has no client_id (or more than one).")
    client = lookup(client_id)
    if client is None:
        raise UntrustedRequestError(f"No app with client ID '{client_id}' is registered.")
    redirect_uri = values.get("redirect_uri", "")
    if not redirect_uri or "redirect_uri" in duplicates:
        raise UntrustedRequestError("The request has no redirect_uri (or more than one).")
    if not any(redirect_matches(redirect_uri, r, any_port) for r in client.redirect_uris):
        raise UntrustedRequestError(f"The redirect URI '{redirect_uri}' is not registered for '{client.name}'.")
    return client_id, redirect_uri


def _pkce_problem(challenge: str | None, method: str | None) -> str | None:
    """What is wrong with the PKCE parameters (RFC 7636 4.3), or None."""
    if method and not challenge:
        return "code_challenge_method was sent without code_challenge."
    if challenge and method != "S256":
        return "Only code_challenge_method=S256 is supported."
    if challenge and not _CHALLENGE.fullmatch(challenge):
        return "code_challenge must be 43 base64url characters (S256)."
    return None


def _profile_of(user: Mapping[str, str]) -> dict[str, Any]:
    """The public attributes of a seeded user."""
    return {"first_name": user["first_name"], "surname": user["surname"]}


class SandboxState:
    """Clients, sessions, codes, tokens, consents, profiles and counters, behind one lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        self._sessions: dict[str, str] = {}
        self._codes: dict[str, CodeGrant] = {}
        self._used_codes: set[str] = set()
        self._access: dict[str, TokenGrant] = {}
        self._refresh: dict[str, TokenGrant] = {}
        self._consents: dict[tuple[str, str], set[str]] = {}
        self._profiles = {email: _profile_of(u) for email, u in TEST_USERS.items()}
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._token_requests: list[dict[str, Any]] = []
        self._issued: list[dict[str, Any]] = []
        # Every secret issued or received, value -> kind (the first kind it was noted as).
        self._secrets: dict[str, str] = {}
        self._secrets_lock = threading.Lock()

    # --- secrets ---------------------------------------------------------------------
    def note_secret(self, kind: str, value: object) -> None:
        """Remember a secret this sandbox issued or received (non-strings and empty values are ignored)."""
        if isinstance(value, str) and value:
            with self._secrets_lock:
                self._secrets.setdefault(value, kind)

    def known_secrets(self) -> tuple[tuple[str, str], ...]:
        """Every secret noted so far as (kind, value) pairs, one per value, in the order first seen.

        Kinds: client_secret, session, code, code_verifier, access_token, refresh_token, mac_key.
        A test harness reads these to check that no secret ever reaches a log line, stderr or a page.
        """
        with self._secrets_lock:
            return tuple((kind, value) for value, kind in self._secrets.items())

    # --- clients, users, sessions -------------------------------------------------
    def register_client(self, client: Client) -> None:
        """Add a client, replacing one with the same ID."""
        self.note_secret("client_secret", client.client_secret)
        with self._lock:
            self._clients[client.client_id] = client

    def client(self, client_id: str) -> Client | None:
        """The registered client with this ID, if any."""
        with self._lock:
            return self._clients.get(client_id)

    def sign_in(self, email: str, password: str) -> str | None:
        """A new session ID when the password is right, else None."""
        user = TEST_USERS.get(email.strip().lower())
        if user is None or not hmac.compare_digest(user["password"].encode(), password.encode()):
            return None
        session = secrets.token_urlsafe(32)
        self.note_secret("session", session)
        with self._lock:
            self._sessions[session] = email.strip().lower()
            self._stats["login"] += 1
        return session

    def sign_out(self, session: str | None) -> None:
        """Forget a session."""
        with self._lock:
            self._sessions.pop(session or "", None)

    def session_user(self, session: str | None) -> str | None:
        """The email signed in with this session ID, if any."""
        if not session:
            return None
        with self._lock:
            return self._sessions.get(session)

    # --- records -------------------------------------------------------------------
    def count(self, name: str) -> None:
        """Add one to a counter."""
        with self._lock:
            self._stats[name] = self._stats.get(name, 0) + 1

    def record_token_request(self, record: dict[str, Any]) -> None:
        """Remember the shape (never the values) of a token request."""
        with self._lock:
            self._token_requests.append(record)

    def stats(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self._stats)

    def token_requests(self) -> list[dict[str, Any]]:
        """A copy of the recorded token request shapes."""
        with self._lock:
            return copy.deepcopy(self._token_requests)

    def issued(self) -> list[dict[str, Any]]:
        """A copy of every token response issued, in order."""
        with self._lock:
            return copy.deepcopy(self._issued)

    # --- consent and codes ---------------------------------------------------------
    def issue_code(self, params: AuthParams, email: str, lifetime: float) -> str:
        """A fresh single-use code bound to the request and user; records the consent."""
        code = random_alnum()
        self.note_secret("code", code)
        grant = CodeGrant(
            client_id=params.client_id,
            redirect_uri=params.redirect_uri,
            email=email,
            scopes=params.scopes,
            code_challenge=params.code_challenge,
            expires_at=self._clock() + lifetime,
        )
        with self._lock:
            self._codes[code] = grant
            self._consents.setdefault((email, params.client_id), set()).update(params.scopes)
        return code

    def consent(self, email: str, client_id: str) -> list[str]:
        """The scopes this user granted this client, in the catalogue's order."""
        with self._lock:
            granted = self._consents.get((email, client_id), set())
        return [s for s in SCOPES if s in granted]

    # --- token endpoint --------------------------------------------------------------
    def redeem_code(
        self, client_id: str, code: str, redirect_uri: str, verifier: str | None, expires_in: int
    ) -> dict[str, Any]:
        """Exchange a code for tokens (RFC 6749 4.1.3, RFC 7636 4.6) or raise OAuthError."""
        with self._lock:
            grant = self._codes.pop(code, None)
            if grant is None:
                if code in self._used_codes:
                    # RFC 6749 4.1.2: a replayed code revokes what it produced.
                    self._revoke_family(code)
                    raise OAuthError("invalid_grant", "The authorization code was already used.")
                raise OAuthError("invalid_grant", "The authorization code is not known.")
            # Any redemption attempt burns the code, as real servers do.
            self._used_codes.add(code)
            _check_code(grant, client_id, redirect_uri, verifier, self._clock())
            return self._issue(grant.client_id, grant.email, grant.scopes, code, expires_in, ", ", True)

    def refresh(
        self, client_id: str, refresh_token: str, scope: str | None, settings: SandboxSettings
    ) -> dict[str, Any]:
        """A new access token for a refresh token (RFC 6749 6) or raise OAuthError."""
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None:
                raise OAuthError("invalid_grant", "The refresh token is not known or was revoked.")
            if grant.client_id != client_id:
                raise OAuthError("invalid_grant", "The refresh token was issued to another client.")
            scopes = grant.scopes
            if scope is not None:
                asked = tuple(dict.fromkeys(scope.split()))
                if not asked or not set(asked) <= set(grant.scopes):
                    raise OAuthError("invalid_scope", "A refresh may only narrow the granted scopes.")
                scopes = asked
            rotate = settings.rotate_refresh_tokens
            if rotate:
                del self._refresh[refresh_token]
            body = self._issue(grant.client_id, grant.email, scopes, grant.family, settings.expires_in, " ", rotate)
            if rotate:
                # The new refresh token keeps the original grant's scopes, not a narrowed set.
                self._refresh[body["refresh_token"]] = grant
            elif settings.refresh_returns_refresh_token:
                body["refresh_token"] = refresh_token
                self._issued[-1] = dict(body)
            return body

    def _issue(
        self,
        client_id: str,
        email: str,
        scopes: tuple[str, ...],
        family: str,
        expires_in: int,
        joiner: str,
        with_refresh: bool,
    ) -> dict[str, Any]:
        """Mint tokens in Zephr's response shape; caller holds the lock."""
        access = "oa_" + random_alnum()
        self.note_secret("access_token", access)
        self._access[access] = TokenGrant(client_id, email, scopes, family, self._clock() + expires_in)
        body: dict[str, Any] = {
            "scope": joiner.join(scopes),
            "access_token": access,
            "token_type": "bearer",
            "expires_in": expires_in,
        }
        if with_refresh:
            refresh = random_alnum()
            self.note_secret("refresh_token", refresh)
            self._refresh[refresh] = TokenGrant(client_id, email, scopes, family)
            body["refresh_token"] = refresh
        body["user_id"] = TEST_USERS[email]["user_id"]
        self._issued.append(dict(body))
        return body

    def _revoke_family(self, family: str) -> None:
        """Drop every token descended from one code; caller holds the lock."""
        for table in (self._access, self._refresh):
            for token in [t for t, g in table.items() if g.family == family]:
                del table[token]

    # --- Public API --------------------------------------------------------------------
    def bearer(self, token: str) -> TokenGrant:
        """The grant of a live access token, or OAuthError invalid_token (401)."""
        with self._lock:
            grant = self._access.get(token)
            if grant is None:
                raise OAuthError("invalid_token", "The access token is not known or was revoked.", 401)
            if grant.expires_at is not None and self._clock() >= grant.expires_at:
                del self._access[token]
                raise OAuthError("invalid_token", "The access token expired.", 401)
            return grant

    def profile(self, email: str) -> dict[str, Any]:
        """A copy of the user's profile attributes."""
        with self._lock:
            return dict(self._profiles.get(email, {}))

    def update_profile(self, email: str, changes: Mapping[str, Any], replace: bool) -> dict[str, Any]:
        """Replace (PUT) or merge (PATCH, null deletes as in RFC 7396) the profile."""
        with self._lock:
            profile = {} if replace else dict(self._profiles.get(email, {}))
            for key, value in changes.items():
                if value is None:
                    profile.pop(key, None)
                else:
                    profile[key] = value
            self._profiles[email] = profile
            return dict(profile)


def _check_code(grant: CodeGrant, client_id: str, redirect_uri: str, verifier: str | None, now: float) -> None:
    """Raise invalid_grant unless the code may be redeemed by this request."""
    if now >= grant.expires_at:
        raise OAuthError("invalid_grant", "The authorization code expired.")
    if grant.client_id != client_id:
        raise OAuthError("invalid_grant", "The authorization code was issued to another client.")
    if redirect_uri != grant.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
    if grant.code_challenge is None:
        return
    if verifier is None:
        raise OAuthError("invalid_grant", "code_verifier is required: the request sent a code_challenge.")
    if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), grant.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge.")
