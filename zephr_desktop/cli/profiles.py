"""The ``profile`` commands: add, list, show, check, remove and use.

``add`` also reads an ``--issuer``'s metadata and the client secret (stdin, environment or prompt).

The profile file is ``config``'s business and the profile's fields ``profile``'s; these
commands read the person's flags and say on stderr what was done and what to do next.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from ..errors import ZephrError
from .common import _err, _profile, _store


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
    from ..discovery import discover, settings_from
    from ..errors import ConfigError

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
    from .. import accounts
    from ..profile import Profile, unknown_scope_warning
    from ..urls import how_redirect_is_received

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
    from ..config import load_profiles

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
    from ..paths import config_file

    profile = _profile(args.name)
    data = {"name": profile.name, **profile.to_toml_table(), "file": str(config_file())}
    data["authorize_url"] = profile.authorization_endpoint  # the default one too: where sign-in starts
    store = _store(args)
    data["client_secret"] = "stored" if store.get_client_secret(profile.name) else "not set"
    print(json.dumps(data, indent=2))
    return 0


def cmd_profile_check(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..check import PROBLEM, check_profile

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
    from .. import accounts

    accounts.remove(args.name, store=_store(args))
    print(f"Removed profile '{args.name}' with its tokens and client secret.", file=sys.stderr)
    return 0


def cmd_profile_use(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..config import set_default

    set_default(args.name)
    print(f"Profile '{args.name}' is now the default.", file=sys.stderr)
    return 0
