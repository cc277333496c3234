"""The ``zephr-desktop`` command line (DESIGN.md section 6).

stdout carries only data (a token, a URL, JSON); everything for people goes to stderr.
Exit codes: 0 ok, 1 failed (one line on stderr), 2 usage. Modules beyond the standard
library are imported inside the commands that need them, so ``token`` with a fresh
cached token stays at one interpreter start plus platformdirs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from . import __version__
from .errors import LoginCancelledError, PortInUseError, ZephrError

PROG = "zephr-desktop"
log = logging.getLogger(__name__)
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)\b((?:access_|refresh_)?token|code|code_verifier|client_secret|state)=([^&\s\"']+)"),
        r"\1=[redacted]",
    ),
    (
        re.compile(r"(?i)(\"(?:access_token|refresh_token|code|code_verifier|client_secret|state)\"\s*:\s*\")[^\"]*"),
        r"\1[redacted]",
    ),
]


class RedactingFilter(logging.Filter):
    """Scrub anything that looks like a credential from every log record (defence in depth)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for pattern, repl in _SECRET_PATTERNS:
            message = pattern.sub(repl, message)
        record.msg, record.args = message, None
        return True


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    # On the handler too: a logger set to DEBUG elsewhere must not put debug lines (tracebacks) on stderr.
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _store(args: argparse.Namespace) -> Any:
    from .store import TokenStore

    return TokenStore(client_secret_override=args.env_client_secret)


def _profile(name: str | None) -> Any:
    from .config import get_profile

    return get_profile(name)


# -- profile ------------------------------------------------------------------------------
def _read_secret(args: argparse.Namespace, stdin: TextIO) -> str | None:
    if args.client_secret_stdin:
        secret = stdin.readline().rstrip("\r\n")
        if not secret:
            raise ZephrError("--client-secret-stdin was given but standard input held no secret.")
        return secret
    if args.env_client_secret:
        return str(args.env_client_secret)
    if stdin.isatty():
        import getpass

        secret = getpass.getpass("Client secret (from the Third Party Authentication screen; empty for none): ")
        return secret or None
    return None


def _discovered(args: argparse.Namespace) -> dict[str, Any]:
    """The profile fields from ``--issuer``'s metadata (explicit flags win), said on stderr."""
    from .discovery import discover, settings_from
    from .errors import ConfigError

    if args.ca_bundle and not os.path.isfile(os.path.expanduser(args.ca_bundle)):
        raise ConfigError(f"CA bundle {args.ca_bundle!r} is not a readable file", field="ca_bundle")
    ca_bundle = os.path.expanduser(args.ca_bundle) if args.ca_bundle else None
    verify = False if args.insecure_skip_tls_verify else (ca_bundle or True)
    meta = discover(args.issuer, verify=verify)
    found = settings_from(
        meta,
        authorize_url=args.authorize_url,
        token_url=args.token_url,
        token_format=args.token_format,
        client_auth=args.client_auth,
    )
    print(f"Read the server's metadata from {meta.source}:", file=sys.stderr)
    for note in found.notes:
        print(f"  {note}", file=sys.stderr)
    return {"site_url": args.site or meta.issuer, **found.fields}


