"""Every error a user of zephr-desktop can see.

All of them derive from ``ZephrError``; its message is one plain sentence that says
what failed and what to do next, and never contains a secret (client secret, token,
authorization code or PKCE verifier)::

    ZephrError
    ├── ConfigError                 profiles.toml or a profile is invalid (names file/profile/field)
    │   └── ProfileNotFoundError    no such profile, or none selected
    ├── SecretStoreError            the keyring or the 0600 secret file cannot be used
    ├── UnsafePathError             a file or directory of the app's is writable by others or not the user's
    ├── NotLoggedInError            no token stored for the profile (or one issued for another site)
    ├── ListenerError               the loopback redirect listener failed
    │   └── PortInUseError          the redirect URI's port is taken
    ├── LoginTimeoutError           no callback arrived before the deadline
    ├── LoginCancelledError         the person closed the window or pressed Cancel
    ├── AuthorizationError          the callback carried ?error=... (RFC 6749 4.1.2.1)
    │   └── AccessDeniedError       the person clicked Deny
    ├── CallbackError               the callback or pasted URL is malformed (no code, bad state)
    ├── TokenEndpointError          the token endpoint refused or answered nonsense
    │   ├── InvalidClientError      401 / invalid_client: wrong client ID or secret
    │   └── InvalidGrantError       invalid_grant: code or refresh token expired, used or revoked
    ├── NetworkError                connection refused, timeout, TLS failure
    ├── DiscoveryError              an issuer's metadata (RFC 8414 / OpenID) cannot be used
    └── ApiError                    a Public API call (/blaize/...) failed
"""

from __future__ import annotations


class ZephrError(Exception):
    """Base of every error zephr-desktop reports to a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ZephrError):
    """The configuration file or a profile in it is invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        profile: str | None = None,
        field: str | None = None,
    ) -> None:
        where = []
        if path:
            where.append(str(path))
        if profile:
            where.append(f"profile '{profile}'")
        if field:
            where.append(f"field '{field}'")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full)
        self.detail = message  # without the location: what a form shows next to the field
        self.path = path
        self.profile = profile
        self.field = field


class ProfileNotFoundError(ConfigError):
    """The named profile does not exist, or no profile is selected."""


class SecretStoreError(ZephrError):
    """Secrets cannot be read or written."""


class UnsafePathError(ZephrError):
    """A config or data file or directory another user could write, or that is not the user's."""

    def __init__(self, message: str, *, path: object) -> None:
        super().__init__(message)
        self.path = str(path)


class NotLoggedInError(ZephrError):
    """No token is stored for the profile."""


class ListenerError(ZephrError):
    """The loopback redirect listener could not run."""


class PortInUseError(ListenerError):
    """The redirect URI's port is already taken by another program."""

    def __init__(self, message: str, *, port: int) -> None:
        super().__init__(message)
        self.port = port


class LoginTimeoutError(ZephrError):
    """No callback arrived before the deadline."""


class LoginCancelledError(ZephrError):
    """The sign-in was cancelled by the person."""


class AuthorizationError(ZephrError):
    """The authorization server redirected back with an error."""

    def __init__(self, message: str, *, error: str, description: str | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.description = description


class AccessDeniedError(AuthorizationError):
    """The person clicked Deny on the consent page."""


class CallbackError(ZephrError):
    """The callback request or pasted redirect URL cannot be used."""


class TokenEndpointError(ZephrError):
    """The token endpoint refused the request or answered something unusable."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.description = description


class InvalidClientError(TokenEndpointError):
    """The authorization server (Zephr, or an RFC 6749 server) rejected the client ID or secret."""


class InvalidGrantError(TokenEndpointError):
    """The code or refresh token is expired, already used, or revoked."""


class NetworkError(ZephrError):
    """The server could not be reached (refused, timed out, TLS failure)."""


class DiscoveryError(ZephrError):
    """An issuer's authorization server metadata is missing, malformed or names another issuer."""


class ApiError(ZephrError):
    """A Zephr Public API call failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
