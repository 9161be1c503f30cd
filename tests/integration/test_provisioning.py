"""The provisioning saga through the real msgraph-sdk against the Graph simulator, end to end from the HTTP API."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient

from devstack.graph_simulator import TapPolicy
from jit.domain.accounts import generated_upn
from jit.domain.grant import Grant, Status
from tests.conftest import GROUP_HELPDESK, GROUP_SECURITY, TENANT, TENANT_GUID, Stack, body_of, principal, valid_request

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


def provision(stack: Stack, **overrides: Any) -> dict[str, Any]:
    grant = body_of(stack.post_request(valid_request(**overrides)))
    stack.drain()
    return body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))


def jit_users(stack: Stack) -> list[dict[str, Any]]:
    return [u for u in stack.tenant.users if str(u.get("employeeType", "")).startswith("JIT:")]


def assignments_of(stack: Stack, user_id: str) -> list[str]:
    return sorted(a["roleDefinitionId"] for a in stack.tenant.role_assignments if a["principalId"] == user_id)


def test_a_new_user_grant_becomes_active_with_everything_it_asked_for(stack: Stack) -> None:
    body = valid_request(
        roles=["Exchange Administrator", "Company Administrator"],
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
        temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 120, "isUsableOnce": True},
    )
    created = body_of(stack.post_request(body))
    assert created["status"] == "AwaitingApproval"  # Global Administrator needs approval by default
    approver = principal("ann@msp.com", "Jit.Approver")
    approved = stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {"comment": "ok"}, approver)
    assert approved.status_code == 202, approved.get_body()
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Active", grant
    [user] = jit_users(stack)
    assert user["employeeType"] == f"JIT:{grant['id']}"
    assert user["accountEnabled"] is True
    # The UPN is generated from the name, unique per grant, on the domain Graph reports as the tenant's initial one.
    assert user["userPrincipalName"] == generated_upn("JIT Admin for ticket 4711", grant["id"], TENANT)
    assert assignments_of(stack, user["id"]) == sorted([EXCHANGE_ADMIN, GLOBAL_ADMIN])
    assert user["id"] in stack.tenant.group_members(GROUP_HELPDESK)
    assert user["id"] in stack.tenant.group_members(GROUP_SECURITY)
    [tap] = stack.tenant.taps(user["id"])
    assert tap["lifetimeInMinutes"] == 120 and tap["isUsableOnce"] is True

    credentials = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert credentials.status_code == 200
    assert credentials.headers["Cache-Control"] == "no-store"
    body = body_of(credentials)
    assert body["temporaryAccessPass"] == tap["temporaryAccessPass"]
    assert body["userPrincipalName"] == user["userPrincipalName"]
    # Exactly once.
    again = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert again.status_code == 410
    assert tap["temporaryAccessPass"] not in again.get_body().decode()


def test_an_existing_user_keeps_what_it_had_and_gets_the_rest(stack: Stack) -> None:
    user_id = stack.tenant.add_user("ada@contoso.onmicrosoft.com", "Ada Lovelace")
    stack.tenant.add_member(GROUP_HELPDESK, user_id)
    existing = assign(stack, user_id, GLOBAL_READER)
    grant = provision(
        stack,
        user={"type": "existing", "userPrincipalName": "ada@contoso.onmicrosoft.com"},
        roles=["Global Reader", "User Administrator"],
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
    )
    assert grant["status"] == "Active", grant
    assert jit_users(stack) == []  # no account created
    assert assignments_of(stack, user_id) == sorted([GLOBAL_READER, USER_ADMIN])  # one each, none doubled
    stored = stack.services.grants.get(grant["id"])
    roles = stored.progress["roles"]
    assert roles[GLOBAL_READER]["state"] == "preexisting" and roles[GLOBAL_READER]["assignmentId"] == existing
    assert roles[USER_ADMIN]["state"] == "done"
    assert stored.progress["groups"][GROUP_HELPDESK]["state"] == "preexisting"
    assert stored.progress["groups"][GROUP_SECURITY]["state"] == "done"
    assert stack.tenant.taps(user_id) == []  # TAP is off by default for existing users
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 404


def assign(stack: Stack, user_id: str, role_id: str) -> str:
    """A role assignment made outside the product (by another admin), straight through Graph's API."""
    response = httpx.post(
        f"{stack.graph.base_url}/roleManagement/directory/roleAssignments",
        json={"principalId": user_id, "roleDefinitionId": role_id, "directoryScopeId": "/"},
        headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_an_existing_user_by_object_id_and_by_tenant_guid(stack: Stack) -> None:
    user_id = stack.tenant.add_user("grace@contoso.onmicrosoft.com", "Grace Hopper")
    grant = provision(stack, tenantId=TENANT_GUID, user={"type": "existing", "id": user_id}, roles=["Helpdesk Administrator"])
    assert grant["status"] == "Active", grant
    assert len(assignments_of(stack, user_id)) == 1


@pytest.mark.parametrize(
    ("overrides", "step", "words"),
    [
        ({"user": {"type": "existing", "userPrincipalName": "nobody@contoso.onmicrosoft.com"}}, "user", "does not exist"),
        ({"roles": ["Exchange Administrator", "Chief Coffee Officer"]}, "roles", "Chief Coffee Officer"),
        ({"groups": ["bbbbbbbb-0000-4000-8000-000000000009"]}, "groups", "bbbbbbbb-0000-4000-8000-000000000009"),
        (
            {"user": {"type": "new", "displayName": "X", "userPrincipalName": "x@unverified.example.com"}},
            "user",
            "not a verified domain",
        ),
    ],
)
def test_requests_the_tenant_cannot_satisfy_fail_clearly_and_write_nothing(
    stack: Stack, overrides: dict, step: str, words: str
) -> None:
    grant = provision(stack, **overrides)
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == step
    assert words in grant["error"]["message"]
    assert jit_users(stack) == []
    assert stack.tenant.role_assignments == []
    assert stack.graph.counters["POST /users"] == 0


def test_a_tenant_whose_tap_policy_is_off_fails_instead_of_a_silent_success(stack: Stack) -> None:
    stack.tenant.tap_policy = TapPolicy(state="disabled")
    grant = provision(stack)
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == "temporaryAccessPass"
    assert "policy is disabled" in grant["error"]["message"]
    assert jit_users(stack) == []


def test_without_a_tap_a_tenant_with_tap_off_is_fine(stack: Stack) -> None:
    stack.tenant.tap_policy = TapPolicy(state="disabled")
    grant = provision(stack, temporaryAccessPass={"enabled": False})
    assert grant["status"] == "Active"


def test_the_tap_lifetime_is_kept_within_the_tenant_policy(stack: Stack) -> None:
    stack.tenant.tap_policy = TapPolicy(minimum_lifetime_minutes=60, maximum_lifetime_minutes=90)
    grant = provision(stack, temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 600})
    [user] = jit_users(stack)
    [tap] = stack.tenant.taps(user["id"])
    assert grant["status"] == "Active"
    assert tap["lifetimeInMinutes"] == 90


