"""The provisioning saga through the real msgraph-sdk transport against the Graph simulator, end to end from the
HTTP API."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient

from devstack.graph_simulator import TapPolicy
from jit.domain.accounts import generated_upn
from jit.domain.grant import Grant, Status
from jit.domain.progress import ItemState
from jit.domain.work import Step, WorkItem
from jit.services.access_backend import Outcome, OutcomeStatus, Rejected
from tests.conftest import (
    GROUP_HELPDESK,
    GROUP_SECURITY,
    OTHER_TENANT,
    TENANT,
    TENANT_GUID,
    Stack,
    body_of,
    principal,
    valid_request,
)

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
APPROVER = ("ann@msp.com", "Jit.Approver")


def provision(stack: Stack, **overrides: Any) -> dict[str, Any]:
    grant = body_of(stack.post_request(valid_request(**overrides)))
    assert "id" in grant, grant
    stack.drain()
    return body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))


def jit_users(stack: Stack) -> list[dict[str, Any]]:
    return [u for u in stack.tenant.users if str(u.get("employeeType", "")).startswith("JIT:")]


def assignments_of(stack: Stack, user_id: str) -> list[str]:
    return sorted(a["roleDefinitionId"] for a in stack.tenant.role_assignments if a["principalId"] == user_id)


def assign(stack: Stack, user_id: str, role_id: str) -> str:
    """A role assignment made outside the product (by another admin), straight through Graph's API."""
    response = httpx.post(
        f"{stack.graph.base_url}/roleManagement/directory/roleAssignments",
        json={"principalId": user_id, "roleDefinitionId": role_id, "directoryScopeId": "/"},
        headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def allow_existing_account_passes(stack: Stack) -> None:
    policy = {"existingAccountCredentials": "withApproval"}
    assert stack.call("PUT", f"/api/jit/policies/{TENANT}", policy).status_code == 200


def test_a_new_user_grant_becomes_active_with_everything_it_asked_for(stack: Stack) -> None:
    body = valid_request(
        roles=["Exchange Administrator", "Company Administrator"],
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
        temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 120, "isUsableOnce": True},
    )
    created = body_of(stack.post_request(body))
    assert created["status"] == "AwaitingApproval"  # Global Administrator needs approval by default
    assert "rolesRequiringApproval: Global Administrator" in created["history"][0]["reason"]
    approved = stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {"comment": "ok"}, principal(*APPROVER))
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


def test_nobody_but_the_requester_takes_the_pass_and_no_machine_does(stack: Stack) -> None:
    grant = provision(stack)
    other = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials", headers=principal("eve@msp.com", "Jit.Admin"))
    assert other.status_code == 403
    # The credentials route is not offered to function keys at all.
    assert stack.call("GET", f"/api/svc/jit/requests/{grant['id']}/credentials", headers={"x-functions-key": "test-function-key"}).status_code == 404
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials").status_code == 200


def test_an_existing_user_keeps_what_it_had_and_gets_the_rest(stack: Stack) -> None:
    user_id = stack.tenant.add_user("ada@contoso.onmicrosoft.com", "Ada Lovelace")
    stack.tenant.add_member(GROUP_HELPDESK, user_id)
    assign(stack, user_id, GLOBAL_READER)
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
    assert stored.progress.role(GLOBAL_READER).state is ItemState.PREEXISTING  # type: ignore[union-attr]
    assert stored.progress.role(USER_ADMIN).state is ItemState.DONE  # type: ignore[union-attr]
    assert stored.progress.group(GROUP_HELPDESK).state is ItemState.PREEXISTING  # type: ignore[union-attr]
    assert stored.progress.group(GROUP_SECURITY).state is ItemState.DONE  # type: ignore[union-attr]
    # The view says whose access each piece is.
    states = {r["roleDefinitionId"]: r["state"] for r in grant["access"]["roles"]}
    assert states == {GLOBAL_READER: "preexisting", USER_ADMIN: "done"}
    assert stack.tenant.taps(user_id) == []  # TAP is off by default for existing users
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 404


