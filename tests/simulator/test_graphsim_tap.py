"""Temporary Access Pass policy and methods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, TapPolicy, Tenant

from .helpers import assert_graph_error, create_user

POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"


def taps_path(user: str) -> str:
    return f"/users/{user}/authentication/temporaryAccessPassMethods"


def test_policy_defaults_and_case_insensitive_id(client: httpx.Client, tenant: Tenant) -> None:
    policy = client.get(POLICY).json()
    assert policy["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
    expected = {
        "id": "TemporaryAccessPass",
        "state": "enabled",
        "defaultLifetimeInMinutes": 60,
        "defaultLength": 8,
        "minimumLifetimeInMinutes": 60,
        "maximumLifetimeInMinutes": 480,
        "isUsableOnce": False,
    }
    assert {k: policy[k] for k in expected} == expected
    assert client.get(POLICY.replace("TemporaryAccessPass", "temporaryAccessPass")).json()["id"] == "TemporaryAccessPass"
    tenant.tap_policy = TapPolicy(state="disabled", default_length=12)
    assert client.get(POLICY).json()["state"] == "disabled"


def test_create_get_list_delete_tap(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "tapuser")
    created = client.post(taps_path(user), json={"lifetimeInMinutes": 120, "isUsableOnce": True})
    assert created.status_code == 201
    tap = created.json()
    assert tap["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    assert isinstance(tap["temporaryAccessPass"], str) and len(tap["temporaryAccessPass"]) == 8
    assert (tap["lifetimeInMinutes"], tap["isUsableOnce"], tap["isUsable"]) == (120, True, True)
    assert tap["methodUsabilityReason"] == "EnabledByPolicy"
    assert tenant.taps(user)[0]["temporaryAccessPass"] == tap["temporaryAccessPass"]
    fetched = client.get(f"{taps_path(user)}/{tap['id']}").json()
    assert fetched["id"] == tap["id"] and fetched["temporaryAccessPass"] is None
    listed = client.get(taps_path(f"tapuser@{tenant.initial_domain}")).json()["value"]
    assert [t["id"] for t in listed] == [tap["id"]] and listed[0]["temporaryAccessPass"] is None
    assert client.delete(f"{taps_path(user)}/{tap['id']}").status_code == 204
    assert tenant.taps(user) == []
    assert_graph_error(client.delete(f"{taps_path(user)}/{tap['id']}"), 404, "Request_ResourceNotFound")


def test_defaults_from_policy_and_future_start(client: httpx.Client, tenant: Tenant) -> None:
    tenant.tap_policy = TapPolicy(default_lifetime_minutes=90, default_length=16, minimum_lifetime_minutes=10)
    user = create_user(client, tenant, "later")
    start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tap = client.post(taps_path(user), json={"startDateTime": start}).json()
    assert tap["lifetimeInMinutes"] == 90 and len(tap["temporaryAccessPass"]) == 16
    assert (tap["isUsable"], tap["methodUsabilityReason"]) == (False, "NotYetValid")


def test_only_one_tap_per_user_second_create_replaces(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "twice")
    first = client.post(taps_path(user), json={}).json()
    second = client.post(taps_path(user), json={}).json()
    assert first["id"] != second["id"]
    assert [t["id"] for t in client.get(taps_path(user)).json()["value"]] == [second["id"]]
    assert_graph_error(client.get(f"{taps_path(user)}/{first['id']}"), 404, "Request_ResourceNotFound")


def test_second_tap_rejected_when_tenant_configured_so(client: httpx.Client, tenant: Tenant) -> None:
    tenant.tap_replace_existing = False
    user = create_user(client, tenant, "strict")
    first = client.post(taps_path(user), json={}).json()
    assert_graph_error(client.post(taps_path(user), json={}), 400, "BadRequest")
    assert [t["id"] for t in tenant.taps(user)] == [first["id"]]


def test_tap_policy_disabled(client: httpx.Client, tenant: Tenant) -> None:
    tenant.tap_policy = TapPolicy(state="disabled")
    user = create_user(client, tenant, "nopass")
    response = client.post(taps_path(user), json={})
    assert_graph_error(
        response,
        400,
        "BadRequest",
        "Converged UserCredentialPolicy does not allow creating or updating this authentication method. AuthMethodType [TemporaryAccessPass].",
    )
    assert tenant.taps(user) == []


@pytest.mark.parametrize("lifetime", [59, 481, "60"])
def test_tap_lifetime_outside_policy(client: httpx.Client, tenant: Tenant, lifetime: object) -> None:
    user = create_user(client, tenant, "bounds")
    error = assert_graph_error(client.post(taps_path(user), json={"lifetimeInMinutes": lifetime}), 400, "BadRequest")
    assert "between 60 and 480" in error["message"]


def test_multi_use_tap_rejected_when_policy_is_one_time(client: httpx.Client, tenant: Tenant) -> None:
    tenant.tap_policy = TapPolicy(is_usable_once=True)
    user = create_user(client, tenant, "oneshot")
    assert_graph_error(client.post(taps_path(user), json={"isUsableOnce": False}), 400, "BadRequest")
    assert client.post(taps_path(user), json={}).json()["isUsableOnce"] is True


def test_tap_for_unknown_user(client: httpx.Client) -> None:
    assert_graph_error(client.post(taps_path("ghost@x.example"), json={}), 404, "Request_ResourceNotFound")


TAP_REFUSED = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)


def test_policy_targets_decide_who_may_get_a_tap(client: httpx.Client, tenant: Tenant) -> None:
    """includeTargets / excludeTargets of the TAP method configuration; a user outside them gets the same refusal
    as for a disabled method (MicrosoftDocs/azure-docs issue #111778)."""
    eligible = tenant.add_group("TAP eligible")
    blocked = tenant.add_group("TAP blocked")
    inside = create_user(client, tenant, "inside")
    outside = create_user(client, tenant, "outside")
    both = create_user(client, tenant, "both")
    tenant.add_member(eligible, inside)
    tenant.add_member(eligible, both)
    tenant.add_member(blocked, both)
    tenant.tap_policy = tenant.tap_policy.updated({"includeTargets": [eligible], "excludeTargets": [blocked]})
    policy = client.get(POLICY).json()
    assert policy["includeTargets"] == [{"targetType": "group", "id": eligible, "isRegistrationRequired": False}]
    assert policy["excludeTargets"] == [{"targetType": "group", "id": blocked}]
    assert client.post(taps_path(inside), json={}).status_code == 201
    assert_graph_error(client.post(taps_path(outside), json={}), 400, "BadRequest", TAP_REFUSED)
    assert_graph_error(client.post(taps_path(both), json={}), 400, "BadRequest", TAP_REFUSED)
    assert tenant.taps(outside) == [] and tenant.taps(both) == []


def test_default_policy_targets_all_users(client: httpx.Client, tenant: Tenant) -> None:
    policy = client.get(POLICY).json()
    assert policy["includeTargets"] == [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}]
    assert client.post(taps_path(create_user(client, tenant, "anyone")), json={}).status_code == 201


def test_policy_targets_over_the_control_api(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    group = tenant.add_group("via control")
    user = create_user(client, tenant, "ctl")
    with httpx.Client(base_url=sim.control_url) as control:
        patched = control.patch(f"/tenants/{tenant.id}", json={"tapPolicy": {"includeTargets": [group]}})
        assert patched.json()["tapPolicy"]["includeTargets"][0]["id"] == group
        assert control.patch(f"/tenants/{tenant.id}", json={"tapPolicy": {"excludeTargets": ["all_users"]}}).status_code == 400
    assert_graph_error(client.post(taps_path(user), json={}), 400, "BadRequest", TAP_REFUSED)
    tenant.add_member(group, user)
    assert client.post(taps_path(user), json={}).status_code == 201


def test_tap_usability_follows_the_directory_clock(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "clocked")
    tap = client.post(taps_path(user), json={"lifetimeInMinutes": 60}).json()
    assert tap["isUsable"] is True
    sim.advance(61 * 60)
    fetched = client.get(f"{taps_path(user)}/{tap['id']}").json()
    assert (fetched["isUsable"], fetched["methodUsabilityReason"]) == (False, "Expired")