def test_a_generated_upn_that_is_taken_by_someone_else_moves_on(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request()))
    taken = generated_upn("JIT Admin for ticket 4711", created["id"], TENANT)
    stack.tenant.add_user(taken, "Somebody Else")
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Active"
    [user] = jit_users(stack)
    assert user["userPrincipalName"] == generated_upn("JIT Admin for ticket 4711", created["id"], TENANT, attempt=1)


def test_a_given_upn_that_is_taken_fails_without_touching_the_other_account(stack: Stack) -> None:
    other = stack.tenant.add_user("admin@contoso.onmicrosoft.com", "Real Admin")
    grant = provision(stack, user={"type": "new", "displayName": "JIT", "userPrincipalName": "admin@contoso.onmicrosoft.com"})
    assert grant["status"] == "Failed"
    assert "already in use" in grant["error"]["message"]
    assert stack.tenant.user(other) is not None
    assert stack.tenant.deleted_items == []


def test_replication_lag_after_the_create_is_waited_out(stack: Stack) -> None:
    stack.graph.replication_lag_seconds = 1.0
    grant = provision(stack, groups=[GROUP_HELPDESK])
    assert grant["status"] == "Active", grant
    [user] = jit_users(stack)
    assert len(assignments_of(stack, user["id"])) == 1
    assert stack.tenant.group_members(GROUP_HELPDESK) == [user["id"]]