def test_an_existing_user_by_object_id_and_by_tenant_guid(stack: Stack) -> None:
    user_id = stack.tenant.add_user("grace@contoso.onmicrosoft.com", "Grace Hopper")
    grant = provision(stack, tenantId=TENANT_GUID, user={"type": "existing", "id": user_id}, roles=["Helpdesk Administrator"])
    assert grant["status"] == "Active", grant
    assert len(assignments_of(stack, user_id)) == 1


def test_a_tap_for_an_existing_account_is_refused_by_default(stack: Stack) -> None:
    """A TAP satisfies MFA: issuing one to somebody's account is taking it over. Never without a policy saying so."""
    stack.tenant.add_user("ceo@contoso.onmicrosoft.com", "The CEO")
    response = stack.post_request(
        valid_request(
            user={"type": "existing", "userPrincipalName": "ceo@contoso.onmicrosoft.com"},
            roles=[],
            groups=[GROUP_HELPDESK],
            temporaryAccessPass={"enabled": True},
        )
    )
    assert response.status_code == 403
    assert [e["rule"] for e in body_of(response)["errors"]] == ["existingAccountCredentials"]


def test_a_tap_for_an_existing_account_needs_an_approver_who_is_not_its_owner(stack: Stack) -> None:
    allow_existing_account_passes(stack)
    stack.tenant.add_user("bob@contoso.onmicrosoft.com", "Bob")
    created = body_of(
        stack.post_request(
            valid_request(
                user={"type": "existing", "userPrincipalName": "bob@contoso.onmicrosoft.com"},
                roles=[],
                groups=[GROUP_HELPDESK],
                temporaryAccessPass={"enabled": True},
            )
        )
    )
    assert created["status"] == "AwaitingApproval"
    # Bob himself (an approver in the MSP) may not approve a pass for his own account.
    refused = stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {}, principal("bob@contoso.onmicrosoft.com", "Jit.Approver"))
    assert refused.status_code == 403
    assert "receives the access" in body_of(refused)["detail"]
    assert stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {}, principal(*APPROVER)).status_code == 202
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))["status"] == "Active"


def test_a_tap_is_never_issued_to_an_account_holding_a_privileged_role(stack: Stack) -> None:
    allow_existing_account_passes(stack)
    ceo = stack.tenant.add_user("ceo@contoso.onmicrosoft.com", "The CEO")
    assign(stack, ceo, GLOBAL_ADMIN)
    created = body_of(
        stack.post_request(
            valid_request(
                user={"type": "existing", "userPrincipalName": "ceo@contoso.onmicrosoft.com"},
                roles=[],
                groups=[GROUP_HELPDESK],
                temporaryAccessPass={"enabled": True},
            )
        )
    )
    stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {}, principal(*APPROVER))
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == "temporaryAccessPass"
    assert "privileged role" in grant["error"]["message"]
    assert stack.tenant.taps(ceo) == []
    assert ceo not in stack.tenant.group_members(GROUP_HELPDESK)  # nothing written before the refusal


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
def test_requests_the_tenant_cannot_satisfy_fail_clearly_and_write_nothing(stack: Stack, overrides: dict, step: str, words: str) -> None:
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