def cmd_profile_add(args: argparse.Namespace, stdin: TextIO) -> int:
    from . import accounts
    from .profile import Profile, unknown_scope_warning
    from .urls import how_redirect_is_received

    if not args.site and not args.issuer:
        _err("profile add: give --site URL (the Zephr site), or --issuer URL (another OAuth server).")
        return 2
    fields: dict[str, Any] = {
        "site_url": args.site,
        "token_url": args.token_url,
        "authorize_url": args.authorize_url,
        "token_format": args.token_format,
        "client_auth": args.client_auth,
    }
    if args.issuer:
        fields.update(_discovered(args))
    profile = Profile.create(
        name=args.name,
        client_id=args.client_id,
        redirect_uri=args.redirect_uri,
        scopes=args.scope,
        pkce=not args.no_pkce,
        keep_site_session=args.keep_site_session,
        ca_bundle=args.ca_bundle,
        insecure_skip_tls_verify=True if args.insecure_skip_tls_verify else None,
        **fields,
    )
    secret = _read_secret(args, stdin)
    store = _store(args)
    saved = accounts.save(profile, store=store, client_secret=secret, make_default=True if args.default else None)
    where = (
        "on the site's Third Party Authentication screen"
        if profile.token_format == "json"
        else "for the client on the authorization server"
    )
    print(f"Saved profile '{profile.name}'. Register this redirect URI {where}: {profile.redirect_uri}\n"
          f"{how_redirect_is_received(profile.redirect_uri)}", file=sys.stderr)  # fmt: skip
    if saved.signed_out:
        print(
            "Its site, client ID, token URL or authorize URL changed, so its tokens were removed: run "
            "`zephr-desktop login`.",
            file=sys.stderr,
        )
    warning = unknown_scope_warning(profile)
    if warning:
        print(f"Warning: {warning}", file=sys.stderr)
    if not secret and not store.get_client_secret(profile.name):
        print("No client secret stored: the client ID alone will be sent (public client).", file=sys.stderr)
    return 0


def cmd_profile_list(args: argparse.Namespace, stdin: TextIO) -> int:
    from .config import load_profiles

    profiles = load_profiles()
    if not profiles.profiles:
        print(
            "No profiles yet. Add one with `zephr-desktop profile add NAME --site URL --client-id ID`.", file=sys.stderr
        )
    for name, profile in sorted(profiles.profiles.items()):
        mark = "*" if name == profiles.default else " "
        print(f"{mark} {name}\t{profile.site_url}")
    return 0


def cmd_profile_show(args: argparse.Namespace, stdin: TextIO) -> int:
    from .paths import config_file

    profile = _profile(args.name)
    data = {"name": profile.name, **profile.to_toml_table(), "file": str(config_file())}
    data["authorize_url"] = profile.authorization_endpoint  # the default one too: where sign-in starts
    store = _store(args)
    data["client_secret"] = "stored" if store.get_client_secret(profile.name) else "not set"
    print(json.dumps(data, indent=2))
    return 0


def cmd_profile_check(args: argparse.Namespace, stdin: TextIO) -> int:
    from .check import PROBLEM, check_profile

    profile = _profile(args.name)
    findings = check_profile(profile, _store(args).get_client_secret(profile.name))
    for finding in findings:
        print(f"{finding.status}: {finding.message}", file=sys.stderr)
    if args.json:
        print(json.dumps([finding.as_dict() for finding in findings], indent=2))
    problems = sum(finding.status == PROBLEM for finding in findings)
    if problems:
        print(
            f"Profile '{profile.name}': {problems} problem{'s' if problems > 1 else ''}. Fix and run "
            f"`zephr-desktop profile check {profile.name}` again.",
            file=sys.stderr,
        )
        return 1
    print(f"Profile '{profile.name}' looks right: sign in with `zephr-desktop login`.", file=sys.stderr)
    return 0


def cmd_profile_remove(args: argparse.Namespace, stdin: TextIO) -> int:
    from . import accounts

    accounts.remove(args.name, store=_store(args))
    print(f"Removed profile '{args.name}' with its tokens and client secret.", file=sys.stderr)
    return 0


def cmd_profile_use(args: argparse.Namespace, stdin: TextIO) -> int:
    from .config import set_default

    set_default(args.name)
    print(f"Profile '{args.name}' is now the default.", file=sys.stderr)
    return 0


# -- sign-in and tokens ------------------------------------------------------------------
def _describe(token: Any, now: float | None = None) -> str:
    from .oauth import printable

    left = token.seconds_left(now)
    expiry = (
        "no expiry given"
        if left is None
        else ("expired" if left <= 0 else f"expires in {int(left // 60)} min {int(left % 60)} s")
    )
    who = f" for user {printable(token.user_id)}" if token.user_id else ""
    return f"Signed in{who}; {expiry}; scopes: {printable(', '.join(token.scopes)) or 'none'}."