def test_throttling_is_retried_honouring_retry_after(stack: Stack) -> None:
    stack.graph.faults.fail_next(2, "throttle", endpoint="POST /users", retry_after=1)
    grant = provision(stack)
    assert grant["status"] == "Active"
    assert stack.graph.counters["POST /users"] == 3  # two 429s, then the create
    assert len(jit_users(stack)) == 1


def test_throttled_items_inside_a_batch_are_retried(stack: Stack) -> None:
    stack.graph.faults.fail_next(1, "throttle", endpoint="POST /roleManagement/directory/roleAssignments", retry_after=0)
    grant = provision(stack, roles=["Exchange Administrator", "User Administrator"])
    assert grant["status"] == "Active", grant
    [user] = jit_users(stack)
    assert assignments_of(stack, user["id"]) == sorted([EXCHANGE_ADMIN, USER_ADMIN])


def test_an_outage_longer_than_the_budget_leaves_the_grant_for_the_next_delivery(make_stack: Any) -> None:
    stack = make_stack(JIT_GRAPH_RETRY_BUDGET="PT1S")
    stack.host.retry_visibility_seconds = 0
    rule = stack.graph.faults.unavailable(endpoint="/roleManagement/directory/roleAssignments")
    created = body_of(stack.post_request(valid_request()))
    stack.drain(rounds=1)
    assert len(stack.host.failures) == 1  # the function failed: the queue will redeliver
    stored = stack.services.grants.get(created["id"])
    assert stored.status is Status.PROVISIONING
    assert "lease" not in stored.progress  # released, so the redelivery can continue at once
    stack.graph.faults.remove(rule.id)
    stack.drain()
    assert stack.services.grants.get(created["id"]).status is Status.ACTIVE
    assert len(jit_users(stack)) == 1


def test_dropped_connections_are_retried(stack: Stack) -> None:
    stack.graph.faults.fail_next(1, "drop", endpoint="GET /organization")
    grant = provision(stack)
    assert grant["status"] == "Active"


def hook_directory(stack: Stack, method: str, hook: Any) -> None:
    """Give the provisioning saga a directory whose `method` runs `hook(real_method, *args)` instead: a seam in
    our own port (never the SDK) to make Graph misbehave at one precise point."""
    saga = stack.services.lifecycle.provisioner
    real = saga.directories  # type: ignore[union-attr]

    class Directories:
        def for_tenant(self, tenant: str) -> Any:
            directory = real.for_tenant(tenant)

            class Directory:
                def __getattr__(self, name: str) -> Any:
                    return getattr(directory, name)

            hooked = Directory()
            setattr(hooked, method, lambda *args: hook(getattr(directory, method), *args))
            return hooked

    saga.directories = Directories()  # type: ignore[union-attr]


def test_a_permanent_failure_after_the_user_exists_removes_the_user(stack: Stack) -> None:
    """The TAP policy is switched off between the plan and the writes: the grant fails and leaves no account."""

    async def switch_off_tap_then(apply: Any, writes: list) -> list:
        stack.tenant.tap_policy = TapPolicy(state="disabled")
        return await apply(writes)

    hook_directory(stack, "apply", switch_off_tap_then)
    grant = provision(stack, roles=["Exchange Administrator"], groups=[GROUP_HELPDESK])
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == "temporaryAccessPass"
    assert jit_users(stack) == []  # deleted again: no orphaned admin account
    assert [d["employeeType"] for d in stack.tenant.deleted_items] == [f"JIT:{grant['id']}"]


def test_a_failed_existing_user_grant_takes_back_only_what_it_added(stack: Stack) -> None:
    user_id = stack.tenant.add_user("lin@contoso.onmicrosoft.com", "Lin")
    kept = assign(stack, user_id, GLOBAL_READER)
    stack.tenant.add_member(GROUP_HELPDESK, user_id)

    async def refuse_the_last_write(apply: Any, writes: list) -> list:
        from jit.services.directory import Rejected, WriteResult

        results = await apply(writes)
        # The last write is refused for good: everything before it must be undone.
        return [*results[:-1], WriteResult(results[-1].write, error=Rejected("refused", code="Request_BadRequest"))]

    hook_directory(stack, "apply", refuse_the_last_write)
    grant = provision(
        stack,
        user={"type": "existing", "userPrincipalName": "lin@contoso.onmicrosoft.com"},
        roles=["Global Reader", "User Administrator"],
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
    )
    assert grant["status"] == "Failed"
    assert grant["error"]["code"] == "Request_BadRequest"
    assert [a["id"] for a in stack.tenant.role_assignments if a["principalId"] == user_id] == [kept]
    assert user_id in stack.tenant.group_members(GROUP_HELPDESK)  # was there before: kept
    assert user_id not in stack.tenant.group_members(GROUP_SECURITY)  # added by the grant: removed
    assert stack.tenant.user(user_id) is not None  # never deleted


