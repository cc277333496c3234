"""The bridge the main page sees (``pywebview.api``): every public method here, nothing else.

Each method returns a small JSON-able dict and raises nothing across the bridge: a
``ZephrError`` comes back as ``{"ok": false, "error": "<its message>"}``. The window side
(consent window, clipboard, pushing events to the page) is a ``Shell`` passed in, so the
bridge runs without Qt in unit tests.
"""

from __future__ import annotations

import functools
import logging
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..config import (
    DEFAULT_REDIRECT_URI,
    DEFAULT_SCOPES,
    DEFAULT_TOKEN_URL,
    SCOPES,
    Profile,
    Profiles,
    load_profiles,
    remove_profile,
    save_profile,
    with_changes,
)
from ..errors import (
    AccessDeniedError,
    ConfigError,
    InvalidClientError,
    InvalidGrantError,
    LoginCancelledError,
    ZephrError,
)
from ..login import LoginFlow, ensure_fresh_token, refresh_token_now
from ..oauth import Token
from ..store import TokenStore

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

COPY_KINDS = ("token", "header", "curl", "export")
AUTO_REFRESH_RETRY = 30.0  # seconds before retrying a failed automatic refresh of the same token
LOGIN_TIMEOUT = 600.0
MAX_COPY_TEXT = 4096


class ConsentHandle(Protocol):
    """What the bridge needs of an open consent window."""

    def close(self) -> None:
        """Close it from the app (not a cancel)."""


class Shell(Protocol):
    """The window side of the app, as the bridge uses it."""

    def push(self, event: dict[str, Any]) -> None:
        """Tell the page something changed (it then asks ``state()``)."""

    def open_consent(self, url: str, profile: Profile, on_user_close: Callable[[], None]) -> ConsentHandle:
        """Open the consent window on ``url``; ``on_user_close`` runs if the person closes it."""

    def copy_text(self, text: str) -> float | None:
        """Put ``text`` on the system clipboard; returns after how many seconds it is cleared, if it is."""

    def open_browser(self, url: str) -> None:
        """Open ``url`` in the system browser."""


def not_exposed(fn: F) -> F:
    """Keep a public method off the page's bridge (pywebview skips non-serializable attributes)."""
    fn._serializable = False  # type: ignore[attr-defined]
    return fn