def _stdin_lines(stdin: TextIO, done: threading.Event) -> Iterator[str]:
    """Lines from stdin until EOF or ``done``; never blocked in a read when ``done`` is set."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0 or os.name != "posix":
        # No pollable descriptor (an in-memory stream, or Windows): plain reads in a daemon thread.
        yield from stdin
        return
    import select

    # A thread still blocked in read() when the interpreter exits can abort the process, so poll.
    pending = b""
    while not done.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            if pending:
                yield pending.decode("utf-8", "replace")
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode("utf-8", "replace")


def _read_pasted(flow: Any, stdin: TextIO, done: threading.Event, ended: threading.Event) -> None:
    """Accept the final redirect URL pasted on stdin (for when the listener cannot receive it).

    Without a listener nothing else can end the wait: stdin's end cancels it (``ended`` is set).
    """
    for line in _stdin_lines(stdin, done):
        if done.is_set():
            return
        line = line.strip()
        if not line:
            continue
        try:
            flow.submit_redirect_url(line)
            return
        except ZephrError as exc:
            _err(exc.message)
    if not done.is_set() and not flow.listens:
        ended.set()
        flow.cancel()


def _app_holds_port(exc: PortInUseError) -> None:
    """Raise a plain error when the port is taken by the desktop app's own sign-in in progress."""
    from urllib.parse import urlsplit

    from .instance import app_listening_on
    from .paths import config_dir

    listening = app_listening_on(config_dir())
    try:
        port = urlsplit(f"//{listening}").port if listening else None
    except ValueError:
        port = None
    if port == exc.port:
        raise ZephrError(
            f"The desktop app is waiting for a sign-in on {listening}; finish or cancel it there, then try again."
        ) from exc


def cmd_login(args: argparse.Namespace, stdin: TextIO) -> int:
    from .login import LoginFlow

    profile = _profile(args.profile)
    store = _store(args)
    flow = LoginFlow(profile, store.get_client_secret(profile.name), store=store, timeout=args.timeout)
    try:
        url = flow.start()
    except PortInUseError as exc:
        _app_holds_port(exc)
        raise
    done, stdin_ended = threading.Event(), threading.Event()
    reader: threading.Thread | None = None
    # With a redirect URI that is not on this computer, nothing listens: the person pastes where the browser ended.
    paste = (
        "If the browser cannot reach this machine, paste the address it ends on here and press Enter."
        if flow.listens
        else f"The site then sends your browser to {flow.redirect_uri}, which is not on this computer: copy the "
        "whole address from the browser's address bar as soon as it shows, paste it here and press Enter."
    )
    if args.no_browser:
        print(url, flush=True)
        print(f"Open the URL above, sign in and click Allow. {paste}", file=sys.stderr)
    else:
        import webbrowser

        site = "Zephr sign-in page" if profile.token_format == "json" else "sign-in page"
        print(f"Opening the {site} in your browser:\n  {url}", file=sys.stderr)
        if not webbrowser.open(url):
            print("Could not open a browser; open the URL above yourself.", file=sys.stderr)
        if not flow.listens:
            print(f"Sign in and click Allow. {paste}", file=sys.stderr)
    if args.no_browser or not flow.listens:
        reader = threading.Thread(target=_read_pasted, args=(flow, stdin, done, stdin_ended), daemon=True)
        reader.start()
    try:
        token = flow.wait()
    except KeyboardInterrupt:
        flow.cancel()
        _err("Sign-in cancelled.")
        return 130
    except LoginCancelledError:
        if stdin_ended.is_set():
            raise LoginCancelledError(
                "Standard input ended before the final redirect URL was pasted; run the login again and paste "
                f"the whole address the browser ends on (it starts with {flow.redirect_uri})."
            ) from None
        raise
    finally:
        done.set()
        if reader is not None:
            reader.join(1.0)
    print(_describe(token), file=sys.stderr)
    return 0


