"""The on-premises AD backend's settings and naming rules (no DC needed; tests/onprem/test_ad_grants.py runs it)."""

from __future__ import annotations

import json
import string
from datetime import timedelta

import pytest

from jit.adapters.backends import Backends, kinds
from jit.adapters.backends.active_directory.backend import one_time_password, sam_for, unique_display_name
from jit.adapters.backends.active_directory.settings import AdSettings
from jit.settings import ConfigurationError

TENANT = "11111111-2222-4333-8444-555555555555"
KEY = "ab" * 32


def test_sites_are_bound_to_a_tenant_and_pinned_to_a_key() -> None:
    sites = {"hq": {"tenantId": TENANT.upper(), "agentKeyId": KEY.upper(), "upnSuffix": "Corp.Example"}}
    settings = AdSettings.from_env({"JIT_AD_SITES": json.dumps(sites), "JIT_AD_COMMAND_TIMEOUT": "PT30S"})
    hq = settings.sites["hq"]
    assert (hq.tenant_id, hq.agent_key_id, hq.upn_suffix) == (TENANT, KEY, "corp.example")
    assert settings.command_timeout == timedelta(seconds=30) and settings.heartbeat_stale_after == timedelta(minutes=3)
    assert AdSettings.from_env({}).sites == {}


def test_every_problem_is_named_at_once() -> None:
    sites = {
        "HQ": {"tenantId": TENANT, "agentKeyId": KEY},
        "branch": {"tenantId": "contoso.com", "agentKeyId": KEY},
        "lab": {"tenantId": TENANT, "agentKeyId": "abc"},
        "dmz": {"tenantId": TENANT, "agentKeyId": KEY, "extra": 1},
    }
    env = {"JIT_AD_SITES": json.dumps(sites), "JIT_AD_COMMAND_TIMEOUT": "PT10M", "JIT_AD_HEARTBEAT_STALE_AFTER": "soon"}
    with pytest.raises(ConfigurationError) as raised:
        AdSettings.from_env(env)
    message = str(raised.value)
    for expected in ("'HQ'", "'branch'].tenantId", "'lab'].agentKeyId", "'dmz']", "JIT_AD_COMMAND_TIMEOUT", "JIT_AD_HEARTBEAT_STALE_AFTER"):
        assert expected in message, message
    with pytest.raises(ConfigurationError, match="JSON object"):
        AdSettings.from_env({"JIT_AD_SITES": "hq=1"})


def test_the_backend_is_found_by_its_directory_name() -> None:
    served = [k.name for k in kinds() if k.serves("ad:hq")]
    assert served == ["ad"]
    assert not any(k.serves("ad:") for k in kinds())
    assert Backends(None).serves("ad:branch-2")


def test_sam_account_names_fit_and_are_the_same_every_time() -> None:
    assert sam_for("jit-a-1234@corp.example") == "jit-a-1234"
    long_name = "jit-admin-for-ticket-4711-01hx2abc@corp.example"
    sam = sam_for(long_name)
    assert len(sam) <= 20 and sam.startswith("jit-admin-f-")
    assert sam_for(long_name.upper()).casefold() == sam.casefold()  # AD compares names case-insensitively
    assert sam_for("jit-admin-for-ticket-4711-01hx2abd@corp.example") != sam
    assert len(sam_for("a.very.long.local.part.ending.with.dot.@corp.example")) <= 20
    assert sam_for("name:with;bad=chars@corp.example").replace("-", "").isalnum()


def test_display_names_are_unique_in_the_ou_and_fit_a_cn() -> None:
    assert unique_display_name("JIT Admin for ticket 4711", "jit-a-1") == "JIT Admin for ticket 4711 (jit-a-1)"
    long = unique_display_name("x" * 100, "jit-admin-f-1a2b3c4d")
    assert len(long) == 64 and long.endswith("(jit-admin-f-1a2b3c4d)")


def test_one_time_passwords_have_every_class_and_differ() -> None:
    passwords = {one_time_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 20
        assert any(c in string.ascii_uppercase for c in password) and any(c in string.ascii_lowercase for c in password)
        assert any(c in string.digits for c in password) and any(c in "-_!#%+=?" for c in password)
        assert not set(password) & set("0O1lI")
