"""The argparse tree: every command, its options and help, and the command function it runs.

``profile add --help`` ends with Zephr's scopes, explained.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from .. import __version__
from . import desktop, profiles, signin, tokens
from .common import PROG


def _scopes_epilog() -> str:
    """Zephr's scopes, explained, for ``profile add --help``."""
    from ..profile import DEFAULT_SCOPES, SCOPES

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
    parser.set_defaults(func=desktop.cmd_gui, profile=None)
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

    gui = with_profile(add("gui", desktop.cmd_gui, "open the desktop app (the default)"))
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
    padd.set_defaults(func=profiles.cmd_profile_add)
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
    plist.set_defaults(func=profiles.cmd_profile_list)
    pcheck = psub.add_parser(
        "check",
        help="say what is wrong with a profile before signing in (exit 1 if anything is)",
        parents=[common],
    )
    pcheck.add_argument("name", nargs="?", help="profile to check (default: the selected one)")
    pcheck.add_argument("--json", action="store_true", help="also print the findings as JSON on stdout")
    pcheck.set_defaults(func=profiles.cmd_profile_check)
    for name, func, help_ in (
        ("show", profiles.cmd_profile_show, "show a profile as JSON (never the secret)"),
        ("remove", profiles.cmd_profile_remove, "remove a profile, its tokens and secret"),
        ("use", profiles.cmd_profile_use, "select the profile used by default"),
    ):
        p = psub.add_parser(name, help=help_, parents=[common])
        p.add_argument("name")
        p.set_defaults(func=func)

    login = with_profile(add("login", signin.cmd_login, "sign in and store a token"))
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

    with_profile(add("token", tokens.cmd_token, "print a valid access token (refreshing first if due)"))
    status = with_profile(add("status", tokens.cmd_status, "user id, scopes, expiry; never a secret"))
    status.add_argument("--json", action="store_true")
    with_profile(add("refresh", tokens.cmd_refresh, "refresh the token now"))
    logout = with_profile(add("logout", tokens.cmd_logout, "forget the profile's tokens"))
    logout.add_argument("--all", action="store_true", help="also forget the client secret")
    api = with_profile(add("api", tokens.cmd_api, "call Zephr's Public API with the token and print the JSON"))
    api.add_argument("endpoint", choices=("account", "profile"))
    entry = add(
        "desktop-entry",
        desktop.cmd_desktop_entry,
        "add the app to the desktop's menu (a .desktop file and icons), or remove it",
    )
    entry.add_argument("action", choices=("install", "remove"))
    # The sandbox parses its own options (`zephr-desktop sandbox --help` lists them); see main().
    sandbox = add("sandbox", desktop.cmd_sandbox, "run the built-in Zephr sandbox in the foreground")
    sandbox.add_argument(
        "sandbox_args",
        nargs="*",
        metavar="OPTION",
        help="--host 127.0.0.1 --port N --expires-in S --rotate --mode zephr|rfc --fault NAME ...",
    )
    return parser