def _bridge(fn: F) -> F:
    """Turn any exception into ``{"ok": False, "error": ...}``: nothing raises across the bridge."""

    @functools.wraps(fn)
    def wrapper(self: Api, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(self, *args, **kwargs)
        except ConfigError as exc:
            return {"ok": False, "error": exc.message, "field": exc.field}
        except ZephrError as exc:
            return {"ok": False, "error": exc.message}
        except Exception as exc:
            log.error("%s failed: %s", fn.__name__, type(exc).__name__)
            return {"ok": False, "error": f"Something went wrong ({type(exc).__name__}). Try again."}

    return wrapper  # type: ignore[return-value]


def _field_message(exc: ConfigError) -> str:
    # ConfigError prefixes "profile 'x', field 'y': "; next to the field only the rest reads well.
    if exc.field and ": " in exc.message:
        return exc.message.split(": ", 1)[1]
    return exc.message


def copy_text_for(kind: str, token: Token, profile: Profile) -> str:
    """The text each Copy button puts on the clipboard."""
    value = token.access_token
    if kind == "token":
        return value
    if kind == "header":
        return f"Authorization: Bearer {value}"
    if kind == "curl":
        path = "/blaize/profile"
        if token.scopes and "user.profile:read" not in token.scopes and "user.account:read" in token.scopes:
            path = "/blaize/account"
        return f"curl -H {shlex.quote('Authorization: Bearer ' + value)} {profile.site_url}{path}"
    if kind == "export":
        return f"export ZEPHR_ACCESS_TOKEN={shlex.quote(value)}"
    raise ValueError(kind)


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


def _token_view(token: Token, has_refresh: bool, now: float) -> dict[str, Any]:
    return {
        "access_token": token.access_token,
        "token_type": token.token_type,
        "expires_at": token.expires_at,
        "obtained_at": token.obtained_at,
        "seconds_left": token.seconds_left(now),
        "expired": token.is_expired(now),
        "scopes": list(token.scopes),
        "user_id": token.user_id,
        "has_refresh": has_refresh,
    }


class Api:
    """The page's view of the app: profiles, sign-in, the token, copy, refresh, test."""

    def __init__(
        self,
        shell: Shell,
        *,
        store: TokenStore | None = None,
        profile_name: str | None = None,
        demo_hint: str | None = None,
        clock: Callable[[], float] = time.time,
        tick: float = 0.5,
    ) -> None:
        self._shell = shell
        self._store = store or TokenStore()
        self._clock = clock
        self._tick = tick
        self._demo_hint = demo_hint
        self._lock = threading.RLock()
        self._requested = profile_name
        self._current: str | None = None
        self._flow: LoginFlow | None = None
        self._consent: ConsentHandle | None = None
        self._in_browser = False
        self._closed_by_user = False
        self._error: str | None = None
        self._notice: str | None = None
        self._auto_refresh = True
        self._secret_known: dict[str, bool] = {}
        self._seen: dict[str, float] = {}
        self._failed: tuple[str, float, float] | None = None  # (profile, token obtained_at, retry after)
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    # -- lifecycle (not on the bridge) ---------------------------------------------
    @not_exposed
    def start_background(self) -> None:
        """Start the auto-refresh watcher."""
        if self._refresher is None:
            self._refresher = threading.Thread(target=self._watch, name="zephr-auto-refresh", daemon=True)
            self._refresher.start()

    @not_exposed
    def shutdown(self) -> None:
        """Stop the watcher and cancel a sign-in in progress (the main window is closing)."""
        self._stop.set()
        with self._lock:
            flow, consent = self._flow, self._consent
            self._consent = None
        if flow is not None:
            flow.cancel()
        if consent is not None:
            consent.close()

    # -- the page's surface ------------------------------------------------------------
    @_bridge
    def init(self) -> dict[str, Any]:
        """Everything the page needs to draw itself the first time."""
        catalog = {
            "scopes": dict(SCOPES),
            "default_scopes": list(DEFAULT_SCOPES),
            "default_redirect_uri": DEFAULT_REDIRECT_URI,
            "default_token_url": DEFAULT_TOKEN_URL,
        }
        state = self._state()
        if self._requested and state["ok"] and self._requested not in {p["name"] for p in state["profiles"]}:
            try:
                load_profiles().get(self._requested)
            except ConfigError as exc:  # say which profile was asked for, and which exist
                state["error"] = exc.message
        return {**state, "catalog": catalog}

    @_bridge
    def state(self) -> dict[str, Any]:
        """The current profiles, sign-in phase, token, messages and settings."""
        return self._state()

    @_bridge
    def select_profile(self, name: str) -> dict[str, Any]:
        """Switch the window to another profile."""
        profiles = load_profiles()
        profiles.get(name)
        with self._lock:
            if self._flow is not None:
                return {"ok": False, "error": "Finish or cancel the sign-in in progress before switching profiles."}
            self._current = name
            self._error = self._notice = None
        return self._state(profiles)

    @_bridge
    def save_profile(self, form: dict[str, Any]) -> dict[str, Any]:
        """Add a profile, or change one (``form["original_name"]``); the client secret is write-only."""
        original = form.get("original_name") or None
        name = str(form.get("name") or "").strip() or _name_from_site(str(form.get("site_url") or ""))
        fields = {
            "name": name,
            "site_url": str(form.get("site_url") or "").strip(),
            "client_id": str(form.get("client_id") or "").strip(),
            "redirect_uri": str(form.get("redirect_uri") or "").strip() or None,
            "token_url": str(form.get("token_url") or "").strip() or None,
            "scopes": list(form.get("scopes") or []),
            "keep_site_session": bool(form.get("keep_site_session")),
        }
        current = load_profiles()
        if original is None and name in current.profiles:
            return {"ok": False, "error": f"A profile named '{name}' already exists.", "field": "name"}
        if original is not None and original != name:
            return {"ok": False, "error": "A profile cannot be renamed; add a new one instead.", "field": "name"}
        before = current.profiles.get(name) if original is not None else None
        try:
            # Editing keeps what the form does not show (pkce, token_format, client_auth, ca_bundle, ...).
            profile = with_changes(before, **fields) if before is not None else Profile.create(**fields)
        except ConfigError as exc:
            return {"ok": False, "error": _field_message(exc), "field": exc.field or "name"}
        if before is not None and (before.site_url, before.client_id, before.token_url) != (
            profile.site_url,
            profile.client_id,
            profile.token_url,
        ):
            self._store.delete(profile.name)  # a token from another site or client would only mislead
        secret = form.get("client_secret")
        if isinstance(secret, str) and secret.strip():
            self._store.set_client_secret(profile.name, secret.strip())
            self._secret_known[profile.name] = True
        save_profile(profile)
        with self._lock:
            if self._flow is None:
                self._current = profile.name
            self._error = None
            self._notice = f"Profile '{profile.name}' saved."
        return self._state()

    @_bridge
    def remove_profile(self, name: str) -> dict[str, Any]:
        """Delete a profile with its tokens and client secret."""
        with self._lock:
            if self._flow is not None:
                return {"ok": False, "error": "Finish or cancel the sign-in in progress first."}
        remove_profile(name)
        self._store.delete(name)
        self._store.delete_client_secret(name)
        self._secret_known.pop(name, None)
        with self._lock:
            if self._current == name:
                self._current = None
            self._notice = f"Profile '{name}' removed."
            self._error = None
        return self._state()

    @_bridge
    def sign_in(self) -> dict[str, Any]:
        """Start a sign-in: bind the listener, open the consent window, wait in the background."""
        profile = self._profile()
        # Read before taking the lock: a keyring may block on an unlock prompt.
        secret = self._store.get_client_secret(profile.name)
        with self._lock:
            if self._flow is not None:
                return {"ok": False, "error": "A sign-in is already waiting for you to click Allow."}
            flow = LoginFlow(profile, secret, store=self._store, timeout=LOGIN_TIMEOUT)
            self._error = self._notice = None
            url = flow.start()  # the listener is bound before the page is shown
            self._flow = flow
            self._in_browser = False
            self._closed_by_user = False
        threading.Thread(target=self._wait, args=(flow, profile), name="zephr-sign-in", daemon=True).start()
        try:
            consent = self._shell.open_consent(url, profile, functools.partial(self._consent_closed, flow))
        except BaseException:
            flow.cancel()  # free the port now rather than when the wait times out
            raise
        with self._lock:
            if self._flow is flow:
                self._consent = consent
            else:  # it already ended
                consent.close()
        return self._state()

    @_bridge
    def cancel_sign_in(self) -> dict[str, Any]:
        """Stop waiting for the callback (listener closed, port freed)."""
        with self._lock:
            flow = self._flow
        if flow is not None:
            flow.cancel()
        return {"ok": True}

    @_bridge
    def open_in_browser(self) -> dict[str, Any]:
        """Continue the sign-in in the system browser instead of the app's window."""
        with self._lock:
            flow, consent = self._flow, self._consent
            if flow is None:
                return {"ok": False, "error": "No sign-in is in progress. Press Sign in first."}
            self._in_browser = True
            self._consent = None
        if consent is not None:
            consent.close()
        self._shell.open_browser(flow.url)
        return self._state()

    @_bridge
    def refresh(self) -> dict[str, Any]:
        """Refresh the token now with the refresh token."""
        profile = self._profile()
        refresh_token_now(profile, store=self._store)
        with self._lock:
            self._error = None
            self._notice = "Token refreshed."
        return self._state()

    @_bridge
    def set_auto_refresh(self, on: bool) -> dict[str, Any]:
        """Turn automatic refresh before expiry on or off."""
        with self._lock:
            self._auto_refresh = bool(on)
            self._failed = None
        return self._state()

    @_bridge
    def copy(self, kind: str) -> dict[str, Any]:
        """Copy the token as ``token``, ``header``, ``curl`` or ``export`` to the system clipboard."""
        if kind not in COPY_KINDS:
            return {"ok": False, "error": f"Unknown copy format '{kind}'."}
        profile = self._profile()
        token = self._cached_token(profile)
        if token is None:
            return {"ok": False, "error": "There is no token to copy yet. Sign in first."}
        clear_after = self._shell.copy_text(copy_text_for(kind, token, profile))
        return {"ok": True, "kind": kind, "clear_after": clear_after}

    @_bridge
    def copy_text(self, text: str) -> dict[str, Any]:
        """Copy a short piece of page text (e.g. the redirect URI) to the system clipboard."""
        text = str(text)[:MAX_COPY_TEXT]
        return {"ok": True, "clear_after": self._shell.copy_text(text)}

    @_bridge
    def test_token(self) -> dict[str, Any]:
        """Call ``/blaize/account`` and/or ``/blaize/profile`` with the token, as its scopes allow."""
        from ..zephr_api import get_account, get_profile

        profile = self._profile()
        token = self._cached_token(profile)
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

    @_bridge
    def sign_out(self) -> dict[str, Any]:
        """Forget the profile's tokens on this computer."""
        profile = self._profile()
        self._store.delete(profile.name)
        with self._lock:
            self._seen.pop(profile.name, None)
            self._error = None
            self._notice = f"Signed out of '{profile.name}': its tokens were removed from this computer."
        return self._state()

    # -- internals ---------------------------------------------------------------------
    def _profiles(self) -> Profiles:
        return load_profiles()

    def _pick(self, profiles: Profiles) -> str | None:
        with self._lock:
            for name in (self._current, self._requested, profiles.default):
                if name and name in profiles.profiles:
                    self._current = name
                    return name
            self._current = min(profiles.profiles) if profiles.profiles else None
            return self._current

    def _profile(self) -> Profile:
        profiles = self._profiles()
        name = self._pick(profiles)
        return profiles.get(name)

    @_bridge
    def secret_status(self, name: str) -> dict[str, Any]:
        """Whether a client secret is stored for the profile (asked by the settings form only)."""
        # Not part of init(): the first secret-store read imports keyring, ~100 ms the start must not pay.
        return {"ok": True, "has_secret": self._has_secret(str(name))}

    def _has_secret(self, name: str) -> bool:
        if name not in self._secret_known:
            try:
                self._secret_known[name] = bool(self._store.get_client_secret(name))
            except ZephrError:
                self._secret_known[name] = False
        return self._secret_known[name]

    def _cached(self, profile: Profile) -> tuple[Token, bool] | None:
        cached = self._store.load_cached(profile)
        if cached is None:
            return None
        token, ref = cached
        return token, ref is not None

    def _cached_token(self, profile: Profile) -> Token | None:
        cached = self._cached(profile)
        return cached[0] if cached else None

    def _state(self, profiles: Profiles | None = None) -> dict[str, Any]:
        error: str | None = None
        try:
            profiles = profiles or self._profiles()
        except ConfigError as exc:
            profiles, error = Profiles(), exc.message
        name = self._pick(profiles)
        token_view = None
        if name is not None:
            try:
                cached = self._cached(profiles.profiles[name])
                if cached is None:
                    error = error or self._store.signed_out_reason(profiles.profiles[name])
            except ZephrError as exc:
                cached, error = None, exc.message
            if cached is not None:
                token, has_refresh = cached
                now = self._clock()
                # An expired token without a way to refresh it is of no use to show.
                if has_refresh or not token.is_expired(now):
                    token_view = _token_view(token, has_refresh, now)
                    self._seen[name] = token.obtained_at
        with self._lock:
            flow = self._flow
            return {
                "ok": True,
                "profiles": [_profile_view(p) for _, p in sorted(profiles.profiles.items())],
                "current": name,
                "signing_in": flow is not None,
                "in_browser": self._in_browser,
                "redirect_uri": flow.redirect_uri if flow is not None else None,
                "token": token_view,
                "auto_refresh": self._auto_refresh,
                "error": self._error or error,
                "notice": self._notice,
                "demo_hint": self._demo_hint,
            }

    def _consent_closed(self, flow: LoginFlow) -> None:
        with self._lock:
            if self._flow is not flow or self._in_browser:
                return
            self._closed_by_user = True
            self._consent = None
        flow.cancel()

    def _wait(self, flow: LoginFlow, profile: Profile) -> None:
        error: str | None = None
        notice: str | None = None
        flow_cancelled = False
        try:
            flow.wait()
            notice = f"Signed in to {profile.site_url}."
        except LoginCancelledError:
            # The person's own choice: said in the status line, not as an error.
            flow_cancelled = True
            with self._lock:
                by_window = self._closed_by_user
            notice = "Sign-in cancelled: the sign-in window was closed." if by_window else "Sign-in cancelled."
        except AccessDeniedError as exc:
            error = exc.message
        except ZephrError as exc:
            error = exc.message
        except Exception as exc:
            log.error("sign-in failed: %s", type(exc).__name__)
            error = f"Sign-in failed unexpectedly ({type(exc).__name__}). Try again."
        with self._lock:
            consent = self._consent if self._flow is flow else None
            if self._flow is flow:
                self._flow = None
                self._consent = None
                self._in_browser = False
            self._error, self._notice = error, notice
            self._failed = None
        if consent is not None:
            consent.close()
        kind = "sign_in_failed" if error else "sign_in_cancelled" if flow_cancelled else "signed_in"
        self._shell.push({"type": kind})

    def _watch(self) -> None:
        """Refresh the current token before it expires, and notice tokens changed by other processes."""
        while not self._stop.wait(self._tick):
            try:
                self._watch_once()
            except Exception as exc:  # keep watching; the page shows errors from state()
                log.error("auto refresh check failed: %s", type(exc).__name__)

    def _watch_once(self) -> None:
        with self._lock:
            if self._flow is not None:
                return
            auto, name = self._auto_refresh, self._current
        if name is None:
            return
        try:
            profile = self._profiles().get(name)
            cached = self._cached(profile)
        except ZephrError:
            return
        if cached is None:
            if self._seen.pop(name, None) is not None:
                self._shell.push({"type": "token_changed"})
            return
        token, has_refresh = cached
        if self._seen.get(name) != token.obtained_at:
            self._seen[name] = token.obtained_at
            self._shell.push({"type": "token_changed"})
        now = self._clock()
        if not (auto and has_refresh and token.needs_refresh(now)):
            return
        failed = self._failed
        if failed and failed[:2] == (name, token.obtained_at) and now < failed[2]:
            return
        try:
            fresh = ensure_fresh_token(profile, store=self._store)
        except ZephrError as exc:
            with self._lock:
                # A refused grant (dead refresh token, revoked client) will not heal by retrying.
                retry = float("inf") if isinstance(exc, InvalidGrantError | InvalidClientError) else AUTO_REFRESH_RETRY
                self._failed = (name, token.obtained_at, now + retry)
                self._error = f"Automatic refresh failed: {exc.message}"
            self._shell.push({"type": "refresh_failed"})
            return
        self._seen[name] = fresh.obtained_at
        with self._lock:
            self._failed = None
            if self._error and self._error.startswith("Automatic refresh failed"):
                self._error = None
            self._notice = "Token refreshed automatically before it expired."
        self._shell.push({"type": "token_changed"})


def _name_from_site(site_url: str) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(site_url.strip()).netloc or "zephr"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in host).strip("-.") or "zephr"
    return cleaned[:64]
