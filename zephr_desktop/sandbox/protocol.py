"""The sandbox's OAuth 2.0 protocol values and checks, free of state and HTTP.

The errors a request can end in (OAuthError, UntrustedRequestError, RedirectError), the
validated request and grant records (AuthParams, CodeGrant, TokenGrant), the checks of
RFC 6749 and RFC 7636 that need no stored state (redirect URI matching, authorization request
validation, PKCE, code redemption), and the random values codes and tokens are made of.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .model import SCOPES, Client, is_loopback_host

_ALPHANUM = string.ascii_lowercase + string.digits
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


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


def check_code(grant: CodeGrant, client_id: str, redirect_uri: str, verifier: str | None, now: float) -> None:
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
