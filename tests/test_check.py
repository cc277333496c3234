"""``profile check``: one finding per question, each problem with its fix; the HTTP side faked, then the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.cli import call
from support.signin import ANY_PORT, cli_add_profile

from zephr_desktop.check import OK, PROBLEM, SKIPPED, Finding, check_profile
from zephr_desktop.discovery import Answer
from zephr_desktop.errors import (
    InvalidClientError,
    InvalidGrantError,
    NetworkError,
    TokenEndpointError,
)
from zephr_desktop.oauth import AuthRequest, Token
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

SITE = "https://news.example.com"
ZEPHR = Profile.create(name="news", site_url=SITE, client_id="cid")
RFC = Profile.create(name="rfc", site_url="https://www.example.com", client_id="cid", token_format="form",
                     authorize_url="https://auth.example.com/authorize",
                     token_url="https://auth.example.com/token")  # fmt: skip
SECRET = "s3cret-value-never-shown"
REFUSED = NetworkError("Cannot reach the site https://news.example.com: nothing is listening at news.example.com:443")


def page(status: int, body: str = "", ctype: str = "text/html", location: str | None = None) -> Answer:
    headers = {"content-type": ctype, **({"location": location} if location else {})}
    return Answer("x", status, headers, body.encode())


class FakeWeb:
    """The site and the authorize endpoint; records the URLs asked for."""

    def __init__(self, site: Answer | Exception | None = None, authorize: Answer | Exception | None = None) -> None:
        self.answers = {
            "the site": page(200) if site is None else site,
            "the authorize endpoint": page(302, location="/login") if authorize is None else authorize,
        }
        self.asked: list[tuple[str, str]] = []

    def __call__(self, url: str, *, name: str, setting: str) -> Answer:
        self.asked.append((name, url))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeTokenEndpoint:
    """Stands for the app's token exchange: raises what the endpoint's answer would make it raise."""

    def __init__(self, outcome: Exception | None) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str | None, str]] = []

    def __call__(self, profile: Profile, client_secret: str | None, request: AuthRequest, code: str) -> Token:
        self.calls.append((client_secret, code))
        if self.outcome is not None:
            raise self.outcome
        return Token("oa_issued", "bearer", None, 0.0)


GRANT = InvalidGrantError("refused", status=400, error="invalid_grant")
CLIENT = InvalidClientError("refused", status=401, error="invalid_client")
LOGIN = page(302, location="/zephr/login?next=x")


@pytest.mark.parametrize(
    ("profile", "web", "token", "secret", "expected"),
    [
        # all good: a redirect to the login page, and invalid_grant for the made-up code
        (ZEPHR, FakeWeb(authorize=LOGIN), GRANT, SECRET,
         {"site": (OK, "answers (HTTP 200)"), "authorize": (OK, "redirects on to a sign-in page"),
          "token_endpoint": (OK, "answers as an OAuth token endpoint"),
          "client": (OK, "accepts the client ID and secret")}),
        (ZEPHR, FakeWeb(authorize=page(200, "<form>password</form>")), GRANT, None,
         {"authorize": (OK, "answers with a sign-in page"), "client": (OK, "public client")}),
        # a server that redirects straight back (a session it already has) accepted both
        (ZEPHR, FakeWeb(authorize=page(302, location="http://127.0.0.1:8765/callback?code=abc&state=x")), GRANT,
         SECRET, {"authorize": (OK, "straight back to the redirect URI")}),
        # the site is down: the authorize endpoint on it is not checked
        (ZEPHR, FakeWeb(site=REFUSED), NetworkError("Cannot reach the token endpoint https://console..."), SECRET,
         {"site": (PROBLEM, "nothing is listening"), "authorize": (SKIPPED, "site's server"),
          "token_endpoint": (PROBLEM, "Cannot reach the token endpoint"), "client": (SKIPPED, "could not be checked")}),
        (ZEPHR, FakeWeb(site=NetworkError("TLS verification failed for the site ...")), GRANT, SECRET,
         {"site": (PROBLEM, "TLS verification failed")}),
        # an authorize endpoint elsewhere is checked even when the site is down
        (RFC, FakeWeb(site=REFUSED), GRANT, SECRET, {"site": (PROBLEM, "nothing"), "authorize": (OK, "accepts")}),
        # the authorize endpoint's error pages
        (ZEPHR, FakeWeb(authorize=page(400, "<title>Error</title><p>Invalid parameter: redirect_uri</p>")), GRANT,
         SECRET, {"authorize": (PROBLEM, "refused the redirect URI http://127.0.0.1:8765/callback (400: "
                                         "“Invalid parameter: redirect_uri”). Register exactly")}),
        (Profile.create(name="any", site_url=SITE, client_id="cid", redirect_uri="http://127.0.0.1:0/callback"),
         FakeWeb(authorize=page(400, '{"error": "invalid_request", "error_description": "bad redirect_uri"}',
                                "application/json")), GRANT, SECRET,
         {"authorize": (PROBLEM, "(400: “invalid_request bad redirect_uri”). Register exactly http://127.0.0.1:0/"
                                 "callback on the site's Third Party Authentication screen, or set the profile's "
                                 "redirect URI to one that is registered (port 0 asks for any free port, which only "
                                 "a server that accepts any loopback port takes).")}),
        (ZEPHR, FakeWeb(authorize=page(400, "<h1>Oops.</h1><p>Client not found.</p><script>var client=1</script>")),
         CLIENT, SECRET, {"authorize": (PROBLEM, "refused the client ID 'cid' (400: “Client not found.”). Copy the "
                                                 "client ID from the site's Third Party Authentication screen"),
                          "client": (PROBLEM, "refused the client credentials (401 invalid_client)")}),
        (ZEPHR, FakeWeb(authorize=page(401, '{"error": "invalid_client"}', "application/json")), CLIENT, SECRET,
         {"authorize": (PROBLEM, "refused the client ID 'cid' (401: “invalid_client”)")}),
        (ZEPHR, FakeWeb(authorize=page(302, location="/zephr/oauth2/error?error=unauthorized_client")), GRANT, SECRET,
         {"authorize": (PROBLEM, "refused the client ID 'cid' (unauthorized_client)")}),
        (ZEPHR, FakeWeb(authorize=page(302, location="http://127.0.0.1:8765/callback?error=invalid_scope&state=s")),
         GRANT, SECRET, {"authorize": (PROBLEM, "refused the scopes user.account:read user.profile:read "
                                                "(invalid_scope). Ask only for scopes the server offers (Zephr's")}),
        (ZEPHR, FakeWeb(authorize=page(302, location="http://127.0.0.1:8765/callback?error=invalid_request&"
                                                     "error_description=code_challenge+required")),
         GRANT, SECRET, {"authorize": (PROBLEM, "accepts the client ID and redirect URI but refused the sign-in "
                                                "request (invalid_request: code_challenge required)")}),
        (ZEPHR, FakeWeb(authorize=page(404, "Not Found")), GRANT, SECRET,
         {"authorize": (PROBLEM, "does not exist (404). Check the profile's site URL (the site's live domain).")}),
        # nothing else explains a refusal: Allowed Origins first (the client is known good here)
        (ZEPHR, FakeWeb(authorize=page(403, "<h1>Forbidden</h1>")), GRANT, SECRET,
         {"authorize": (PROBLEM, "(403: “Forbidden”) instead of a sign-in page. The client ID and secret are right, "
                                 "so the first suspect is the site's Allowed Origins")}),
        (ZEPHR, FakeWeb(authorize=page(403)), CLIENT, SECRET,
         {"authorize": (PROBLEM, "(403) instead of a sign-in page. The first suspect is the site's Allowed Origins")}),
        # ... except off Zephr, where there is no such list
        (RFC, FakeWeb(authorize=page(403, "<h1>Forbidden</h1>")), GRANT, SECRET,
         {"authorize": (PROBLEM, "Check the client ID and that http://127.0.0.1:8765/callback is registered exactly "
                                 "on the client's settings on the authorization server (auth.example.com)")}),
        # the token endpoint and the client credentials
        (ZEPHR, FakeWeb(), CLIENT, None,
         {"client": (PROBLEM, "(401 invalid_client). No client secret is stored for the profile")}),
        (ZEPHR, FakeWeb(), TokenEndpointError("x", status=404, error="not_found"), SECRET,
         {"token_endpoint": (PROBLEM, "is not an OAuth token endpoint (it answered 404 not_found to a token request)"
                                      ". Set the profile's token URL to the server's token endpoint (Zephr's: "),
          "client": (SKIPPED, "")}),
        (ZEPHR, FakeWeb(), TokenEndpointError("x", status=200), SECRET,
         {"token_endpoint": (PROBLEM, "is not an OAuth token endpoint (it answered 200 to a token request)")}),
        (ZEPHR, FakeWeb(), TokenEndpointError("x", status=502), SECRET,
         {"token_endpoint": (PROBLEM, "fails on its side (502)")}),
        (ZEPHR, FakeWeb(), TokenEndpointError("Redirected to ...; set the token URL", status=302), SECRET,
         {"token_endpoint": (PROBLEM, "Redirected to ...; set the token URL")}),
        (RFC, FakeWeb(), TokenEndpointError("x", status=400, error="invalid_request", description="JSON not taken"),
         SECRET, {"token_endpoint": (PROBLEM, "refused the app's token request (400 invalid_request: JSON not taken). "
                                              "Check the profile's token_format")}),
        (ZEPHR, FakeWeb(), None, SECRET, {"token_endpoint": (PROBLEM, "issued a token for a made-up code")}),
    ],
)  # fmt: skip
def test_findings(
    profile: Profile, web: FakeWeb, token: Exception | None, secret: str | None, expected: dict[str, tuple[str, str]]
) -> None:
    endpoint = FakeTokenEndpoint(token)
    findings = check_profile(profile, secret, fetch=web, exchange=endpoint)
    assert [f.check for f in findings] == ["site", "authorize", "token_endpoint", "client"]
    got = {f.check: f for f in findings}
    for check, (status, words) in expected.items():
        assert got[check].status == status and words in got[check].message, (check, got[check])
    for finding in findings:
        assert SECRET not in finding.message and "\n" not in finding.message
    ((secret_sent, code),) = endpoint.calls
    assert secret_sent == secret and code.startswith("check")  # the app's own exchange, with a made-up code
    authorize = [url for name, url in web.asked if name == "the authorize endpoint"]
    assert all(url.startswith(profile.authorization_endpoint + "?") and "client_id=cid" in url for url in authorize)


def test_finding_as_dict() -> None:
    assert Finding("site", PROBLEM, "words").as_dict() == {"check": "site", "status": "problem", "message": "words"}
    assert Finding("site", SKIPPED, "w").ok and not Finding("site", PROBLEM, "w").ok


# -- the CLI against the sandbox: each misconfiguration its own line(s) -----------------------------------
def add(env: dict[str, str], sb: Any, **change: str) -> None:
    values = {"--site": sb.url, "--token-url": sb.token_url, "--client-id": DEFAULT_CLIENT_ID,
              "--redirect-uri": ANY_PORT, "secret": DEFAULT_CLIENT_SECRET, **change}  # fmt: skip
    cli_add_profile(env, values["--site"], values["--token-url"], name="p", client_id=values["--client-id"],
                    redirect_uri=values["--redirect-uri"], secret=values["secret"])  # fmt: skip


CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "good": ({}, []),
    "wrong client ID": ({"--client-id": "no-such-client"},
                        ["problem: The authorize endpoint refused the client ID 'no-such-client' (400: “No app with "
                         "client ID 'no-such-client' is registered.”)",
                         "problem: The token endpoint refused the client credentials (401 invalid_client). Check the "
                         "client ID and secret"]),
    "wrong secret": ({"secret": "not-the-sandbox-secret"},
                     ["problem: The token endpoint refused the client credentials (401 invalid_client)"]),
    "unregistered redirect URI": ({"--redirect-uri": "http://127.0.0.1:0/elsewhere"},
                                  ["problem: The authorize endpoint refused the redirect URI "
                                   "http://127.0.0.1:0/elsewhere (400: “The redirect URI"]),
    "wrong token URL": ({"--token-url": "{url}/zephr/oauth2/tokens"},
                        ["problem: The token URL {url}/zephr/oauth2/tokens is not an OAuth token endpoint (it answered "
                         "404 not_found"]),
    "token endpoint down": ({"--token-url": "http://127.0.0.1:{free}/token"},
                            ["problem: Cannot reach the token endpoint http://127.0.0.1:{free}/token"]),
    "site down": ({"--site": "http://127.0.0.1:{free}", "--token-url": "http://127.0.0.1:{free}/zephr/oauth2/token"},
                  ["problem: Cannot reach the site http://127.0.0.1:{free}: nothing is listening at 127.0.0.1:{free} "
                   "(connection refused)", "problem: Cannot reach the token endpoint"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_profile_check_against_the_sandbox(child_env: dict[str, str], sandbox: Any, free_port: int, case: str) -> None:
    change, lines = CASES[case]
    fill = {"url": sandbox.url, "free": str(free_port)}
    add(child_env, sandbox, **{k: v.format(**fill) for k, v in change.items()})
    r = call(child_env, "profile", "check", "p", "--json")
    expected = [line.format(**fill) for line in lines]
    problems = [line for line in r.err.splitlines() if line.startswith("problem: ")]
    assert "Traceback" not in r.err and DEFAULT_CLIENT_SECRET not in r.err + r.out
    findings = json.loads(r.out)  # stdout is the JSON alone
    assert [f["check"] for f in findings] == ["site", "authorize", "token_endpoint", "client"]
    assert [f"problem: {f['message']}" for f in findings if f["status"] == "problem"] == problems
    if not expected:
        assert r.code == 0 and problems == [] and "looks right" in r.err
        assert all(f["status"] == "ok" for f in findings)
        return
    assert r.code == 1 and f"{len(problems)} problem" in r.err
    assert len(problems) == len(expected), r.err
    for want, got in zip(expected, problems, strict=True):
        assert got.startswith(want), (want, got)
    assert sandbox.stats["token_authorization_code"] == 0


def test_each_misconfiguration_reads_differently() -> None:
    # Different problems must not read the same: compare the first words of each case's lines.
    heads = {case: tuple(line.split("(")[0] for line in lines) for case, (_, lines) in CASES.items() if lines}
    assert len(set(heads.values())) == len(heads), heads


def test_profile_check_without_a_profile(child_env: dict[str, str]) -> None:
    r = call(child_env, "profile", "check", "ghost")
    assert (r.code, r.out) == (1, "") and "No profile" in r.err and "Traceback" not in r.err