def cmd_token(args: argparse.Namespace, stdin: TextIO) -> int:
    from .config import load_profiles
    from .login import ensure_fresh_token
    from .paths import config_identity

    identity = config_identity()  # before validating: a change in between voids the stamp
    profiles = load_profiles()
    store = _store(args)
    token = ensure_fresh_token(profiles.get(args.profile), store=store)
    print(token.access_token, flush=True)
    # The next plain `token` call may skip validation while the file stays exactly as it is.
    store.stamp_validated(identity, profiles)
    return 0


def cmd_refresh(args: argparse.Namespace, stdin: TextIO) -> int:
    from .login import refresh_token_now

    token = refresh_token_now(_profile(args.profile), store=_store(args))
    print(_describe(token), file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace, stdin: TextIO) -> int:
    from . import accounts
    from .oauth import printable

    profile = _profile(args.profile)
    store = _store(args)
    info = accounts.status(profile, store)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if not info["signed_in"]:
        why = store.signed_out_reason(profile)
        if why:
            print(f"{why} Run `zephr-desktop login --profile {profile.name}` to sign in again.")
        else:
            print(f"Profile '{profile.name}' ({profile.site_url}): not signed in. Run `zephr-desktop login`.")
        return 0
    state = "expired" if info["expired"] else f"valid for {info['expires_in']} s"
    print(f"profile:   {profile.name} ({profile.site_url})")
    # A token file written by an older version may hold what a server sent unchecked: shown escaped.
    print(f"user id:   {printable(info['user_id'] or '-')}")
    print(f"scopes:    {printable(', '.join(info['scopes'])) or '-'}")
    print(f"token:     {state} (until {info['expires_at']})")
    print(f"refresh:   {'available' if info['refresh_available'] else 'not available'}")
    return 0


def cmd_logout(args: argparse.Namespace, stdin: TextIO) -> int:
    from . import accounts

    profile = _profile(args.profile)
    had = accounts.sign_out(profile.name, store=_store(args), forget_client_secret=args.all)
    what = "tokens and client secret" if args.all else "tokens"
    print(
        f"Forgot the {what} of profile '{profile.name}'."
        if had or args.all
        else f"Profile '{profile.name}' had no token.",
        file=sys.stderr,
    )
    return 0


def cmd_api(args: argparse.Namespace, stdin: TextIO) -> int:
    from .login import ensure_fresh_token
    from .zephr_api import get_account, get_profile

    profile = _profile(args.profile)
    token = ensure_fresh_token(profile, store=_store(args))
    call = get_account if args.endpoint == "account" else get_profile
    print(json.dumps(call(profile, token), indent=2))
    return 0


def cmd_sandbox(args: argparse.Namespace, stdin: TextIO) -> int:
    from .sandbox import main as sandbox_main

    return int(sandbox_main(args.sandbox_args))


def cmd_desktop_entry(args: argparse.Namespace, stdin: TextIO) -> int:
    from . import desktop_entry

    if args.action == "install":
        written = desktop_entry.install()
        print(
            f"Added Zephr Desktop to the app menu: {written[-1]} (and {len(written) - 1} icon files).", file=sys.stderr
        )
        return 0
    removed = desktop_entry.remove()
    print(
        f"Removed the menu entry and icons ({len(removed)} files)."
        if removed
        else "There was no menu entry to remove.",
        file=sys.stderr,
    )
    return 0


def cmd_gui(args: argparse.Namespace, stdin: TextIO) -> int:
    from .gui import run

    return int(run(getattr(args, "profile", None), demo=bool(args.demo), client_secret=args.env_client_secret))