def test_a_tap_policy_scoped_to_groups_decides_before_anything_is_made(stack: Stack) -> None:
    """A tenant that allows TAPs only for members of one group: the account must be in it (here: the grant adds it,
    and the TAP is issued after the membership), and a requested group the policy excludes is refused up front."""
    stack.tenant.tap_policy = TapPolicy(include_targets=(GROUP_SECURITY,))
    outside = provision(stack)
    assert outside["status"] == "Failed"
    assert outside["error"]["step"] == "temporaryAccessPass"
    assert "none of the groups the policy includes" in outside["error"]["message"]
    assert jit_users(stack) == []  # refused before any account was made

    inside = provision(stack, groups=[GROUP_SECURITY], ticketId="4712")
    assert inside["status"] == "Active", inside
    [user] = jit_users(stack)
    assert stack.tenant.taps(user["id"])
    assert user["id"] in stack.tenant.group_members(GROUP_SECURITY)

    stack.tenant.tap_policy = TapPolicy(exclude_targets=(GROUP_HELPDESK,))
    excluded = provision(stack, groups=[GROUP_HELPDESK], ticketId="4713")
    assert excluded["status"] == "Failed"
    assert "excluded group" in excluded["error"]["message"]
    assert len(jit_users(stack)) == 1


def test_a_fresh_worker_provisions_after_a_direct_call(make_stack: Any) -> None:
    """The write batch of a process that already made direct calls (the role list, onboarding) still carries URLs
    relative to the version, as Graph requires: the simulator refuses absolute ones with a 400."""
    stack: Stack = make_stack()
    assert stack.call("GET", f"/api/jit/tenants/{TENANT}/roles").status_code == 200
    grant = provision(stack, groups=[GROUP_HELPDESK, GROUP_SECURITY], roles=["Exchange Administrator", "User Administrator"])
    assert grant["status"] == "Active", grant
    [user] = jit_users(stack)
    assert assignments_of(stack, user["id"]) == sorted([EXCHANGE_ADMIN, USER_ADMIN])
    assert stack.tenant.taps(user["id"])
    assert not stack.graph.denied


@pytest.mark.parametrize("status", ["400", "mixed"])
def test_replication_lag_answered_as_400_is_waited_out_too(stack: Stack, status: str) -> None:
    stack.tenant.lag_status = status
    stack.graph.replication_lag_seconds = 1.0
    grant = provision(stack, groups=[GROUP_HELPDESK])
    assert grant["status"] == "Active", grant
    [user] = jit_users(stack)
    assert assignments_of(stack, user["id"]) == [EXCHANGE_ADMIN]


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


def test_a_generated_upn_does_not_repeat_jit() -> None:
    assert generated_upn("JIT admin for ticket 4711", "01JD0000000000000000000042", TENANT).startswith("jit-admin-for-ticket-4711-")


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
    assert stack.graph.counters["POST /users"] == 3  # two 429s, then the create: one retry layer, ours
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
    assert stored.progress.lease is None  # released, so the redelivery can continue at once
    stack.graph.faults.remove(rule.id)
    stack.drain()
    assert stack.services.grants.get(created["id"]).status is Status.ACTIVE
    assert len(jit_users(stack)) == 1


def test_dropped_connections_are_retried(stack: Stack) -> None:
    stack.graph.faults.fail_next(1, "drop", endpoint="POST /$batch")
    grant = provision(stack)
    assert grant["status"] == "Active"


def hook_backend(stack: Stack, method: str, hook: Any) -> None:
    """Give the sagas a backend whose `method` runs `hook(real_method, *args, **kwargs)` instead: a seam in our own
    port (never the SDK) to make the directory misbehave at one precise point."""
    lifecycle = stack.services.lifecycle
    real = lifecycle.provisioner.backends  # type: ignore[union-attr]

    class Backends:
        def backend(self, tenant_id: str, directory: str) -> Any:
            backend = real.backend(tenant_id, directory)

            class Hooked:
                def __getattr__(self, name: str) -> Any:
                    return getattr(backend, name)

            hooked = Hooked()
            setattr(hooked, method, lambda *args, **kwargs: hook(getattr(backend, method), *args, **kwargs))
            return hooked

    lifecycle.provisioner.backends = Backends()  # type: ignore[union-attr]


