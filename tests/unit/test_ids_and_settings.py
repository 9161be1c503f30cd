"""Grant ids, tenant references and app settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jit.domain.ids import grant_id_from_key, is_grant_id, new_grant_id, newest_first_key, normalize_tenant
from jit.settings import ConfigurationError, Settings


def test_grant_ids_sort_by_time_and_their_keys_sort_newest_first() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_grant_id(start + timedelta(milliseconds=5 * i)) for i in range(50)]
    assert ids == sorted(ids)
    assert all(is_grant_id(i) for i in ids)
    keys = [newest_first_key(i) for i in ids]
    assert sorted(keys) == keys[::-1]
    assert [grant_id_from_key(k) for k in keys] == ids


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("7D3F1C3A-1B2C-4D5E-8F90-ABCDEF012345", "7d3f1c3a-1b2c-4d5e-8f90-abcdef012345"),
        ("Contoso.OnMicrosoft.com", "contoso.onmicrosoft.com"),
        ("agency.onmicrosoft.us", "agency.onmicrosoft.us"),
        ("contoso.com", None),
        ("not-a-guid-at-all-but-36-characters", None),
        ("", None),
        ("contoso.onmicrosoft.com.evil.com", None),
    ],
)
def test_tenant_references(given: str, expected: str | None) -> None:
    assert normalize_tenant(given) == expected


def test_settings_defaults_with_a_connection_string() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"
    assert settings.limits.max_duration == timedelta(hours=8)
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.grants_table == "JitGrants"
    assert settings.work_queue == "jit-work"


def test_identity_based_storage_connection() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage__accountName": "jitstore", "AzureWebJobsStorage__clientId": "abc"})
    assert settings.storage.table_service_uri == "https://jitstore.table.core.windows.net"
    assert settings.storage.queue_service_uri == "https://jitstore.queue.core.windows.net"
    assert settings.storage.managed_identity_client_id == "abc"


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(
            {
                "JIT_MAX_DURATION": "eight hours",
                "JIT_WORK_QUEUE": "Bad_Queue",
                "GRAPH_BASE_URL": "http://graph.example.com/v1.0",
                "JIT_MAX_BODY_BYTES": "-1",
            }
        )
    message = str(raised.value)
    for name in ("storage is not configured", "JIT_MAX_DURATION", "JIT_WORK_QUEUE", "GRAPH_BASE_URL", "JIT_MAX_BODY_BYTES"):
        assert name in message


def test_plain_http_graph_is_allowed_only_on_loopback() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_BASE_URL": "http://127.0.0.1:5000/v1.0/"})
    assert settings.graph_base_url == "http://127.0.0.1:5000/v1.0"