# -- parser ------------------------------------------------------------------------------
def _scopes_epilog() -> str:
    """Zephr's scopes, explained, for ``profile add --help``."""
    from .profile import DEFAULT_SCOPES, SCOPES

    lines = [f"scopes (--scope, repeat for each; default {' and '.join(DEFAULT_SCOPES)}):", "  Zephr's:"]
    lines += [f"    {scope:<22}{what}" for scope, what in SCOPES.items()]
    lines += [
        "  Other servers have their own (e.g. openid, offline_access): any RFC 6749 scope is",
        "  accepted; for a Zephr profile (token format json) an unknown one gets a warning.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Get a Zephr user's OAuth 2.0 access token: sign in, click Allow, copy the token.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step (redacted) on stderr")
    parser.add_argument("--demo", action="store_true", help="open the app against the built-in Zephr sandbox")
    parser.set_defaults(func=cmd_gui, profile=None)
    # --verbose is accepted after any command too; SUPPRESS keeps a later absence from undoing it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log each step (redacted) on stderr"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace, TextIO], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(func=func)
        return p

    def with_profile(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--profile", "-p", metavar="NAME", help="profile to use (default: the selected one)")
        return p

    gui = with_profile(add("gui", cmd_gui, "open the desktop app (the default)"))
    gui.add_argument("--demo", action="store_true", help="start the built-in sandbox and use a demo profile")

    prof = sub.add_parser("profile", help="manage profiles (site, client, scopes)", parents=[common])
    psub = prof.add_subparsers(title="profile commands", metavar="ACTION", required=True)
    padd = psub.add_parser(
        "add",
        help="add or replace a profile",
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_scopes_epilog(),
    )
    padd.set_defaults(func=cmd_profile_add)
    padd.add_argument("name")
    padd.add_argument("--site", metavar="URL", help="the site's live domain, e.g. https://news.example.com")
    padd.add_argument(
        "--issuer",
        metavar="URL",
        help="another OAuth server: read its endpoints from its RFC 8414 / OpenID metadata (then --site is optional)",
    )
    padd.add_argument(
        "--token-url", metavar="URL", help="token endpoint (default https://console.zephr.com/zephr/oauth2/token)"
    )
    padd.add_argument("--authorize-url", metavar="URL", help="authorize endpoint (default {site}/zephr/oauth2)")
    padd.add_argument("--client-id", required=True, metavar="ID")
    padd.add_argument(
        "--redirect-uri",
        metavar="URI",
        help="redirect URI registered for the client (default http://127.0.0.1:8765/callback, where the app "
        "listens; an https one is caught in the app's window, or pasted back with the CLI)",
    )
    padd.add_argument("--scope", action="append", metavar="SCOPE", help="repeat for each scope (see below)")
    padd.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from stdin")
    padd.add_argument("--token-format", choices=("json", "form"), help="token request body (json for Zephr)")
    padd.add_argument("--client-auth", choices=("basic", "body"), help="client authentication (basic for Zephr)")
    padd.add_argument("--no-pkce", action="store_true", help="do not send a PKCE challenge")
    padd.add_argument("--keep-site-session", action="store_true", help="keep the site's login between sign-ins")
    padd.add_argument("--ca-bundle", metavar="PEM", help="CA bundle for a site with a private CA")
    padd.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="DANGEROUS: do not verify TLS certificates (logged loudly on every request)",
    )
    padd.add_argument("--default", action="store_true", help="make it the selected profile")
    plist = psub.add_parser("list", help="list profiles (* marks the selected one)", parents=[common])
    plist.set_defaults(func=cmd_profile_list)
    pcheck = psub.add_parser(
        "check",
        help="say what is wrong with a profile before signing in (exit 1 if anything is)",
        parents=[common],
    )
    pcheck.add_argument("name", nargs="?", help="profile to check (default: the selected one)")
    pcheck.add_argument("--json", action="store_true", help="also print the findings as JSON on stdout")
    pcheck.set_defaults(func=cmd_profile_check)
    for name, func, help_ in (
        ("show", cmd_profile_show, "show a profile as JSON (never the secret)"),
        ("remove", cmd_profile_remove, "remove a profile, its tokens and secret"),
        ("use", cmd_profile_use, "select the profile used by default"),
    ):
        p = psub.add_parser(name, help=help_, parents=[common])
        p.add_argument("name")
        p.set_defaults(func=func)

    login = with_profile(add("login", cmd_login, "sign in and store a token"))
    mode = login.add_mutually_exclusive_group()
    mode.add_argument(
        "--browser", dest="no_browser", action="store_false", default=False, help="open the system browser (default)"
    )
    mode.add_argument(
        "--no-browser",
        dest="no_browser",
        action="store_true",
        help="print the URL on stdout; also accepts the final redirect URL pasted on stdin",
    )
    login.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS", help="give up after (default 300)")

    with_profile(add("token", cmd_token, "print a valid access token (refreshing first if due)"))
    status = with_profile(add("status", cmd_status, "user id, scopes, expiry; never a secret"))
    status.add_argument("--json", action="store_true")
    with_profile(add("refresh", cmd_refresh, "refresh the token now"))
    logout = with_profile(add("logout", cmd_logout, "forget the profile's tokens"))
    logout.add_argument("--all", action="store_true", help="also forget the client secret")
    api = with_profile(add("api", cmd_api, "call Zephr's Public API with the token and print the JSON"))
    api.add_argument("endpoint", choices=("account", "profile"))
    entry = add(
        "desktop-entry",
        cmd_desktop_entry,
        "add the app to the desktop's menu (a .desktop file and icons), or remove it",
    )
    entry.add_argument("action", choices=("install", "remove"))
    # The sandbox parses its own options (`zephr-desktop sandbox --help` lists them); see main().
    sandbox = add("sandbox", cmd_sandbox, "run the built-in Zephr sandbox in the foreground")
    sandbox.add_argument(
        "sandbox_args",
        nargs="*",
        metavar="OPTION",
        help="--host 127.0.0.1 --port N --expires-in S --rotate --mode zephr|rfc --fault NAME ...",
    )
    return parser


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code."""
    from .store import take_env_client_secret

    # Out of the environment before anything can start a child (a browser, the web engine).
    env_client_secret = take_env_client_secret()
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = 0
    while flags < len(argv) and argv[flags] in ("-v", "--verbose"):
        flags += 1
    if argv[flags : flags + 1] == ["sandbox"]:
        # Everything after `sandbox` belongs to the sandbox's own parser, options included.
        from .sandbox import main as sandbox_main

        _setup_logging(flags > 0)
        return _run(lambda: sandbox_main(argv[flags + 1 :]))
    args = build_parser().parse_args(argv)
    args.env_client_secret = env_client_secret
    _setup_logging(args.verbose)
    return _run(lambda: _dispatch(args, stdin or sys.stdin))


def _dispatch(args: argparse.Namespace, stdin: TextIO) -> int:
    from .fileutil import check_private
    from .paths import app_paths

    check_private(*app_paths())  # like ssh: nothing runs on files another user could have changed
    return int(args.func(args, stdin))


def _run(command: Callable[[], int]) -> int:
    """Run a command: every failure is one line on stderr and exit 1 (130 for Ctrl-C), never a traceback."""
    try:
        return int(command())
    except ZephrError as exc:
        _err(exc.message)
        return 1
    except OSError as exc:
        # A full disk, a read-only or foreign-owned config/data dir: say which file and why.
        where = f" ({exc.filename})" if exc.filename else ""
        _err(f"A file operation failed{where}: {exc.strerror or exc}. Check the disk and the permissions.")
        return 1
    except KeyboardInterrupt:
        _err("Interrupted.")
        return 130
    except Exception as exc:
        # A bug, or data no check foresaw: the traceback goes to the --verbose log (redacted like
        # every log line), the person gets one line. The exception's text is not shown: it may
        # quote whatever value broke it.
        import traceback

        log.debug("unexpected error:\n%s", "".join(traceback.format_exception(exc)).rstrip())
        _err(
            f"The command failed on something unexpected ({type(exc).__name__}). Run it again with --verbose to "
            "see where, and report it if it keeps happening."
        )
        return 1
