"""Routes of the sandbox: one Request in, one Response out (None means drop the connection).

SandboxApp is the dispatch table: it maps each path and method to a handler of SignIn
(signin.py), TokenEndpoint (token_endpoint.py) or PublicApi (public_api.py), all sharing one
SandboxState, and answers 404 for unknown paths and 405 for a known path's other methods.
"""

from __future__ import annotations

from collections.abc import Callable

from . import pages
from .messages import (
    AUTHORIZE_PATH,
    CONSENT_PAGE_PATH,
    LOGIN_PATH,
    METADATA_PATH,
    Abort,
    Request,
    Response,
    json_response,
)
from .model import SandboxSettings
from .public_api import PublicApi
from .signin import SignIn
from .state import SandboxState
from .token_endpoint import TokenEndpoint


class SandboxApp:
    """Zephr's OAuth 2.0 server and Public API, as routes over SandboxState."""

    def __init__(
        self,
        state: SandboxState,
        settings: Callable[[], SandboxSettings],
        base_url: str,
    ) -> None:
        self.state = state
        self.settings = settings
        self.base_url = base_url
        sign_in = self.sign_in = SignIn(state, settings, base_url)
        token = self.token_endpoint = TokenEndpoint(state, settings)
        api = self.public_api = PublicApi(state, settings, base_url)
        self._routes: dict[str, dict[str, Callable[[Request], Response | None]]] = {
            AUTHORIZE_PATH: {"GET": sign_in.authorize},
            CONSENT_PAGE_PATH: {"GET": sign_in.consent_page},
            LOGIN_PATH: {"GET": sign_in.login_form, "POST": sign_in.login},
            pages.POPUP_PATH: {"GET": sign_in.popup_form, "POST": sign_in.popup_login},
            "/zephr/logout": {"POST": sign_in.logout},
            "/zephr/oauth2/grant": {"POST": sign_in.grant},
            "/zephr/oauth2/config": {"GET": api.config},
            "/zephr/oauth2/logo.svg": {"GET": api.logo},
            "/zephr/oauth2/error": {"GET": sign_in.error_page},
            "/zephr/oauth2/token": {"POST": token.token},
            "/blaize/account": {"GET": api.account},
            "/blaize/profile": {"GET": api.get_profile, "PUT": api.put_profile, "PATCH": api.patch_profile},
            METADATA_PATH: {"GET": api.metadata},
        }

    def handle(self, request: Request) -> Response | None:
        """Route a request; unknown paths get 404, known ones with another method 405."""
        if request.path == "/zephr/oauth2/consent" or request.path.startswith("/zephr/oauth2/consent/"):
            methods: dict[str, Callable[[Request], Response | None]] = {"GET": self.sign_in.consent_api}
        else:
            methods = self._routes.get(request.path, {})
        if not methods:
            return json_response(404, {"error": "not_found", "error_description": f"No route for {request.path}."})
        route = methods.get(request.method)
        if route is None:
            allow = ", ".join(methods)
            return json_response(405, {"error": "method_not_allowed"}, (("Allow", allow),))
        try:
            return route(request)
        except Abort as abort:
            return abort.response
