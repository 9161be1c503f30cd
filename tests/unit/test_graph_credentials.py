"""Graph credentials are chosen by configuration; development tokens come from the Graph simulator's token endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import CertificateCredential, ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential

from devstack.graph_simulator import GraphSimulator
from jit.adapters.graph.credentials import DevelopmentCredential, credential_for, token_origin
from jit.adapters.graph.errors import classify
from jit.services.access_backend import AlreadyExists, Denied, NotFoundInDirectory, Rejected, Throttled, Unavailable
from jit.settings import GraphAuth, GraphSettings, Settings


def graph(auth: GraphAuth, base_url: str = "https://graph.microsoft.com/v1.0", **values: str) -> GraphSettings:
    return GraphSettings(base_url=base_url, auth=auth, **values)


@pytest.fixture(scope="module")
def simulator() -> Iterator[GraphSimulator]:
    with GraphSimulator() as sim:
        sim.add_tenant("11111111-2222-4333-8444-555555555555", initial_domain="contoso.onmicrosoft.com")
        yield sim


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_development_tokens_come_from_the_simulators_token_endpoint(simulator: GraphSimulator) -> None:
    """Entra resolves a domain authority to the tenant GUID and issues the consented roles; so does the simulator."""
    credential = credential_for("contoso.onmicrosoft.com", graph(GraphAuth.DEVELOPMENT, simulator.base_url))
    assert isinstance(credential, DevelopmentCredential)
    assert credential.token_url == f"{simulator.origin}/contoso.onmicrosoft.com/oauth2/v2.0/token"
    token = asyncio.run(credential.get_token("https://graph.microsoft.com/.default"))
    claims = _claims(token.token)
    assert claims["tid"] == "11111111-2222-4333-8444-555555555555"
    assert set(claims["roles"]) == simulator.tenant(claims["tid"]).app_permissions
    assert abs(token.expires_on - (time.time() + 3599)) < 60
    # The simulator verifies what it issued.
    graph_call = httpx.get(f"{simulator.base_url}/organization", headers={"Authorization": f"Bearer {token.token}"})
    assert graph_call.status_code == 200


def test_development_tokens_are_cached_until_near_expiry(simulator: GraphSimulator) -> None:
    credential = DevelopmentCredential("contoso.onmicrosoft.com", simulator.origin)
    scope = "https://graph.microsoft.com/.default"

    async def twice() -> tuple[str, str]:
        first = await credential.get_token(scope)
        return first.token, (await credential.get_token(scope)).token

    first, second = asyncio.run(twice())
    assert first == second  # no second request: a new token would carry a new `uti`
    credential._cached[scope] = AccessToken(first, int(time.time()) + 60)  # about to expire
    assert asyncio.run(credential.get_token(scope)).token != first


def test_an_unknown_tenant_is_refused_as_entra_refuses_it(simulator: GraphSimulator) -> None:
    from jit.adapters.graph.errors import from_transport_error

    credential = DevelopmentCredential("nowhere.onmicrosoft.com", simulator.origin)
    with pytest.raises(ClientAuthenticationError) as info:
        asyncio.run(credential.get_token("https://graph.microsoft.com/.default"))
    assert "AADSTS90002" in str(info.value.message)
    assert isinstance(from_transport_error(info.value), Denied)


def test_token_origin_comes_from_the_graph_base_url() -> None:
    assert token_origin("http://127.0.0.1:1234/v1.0") == "http://127.0.0.1:1234"
    assert token_origin("http://localhost:9/v1.0/") == "http://localhost:9"


def test_development_tokens_are_never_made_for_a_real_graph() -> None:
    with pytest.raises(ValueError, match="loopback"):
        credential_for("contoso.onmicrosoft.com", graph(GraphAuth.DEVELOPMENT))


@pytest.mark.parametrize(
    ("auth", "values", "kind"),
    [
        (GraphAuth.MANAGED_IDENTITY, {}, ManagedIdentityCredential),
        (GraphAuth.CLIENT_SECRET, {"client_id": "app", "client_secret": "s3cret"}, ClientSecretCredential),
        (GraphAuth.WORKLOAD_IDENTITY, {"client_id": "app"}, ClientAssertionCredential),
    ],
)
def test_each_mode_builds_its_azure_identity_credential(auth: GraphAuth, values: dict[str, str], kind: type) -> None:
    credential = credential_for("11111111-2222-4333-8444-555555555555", graph(auth, **values))
    assert isinstance(credential, kind)
    asyncio.run(credential.close())


def test_certificate_mode(tmp_path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jit")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "graph.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    credential = credential_for(
        "contoso.onmicrosoft.com", graph(GraphAuth.CLIENT_CERTIFICATE, client_id="app", certificate_path=str(pem))
    )
    assert isinstance(credential, CertificateCredential)
    asyncio.run(credential.close())


def test_national_clouds_get_their_authority_and_scope() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0"}).graph
    assert settings.authority_host == "login.microsoftonline.us"
    assert settings.scope == "https://graph.microsoft.us/.default"
    assert settings.auth is GraphAuth.MANAGED_IDENTITY


def test_modes_that_need_an_app_say_so() -> None:
    from jit.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="GRAPH_CLIENT_ID"):
        Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_AUTH": "workload_identity"})
    with pytest.raises(ConfigurationError, match="GRAPH_CLIENT_SECRET"):
        Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_AUTH": "client_secret", "GRAPH_CLIENT_ID": "a"})


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (429, "Too many requests", Throttled),
        (503, "The service is not available.", Unavailable),
        (504, "", Unavailable),
        (403, "Insufficient privileges to complete the operation.", Denied),
        (404, "Resource 'x' does not exist", NotFoundInDirectory),
        (400, "Another object with the same value for property userPrincipalName already exists.", AlreadyExists),
        (
            400,
            "One or more added object references already exist for the following modified properties: 'members'.",
            AlreadyExists,
        ),
        (400, "The specified password does not comply with password complexity requirements.", Rejected),
    ],
)
def test_graph_errors_fold_into_a_small_family(status: int, message: str, kind: type) -> None:
    error = classify(status, "Code", message, "req-1", "7")
    assert type(error) is kind
    assert error.request_id == "req-1"
    if isinstance(error, Throttled):
        assert error.retry_after == 7


def test_a_refused_token_is_a_denial_not_a_crash() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from jit.adapters.graph.errors import from_transport_error

    error = from_transport_error(ClientAuthenticationError("AADSTS700016: Application not found in the directory\nTrace ID: x"))
    assert isinstance(error, Denied)
    assert "AADSTS700016" in error.message and "Trace" not in error.message
