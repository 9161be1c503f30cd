"""Signing a demo person in through the local issuer without a browser (the authorization code flow with PKCE, as
the portal does it), for tests that set things up through the API before the browser looks at them."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from devstack.oidc_issuer import demo_people


@dataclass(frozen=True)
class ApiClient:
    """The API as one signed-in person sees it."""

    base: str
    token: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=30, **kwargs)


def person_id(name: str) -> str:
    """The object id of a demo person by display name ("Ada Admin")."""
    return next(p.object_id for p in demo_people() if p.name == name)


def sign_in(base: str, name: str) -> ApiClient:
    """A token for the demo person `name`, from the authority the portal's settings name."""
    settings = httpx.get(f"{base}/api/jit/portal/settings", timeout=10).json()
    discovery = httpx.get(f"{settings['authority']}/.well-known/openid-configuration", timeout=10).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = f"{base}/portal/"
    form = {
        "client_id": settings["clientId"],
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": f"openid profile {settings['scope']}",
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "person": person_id(name),
    }
    chosen = httpx.post(discovery["authorization_endpoint"], data=form, timeout=10)
    assert chosen.status_code == 302, chosen.text
    code = parse_qs(urlsplit(chosen.headers["Location"]).query)["code"][0]
    tokens = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "client_id": settings["clientId"],
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    return ApiClient(base, tokens.json()["access_token"])
