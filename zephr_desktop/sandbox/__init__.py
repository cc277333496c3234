"""A faithful local fake of Zephr's OAuth 2.0 server and Public API (stdlib only, loopback only).

Strict where Zephr is strict: the token endpoint takes JSON only (``mode="zephr"``) with
``Authorization: Basic base64(id:secret)`` of the raw, not url-encoded, credentials (or
``client_id`` for a client without a secret); codes are single use, short-lived and bound
to the client, redirect URI, user, scopes and PKCE challenge. ``mode="rfc"`` is as strict as
a certified RFC 6749 server: JSON or form bodies, the secret in the body or Basic over the
form-urlencoded id and secret only (RFC 6749 2.3.1: ``+`` is a space, a bare ``%`` is 400).

Routes (the paths Zephr uses)::

    GET  /zephr/oauth2                      authorize -> login page or consent page (302)
    GET  /zephr/login, POST /zephr/login    sign-in form (seeded TEST_USERS); sets blaize_session
    POST /zephr/logout                      end the session
    GET  /zephr/oauth2/authorize-consent    the Allow/Deny page
    POST /zephr/oauth2/grant                JSON {client_id, response_type, redirect_uri, scope,
                                            state, allow[, code_challenge, code_challenge_method]}
    GET  /zephr/oauth2/consent/{clientId}   {"consent": [scopes granted]}
    GET  /zephr/oauth2/config, /zephr/oauth2/error
    POST /zephr/oauth2/token                authorization_code and refresh_token grants
    GET  /blaize/account, GET|PUT|PATCH /blaize/profile   bearer token + scope checks
    GET  /.well-known/oauth-authorization-server          RFC 8414 metadata (mode="rfc" only)

A scripted user (no JavaScript) signs in by POSTing the login form
(``email``, ``password``, ``next``) to ``/zephr/login``, GETs the authorize URL (302 to
the consent page), POSTs the consent JSON with ``"allow": true`` to
``/zephr/oauth2/grant`` with the session cookie, and then GETs
``redirect_uri?code=<code>&state=<state>`` itself, as the page's script would.
"""

from .cli import main
from .model import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_REDIRECT_URI,
    FAULTS,
    MODES,
    SCOPES,
    TEST_USERS,
    Client,
    SandboxSettings,
)
from .server import Sandbox

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_REDIRECT_URI",
    "FAULTS",
    "MODES",
    "SCOPES",
    "TEST_USERS",
    "Client",
    "Sandbox",
    "SandboxSettings",
    "main",
]
