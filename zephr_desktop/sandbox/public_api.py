"""The sandbox's Public API and public configuration endpoints.

The Public API (GET /blaize/account, GET|PUT|PATCH /blaize/profile) behind a bearer token
and scope check (RFC 6750 errors), and the endpoints any page or client may read: the login
page configuration and its logo, and the RFC 8414 metadata (RFC mode only).
"""

from __future__ import annotations

from collections.abc import Callable

from . import pages
from .messages import (
    AUTHORIZE_PATH,
    TOKEN_PATH,
    Abort,
    Request,
    Response,
    json_object,
    json_response,
)
from .model import SCOPES, TEST_USERS, SandboxSettings
from .protocol import OAuthError
from .state import SandboxState


def _invalid_token(description: str) -> Response:
    """RFC 6750 3.1 invalid_token."""
    return json_response(
        401,
        {"error": "invalid_token", "error_description": description},
        (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
    )


class PublicApi:
    """The Public API and configuration routes over SandboxState."""

    def __init__(self, state: SandboxState, settings: Callable[[], SandboxSettings], base_url: str) -> None:
        self.state = state
        self.settings = settings
        self.base_url = base_url

    # --- configuration -----------------------------------------------------------------------
    def config(self, request: Request) -> Response:
        """GET /zephr/oauth2/config: the public page customisation."""
        return json_response(
            200,
            {
                "logo_url": f"{self.base_url}/zephr/oauth2/logo.svg",
                "title": pages.TITLE,
                "login_title": "Sign in",
                "consent_title": "Allow access",
                "identifier_placeholder": pages.IDENTIFIER_PLACEHOLDER,
                "background_colour": pages.BACKGROUND,
            },
        )

    def logo(self, request: Request) -> Response:
        """The logo named by the config."""
        return Response(200, pages.LOGO_SVG.encode("utf-8"), "image/svg+xml", (("Cache-Control", "max-age=3600"),))

    def metadata(self, request: Request) -> Response:
        """GET /.well-known/oauth-authorization-server: RFC 8414 metadata, in RFC mode only (Zephr has none)."""
        if self.settings().mode != "rfc":
            return json_response(404, {"error": "not_found", "error_description": f"No route for {request.path}."})
        return json_response(
            200,
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}{AUTHORIZE_PATH}",
                "token_endpoint": f"{self.base_url}{TOKEN_PATH}",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": list(SCOPES),
            },
        )

    # --- Public API ------------------------------------------------------------------------------
    def _api_user(self, request: Request, scope: str) -> str:
        """The email behind a live bearer token that carries scope, or Abort 401/403."""
        self.state.count("api")
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Abort(_invalid_token("Send the access token as Authorization: Bearer <token>."))
        try:
            grant = self.state.bearer(token.strip())
        except OAuthError as exc:
            raise Abort(_invalid_token(exc.description)) from None
        if scope not in grant.scopes:
            challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
            raise Abort(
                json_response(
                    403,
                    {"error": "insufficient_scope", "error_description": f"This call needs the {scope} scope."},
                    (("WWW-Authenticate", challenge),),
                )
            )
        return grant.email

    def account(self, request: Request) -> Response:
        """GET /blaize/account."""
        email = self._api_user(request, "user.account:read")
        user = TEST_USERS[email]
        return json_response(
            200, {"identifiers": {"email_address": email}, "tracking_id": user["tracking_id"], "email_verified": True}
        )

    def get_profile(self, request: Request) -> Response:
        """GET /blaize/profile."""
        email = self._api_user(request, "user.profile:read")
        return json_response(200, self.state.profile(email))

    def put_profile(self, request: Request) -> Response:
        """PUT /blaize/profile: replace the attributes."""
        return self._update_profile(request, replace=True)

    def patch_profile(self, request: Request) -> Response:
        """PATCH /blaize/profile: merge the attributes."""
        return self._update_profile(request, replace=False)

    def _update_profile(self, request: Request, replace: bool) -> Response:
        """Check the token and body, then store the profile."""
        email = self._api_user(request, "user.profile:update")
        data = json_object(request)
        nested = [k for k, v in data.items() if isinstance(v, (dict, list))]
        if nested:
            return json_response(
                400, {"error": "invalid_request", "error_description": f"Attributes must be flat: {', '.join(nested)}."}
            )
        return json_response(200, self.state.update_profile(email, data, replace))