def test_a_permanent_failure_after_the_user_exists_removes_the_user(stack: Stack) -> None:
    """The TAP policy is switched off between the survey and the writes: the grant fails and leaves no account."""

    async def switch_off_tap_then(grant: Any, account: Any, items: Any, window: Any) -> list:
        stack.tenant.tap_policy = TapPolicy(state="disabled")
        return list(await grant(account, items, window))

    hook_backend(stack, "grant", switch_off_tap_then)
    grant = provision(stack, roles=["Exchange Administrator"], groups=[GROUP_HELPDESK])
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == "credential"
    assert jit_users(stack) == []  # deleted again: no orphaned admin account
    [deleted] = stack.tenant.deleted_items
    assert deleted["employeeType"] == f"JIT:{grant['id']}"
    # Its role was taken away before the account went: a restored account comes back with nothing.
    assert [a for a in stack.tenant.role_assignments if a["principalId"] == deleted["id"]] == []
    assert deleted["id"] not in stack.tenant.group_members(GROUP_HELPDESK)


def test_a_failed_existing_user_grant_takes_back_only_what_it_added(stack: Stack) -> None:
    user_id = stack.tenant.add_user("lin@contoso.onmicrosoft.com", "Lin")
    kept = assign(stack, user_id, GLOBAL_READER)
    stack.tenant.add_member(GROUP_HELPDESK, user_id)

    async def refuse_the_last_write(grant: Any, account: Any, items: Any, window: Any) -> list:
        outcomes = list(await grant(account, items, window))
        # The last write is refused for good: everything before it must be undone.
        last = outcomes[-1]
        return [*outcomes[:-1], Outcome(last.item, OutcomeStatus.FAILED, error=Rejected("refused", code="Request_BadRequest"))]

    hook_backend(stack, "grant", refuse_the_last_write)
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


# A worker writes the grant twice: the claim with its intent, and the end (Active, with what was made).
@pytest.mark.parametrize("kill_at", range(1, 3))
def test_a_worker_killed_between_any_two_steps_ends_in_exactly_one_of_everything(stack: Stack, kill_at: int) -> None:
    """Kill the worker before its n-th write of the grant (so Graph has done work the grant does not record yet),
    then let the lease run out and the message come again."""
    saga = stack.services.lifecycle.provisioner
    real = saga.writer  # type: ignore[union-attr]
    writes = {"n": 0}

    class DyingWriter:
        grants = real.grants

        def save(self, *args: Any, **kwargs: Any) -> Grant:
            writes["n"] += 1
            if writes["n"] == kill_at:
                raise Killed(f"killed before write {kill_at}")
            return real.save(*args, **kwargs)

    saga.writer = DyingWriter()  # type: ignore[union-attr]
    created = body_of(
        stack.post_request(valid_request(roles=["Exchange Administrator", "User Administrator"], groups=[GROUP_HELPDESK, GROUP_SECURITY]))
    )
    stack.host.retry_visibility_seconds = 0
    with pytest.raises(Killed):
        stack.drain(rounds=1)
    assert writes["n"] == kill_at
    saga.writer = real  # type: ignore[union-attr]
    stack.clock.advance(minutes=6)  # the dead worker's lease expires
    stack.services.lifecycle.queue.send(WorkItem(TENANT_GUID, created["id"], Step.PROVISION))
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Active", (kill_at, grant)
    [user] = jit_users(stack)
    assert assignments_of(stack, user["id"]) == sorted([EXCHANGE_ADMIN, USER_ADMIN])
    assert stack.tenant.group_members(GROUP_HELPDESK) == [user["id"]]
    assert stack.tenant.group_members(GROUP_SECURITY) == [user["id"]]
    [tap] = stack.tenant.taps(user["id"])
    assert body_of(stack.call("GET", f"/api/jit/requests/{created['id']}/credentials"))["temporaryAccessPass"] == tap["temporaryAccessPass"]


