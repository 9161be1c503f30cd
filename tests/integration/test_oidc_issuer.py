"""The local OpenID issuer over HTTP: discovery, keys, the browser's authorization code flow with PKCE, the client
credentials grant, and what each endpoint refuses. Tokens it hands out are checked with the product's validator."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from devstack.oidc_issuer import DEFAULT_SPA_CLIENT_ID, OidcIssuer, Person
from jit.identity import BearerValidator, PrincipalKind, load_identity_settings

REDIRECT = "http://localhost:5173/auth/callback"
SPA_ORIGIN = "http://localhost:5173"
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def issuer(clock: Clock) -> Iterator[OidcIssuer]:
    with OidcIssuer(spa_redirect_uris=[REDIRECT, "http://127.0.0.1:5173/"], clock=clock) as running:
        yield running


@pytest.fixture
def http(issuer: OidcIssuer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=issuer.authority, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def validator(issuer: OidcIssuer) -> BearerValidator:
    return BearerValidator(load_identity_settings(issuer.identity_env()))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(issuer: OidcIssuer, challenge: str, **overrides: str) -> dict[str, str]:
    params = {
        "client_id": issuer.spa_client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": f"openid profile offline_access {issuer.api_scope}",
        "state": "state-" + secrets.token_hex(4),
        "nonce": "nonce-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


class Form(HTMLParser):
    """The sign-in page as a browser sees it: the form's fields and the people's buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.buttons: list[dict[str, str]] = []
        self.method = ""
        self.html_lang = ""
        self.h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 = True
        elif tag == "form":
            self.method = a.get("method", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self.buttons.append(a)


def sign_in(http: httpx.Client, issuer: OidcIssuer, params: dict[str, str], person: Person) -> httpx.Response:
    """What a person does: open the authorize URL, pick themselves on the page, get redirected."""
    page = http.get(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200, page.text
    form = Form()
    form.feed(page.text)
    assert form.method == "post"
    assert {"person": person.object_id} in [{"person": b["value"]} for b in form.buttons if b.get("name") == "person"]
    return http.post(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", data={**form.fields, "person": person.object_id})


def redirected(response: httpx.Response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    parts = urlsplit(location)
    query = parts.fragment if parts.fragment else parts.query
    return location.split("?")[0].split("#")[0], {k: v[0] for k, v in parse_qs(query).items()}


def redeem(http: httpx.Client, issuer: OidcIssuer, the_code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {
        "client_id": issuer.spa_client_id,
        "grant_type": "authorization_code",
        "code": the_code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "scope": issuer.api_scope,
    }
    form.update(overrides)
    return http.post(f"/{issuer.tenant_id}/oauth2/v2.0/token", data=form, headers={"Origin": SPA_ORIGIN})


def error_of(response: httpx.Response) -> tuple[str, list[int]]:
    body: dict[str, Any] = response.json()
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}:") if body["error_codes"] else True
    return body["error"], body["error_codes"]


# -- discovery and keys ---------------------------------------------------------------------------------------------------


def test_discovery_document_is_shaped_like_entras(http: httpx.Client, issuer: OidcIssuer) -> None:
    response = http.get(f"/{issuer.tenant_id}/v2.0/.well-known/openid-configuration", headers={"Origin": SPA_ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    document = response.json()
    base = f"{issuer.authority}/{issuer.tenant_id}"
    assert document["issuer"] == f"{base}/v2.0" == issuer.issuer_for()
    assert document["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_keys_are_public_rsa_2048_named_by_thumbprint(http: httpx.Client, issuer: OidcIssuer) -> None:
    keys = http.get(f"/{issuer.tenant_id}/discovery/v2.0/keys").json()["keys"]
    assert keys[0]["kid"] == issuer.signing_kid
    for key in keys:
        assert (key["kty"], key["use"], key["e"]) == ("RSA", "sig", "AQAB")
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
        n = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
        assert len(n) * 8 == 2048
        thumbprint = hashlib.sha256(f'{{"e":"{key["e"]}","kty":"RSA","n":"{key["n"]}"}}'.encode()).digest()
        assert key["kid"] == base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()


def test_an_unknown_tenant_is_refused(http: httpx.Client) -> None:
    response = http.get("/0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert error_of(response) == ("invalid_tenant", [90002])


# -- the browser flow -------------------------------------------------------------------------------------------------------


def test_sign_in_page_lists_the_demo_people_accessibly(http: httpx.Client, issuer: OidcIssuer) -> None:
    _, challenge = pkce()
    page = http.get(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", params=authorize_params(issuer, challenge))
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors" in page.headers["Content-Security-Policy"] or page.headers["X-Frame-Options"] == "DENY"
    form = Form()
    form.feed(page.text)
    assert form.html_lang == "en" and form.h1
    people = [b["value"] for b in form.buttons if b.get("name") == "person"]
    assert people == [p.object_id for p in issuer.people if p.tenant_id == issuer.tenant_id]
    for person, role in zip(issuer.people[:3], ("Jit.Requester", "Jit.Approver", "Jit.Admin"), strict=True):
        assert person.roles == (role,)
        assert person.name in page.text and person.preferred_username in page.text
    assert any(b.get("name") == "cancel" for b in form.buttons)


def test_browser_flow_end_to_end(http: httpx.Client, issuer: OidcIssuer, validator: BearerValidator) -> None:
    verifier, challenge = pkce()
    params = authorize_params(issuer, challenge)
    approver = issuer.people[1]
    target, values = redirected(sign_in(http, issuer, params, approver))
    assert target == REDIRECT
    assert values["state"] == params["state"] and values["code"]

    response = redeem(http, issuer, values["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == issuer.api_scope

    principal = validator.validate(body["access_token"])
    assert (principal.object_id, principal.roles, principal.kind) == (approver.object_id, ("Jit.Approver",), PrincipalKind.PERSON)
    assert principal.scopes == ("access_as_user",) and principal.client_id == issuer.spa_client_id

    jwks = jwt.PyJWKClient(issuer.jwks_uri())
    id_token = body["id_token"]
    claims = jwt.decode(
        id_token,
        jwks.get_signing_key_from_jwt(id_token).key,
        algorithms=["RS256"],
        audience=issuer.spa_client_id,
        issuer=issuer.issuer_for(),
    )
    assert claims["nonce"] == params["nonce"]
    assert claims["oid"] == approver.object_id and claims["preferred_username"] == approver.preferred_username


def test_fragment_response_mode(http: httpx.Client, issuer: OidcIssuer, validator: BearerValidator) -> None:
    verifier, challenge = pkce()
    response = sign_in(http, issuer, authorize_params(issuer, challenge, response_mode="fragment"), issuer.people[0])
    assert "#code=" in response.headers["Location"]
    _, values = redirected(response)
    assert validator.validate(redeem(http, issuer, values["code"], verifier).json()["access_token"]).roles == ("Jit.Requester",)


def test_pkce_mismatch_is_refused_and_uses_the_code_up(http: httpx.Client, issuer: OidcIssuer) -> None:
    verifier, challenge = pkce()
    _, values = redirected(sign_in(http, issuer, authorize_params(issuer, challenge), issuer.people[2]))
    wrong, _ = pkce()
    response = redeem(http, issuer, values["code"], wrong)
    assert response.status_code == 400
    assert error_of(response) == ("invalid_grant", [501481])
    assert "access_token" not in response.json()
    # The right verifier is too late now: one guess per code.
    assert error_of(redeem(http, issuer, values["code"], verifier)) == ("invalid_grant", [54005])


def test_a_code_is_single_use(http: httpx.Client, issuer: OidcIssuer) -> None:
    verifier, challenge = pkce()
    _, values = redirected(sign_in(http, issuer, authorize_params(issuer, challenge), issuer.people[0]))
    assert redeem(http, issuer, values["code"], verifier).status_code == 200
    again = redeem(http, issuer, values["code"], verifier)
    assert again.status_code == 400
    assert error_of(again) == ("invalid_grant", [54005])


def test_a_code_expires(http: httpx.Client, issuer: OidcIssuer, clock: Clock) -> None:
    verifier, challenge = pkce()
    _, values = redirected(sign_in(http, issuer, authorize_params(issuer, challenge), issuer.people[0]))
    start = clock.now
    try:
        clock.now = start + issuer.code_lifetime.total_seconds() + 1
        assert error_of(redeem(http, issuer, values["code"], verifier)) == ("invalid_grant", [70008])
    finally:
        clock.now = start


@pytest.mark.parametrize(
    ("field", "value", "codes"),
    [
        ("redirect_uri", "http://127.0.0.1:5173/", [50011]),
        ("client_id", "0f0f0f0f-0000-4000-8000-000000000000", [70000]),
        ("code", "not-a-code", [9002313]),
    ],
)
def test_the_redemption_must_match_the_authorization(
    http: httpx.Client, issuer: OidcIssuer, field: str, value: str, codes: list[int]
) -> None:
    verifier, challenge = pkce()
    _, values = redirected(sign_in(http, issuer, authorize_params(issuer, challenge), issuer.people[0]))
    response = redeem(http, issuer, values["code"], verifier, **{field: value})
    assert response.status_code == 400
    assert error_of(response) == ("invalid_grant", codes)


def test_an_unregistered_redirect_uri_is_shown_not_followed(http: httpx.Client, issuer: OidcIssuer) -> None:
    _, challenge = pkce()
    for redirect in ("http://localhost:5174/auth/callback", "https://evil.example/callback", REDIRECT + "/extra"):
        for method in ("GET", "POST"):
            params = authorize_params(issuer, challenge, redirect_uri=redirect)
            url = f"/{issuer.tenant_id}/oauth2/v2.0/authorize"
            response = (
                http.get(url, params=params)
                if method == "GET"
                else http.post(url, data={**params, "person": issuer.people[2].object_id})
            )
            assert response.status_code == 400
            assert "Location" not in response.headers
            assert "AADSTS50011" in response.text


def test_an_unknown_client_is_shown_not_followed(http: httpx.Client, issuer: OidcIssuer) -> None:
    _, challenge = pkce()
    params = authorize_params(issuer, challenge, client_id="0f0f0f0f-0000-4000-8000-000000000000")
    response = http.get(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "AADSTS700016" in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid profile"}, "invalid_scope"),
        ({"scope": "openid https://graph.microsoft.com/User.Read"}, "invalid_scope"),
    ],
)
def test_a_bad_request_goes_back_to_the_app_with_an_error(
    http: httpx.Client, issuer: OidcIssuer, overrides: dict[str, str], error: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(issuer, challenge, **overrides)
    target, values = redirected(http.get(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", params=params))
    assert target == REDIRECT
    assert values["error"] == error and values["state"] == params["state"]
    assert "code" not in values


def test_cancel_is_access_denied(http: httpx.Client, issuer: OidcIssuer) -> None:
    _, challenge = pkce()
    params = authorize_params(issuer, challenge)
    response = http.post(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", data={**params, "cancel": "1"})
    _, values = redirected(response)
    assert values["error"] == "access_denied" and "AADSTS65004" in values["error_description"]


def test_a_person_of_another_tenant_cannot_be_chosen(http: httpx.Client, issuer: OidcIssuer) -> None:
    stranger = issuer.add_person(
        "Sam Stranger", "sam@other.example.com", ["Jit.Admin"], tenant_id="0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6e"
    )
    _, challenge = pkce()
    params = authorize_params(issuer, challenge)
    page = http.get(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert stranger.object_id not in page.text
    _, values = redirected(http.post(f"/{issuer.tenant_id}/oauth2/v2.0/authorize", data={**params, "person": stranger.object_id}))
    assert values["error"] == "invalid_request" and "code" not in values


def test_token_endpoint_cors_only_for_registered_spa_origins(http: httpx.Client, issuer: OidcIssuer) -> None:
    url = f"/{issuer.tenant_id}/oauth2/v2.0/token"
    allowed = http.options(url, headers={"Origin": SPA_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    other = http.options(url, headers={"Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert http.get(url).status_code == 405


def test_token_endpoint_requires_its_parameters(http: httpx.Client, issuer: OidcIssuer) -> None:
    url = f"/{issuer.tenant_id}/oauth2/v2.0/token"
    assert error_of(http.post(url, data={})) == ("invalid_request", [900144])
    assert error_of(http.post(url, data={"grant_type": "password"})) == ("unsupported_grant_type", [70003])
    missing = http.post(url, data={"grant_type": "authorization_code", "client_id": issuer.spa_client_id, "code": "x"})
    assert error_of(missing) == ("invalid_request", [900144])
    assert "'redirect_uri'" in missing.json()["error_description"]


# -- client credentials -----------------------------------------------------------------------------------------------------


def test_client_credentials_gives_an_app_only_token(http: httpx.Client, issuer: OidcIssuer, validator: BearerValidator) -> None:
    app = issuer.add_app("Power Automate", ["Jit.Requester"])
    response = http.post(
        f"/{issuer.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.secret,
            "scope": "api://jit-admin/.default",
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    principal = validator.validate(token)
    assert (principal.kind, principal.object_id, principal.roles, principal.scopes) == (
        PrincipalKind.APPLICATION,
        app.object_id,
        ("Jit.Requester",),
        (),
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["idtyp"] == "app" and "scp" not in claims and claims["sub"] == claims["oid"]


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, ("invalid_client", [7000215])),
        ({"client_secret": ""}, 400, ("invalid_request", [7000218])),
        ({"scope": "api://jit-admin/access_as_user"}, 400, ("invalid_scope", [70011])),
        ({"client_id": "0f0f0f0f-0000-4000-8000-000000000000"}, 400, ("unauthorized_client", [700016])),
    ],
)
def test_client_credentials_refusals(
    http: httpx.Client, issuer: OidcIssuer, change: dict[str, str], status: int, error: tuple[str, list[int]]
) -> None:
    app = issuer.add_app("script", ["Jit.Admin"])
    form = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_secret": app.secret,
        "scope": "api://jit-admin/.default",
    }
    response = http.post(f"/{issuer.tenant_id}/oauth2/v2.0/token", data={**form, **change})
    assert response.status_code == status
    assert error_of(response) == error
    assert "access_token" not in response.json()


def test_a_public_client_may_not_present_a_secret(http: httpx.Client, issuer: OidcIssuer) -> None:
    verifier, challenge = pkce()
    _, values = redirected(sign_in(http, issuer, authorize_params(issuer, challenge), issuer.people[0]))
    assert error_of(redeem(http, issuer, values["code"], verifier, client_secret="s")) == ("invalid_client", [700025])


def test_nothing_secret_reaches_the_page_or_the_log(issuer: OidcIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    app = issuer.add_app("quiet", ["Jit.Admin"])
    assert app.secret not in repr(app)
    with httpx.Client(base_url=issuer.authority) as client:
        client.post(
            f"/{issuer.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app.client_id,
                "client_secret": app.secret,
                "scope": "api://jit-admin/.default",
            },
        )
    captured = capsys.readouterr()
    assert app.secret not in captured.out + captured.err


def test_logout_returns_only_to_a_registered_origin(http: httpx.Client, issuer: OidcIssuer) -> None:
    url = f"/{issuer.tenant_id}/oauth2/v2.0/logout"
    back = http.get(url, params={"post_logout_redirect_uri": SPA_ORIGIN + "/signed-out"})
    assert back.status_code == 302 and back.headers["Location"] == SPA_ORIGIN + "/signed-out"
    elsewhere = http.get(url, params={"post_logout_redirect_uri": "https://evil.example/"})
    assert elsewhere.status_code == 200 and "Location" not in elsewhere.headers


def test_runs_as_a_module_for_the_local_stack() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.oidc_issuer", "--port", "0"], stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        issuer_url = first.rsplit(" ", 1)[-1].strip()
        settings = dict(line.strip().split("=", 1) for line in (process.stderr.readline() for _ in range(4)))
        assert settings["JIT_AUTH_AUTHORITY"].startswith("http://127.0.0.1:")
        document = httpx.get(issuer_url + "/.well-known/openid-configuration", timeout=10).json()
        assert document["issuer"] == issuer_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_issuer_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        OidcIssuer(host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        OidcIssuer(spa_redirect_uris=["https://portal.example.com/"])
    assert re.fullmatch(r"[0-9a-f-]{36}", DEFAULT_SPA_CLIENT_ID)
