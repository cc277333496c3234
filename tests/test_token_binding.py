"""A token is used only for the site, token URL, client and authorize URL it was issued for (security issue 6).

The attack: someone edits profiles.toml so a signed-in profile's site or token URL points at
their own host. Before the binding, `token` printed the old site's token, `api account` sent it
to the new host, and `refresh` sent the refresh token and the client secret there. Now the
profile counts as signed out, on the full path and on the fast path, and nothing is sent.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from support import evidence
from support.cli import Result, finish, run, start
from support.recorder import Recorder
from support.signin import cli_add_profile, error_line, quiet_store, sign_in
from support.user import ScriptedUser
from test_fasttoken import probe

from zephr_desktop.config import get_profile, save_profile
from zephr_desktop.profile import Profile, with_changes
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox


@pytest.fixture
def new_host() -> Iterator[Recorder]:
    with Recorder() as host:
        yield host


def config_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"


def token_file(env: dict[str, str], name: str = "demo") -> Path:
    return Path(env["XDG_DATA_HOME"]) / "zephr-desktop" / "tokens" / f"{name}.json"


def edit_profiles_toml(env: dict[str, str], name: str = "demo", **changes: str) -> None:
    """What a person (or another local user) does with an editor."""
    path = config_file(env)
    doc = tomllib.loads(path.read_text())
    doc["profiles"][name].update(changes)
    path.write_text(tomli_w.dumps(doc))


def cli_login(env: dict[str, str], name: str = "demo") -> Result:
    """`login --no-browser --profile NAME`, the scripted user answering the printed URL."""
    proc = start(env, "login", "--no-browser", "--timeout", "20", "--profile", name)
    assert proc.stdout is not None
    page = ScriptedUser().approve(proc.stdout.readline().strip())
    result = finish(proc)
    assert result.code == 0 and page.status_code == 200, result.err
    return result


def cli_sign_in(env: dict[str, str], sb: Sandbox, name: str = "demo") -> str:
    """`profile add` and `login` through the CLI, then one `token` (which leaves the fast path's stamp)."""
    cli_add_profile(env, sb.url, sb.token_url, name=name, via=run)
    cli_login(env, name)
    token = run(env, "token", "--profile", name)
    assert token.code == 0, token.err
    return token.out.strip()


def signed_out_line(result: Result, name: str = "demo") -> str:
    line = error_line(result)
    assert result.out == "", "a token or an API answer reached stdout"
    assert f"Profile '{name}' is signed out" in line and f"zephr-desktop login --profile {name}" in line, line
    return line


EDITS: dict[str, Callable[[Sandbox, Recorder], dict[str, str]]] = {
    "site": lambda sb, host: {"site_url": host.url},
    "token URL": lambda sb, host: {"token_url": f"{host.url}/zephr/oauth2/token"},
    "site and token URL": lambda sb, host: {"site_url": host.url, "token_url": f"{host.url}/zephr/oauth2/token"},
    "client ID": lambda sb, host: {"client_id": "someone-elses-client"},
    "authorize URL": lambda sb, host: {"authorize_url": f"{host.url}/authorize"},
}


@pytest.mark.reliability("token-binding")
@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_profile_is_signed_out_and_nothing_reaches_the_new_host(
    child_env: dict[str, str], sandbox: Sandbox, new_host: Recorder, edit: str
) -> None:
    issued = cli_sign_in(child_env, sandbox)
    token_requests = len(sandbox.token_requests)
    edit_profiles_toml(child_env, **EDITS[edit](sandbox, new_host))

    printed = run(child_env, "token")
    line = signed_out_line(printed)
    assert issued not in printed.out + printed.err
    signed_out_line(run(child_env, "api", "account"))
    signed_out_line(run(child_env, "refresh"))
    status = run(child_env, "status")
    assert status.code == 0 and "Profile 'demo' is signed out" in status.out, status.out
    assert json.loads(run(child_env, "status", "--json").out)["signed_in"] is False

    assert new_host.requests == [], f"the new host received {new_host.requests}"
    assert len(sandbox.token_requests) == token_requests, "a refresh was sent for a client the token is not for"
    what = {
        "site": "site",
        "token URL": "token URL",
        "site and token URL": "site",
        "client ID": "client ID",
        "authorize URL": "authorize URL",
    }[edit]
    assert f"issued for {what} " in line, line
    evidence.record(
        edit=edit,
        commands=5,
        reached_new_host=len(new_host.requests),
        refreshes_sent=len(sandbox.token_requests) - token_requests,
        signed_out=1,
    )


def test_the_binding_survives_an_edit_that_is_undone(
    child_env: dict[str, str], sandbox: Sandbox, new_host: Recorder
) -> None:
    issued = cli_sign_in(child_env, sandbox)
    original = config_file(child_env).read_text()
    edit_profiles_toml(child_env, site_url=new_host.url)
    signed_out_line(run(child_env, "token"))
    config_file(child_env).write_text(original)  # counted as signed out; nothing was thrown away
    assert run(child_env, "token").out.strip() == issued
    assert new_host.requests == []


def test_the_fast_path_compares_the_issuer_it_was_stamped_with(
    child_env: dict[str, str], sandbox: Sandbox, new_host: Recorder
) -> None:
    issued = cli_sign_in(child_env, sandbox)
    cli_sign_in(child_env, sandbox, name="other")
    edit_profiles_toml(child_env, site_url=new_host.url)
    # A full `token` for the other profile validates the edited file and stamps it, issuers included.
    assert run(child_env, "token", "--profile", "other").code == 0
    code, out, heavy = probe(child_env, "token", "--profile", "demo")
    assert (code, out) == (1, "") and "zephr_desktop.cli" in heavy, (code, heavy)
    assert issued not in out
    # The other profile, untouched, still takes the fast path.
    code, out, heavy = probe(child_env, "token", "--profile", "other")
    assert code == 0 and out.strip() and heavy == []
    assert new_host.requests == []


def legacy(path: Path) -> None:
    """Rewrite a token file as a version before the binding wrote it (no issuer)."""
    doc = json.loads(path.read_text())
    doc["version"] = 1
    doc.pop("issuer", None)
    path.write_text(json.dumps(doc))


def test_a_token_file_from_before_the_binding_means_signed_out_then_sign_in_repairs_it(
    child_env: dict[str, str], sandbox: Sandbox
) -> None:
    cli_sign_in(child_env, sandbox)
    legacy(token_file(child_env))
    token_requests = len(sandbox.token_requests)
    for args in (("token",), ("api", "account"), ("refresh",)):
        line = signed_out_line(run(child_env, *args))
        assert "earlier zephr-desktop" in line, line
    status = run(child_env, "status")
    assert status.code == 0 and "earlier zephr-desktop" in status.out
    assert len(sandbox.token_requests) == token_requests
    cli_login(child_env)
    assert run(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]
    secrets = json.loads((Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "secrets.json").read_text())
    refresh_keys = [key for key in secrets if "/refresh_token/" in key]
    assert len(refresh_keys) == 1, "the old refresh token was left behind"


class Shell:
    """The window side of the GUI, for the bridge: records what would be copied or opened."""

    def __init__(self) -> None:
        self.copied: list[str] = []
        self.opened: list[str] = []

    def push(self, event: dict[str, Any]) -> None:
        pass

    def open_consent(self, url: str, profile: Profile, hooks: Any) -> Any:
        raise AssertionError("no sign-in is started here")

    def copy_text(self, text: str) -> float | None:
        self.copied.append(text)
        return None

    def open_browser(self, url: str) -> None:
        self.opened.append(url)

    def browser_only(self) -> str | None:
        return None


def test_the_desktop_app_counts_an_edited_profile_as_signed_out(sandbox: Sandbox, new_host: Recorder) -> None:
    from zephr_desktop.gui.api import page_functions
    from zephr_desktop.gui.session import Session

    sandbox.settings.expires_in = 2  # due for refresh after 1.3 s: the auto-refresh watcher would act
    profile = Profile.create(
        name="demo",
        site_url=sandbox.url,
        token_url=sandbox.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri="http://127.0.0.1:0/callback",
    )
    save_profile(profile)
    quiet_store().set_client_secret("demo", DEFAULT_CLIENT_SECRET)
    sign_in(profile)
    save_profile(with_changes(get_profile("demo"), site_url=new_host.url, token_url=f"{new_host.url}/token"))
    shell = Shell()
    session = Session(shell, store=quiet_store())
    page = {fn.__name__: fn for fn in page_functions(session, shell)}
    session.start_watching(tick=0.05)
    try:
        state = page["state"]()
        assert state["token"] is None and "Profile 'demo' is signed out" in (state["error"] or ""), state
        time.sleep(2.5)  # expired by now, and the watcher has had dozens of ticks
        for answer in (page["copy"]("header"), page["test_token"](), page["refresh"]()):
            assert answer["ok"] is False, answer
    finally:
        session.shutdown()
    assert shell.copied == [] and new_host.requests == []