class Killed(BaseException):
    """The worker dies here (BaseException: nothing in the product catches it, as nothing catches a kill)."""


@pytest.mark.parametrize("kill_at", range(1, 7))
def test_a_worker_killed_between_any_two_steps_ends_in_exactly_one_of_everything(stack: Stack, kill_at: int) -> None:
    """Kill the worker before its n-th write of progress (so Graph has done work the grant does not record yet),
    then let the lease run out and the message come again."""
    saga = stack.services.lifecycle.provisioner
    real = saga.grants  # type: ignore[union-attr]
    writes = {"n": 0}

    class DyingRepository:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def update(self, grant_id: str, change: Any, tenant_id: str | None = None) -> Grant:
            writes["n"] += 1
            if writes["n"] == kill_at:
                raise Killed(f"killed before progress write {kill_at}")
            return real.update(grant_id, change, tenant_id)

    saga.grants = DyingRepository()  # type: ignore[union-attr]
    created = body_of(
        stack.post_request(
            valid_request(roles=["Exchange Administrator", "User Administrator"], groups=[GROUP_HELPDESK, GROUP_SECURITY])
        )
    )
    stack.host.retry_visibility_seconds = 0
    with pytest.raises(Killed):
        stack.drain(rounds=1)
    saga.grants = real  # type: ignore[union-attr]
    stack.clock.advance(minutes=6)  # the dead worker's lease expires
    stack.services.lifecycle.queue.send(
        __import__("jit.domain.work", fromlist=["x"]).WorkItem(
            TENANT, created["id"], __import__("jit.domain.work", fromlist=["x"]).Step.PROVISION
        )
    )
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Active", (kill_at, grant)
    [user] = jit_users(stack)
    assert assignments_of(stack, user["id"]) == sorted([EXCHANGE_ADMIN, USER_ADMIN])
    assert stack.tenant.group_members(GROUP_HELPDESK) == [user["id"]]
    assert stack.tenant.group_members(GROUP_SECURITY) == [user["id"]]
    [tap] = stack.tenant.taps(user["id"])
    assert (
        body_of(stack.call("GET", f"/api/jit/requests/{created['id']}/credentials"))["temporaryAccessPass"]
        == tap["temporaryAccessPass"]
    )


def test_two_workers_at_once_provision_once(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request(roles=["Exchange Administrator"])))
    lifecycle = stack.services.lifecycle
    item = __import__("jit.domain.work", fromlist=["x"]).WorkItem(
        TENANT, created["id"], __import__("jit.domain.work", fromlist=["x"]).Step.PROVISION
    )

    async def both() -> list[Any]:
        return await asyncio.gather(lifecycle.handle(item), lifecycle.handle(item))

    stack.host.invoke(both)  # on the worker's event loop, where the Graph clients live
    stack.drain()
    assert stack.services.grants.get(created["id"]).status is Status.ACTIVE
    [user] = jit_users(stack)
    assert len(assignments_of(stack, user["id"])) == 1
    assert stack.graph.counters["POST /users"] == 1


def test_a_grant_revoked_while_provisioning_stops_and_what_it_made_is_removed(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request()))

    async def revoke_right_after(create_user: Any, user: Any) -> Any:
        result = await create_user(user)
        stack.services.lifecycle.revoke(created["id"], actor="alice", reason="not needed")
        return result

    hook_directory(stack, "create_user", revoke_right_after)
    stack.drain()
    grant = stack.services.grants.get(created["id"])
    assert grant.status is Status.REVOKED  # provisioning stopped at its next write; expiration removed the account
    assert stack.host.failures == []
    assert jit_users(stack) == []
    assert stack.tenant.role_assignments == []


