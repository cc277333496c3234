"""The sandbox's in-memory state, free of HTTP: one lock guards it all.

SandboxState holds the registered clients, sessions, codes, tokens, consents, profiles and
counters, mints codes and tokens and redeems them, and records every secret it issues or
receives (known_secrets). The protocol checks it applies live in protocol.py.
"""

from __future__ import annotations

import copy
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .model import SCOPES, TEST_USERS, Client, SandboxSettings
from .protocol import AuthParams, CodeGrant, OAuthError, TokenGrant, check_code, random_alnum

STAT_NAMES = (
    "authorize",
    "login",
    "grant",
    "token_authorization_code",
    "token_refresh_token",
    "token_errors",
    "api",
)


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
            check_code(grant, client_id, redirect_uri, verifier, self._clock())
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
