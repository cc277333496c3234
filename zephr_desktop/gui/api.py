"""The bridge the main page sees (``pywebview.api``): the page's functions, and nothing else.

pywebview resolves a name the page calls in two places: the functions registered with
``window.expose`` (an exact-name lookup), then ``getattr`` along any dotted path on the
``js_api`` object. So the page's functions are plain closures given to ``window.expose``
(``page_functions``), and the ``js_api`` object is ``NO_ATTRIBUTES``, which answers no
attribute at all: no name from the page leads to the store, a path, a module or a thread.

Each function returns a small JSON-able dict and raises nothing across the bridge: a
``ZephrError`` comes back as ``{"ok": false, "error": "<its message>"}``. The state lives
in a ``Session`` (no Qt); the window side is the session's ``Shell``.
"""

from __future__ import annotations

import functools
import logging
import shlex
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import ConfigError, ZephrError
from ..oauth import Token
from ..profile import DEFAULT_SCOPES, SCOPES, Profile
from ..urls import DEFAULT_REDIRECT_URI, DEFAULT_TOKEN_URL
from .contracts import Shell
from .session import Session, Snapshot

log = logging.getLogger(__name__)

COPY_KINDS = ("token", "header", "curl", "export")
MAX_COPY_TEXT = 4096
PageFunction = Callable[..., dict[str, Any]]


class _NoAttributes:
    """Given to pywebview as ``js_api``: every attribute lookup fails, so no dotted name resolves on it."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> NoReturn:
        raise AttributeError(name)

    def __dir__(self) -> list[str]:
        return []


NO_ATTRIBUTES: Any = _NoAttributes()


def copy_text_for(kind: str, token: Token, profile: Profile) -> str:
    """The text each Copy button puts on the clipboard; every value in a shell command is quoted."""
    value = token.access_token
    if kind == "token":
        return value
    if kind == "header":
        return f"Authorization: Bearer {value}"
    if kind == "curl":
        path = "/blaize/profile"
        if token.scopes and "user.profile:read" not in token.scopes and "user.account:read" in token.scopes:
            path = "/blaize/account"
        return f"curl -H {shlex.quote('Authorization: Bearer ' + value)} {shlex.quote(profile.site_url + path)}"
    if kind == "export":
        return f"export ZEPHR_ACCESS_TOKEN={shlex.quote(value)}"
    raise ValueError(kind)


def page_functions(session: Session, shell: Shell) -> list[PageFunction]:
    """The functions the page calls as ``pywebview.api.<name>``, for ``window.expose``."""
    functions = [*_profile_functions(session), *_sign_in_functions(session), *_token_functions(session, shell)]
    return [_answering(fn) for fn in functions]


def _profile_functions(session: Session) -> list[PageFunction]:
    """Drawing the page, the About list, and the profiles: choosing, saving, checking and removing one."""

    def init() -> dict[str, Any]:
        """Everything the page needs to draw itself the first time."""
        return _first_view(session)

    def state() -> dict[str, Any]:
        """The current profiles, sign-in phase, token, messages and settings."""
        return _state_view(session.snapshot())

    def select_profile(name: str) -> dict[str, Any]:
        """Switch the window to another profile."""
        return _state_view(session.snapshot(session.select(str(name))))

    def save_profile(form: dict[str, Any]) -> dict[str, Any]:
        """Add a profile, or change one (``form["original_name"]``); the client secret is write-only."""
        return _save_profile(session, form)

    def remove_profile(name: str) -> dict[str, Any]:
        """Delete a profile with its tokens and client secret."""
        session.remove(str(name))
        return state()

    def secret_status(name: str) -> dict[str, Any]:
        """Whether a client secret is stored for the profile (asked by the settings form only)."""
        # Not part of init(): the first secret-store read imports keyring, ~100 ms the start must not pay.
        return {"ok": True, "has_secret": session.has_secret(str(name))}

    def about() -> dict[str, Any]:
        """The version and where files are kept: profiles.toml, the data dir, the secret store."""
        # Asked when the settings view opens, not at start: naming the secret store imports keyring.
        from .. import __version__

        return {"ok": True, "version": __version__, **session.where()}

    def check_profile(form: dict[str, Any]) -> dict[str, Any]:
        """Say what is wrong with the settings form's profile (unsaved edits included), before any sign-in."""
        return _check_profile(session, form)

    return [init, state, select_profile, save_profile, remove_profile, secret_status, about, check_profile]


def _sign_in_functions(session: Session) -> list[PageFunction]:
    """Signing in (in the app's window or the browser), refreshing and signing out."""

    def sign_in() -> dict[str, Any]:
        """Start a sign-in: bind the listener, open the consent window, wait in the background."""
        session.sign_in()
        return _state_view(session.snapshot())

    def cancel_sign_in() -> dict[str, Any]:
        """Stop waiting for the callback (listener closed, port freed)."""
        session.cancel_sign_in()
        return {"ok": True}

    def open_in_browser() -> dict[str, Any]:
        """Continue the sign-in in the system browser instead of the app's window."""
        session.continue_in_browser()
        return _state_view(session.snapshot())

    def refresh() -> dict[str, Any]:
        """Refresh the token now with the refresh token."""
        session.refresh()
        return _state_view(session.snapshot())

    def set_auto_refresh(on: bool) -> dict[str, Any]:
        """Turn automatic refresh before expiry on or off."""
        session.set_auto_refresh(bool(on))
        return _state_view(session.snapshot())

    def sign_out() -> dict[str, Any]:
        """Forget the profile's tokens on this computer."""
        session.sign_out()
        return _state_view(session.snapshot())

    return [sign_in, cancel_sign_in, open_in_browser, refresh, set_auto_refresh, sign_out]