def test_round_trips_stay_constant_as_roles_and_groups_grow(make_stack: Any, graph: Any) -> None:
    counts = {}
    for size in (1, 5, 15):
        stack = make_stack()
        groups = [stack.tenant.add_group(f"Group {i}") for i in range(size)]
        roles = [
            "Exchange Administrator",
            "User Administrator",
            "Global Reader",
            "Helpdesk Administrator",
            "Security Administrator",
            "SharePoint Administrator",
            "Teams Administrator",
            "Intune Administrator",
            "Billing Administrator",
            "Application Administrator",
            "Authentication Administrator",
            "Conditional Access Administrator",
            "Global Reader",
            "Helpdesk Administrator",
            "Exchange Administrator",
        ][:size]
        graph.reset_counters()
        grant = provision(stack, roles=roles, groups=groups)
        assert grant["status"] == "Active", grant
        counts[size] = graph.counters.total
    # A $batch reading the tenant, groups and TAP policy; the role definitions; the create; the writes in $batches
    # of at most 20 (Graph's limit): 15 roles (12 distinct) + 15 groups + 1 TAP make 30 writes, two batches.
    assert counts == {1: 4, 5: 4, 15: 5}, counts


def test_the_roles_endpoint_lists_live_definitions(stack: Stack) -> None:
    custom = stack.tenant.add_role_definition("Contoso Mailbox Helper")
    response = stack.call("GET", f"/api/jit/tenants/{TENANT}/roles")
    assert response.status_code == 200
    roles = body_of(response)["value"]
    names = [r["displayName"] for r in roles]
    assert "Global Administrator" in names and "Contoso Mailbox Helper" in names
    assert names == sorted(names, key=str.casefold)
    assert {"id": custom, "templateId": custom, "displayName": "Contoso Mailbox Helper"} in roles
    # A role added today works today (after the catalogue's cache expires, or for a new tenant).
    grant = provision(stack, roles=["Contoso Mailbox Helper"])
    assert grant["status"] == "Active"


def test_the_roles_endpoint_reports_a_tenant_without_consent(stack: Stack) -> None:
    response = stack.call("GET", "/api/jit/tenants/nowhere.onmicrosoft.com/roles")
    assert response.status_code == 502
    assert response.mimetype == "application/problem+json"
    assert stack.call("GET", "/api/jit/tenants/contoso.com/roles").status_code == 400


def test_credentials_before_the_tap_is_issued(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request()))
    response = stack.call("GET", f"/api/jit/requests/{created['id']}/credentials")
    assert response.status_code == 409
    assert response.headers["Retry-After"]


def test_an_expired_tap_is_erased_by_the_sweep(stack: Stack) -> None:
    grant = provision(stack, temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 60})
    assert stack.services.vault.has(grant["id"])
    stack.clock.advance(minutes=61)
    stack.host.fire("schedule_sweep")
    assert not stack.services.vault.has(grant["id"])
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials").status_code == 410


def test_no_secret_is_logged_stored_in_plain_text_or_queued(stack: Stack, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    grant = provision(stack)
    [user] = jit_users(stack)
    [tap] = stack.tenant.taps(user["id"])
    secrets = [tap["temporaryAccessPass"], stack.tenant.password_of(user["id"])]
    assert all(secrets)
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    stored = []
    for table in service.list_tables():
        if table.name.startswith(stack.env["JIT_TABLE_PREFIX"]):
            stored += [json.dumps(e, default=str) for e in service.get_table_client(table.name).list_entities()]
    everything = "\n".join([caplog.text, *stored, json.dumps(grant)])
    for secret in secrets:
        assert secret not in everything
    assert any("Sealed" in row for row in stored)  # the TAP is there, encrypted


def test_rotated_keys_still_open_older_taps(make_stack: Any) -> None:
    stack = make_stack()
    grant = provision(stack)
    import base64
    import os

    from jit import bootstrap
    from jit.settings import Settings

    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated_env = {
        **stack.env,
        "JIT_TAP_ENCRYPTION_KEY": new_key,
        "JIT_TAP_ENCRYPTION_KEY_PREVIOUS": stack.env["JIT_TAP_ENCRYPTION_KEY"],
    }
    rotated = bootstrap.build(Settings.from_env(rotated_env), clock=stack.clock)
    bootstrap.reset(rotated)
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 200
    assert body_of(response)["temporaryAccessPass"]


def test_settings_refuse_development_tokens_for_a_real_graph() -> None:
    from jit.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="only allowed when GRAPH_BASE_URL is on loopback"):
        Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_AUTH": "development"})
    replace
    timedelta
