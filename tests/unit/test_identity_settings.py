"""The JIT_AUTH_* settings: read, defaulted, and every bad one reported at once."""

from __future__ import annotations

import pytest

from jit.identity import IdentityConfigurationError, IdentitySettings, load_identity_settings, read_identity_settings

API = "6C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5"
TENANT = "5e0c1a2b-3d4f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"


def test_without_a_client_id_bearer_tokens_are_off() -> None:
    settings = load_identity_settings({})
    assert settings == IdentitySettings(
        client_id=None, audiences=(), tenant_ids=(), authority="https://login.microsoftonline.com"
    )
    assert not settings.enabled


def test_a_full_configuration() -> None:
    settings = load_identity_settings(
        {
            "JIT_AUTH_CLIENT_ID": f" {API} ",
            "JIT_AUTH_AUDIENCES": "api://jit-admin, api://jit-admin,https://jit.example.com/api",
            "JIT_AUTH_TENANT_IDS": f"{TENANT},{OTHER.upper()}",
            "JIT_AUTH_AUTHORITY": "https://login.microsoftonline.us/",
        }
    )
    assert settings.enabled
    assert settings.client_id == API.lower()
    assert settings.audiences == (API.lower(), "api://jit-admin", "https://jit.example.com/api")
    assert settings.tenant_ids == (TENANT, OTHER)
    assert settings.authority == "https://login.microsoftonline.us"
    assert not settings.is_loopback


@pytest.mark.parametrize(
    "authority",
    [
        "https://login.microsoftonline.com",
        "https://login.partner.microsoftonline.cn",
        "https://login.chinacloudapi.cn",
        "http://127.0.0.1:7081",
        "http://localhost:7081",
        "http://[::1]:7081",
    ],
)
def test_accepted_authorities(authority: str) -> None:
    env = {"JIT_AUTH_CLIENT_ID": API, "JIT_AUTH_TENANT_IDS": TENANT, "JIT_AUTH_AUTHORITY": authority}
    assert load_identity_settings(env).authority == authority


@pytest.mark.parametrize(
    ("authority", "complaint"),
    [
        ("http://login.microsoftonline.com", "https"),
        ("http://10.0.0.5:7081", "plain http only on loopback"),
        ("https://login.evil.example", "Entra ID sign-in host"),
        ("https://login.microsoftonline.com:8443", "Entra ID sign-in host"),
        ("https://login.microsoftonline.com/" + TENANT, "scheme and host only"),
        ("https://login.microsoftonline.com?x=1", "scheme and host only"),
        ("login.microsoftonline.com", "https"),
    ],
)
def test_refused_authorities(authority: str, complaint: str) -> None:
    env = {"JIT_AUTH_CLIENT_ID": API, "JIT_AUTH_TENANT_IDS": TENANT, "JIT_AUTH_AUTHORITY": authority}
    with pytest.raises(IdentityConfigurationError, match="JIT_AUTH_AUTHORITY") as caught:
        load_identity_settings(env)
    assert complaint in str(caught.value)


def test_every_bad_setting_is_reported_at_once() -> None:
    problems: list[str] = []
    read_identity_settings(
        {
            "JIT_AUTH_CLIENT_ID": "jit-admin-api",
            "JIT_AUTH_AUDIENCES": "api://jit-admin,not a uri",
            "JIT_AUTH_TENANT_IDS": "common,contoso.onmicrosoft.com",
            "JIT_AUTH_AUTHORITY": "http://login.microsoftonline.com",
        },
        problems,
    )
    assert len(problems) == 5, problems
    for name, fragment in [
        ("JIT_AUTH_CLIENT_ID", "'jit-admin-api'"),
        ("JIT_AUTH_AUDIENCES", "'not a uri'"),
        ("JIT_AUTH_TENANT_IDS", "'common'"),
        ("JIT_AUTH_TENANT_IDS", "'contoso.onmicrosoft.com'"),
        ("JIT_AUTH_AUTHORITY", "https"),
    ]:
        assert any(name in p and fragment in p for p in problems), (name, fragment, problems)


def test_a_client_id_needs_tenants() -> None:
    with pytest.raises(IdentityConfigurationError, match="JIT_AUTH_TENANT_IDS is empty"):
        load_identity_settings({"JIT_AUTH_CLIENT_ID": API})


def test_other_settings_without_a_client_id_are_a_mistake() -> None:
    with pytest.raises(IdentityConfigurationError, match="JIT_AUTH_TENANT_IDS set without JIT_AUTH_CLIENT_ID"):
        load_identity_settings({"JIT_AUTH_TENANT_IDS": TENANT})


def test_problems_join_an_existing_list() -> None:
    problems = ["JIT_MAX_DURATION='forever' must be an ISO 8601 duration such as PT8H"]
    read_identity_settings({"JIT_AUTH_CLIENT_ID": "x", "JIT_AUTH_TENANT_IDS": TENANT}, problems)
    assert len(problems) == 2 and "JIT_AUTH_CLIENT_ID" in problems[1]