def test_two_workers_at_once_provision_once(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request(roles=["Exchange Administrator"])))
    lifecycle = stack.services.lifecycle
    item = WorkItem(TENANT_GUID, created["id"], Step.PROVISION)

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

    async def revoke_right_after(create_account: Any, account: Any) -> Any:
        result = await create_account(account)
        stack.services.lifecycle.revoke(created["id"], actor="alice", reason="not needed")
        return result

    hook_backend(stack, "create_account", revoke_right_after)
    stack.drain()
    grant = stack.services.grants.get(created["id"])
    assert grant.status is Status.REVOKED  # provisioning stopped at its next write; expiration removed the account
    assert stack.host.failures == []
    assert jit_users(stack) == []
    assert stack.tenant.role_assignments == []


ROLES = [
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
]


def test_round_trips_stay_constant_as_roles_and_groups_grow(make_stack: Any, graph: Any) -> None:
    counts = {}
    for size in (1, 5, 15):
        stack = make_stack()
        groups = [stack.tenant.add_group(f"Group {i}") for i in range(size)]
        graph.reset_counters()
        grant = provision(stack, roles=ROLES[:size], groups=groups)
        assert grant["status"] == "Active", grant
        counts[size] = graph.counters.total
    # A survey $batch (tenant, groups, TAP policy; role definitions are cached since onboarding), the create, and
    # the writes in $batches of at most 20 (Graph's limit), sent side by side: 15 roles (12 distinct) + 15 groups
    # + 1 TAP make 28 writes, two batches.
    assert counts == {1: 3, 5: 3, 15: 4}, counts


def test_an_existing_user_is_provisioned_in_two_round_trips(stack: Stack, graph: Any) -> None:
    stack.tenant.add_user("kim@contoso.onmicrosoft.com", "Kim")
    graph.reset_counters()
    grant = provision(stack, user={"type": "existing", "userPrincipalName": "kim@contoso.onmicrosoft.com"}, roles=["Exchange Administrator"])
    assert grant["status"] == "Active", grant
    assert graph.counters.total == 2  # the survey (with the user and its memberships) and the writes
    assert graph.counters["POST /$batch"] == 2


def test_the_roles_endpoint_lists_live_definitions(stack: Stack) -> None:
    custom = stack.tenant.add_role_definition("Contoso Mailbox Helper")
    response = stack.call("GET", f"/api/jit/tenants/{TENANT}/roles")
    assert response.status_code == 200
    roles = body_of(response)["value"]
    names = [r["displayName"] for r in roles]
    assert "Global Administrator" in names and "Contoso Mailbox Helper" in names
    assert names == sorted(names, key=str.casefold)
    assert {"id": custom, "templateId": custom, "displayName": "Contoso Mailbox Helper", "privileged": False} in roles
    assert next(r for r in roles if r["displayName"] == "Global Administrator")["privileged"] is True
    # A role added today works today.
    grant = provision(stack, roles=["Contoso Mailbox Helper"])
    assert grant["status"] == "Active"


def test_a_role_made_after_the_definitions_were_cached_is_found(stack: Stack) -> None:
    stack.tenant.add_role_definition("Made Just Now")
    grant = provision(stack, roles=["Made Just Now"])
    assert grant["status"] == "Active", grant


def test_the_roles_endpoint_needs_a_signed_in_caller_and_an_onboarded_tenant(stack: Stack) -> None:
    assert stack.call("GET", "/api/jit/tenants/nowhere.onmicrosoft.com/roles").status_code == 400
    assert stack.host.http("GET", f"/api/jit/tenants/{TENANT}/roles").status_code == 401
    nobody = stack.call("GET", f"/api/jit/tenants/{TENANT}/roles", headers=principal("guest@msp.com"))
    assert nobody.status_code == 403  # signed in, but holds no app role


def test_credentials_before_the_tap_is_issued(stack: Stack) -> None:
    created = body_of(stack.post_request(valid_request()))
    response = stack.call("GET", f"/api/jit/requests/{created['id']}/credentials")
    assert response.status_code == 409
    assert response.headers["Retry-After"]