def _token_functions(session: Session, shell: Shell) -> list[PageFunction]:
    """Using the token: copying it in some form, testing it against the site."""

    def copy(kind: str) -> dict[str, Any]:
        """Copy the token as ``token``, ``header``, ``curl`` or ``export`` to the system clipboard."""
        return _copy_token(session, shell, kind)

    def copy_text(text: str) -> dict[str, Any]:
        """Copy a short piece of page text (e.g. the redirect URI) to the system clipboard."""
        return {"ok": True, "clear_after": shell.copy_text(str(text)[:MAX_COPY_TEXT])}

    def test_token() -> dict[str, Any]:
        """Call ``/blaize/account`` and/or ``/blaize/profile`` with the token, as its scopes allow."""
        profile = session.current_profile()
        return _test_token(profile, session.cached_token(profile))

    return [copy, copy_text, test_token]


def _first_view(session: Session) -> dict[str, Any]:
    shown = session.snapshot()
    view = _state_view(shown)
    problem = session.requested_profile_problem(shown)
    if problem:
        view["error"] = problem
    catalog = {
        "scopes": dict(SCOPES),
        "default_scopes": list(DEFAULT_SCOPES),
        "default_redirect_uri": DEFAULT_REDIRECT_URI,
        "default_token_url": DEFAULT_TOKEN_URL,
    }
    return {**view, "catalog": catalog}


def _save_profile(session: Session, form: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(form, dict):
        return {"ok": False, "error": "The settings form sent nothing to save."}
    try:
        session.save(form)
    except ConfigError as exc:
        return _form_failure(exc)
    return _state_view(session.snapshot())


def _check_profile(session: Session, form: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(form, dict):
        return {"ok": False, "error": "The settings form sent nothing to check."}
    try:
        findings = session.check(form)
    except ConfigError as exc:
        return _form_failure(exc)
    return {"ok": True, "all_ok": all(f.ok for f in findings), "findings": [f.as_dict() for f in findings]}


def _form_failure(exc: ConfigError) -> dict[str, Any]:
    """What the settings form shows for a rejected profile."""
    if exc.path is not None:  # about profiles.toml, not the form: name the file
        return {"ok": False, "error": exc.message, "field": exc.field}
    return {"ok": False, "error": exc.detail, "field": exc.field or "name"}  # words for next to the field


def _copy_token(session: Session, shell: Shell, kind: str) -> dict[str, Any]:
    if kind not in COPY_KINDS:
        return {"ok": False, "error": f"Unknown copy format '{kind}'."}
    profile = session.current_profile()
    token = session.cached_token(profile)
    if token is None:
        return {"ok": False, "error": "There is no token to copy yet. Sign in first."}
    clear_after = shell.copy_text(copy_text_for(kind, token, profile))
    return {"ok": True, "kind": kind, "clear_after": clear_after}


def _answering(fn: PageFunction) -> PageFunction:
    """Turn any exception into ``{"ok": False, "error": ...}``: nothing raises across the bridge."""

    @functools.wraps(fn)
    def answer(*args: Any) -> dict[str, Any]:
        try:
            return fn(*args)
        except ConfigError as exc:
            return {"ok": False, "error": exc.message, "field": exc.field}
        except ZephrError as exc:
            return {"ok": False, "error": exc.message}
        except Exception as exc:
            log.error("%s failed: %s", fn.__name__, type(exc).__name__)
            return {"ok": False, "error": f"Something went wrong ({type(exc).__name__}). Try again."}

    return answer


def _test_token(profile: Profile, token: Token | None) -> dict[str, Any]:
    from ..zephr_api import get_account, get_profile

    if token is None:
        return {"ok": False, "error": "There is no token to test yet. Sign in first."}
    calls: list[tuple[str, Callable[[Profile, Token], Any]]] = []
    if not token.scopes or "user.account:read" in token.scopes:
        calls.append(("GET /blaize/account", get_account))
    if not token.scopes or "user.profile:read" in token.scopes:
        calls.append(("GET /blaize/profile", get_profile))
    if not calls:
        return {"ok": False, "error": "This token has no read scope to test with."}
    results: dict[str, Any] = {}
    all_ok = True
    for label, call in calls:
        try:
            results[label] = call(profile, token)
        except ZephrError as exc:
            all_ok = False
            results[label] = {"error": exc.message}
    return {"ok": True, "all_ok": all_ok, "results": results}


def _state_view(shown: Snapshot) -> dict[str, Any]:
    token = None
    if shown.token is not None:
        t = shown.token.token
        token = {
            "access_token": t.access_token,
            "token_type": t.token_type,
            "expires_at": t.expires_at,
            "obtained_at": t.obtained_at,
            "seconds_left": t.seconds_left(shown.now),
            "expired": t.is_expired(shown.now),
            "scopes": list(t.scopes),
            "user_id": t.user_id,
            "has_refresh": shown.token.has_refresh,
        }
    return {
        "ok": True,
        "profiles": [_profile_view(p) for _, p in sorted(shown.profiles.profiles.items())],
        "current": shown.current,
        "signing_in": shown.signing_in,
        "in_browser": shown.in_browser,
        "redirect_uri": shown.redirect_uri,
        "redirect_caught": shown.redirect_caught,
        "token": token,
        "auto_refresh": shown.auto_refresh,
        "error": shown.error,
        "notice": shown.notice,
        "demo_hint": shown.demo_hint,
        "browser_only": shown.browser_only,
    }


def _profile_view(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "site_url": profile.site_url,
        "token_url": profile.token_url,
        "client_id": profile.client_id,
        "redirect_uri": profile.redirect_uri,
        "scopes": list(profile.scopes),
        "keep_site_session": profile.keep_site_session,
    }
