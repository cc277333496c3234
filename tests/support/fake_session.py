"""A fake token endpoint at the session seam: ``token_client``'s ``session_factory`` without HTTP.

Each request pops the next answer (a token response's JSON, or an exception to raise) and is
recorded with the profile, the client secret and the grant it carried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zephr_desktop.profile import Profile


@dataclass
class Call:
    """One token request as the session received it."""

    profile: Profile
    client_secret: str | None
    url: str
    options: dict[str, Any]

    @property
    def grant(self) -> dict[str, Any]:
        """The grant's parameters, without the transport options (timeout, verify, ...)."""
        transport = ("timeout", "verify", "allow_redirects")
        return {k: v for k, v in self.options.items() if k not in transport}


@dataclass
class FakeTokenEndpoint:
    """Pass as ``session_factory``: answers in order, records every call, counts closed sessions."""

    answers: list[Mapping[str, Any] | BaseException] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    opened: int = 0
    closed: int = 0

    def answer(self, *answers: Mapping[str, Any] | BaseException) -> FakeTokenEndpoint:
        """Queue answers for the next requests."""
        self.answers.extend(answers)
        return self

    def __call__(self, profile: Profile, client_secret: str | None) -> _Session:
        self.opened += 1
        return _Session(self, profile, client_secret)


@dataclass
class _Session:
    endpoint: FakeTokenEndpoint
    profile: Profile
    client_secret: str | None

    def fetch_token(self, url: str, **kwargs: Any) -> Mapping[str, Any]:
        self.endpoint.calls.append(Call(self.profile, self.client_secret, url, kwargs))
        if not self.endpoint.answers:
            raise AssertionError("the fake token endpoint got a request it has no answer for")
        answer = self.endpoint.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)

    def close(self) -> None:
        self.endpoint.closed += 1


def token_json(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A good Zephr token response (``n`` tells tokens apart); ``fields`` override or add (None drops)."""
    base: dict[str, Any] = {
        "scope": "user.account:read, user.profile:read",
        "access_token": f"oa_access{n}",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": f"refresh{n}",
        "user_id": "68c0f5ae-f857-408f-a9d6-f511df0f8ae8",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}
