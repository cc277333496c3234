"""The token commands: ``token``, ``refresh``, ``status``, ``logout`` and ``api``.

``token`` here is the full path: it validates ``profiles.toml``, refreshes when due and leaves the
stamp the fast path (``fasttoken``) trusts next time; ``api`` calls Zephr's Public API with the token.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from .common import _describe, _profile, _store


def cmd_token(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..config import load_profiles
    from ..login import ensure_fresh_token
    from ..paths import config_identity

    identity = config_identity()  # before validating: a change in between voids the stamp
    profiles = load_profiles()
    store = _store(args)
    token = ensure_fresh_token(profiles.get(args.profile), store=store)
    print(token.access_token, flush=True)
    # The next plain `token` call may skip validation while the file stays exactly as it is.
    store.stamp_validated(identity, profiles)
    return 0


def cmd_refresh(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..login import refresh_token_now

    token = refresh_token_now(_profile(args.profile), store=_store(args))
    print(_describe(token), file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace, stdin: TextIO) -> int:
    from .. import accounts
    from ..oauth import printable

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
    from .. import accounts

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
    from ..login import ensure_fresh_token
    from ..zephr_api import get_account, get_profile

    profile = _profile(args.profile)
    token = ensure_fresh_token(profile, store=_store(args))
    call = get_account if args.endpoint == "account" else get_profile
    print(json.dumps(call(profile, token), indent=2))
    return 0