def test_an_expired_tap_is_no_longer_handed_out(stack: Stack) -> None:
    grant = provision(stack, temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 60})
    stack.clock.advance(minutes=61)
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials").status_code == 410


def test_a_revoked_grants_tap_is_no_longer_handed_out(stack: Stack) -> None:
    grant = provision(stack)
    stack.graph.faults.unavailable(endpoint="/users/{id}")  # the end can't finish: the grant stays Expiring
    revoked = stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke")
    assert body_of(revoked)["status"] == "Expiring"
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 410
    assert "Expiring" in body_of(response)["detail"]


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


def rebuilt(stack: Stack, **env: str) -> None:
    from jit import bootstrap
    from jit.settings import Settings

    bootstrap.reset(bootstrap.build(Settings.from_env({**stack.env, **env}), clock=stack.clock))


def test_rotated_keys_still_open_older_taps(stack: Stack) -> None:
    grant = provision(stack)
    new_key = base64.b64encode(os.urandom(32)).decode()
    rebuilt(stack, JIT_TAP_ENCRYPTION_KEY=new_key, JIT_TAP_ENCRYPTION_KEY_PREVIOUS=stack.env["JIT_TAP_ENCRYPTION_KEY"])
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 200
    assert body_of(response)["temporaryAccessPass"]


def test_a_tap_whose_key_was_dropped_is_kept_and_reported(stack: Stack) -> None:
    grant = provision(stack)
    rebuilt(stack, JIT_TAP_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode())
    response = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert response.status_code == 503
    assert "JIT_TAP_ENCRYPTION_KEY_PREVIOUS" in body_of(response)["detail"]
    # Kept: with the key back, the pass is handed out (once).
    rebuilt(stack)
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials").status_code == 200


def test_a_credential_that_reaches_another_tenant_is_caught(stack: Stack) -> None:
    """With managed identity the credential ignores the tenant: a grant must never act on the wrong directory."""
    from jit.adapters.backends.entra import EntraBackend, RoleDefinitionsCache

    context = stack.services.lifecycle.provisioner.backends._inner._context  # type: ignore[union-attr]
    fabrikam = stack.services.tenants.find(OTHER_TENANT)
    assert fabrikam is not None
    wrong = EntraBackend(TENANT_GUID, context.graph.for_tenant(fabrikam.id), context.graph.settings.base_url, RoleDefinitionsCache())
    stack.services.lifecycle.provisioner.backends._inner._built[(TENANT_GUID, "entra")] = wrong  # type: ignore[union-attr]
    grant = provision(stack)
    assert grant["status"] == "Failed"
    assert grant["error"]["step"] == "tenant"
    assert "not " + TENANT_GUID in grant["error"]["message"]
    assert jit_users(stack) == []


def test_settings_refuse_development_tokens_for_a_real_graph() -> None:
    from jit.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="only allowed when GRAPH_BASE_URL is on loopback"):
        Settings.from_env({"AzureWebJobsStorage": "x", "GRAPH_AUTH": "development"})


def test_a_grant_is_written_twice_by_its_worker(stack: Stack) -> None:
    """The claim carries the intent, the end carries the outcome: storage round trips stay few."""
    saga = stack.services.lifecycle.provisioner
    real = saga.writer  # type: ignore[union-attr]
    writes: list[str] = []

    class CountingWriter:
        grants = real.grants

        def save(self, before: Grant, after: Grant, *args: Any, **kwargs: Any) -> Grant:
            writes.append(after.status.value)
            return real.save(before, after, *args, **kwargs)

    saga.writer = CountingWriter()  # type: ignore[union-attr]
    try:
        grant = provision(stack, roles=["Exchange Administrator", "User Administrator"], groups=[GROUP_HELPDESK])
    finally:
        saga.writer = real  # type: ignore[union-attr]
    assert grant["status"] == "Active"
    assert writes == ["Provisioning", "Active"]
