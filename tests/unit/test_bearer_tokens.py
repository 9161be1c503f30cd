"""jit.identity.BearerValidator against a running local issuer: what it accepts, and every way it refuses.

The validator fetches the issuer's discovery document and keys over HTTP, exactly as it would Entra's; nothing here
hands it a key directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from devstack.oidc_issuer import OidcIssuer
from jit.identity import (
    BearerValidator,
    IdentitySettings,
    Principal,
    PrincipalKind,
    Reason,
    TokenRejected,
    bearer_token,
    load_identity_settings,
    shared_validator,
)
from jit.identity.tokens import principal_kind

OTHER_TENANT = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture
def settings(issuer: OidcIssuer) -> IdentitySettings:
    return load_identity_settings(issuer.identity_env())


@pytest.fixture
def validator(settings: IdentitySettings) -> BearerValidator:
    return BearerValidator(settings)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def unb64(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return unb64(header), unb64(payload), signature


def rejected(validator: BearerValidator, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        validator.validate(token)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


# -- accepted ----------------------------------------------------------------------------------------------------------


def test_a_person_token_gives_object_id_roles_display_and_scopes(issuer: OidcIssuer, validator: BearerValidator) -> None:
    tess = issuer.people[0]
    principal = validator.validate(issuer.mint(tess))
    assert principal == Principal(
        object_id=tess.object_id,
        tenant_id=issuer.tenant_id,
        display=tess.preferred_username,
        roles=("Jit.Requester",),
        kind=PrincipalKind.PERSON,
        scopes=("access_as_user",),
        client_id=issuer.spa_client_id,
    )
    assert principal.is_person


def test_identity_is_the_object_id_whatever_the_name(issuer: OidcIssuer, validator: BearerValidator) -> None:
    tess = issuer.people[0]
    renamed = validator.validate(issuer.mint(tess, extra_claims={"preferred_username": "someone.else@msp.example.com"}))
    assert renamed.object_id == tess.object_id
    assert renamed.display == "someone.else@msp.example.com"


def test_unknown_roles_are_kept_for_the_caller_to_map(issuer: OidcIssuer, validator: BearerValidator) -> None:
    principal = validator.validate(issuer.mint(issuer.people[0], roles=["Jit.Admin", "Reports.Reader"]))
    assert principal.roles == ("Jit.Admin", "Reports.Reader")
    assert validator.validate(issuer.mint(issuer.people[0], roles=[])).roles == ()


@pytest.mark.parametrize(
    ("removed", "extra", "expected"),
    [
        ((), {}, "tess.technician@msp.example.com"),
        (("preferred_username",), {"upn": "tess@msp.example.com"}, "tess@msp.example.com"),
        (("preferred_username",), {"unique_name": "live.com#tess@example.org"}, "live.com#tess@example.org"),
        (("preferred_username",), {}, "Tess Technician"),
        (("preferred_username", "name"), {}, "3f2c9a4e-8b1d-4e6f-9a2b-5c7d1e0f4a01"),
    ],
)
def test_display_is_a_fixed_claim_order_falling_back_to_the_object_id(
    issuer: OidcIssuer, validator: BearerValidator, removed: tuple[str, ...], extra: dict[str, str], expected: str
) -> None:
    token = issuer.mint(issuer.person("3f2c9a4e-8b1d-4e6f-9a2b-5c7d1e0f4a01"), remove_claims=removed, extra_claims=extra)
    assert validator.validate(token).display == expected


def test_an_app_only_token_is_an_application(issuer: OidcIssuer, validator: BearerValidator) -> None:
    app = issuer.add_app("Power Automate flow", ["Jit.Requester"])
    principal = validator.validate(issuer.mint(app))
    assert principal.kind is PrincipalKind.APPLICATION
    assert not principal.is_person
    assert (principal.object_id, principal.roles, principal.scopes, principal.client_id) == (
        app.object_id,
        ("Jit.Requester",),
        (),
        app.client_id,
    )


def test_without_idtyp_an_app_token_is_told_by_no_scp_and_oid_equal_to_sub(
    issuer: OidcIssuer, validator: BearerValidator
) -> None:
    app = issuer.add_app("daemon", ["Jit.Approver"])
    assert validator.validate(issuer.mint(app, remove_claims=["idtyp"])).kind is PrincipalKind.APPLICATION
    # A person's token has scp and a pairwise sub: a person, with or without idtyp.
    assert validator.validate(issuer.mint(issuer.people[1])).kind is PrincipalKind.PERSON


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"idtyp": "app", "scp": "x", "oid": "a", "sub": "b"}, PrincipalKind.APPLICATION),
        ({"idtyp": "user", "oid": "a", "sub": "a"}, PrincipalKind.PERSON),
        ({"oid": "a", "sub": "a"}, PrincipalKind.APPLICATION),
        ({"oid": "a", "sub": "a", "scp": "access_as_user"}, PrincipalKind.PERSON),
        ({"oid": "a", "sub": "b"}, PrincipalKind.PERSON),
    ],
)
def test_principal_kind_rules(claims: dict[str, str], kind: PrincipalKind) -> None:
    assert principal_kind(claims) is kind


def test_the_application_id_uri_is_an_accepted_audience(issuer: OidcIssuer, validator: BearerValidator) -> None:
    assert validator.validate(issuer.mint(issuer.people[2], audience="api://jit-admin")).roles == ("Jit.Admin",)


def test_a_token_just_past_its_expiry_is_within_the_leeway(issuer: OidcIssuer, validator: BearerValidator) -> None:
    now = datetime.now(UTC)
    token = issuer.mint(issuer.people[0], issued_at=now - timedelta(hours=1, seconds=20), lifetime=timedelta(hours=1))
    assert validator.validate(token).object_id == issuer.people[0].object_id


# -- refused -------------------------------------------------------------------------------------------------------------


def test_wrong_audience(issuer: OidcIssuer, validator: BearerValidator) -> None:
    assert rejected(validator, issuer.mint(issuer.people[0], audience="00000003-0000-0000-c000-000000000000")) == Reason.AUDIENCE
    assert rejected(validator, issuer.mint(issuer.people[0], audience=issuer.spa_client_id)) == Reason.AUDIENCE


def test_a_tenant_not_allowed(issuer: OidcIssuer, validator: BearerValidator) -> None:
    assert rejected(validator, issuer.mint(issuer.people[0], tenant_id=OTHER_TENANT)) == Reason.TENANT


@pytest.mark.parametrize(
    "iss",
    [
        "https://login.microsoftonline.com/{tid}/v2.0",  # Entra's issuer, but this validator's authority is the local one
        "https://sts.windows.net/{tid}/",
        "{authority}/{other}/v2.0",  # the right issuer host, another tenant
        "{authority}/{tid}/v2.0/",
        "http://evil.example/{tid}/v2.0",
    ],
)
def test_an_issuer_not_allowed(issuer: OidcIssuer, validator: BearerValidator, iss: str) -> None:
    claimed = iss.format(tid=issuer.tenant_id, other=OTHER_TENANT, authority=issuer.authority)
    assert rejected(validator, issuer.mint(issuer.people[0], extra_claims={"iss": claimed})) == Reason.ISSUER


def test_expired(issuer: OidcIssuer, validator: BearerValidator) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    assert rejected(validator, issuer.mint(issuer.people[0], issued_at=issued, lifetime=timedelta(hours=1))) == Reason.EXPIRED


def test_not_yet_valid(issuer: OidcIssuer, validator: BearerValidator) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert rejected(validator, issuer.mint(issuer.people[0], not_before=later)) == Reason.NOT_YET_VALID
    assert rejected(validator, issuer.mint(issuer.people[0], issued_at=later)) == Reason.NOT_YET_VALID


def test_signed_by_a_foreign_key_under_our_kid(issuer: OidcIssuer, validator: BearerValidator) -> None:
    forged = issuer.mint(issuer.people[2], sign_with=OidcIssuer.new_key(), kid=issuer.signing_kid)
    assert rejected(validator, forged) == Reason.SIGNATURE


def test_signed_by_a_foreign_key_under_its_own_kid(issuer: OidcIssuer, validator: BearerValidator) -> None:
    assert rejected(validator, issuer.mint(issuer.people[2], sign_with=OidcIssuer.new_key())) == Reason.UNKNOWN_KEY


def test_alg_none_is_refused(issuer: OidcIssuer, validator: BearerValidator) -> None:
    _, claims, _ = parts(issuer.mint(issuer.people[2]))
    for alg in ("none", "None", "NONE"):
        unsigned = f"{segment({'alg': alg, 'typ': 'JWT', 'kid': issuer.signing_kid})}.{segment(claims)}."
        assert rejected(validator, unsigned) == Reason.ALGORITHM


def test_hs256_signed_with_the_public_key_is_refused(issuer: OidcIssuer, validator: BearerValidator) -> None:
    """The key confusion attack: an HMAC keyed with the published RSA public key, which anyone can compute."""
    _, claims, _ = parts(issuer.mint(issuer.people[0], roles=["Jit.Admin"]))
    published = httpx.get(issuer.jwks_uri(), timeout=10).json()["keys"][0]  # what an attacker can fetch too
    public_pem = jwt.PyJWK(published).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        signing_input = f"{segment({'alg': alg, 'typ': 'JWT', 'kid': issuer.signing_kid})}.{segment(claims)}"
        mac = hmac.new(public_pem, signing_input.encode(), digest).digest()
        assert rejected(validator, f"{signing_input}.{b64(mac)}") == Reason.ALGORITHM


def test_a_tampered_payload_fails_the_signature(issuer: OidcIssuer, validator: BearerValidator) -> None:
    header, claims, signature = parts(issuer.mint(issuer.people[0]))
    claims["roles"] = ["Jit.Admin"]
    assert rejected(validator, f"{segment(header)}.{segment(claims)}.{signature}") == Reason.SIGNATURE
    _, original, _ = parts(issuer.mint(issuer.people[0]))
    assert original["roles"] == ["Jit.Requester"]


@pytest.mark.parametrize("claim", ["oid", "tid", "sub", "exp", "nbf", "iat", "iss", "aud"])
def test_a_missing_required_claim(issuer: OidcIssuer, validator: BearerValidator, claim: str) -> None:
    assert rejected(validator, issuer.mint(issuer.people[0], remove_claims=[claim])) == Reason.missing(claim)


@pytest.mark.parametrize(
    "extra",
    [
        {"oid": "tess.technician@msp.example.com"},
        {"roles": "Jit.Admin"},
        {"roles": ["Jit.Admin", 7]},
        {"scp": ["access_as_user"]},
        {"exp": "tomorrow"},
    ],
)
def test_malformed_claims(issuer: OidcIssuer, validator: BearerValidator, extra: dict[str, Any]) -> None:
    assert rejected(validator, issuer.mint(issuer.people[0], extra_claims=extra)) == Reason.MALFORMED


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.e30.e30"])
def test_garbage_is_malformed(validator: BearerValidator, token: str) -> None:
    assert rejected(validator, token) == Reason.MALFORMED


def test_the_reason_never_echoes_the_token(issuer: OidcIssuer, validator: BearerValidator) -> None:
    token = issuer.mint(issuer.people[0], audience="api://someone-else")
    with pytest.raises(TokenRejected) as caught:
        validator.validate(token)
    text = f"{caught.value!s} {caught.value!r} {caught.value.args}"
    assert token not in text
    assert all(part not in text for part in token.split("."))


def test_tokens_of_another_issuer_with_the_same_ids_are_refused(issuer: OidcIssuer, validator: BearerValidator) -> None:
    with OidcIssuer() as impostor:  # same tenant, client ids and people; its own keys and address
        assert impostor.identity_env()["JIT_AUTH_CLIENT_ID"] == issuer.identity_env()["JIT_AUTH_CLIENT_ID"]
        assert rejected(validator, impostor.mint(impostor.people[2])) == Reason.UNKNOWN_KEY
        same_kid = impostor.mint(impostor.people[2], kid=issuer.signing_kid)
        assert rejected(validator, same_kid) == Reason.SIGNATURE


# -- keys -------------------------------------------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited() -> None:
    cooldown = 0.5
    foreign = OidcIssuer.new_key()
    with OidcIssuer() as issuer:
        validator = BearerValidator(load_identity_settings(issuer.identity_env()), refresh_cooldown_seconds=cooldown)
        validator.validate(issuer.mint(issuer.people[0]))
        validator.validate(issuer.mint(issuer.people[1]))
        assert (issuer.requests["discovery"], issuer.requests["keys"]) == (1, 1)  # cached

        issuer.rotate_keys()
        time.sleep(cooldown + 0.05)
        assert validator.validate(issuer.mint(issuer.people[0])).object_id == issuer.people[0].object_id
        assert issuer.requests["keys"] == 2  # the unknown kid refreshed the key set, once
        validator.validate(issuer.mint(issuer.people[1]))
        assert issuer.requests["keys"] == 2

        # Forged kids right after a fetch: refused without asking the issuer again.
        forged = [issuer.mint(issuer.people[2], sign_with=foreign, kid=f"forged-{i}") for i in range(10)]
        for token in forged[:5]:
            assert rejected(validator, token) == Reason.UNKNOWN_KEY
        assert issuer.requests["keys"] == 2
        # After the cooldown one more refresh is allowed, and only one.
        time.sleep(cooldown + 0.05)
        for token in forged[5:]:
            assert rejected(validator, token) == Reason.UNKNOWN_KEY
        assert issuer.requests["keys"] == 3


def test_a_retired_key_stops_working_once_the_key_set_is_refreshed() -> None:
    with OidcIssuer() as issuer:
        validator = BearerValidator(load_identity_settings(issuer.identity_env()), key_cache_seconds=0.3)
        old = issuer.mint(issuer.people[0])
        validator.validate(old)
        issuer.rotate_keys(retire_previous=True)
        time.sleep(0.35)
        validator.validate(issuer.mint(issuer.people[0]))
        assert rejected(validator, old) == Reason.UNKNOWN_KEY


def test_an_unreachable_authority_is_keys_unavailable_and_fails_fast(issuer: OidcIssuer) -> None:
    env = issuer.identity_env() | {"JIT_AUTH_AUTHORITY": "http://127.0.0.1:9"}  # discard port: nothing listens
    validator = BearerValidator(load_identity_settings(env), timeout_seconds=2)
    token = issuer.mint(issuer.people[0])
    assert rejected(validator, token) == Reason.KEYS_UNAVAILABLE
    started = time.monotonic()
    assert rejected(validator, token) == Reason.KEYS_UNAVAILABLE
    assert time.monotonic() - started < 0.5
    assert not validator.warm()


def test_warm_fetches_every_tenant_before_the_first_request(issuer: OidcIssuer) -> None:
    issuer.add_tenant(OTHER_TENANT)
    env = issuer.identity_env() | {"JIT_AUTH_TENANT_IDS": f"{issuer.tenant_id},{OTHER_TENANT}"}
    before = issuer.requests["discovery"]
    validator = BearerValidator(load_identity_settings(env))
    assert validator.warm()
    assert issuer.requests["discovery"] == before + 2
    assert validator.validate(issuer.mint(issuer.people[0], tenant_id=OTHER_TENANT)).tenant_id == OTHER_TENANT
    assert issuer.requests["discovery"] == before + 2


# -- plumbing ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc.def.ghi  ", "abc.def.ghi"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_one_validator_per_process_for_the_same_settings(settings: IdentitySettings) -> None:
    assert shared_validator(settings) is shared_validator(IdentitySettings(**vars(settings)))


def test_a_validator_needs_a_client_id_and_tenants() -> None:
    with pytest.raises(ValueError, match="JIT_AUTH_CLIENT_ID"):
        BearerValidator(load_identity_settings({}))


def test_importing_the_package_does_not_import_pyjwt_or_cryptography() -> None:
    code = (
        "import sys, jit.identity, jit.identity.tokens, jit.identity.settings\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
