"""Live mode's set-up, checked without a tenant: which mode the variables select, the refusals a half-configured or
unusable set gets, and that a complete set yields settings the product accepts and a credential that loads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devstack.azurite import AzuriteEndpoints
from jit.adapters.graph.credentials import credential_for
from jit.settings import GraphAuth, Settings
from tests.conftest import stack_env

from .config import (
    CERTIFICATE_VARIABLE,
    CLIENT_VARIABLE,
    MARKER_PREFIX,
    ROLE_VARIABLE,
    TENANT_VARIABLE,
    WINDOW_VARIABLE,
    LiveSetupError,
    Mode,
    live_tenant,
    mode_of,
    new_run_id,
    suite_options,
)
from .directory import live_directory
from .graph import CertificateTokens
from .product import WallTime

ROOT = Path(__file__).resolve().parents[2]
UNUSED_STORAGE = AzuriteEndpoints("http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")  # settings only: nothing connects
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "3f2b8a51-7f3a-4c55-9d2e-0c1b5a6e7d01"


def write_pem(path: Path, *, with_key: bool = True, password: bytes | None = None) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jit-live-suite")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    if with_key:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption) + pem
    path.write_bytes(pem)
    return path


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pem(tmp_path_factory.mktemp("cert") / "app.pem")


def live_env(pem: Path, **changes: str) -> dict[str, str]:
    return {TENANT_VARIABLE: TENANT, CLIENT_VARIABLE: CLIENT, CERTIFICATE_VARIABLE: str(pem), **changes}


def test_no_variables_mean_the_simulator() -> None:
    assert mode_of({}) is Mode.SIMULATOR
    assert live_tenant({}) is None
    assert live_tenant({TENANT_VARIABLE: "  "}) is None  # blank is unset


@pytest.mark.parametrize("given", [(TENANT_VARIABLE,), (TENANT_VARIABLE, CLIENT_VARIABLE), (CERTIFICATE_VARIABLE,)])
def test_some_variables_are_refused_naming_what_is_missing(pem: Path, given: tuple[str, ...]) -> None:
    env = {name: value for name, value in live_env(pem).items() if name in given}
    assert mode_of(env) is Mode.LIVE
    with pytest.raises(LiveSetupError) as refused:
        live_tenant(env)
    message = str(refused.value)
    for name in (TENANT_VARIABLE, CLIENT_VARIABLE, CERTIFICATE_VARIABLE):
        assert (f"{name} is not set" in message) == (name not in given), message
    assert "simulator" in message


def test_a_complete_set_is_a_tenant(pem: Path) -> None:
    tenant = live_tenant(live_env(pem, **{TENANT_VARIABLE: "Contoso.onmicrosoft.com"}))
    assert tenant is not None
    assert (tenant.tenant, tenant.client_id, tenant.certificate_path) == ("contoso.onmicrosoft.com", CLIENT, pem)


def test_unusable_values_are_refused_all_at_once(tmp_path: Path) -> None:
    with pytest.raises(LiveSetupError) as refused:
        live_tenant(live_env(tmp_path / "missing.pem", **{TENANT_VARIABLE: "not a tenant", CLIENT_VARIABLE: "app"}))
    message = str(refused.value)
    assert "neither a tenant GUID nor a domain" in message
    assert "not an application (client) id" in message
    assert "is not a file" in message


@pytest.mark.parametrize(
    ("kind", "complaint"),
    [("no key", "holds no private key"), ("encrypted", "is encrypted"), ("garbage", "holds no PEM certificate")],
)
def test_certificates_the_product_cannot_use_are_refused(tmp_path: Path, kind: str, complaint: str) -> None:
    path = tmp_path / "app.pem"
    if kind == "no key":
        write_pem(path, with_key=False)
    elif kind == "encrypted":
        write_pem(path, password=b"secret-for-tests")
    else:
        path.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(LiveSetupError, match=complaint):
        live_tenant(live_env(path))


def test_suite_options() -> None:
    assert suite_options({}).role == "Exchange Administrator"
    assert suite_options({WINDOW_VARIABLE: "5"}).window == timedelta(minutes=5)
    assert suite_options({ROLE_VARIABLE: "Helpdesk Administrator"}).role == "Helpdesk Administrator"
    with pytest.raises(LiveSetupError, match="tier-0"):
        suite_options({ROLE_VARIABLE: "global administrator"})
    for bad in ("0", "31", "soon"):
        with pytest.raises(LiveSetupError, match=WINDOW_VARIABLE):
            suite_options({WINDOW_VARIABLE: bad})


def test_run_ids_name_things_graph_accepts() -> None:
    run_id = new_run_id(datetime(2026, 5, 14, 9, 30, tzinfo=UTC))
    assert run_id.startswith(f"{MARKER_PREFIX}20260514t0930-") and len(run_id) == len(MARKER_PREFIX) + 18
    nickname = run_id.replace("-", "")
    assert nickname.isalnum() and nickname.isascii() and len(nickname) <= 64
    assert new_run_id() != new_run_id()


def test_the_live_directory_gives_the_product_settings_it_accepts(pem: Path, tmp_path: Path) -> None:
    """No tenant here: stop at the network. The product's settings validate, its credential is the certificate one
    and loads the PEM, and the suite's own token source is built from the same file."""
    tenant = live_tenant(live_env(pem))
    assert tenant is not None
    options = suite_options({})
    with live_directory(tenant, options, new_run_id()) as directory:
        assert directory.mode is Mode.LIVE and directory.api.graph.base_url == "https://graph.microsoft.com/v1.0"
        env = stack_env(UNUSED_STORAGE, directory.product_env["GRAPH_BASE_URL"], **directory.product_env)
        settings = Settings.from_env(env)
        assert settings.graph.auth is GraphAuth.CLIENT_CERTIFICATE
        assert settings.graph.scope == "https://graph.microsoft.com/.default"
        assert settings.graph.authority_host == "login.microsoftonline.com"
        credential = credential_for(tenant.tenant, settings.graph)
        assert isinstance(credential, AsyncCertificateCredential)
    CertificateTokens(tenant)  # parses the certificate and key; raises if it cannot


def test_wall_time_waits_for_the_moment() -> None:
    clock = WallTime()
    started = time.monotonic()
    clock.pass_until(clock.now() + timedelta(seconds=0.3))
    assert 0.25 <= time.monotonic() - started < 2


def test_a_half_configured_run_fails_with_the_reason(pem: Path) -> None:
    """The scenario suite itself, run with only the tenant set: every test fails on the fixture, saying why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIT_LIVE_")}
    env[TENANT_VARIABLE] = TENANT
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "--no-header",
         "tests/live/test_scenarios.py::test_the_cleanup_removes_everything_named_with_the_run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{CLIENT_VARIABLE} is not set; {CERTIFICATE_VARIABLE} is not set" in run.stdout, run.stdout
    assert "1 error" in run.stdout
