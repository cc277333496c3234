"""A scripted Zephr user: signs in on the sandbox's login page and answers the consent page over plain HTTP."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from support import secrets_scan


class ScriptedUser:
    """Does in HTTP what a person does in the browser: sign in, then Allow or Deny."""

    def __init__(self, email: str = "joe@example.com", password: str = "zephr-sandbox") -> None:
        self.email = email
        self.password = password
        self.http = requests.Session()

    def consent(self, authorize_url: str, *, allow: bool = True) -> str:
        """Follow the authorize URL to the consent page and answer it; return where the browser would go."""
        resp = self.http.get(authorize_url, allow_redirects=False, timeout=10)
        assert resp.status_code == 302, (resp.status_code, resp.text[:300])
        location = urljoin(authorize_url, resp.headers["Location"])
        if "/zephr/login" in location:
            login = self.http.post(
                location, data={"email": self.email, "password": self.password}, allow_redirects=False, timeout=10
            )
            assert login.status_code == 302, (login.status_code, login.text[:300])
            resp = self.http.get(authorize_url, allow_redirects=False, timeout=10)
            assert resp.status_code == 302
            location = urljoin(authorize_url, resp.headers["Location"])
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        grant = {k: query[k] for k in ("client_id", "response_type", "redirect_uri", "scope", "state")}
        for key in ("code_challenge", "code_challenge_method"):
            if key in query:
                grant[key] = query[key]
        grant["allow"] = allow  # type: ignore[assignment]
        site = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
        answer = self.http.post(
            f"{site}/zephr/oauth2/grant",
            data=json.dumps(grant),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        body = answer.json()
        if answer.status_code == 200:
            return f"{grant['redirect_uri']}?{urlencode({'code': body['code'], 'state': body['state']})}"
        denied = {"error": body.get("error", "access_denied"), "state": grant["state"]}
        return f"{grant['redirect_uri']}?{urlencode(denied)}"

    def approve(self, authorize_url: str, *, allow: bool = True) -> requests.Response:
        """Answer the consent page and let the browser follow the redirect to the app's listener."""
        redirect = self.consent(authorize_url, allow=allow)
        page = requests.get(redirect, timeout=10)
        secrets_scan.collect("listener result page", page.text)
        return page
