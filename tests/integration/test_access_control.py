"""Who may ask for what: caller identity, app roles, policy, approvals, and secrets that never leak."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from jit.domain.grant import Status
from tests.conftest import (
    GROUP_HELPDESK,
    GROUP_SECURITY,
    TENANT,
    TENANT_GUID,
    Stack,
    audit_entries,
    body_of,
    caller_id,
    machine,
    principal,
    valid_request,
)

ALICE = principal("alice@msp.com", "Jit.Requester")
BOB = principal("bob@msp.com", "Jit.Requester")
ANN_APPROVER = principal("ann@msp.com", "Jit.Approver")
ADAM_ADMIN = principal("adam@msp.com", "Jit.Admin")
GUEST = principal("guest@msp.com")


def post(stack: Stack, who: dict[str, str], **overrides: Any) -> Any:
    return stack.post_request(valid_request(**overrides), headers=who)


def put_policy(stack: Stack, scope: str, policy: dict[str, Any], who: dict[str, str] = ADAM_ADMIN, **headers: str) -> Any:
    return stack.call("PUT", f"/api/jit/policies/{scope}", policy, {**who, **headers})


# Identity ------------------------------------------------------------------------------------------------------


def test_a_signed_in_caller_is_recorded_by_name_and_object_id(stack: Stack) -> None:
    grant = body_of(post(stack, ALICE))
    assert grant["requestedBy"] == "alice@msp.com"
    assert stack.services.grants.get(grant["id"]).requester_id == caller_id("alice@msp.com")


def test_a_function_key_caller_is_the_service_identity_speaking_for_someone_asserted(stack: Stack) -> None:
    response = stack.call("POST", "/api/svc/jit/requests", valid_request(), machine(**{"X-JIT-Requested-For": "bob@customer.com"}))
    assert response.status_code == 202, response.get_body()
    grant = body_of(response)
    assert grant["requestedBy"] == "function-key (for bob@customer.com, asserted)"
    assert stack.services.grants.get(grant["id"]).requester_id == "service:function-key"


def test_a_key_route_without_the_key_is_refused_by_the_host(stack: Stack) -> None:
    response = stack.call("POST", "/api/svc/jit/requests", valid_request(), {"x-functions-key": "guessed"})
    assert response.status_code == 401
    assert stack.queued() == 0


def test_the_app_service_principal_header_is_not_an_identity(stack: Stack) -> None:
    # App Service Authentication's header is ignored: only a validated bearer token (or a key route) says who calls.
    forged = base64.b64encode(json.dumps({"claims": [{"typ": "name", "val": "ann@msp.com"}]}).encode()).decode()
    response = stack.host.http("POST", "/api/jit/requests", valid_request(), {"X-MS-CLIENT-PRINCIPAL": forged})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Basic YWxpY2U6cGFzcw==", "Bearer " + "e30." * 2 + "x"],
    ids=["garbage", "basic", "unsigned"],
)
def test_a_malformed_token_is_401_and_writes_nothing(stack: Stack, authorization: str) -> None:
    response = stack.host.http("POST", "/api/jit/requests", valid_request(), {"Authorization": authorization})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert "WWW-Authenticate" in response.headers
    assert stack.queued() == 0


def test_a_caller_without_the_requester_role_cannot_request(stack: Stack) -> None:
    response = post(stack, GUEST)
    assert response.status_code == 403
    assert stack.services.grants.list(tenant_id=TENANT, status=None, top=10, continuation_token=None).grants == []


def test_requesters_see_their_own_grants_and_approvers_see_all(stack: Stack) -> None:
    alices = body_of(post(stack, ALICE))
    bobs = body_of(post(stack, BOB))
    assert stack.call("GET", f"/api/jit/requests/{alices['id']}", headers=BOB).status_code == 404  # not "forbidden"
    assert stack.call("GET", f"/api/jit/requests/{alices['id']}", headers=ALICE).status_code in (200, 202)
    for url in ("/api/jit/requests", f"/api/jit/requests?tenantId={TENANT}"):
        assert [g["id"] for g in body_of(stack.call("GET", url, headers=BOB))["value"]] == [bobs["id"]]
        assert {g["id"] for g in body_of(stack.call("GET", url, headers=ANN_APPROVER))["value"]} == {alices["id"], bobs["id"]}
    assert stack.call("POST", f"/api/jit/requests/{alices['id']}/revoke", headers=BOB).status_code == 404
    assert stack.call("POST", f"/api/jit/requests/{alices['id']}/revoke", headers=ANN_APPROVER).status_code == 403
    assert stack.call("POST", f"/api/jit/requests/{alices['id']}/revoke", headers=ADAM_ADMIN).status_code == 200


def test_only_the_requester_retrieves_the_tap(stack: Stack) -> None:
    grant = body_of(post(stack, ALICE))
    stack.drain()
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials", headers=ADAM_ADMIN).status_code == 403
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials", headers=BOB).status_code == 404
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials", headers=ALICE).status_code == 200


def test_drift_and_policy_changes_need_their_roles(stack: Stack) -> None:
    assert stack.call("GET", "/api/jit/drift", headers=ALICE).status_code == 403
    assert stack.call("GET", "/api/jit/drift", headers=ANN_APPROVER).status_code == 200
    assert put_policy(stack, "default", {"ticketRequired": True}, who=ANN_APPROVER).status_code == 403


# Policy --------------------------------------------------------------------------------------------------------


POLICY_CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"allowedRoles": ["Helpdesk Administrator"]}, {}, "allowedRoles"),
    ({"allowedGroups": [GROUP_SECURITY]}, {"groups": [GROUP_HELPDESK]}, "allowedGroups"),
    ({"maxDuration": "PT1H"}, {"duration": "PT2H"}, "maxDuration"),
    ({"maxDurationPerRole": {"Exchange Administrator": "PT30M"}}, {"duration": "PT1H"}, "maxDurationPerRole"),
    ({"ticketRequired": True}, {"ticketId": None}, "ticketRequired"),
    ({"ticketPattern": "^INC[0-9]{6}$"}, {"ticketId": "4711"}, "ticketPattern"),
    (
        {"temporaryAccessPass": {"maxLifetimeInMinutes": 60}},
        {"temporaryAccessPass": {"enabled": True, "lifetimeInMinutes": 240}},
        "temporaryAccessPass",
    ),
    ({"allowedExpirationActions": ["DisableUser"]}, {"expirationActions": ["DeleteUser"]}, "allowedExpirationActions"),
]


@pytest.mark.parametrize(("policy", "request_overrides", "rule"), POLICY_CASES, ids=[c[2] for c in POLICY_CASES])
def test_each_policy_rule_refuses_with_a_403_naming_it_and_writes_nothing(
    stack: Stack, policy: dict[str, Any], request_overrides: dict[str, Any], rule: str
) -> None:
    assert put_policy(stack, TENANT, policy).status_code == 200
    body = valid_request(**request_overrides)
    body = {k: v for k, v in body.items() if v is not None}
    response = stack.post_request(body, headers=ALICE)
    assert response.status_code == 403, response.get_body()
    problem = body_of(response)
    assert [e["rule"] for e in problem["errors"]] == [rule]
    assert stack.services.grants.list(tenant_id=TENANT, status=None, top=10, continuation_token=None).grants == []
    assert stack.queued() == 0


def test_concurrent_grants_per_requester(stack: Stack) -> None:
    put_policy(stack, "default", {"maxConcurrentGrantsPerUser": 2})
    assert post(stack, ALICE).status_code == 202
    assert post(stack, ALICE).status_code == 202
    third = post(stack, ALICE)
    assert third.status_code == 403
    assert body_of(third)["errors"][0]["rule"] == "maxConcurrentGrantsPerUser"
    assert post(stack, BOB).status_code == 202  # per requester


def test_policies_are_versioned_validated_and_tenant_overrides_default(stack: Stack) -> None:
    first = put_policy(stack, "default", {"ticketRequired": True})
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    assert body_of(stack.call("GET", f"/api/jit/policies/{TENANT}", headers=ALICE))["ticketRequired"] is True
    put_policy(stack, TENANT, {"ticketRequired": False})
    assert body_of(stack.call("GET", f"/api/jit/policies/{TENANT}", headers=ALICE))["ticketRequired"] is False
    stale = put_policy(stack, "default", {"ticketRequired": False}, **{"If-Match": '"0"'})
    assert stale.status_code == 409
    fresh = put_policy(stack, "default", {"ticketRequired": False}, **{"If-Match": '"1"'})
    assert fresh.status_code == 200 and body_of(fresh)["version"] == 2
    for bad, field in [
        ({"ticketPattern": "("}, "ticketPattern"),
        ({"maxDuration": "-PT1H"}, "maxDuration"),
        ({"temporaryAccessPass": {"minLifetimeInMinutes": 120, "maxLifetimeInMinutes": 60}}, "temporaryAccessPass"),
        ({"allowRoles": []}, "allowRoles"),
    ]:
        response = put_policy(stack, "default", bad)
        assert response.status_code == 400, bad
        assert body_of(response)["errors"][0]["field"] == field
    assert stack.call("GET", "/api/jit/policies/nonsense.example.com", headers=ALICE).status_code == 400
    assert any(e.action == "policy.updated" for e in audit_entries(stack, "global"))


def test_the_built_in_default_policy_gates_global_administrator(stack: Stack) -> None:
    policy = body_of(stack.call("GET", "/api/jit/policies/default", headers=ALICE))
    assert policy["version"] == 0
    assert "62e90394-69f5-4237-9190-012177145e10" in policy["rolesRequiringApproval"]


# Approvals -----------------------------------------------------------------------------------------------------


def test_a_gated_role_waits_for_an_approver_and_the_requester_cannot_approve(stack: Stack) -> None:
    created = post(stack, ALICE, roles=["Global Administrator"])
    assert created.status_code == 202
    grant = body_of(created)
    assert grant["status"] == "AwaitingApproval"
    assert stack.queued() == 0  # nothing moves before a decision
    own = principal("alice@msp.com", "Jit.Requester", "Jit.Approver")
    refused = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {"comment": "me"}, own)
    assert refused.status_code == 403
    assert stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {}, BOB).status_code == 404
    approved = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {"comment": "INC-1 verified"}, ANN_APPROVER)
    assert approved.status_code == 202
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))
    assert final["status"] == "Active"
    decision = final["history"][1]
    assert (decision["from"], decision["to"], decision["actor"], decision["reason"]) == (
        "AwaitingApproval",
        "Scheduled",
        "ann@msp.com",
        "INC-1 verified",
    )


def test_deny_and_a_second_decision(stack: Stack) -> None:
    grant = body_of(post(stack, ALICE, roles=["Global Administrator"]))
    denied = stack.call("POST", f"/api/jit/requests/{grant['id']}/deny", {"comment": "use a lower role"}, ANN_APPROVER)
    assert denied.status_code == 200
    assert body_of(denied)["status"] == "Denied"
    again = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {}, ANN_APPROVER)
    assert again.status_code == 409


def test_an_unanswered_request_is_denied_after_the_timeout(make_stack: Any) -> None:
    stack = make_stack(JIT_APPROVAL_TIMEOUT="PT2H")
    grant = body_of(post(stack, ALICE, roles=["Global Administrator"], duration="PT4H"))
    stack.clock.advance(hours=1)
    stack.host.fire("schedule_sweep")
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.AWAITING_APPROVAL
    stack.clock.advance(hours=1, minutes=1)
    stack.host.fire("schedule_sweep")
    stack.drain()
    denied = stack.services.grants.get(grant["id"])
    assert denied.status is Status.DENIED
    assert denied.history[-1].reason == "no decision before the approval timeout"


def test_approval_checks_the_policy_again(stack: Stack) -> None:
    grant = body_of(post(stack, ALICE, roles=["Global Administrator"]))
    put_policy(stack, TENANT, {"allowedRoles": ["Exchange Administrator"]})
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {}, ANN_APPROVER)
    assert response.status_code == 403
    assert body_of(response)["errors"][0]["rule"] == "allowedRoles"


def test_naming_a_gated_role_by_another_name_does_not_skip_its_approval(stack: Stack) -> None:
    custom = stack.tenant.add_role_definition("Contoso Billing Helper")
    put_policy(stack, TENANT, {"rolesRequiringApproval": ["Contoso Billing Helper"]})
    grant = body_of(post(stack, ALICE, roles=[custom]))  # by id: intake cannot tell it is the gated role
    assert grant["status"] == "Scheduled"
    stack.drain()
    # The worker knows the role once it reads the directory's definitions: the grant waits for an approver and
    # nothing was created before the decision.
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))
    assert final["status"] == "AwaitingApproval"
    assert "Contoso Billing Helper" in final["history"][-1]["reason"]
    assert [u for u in stack.tenant.users if str(u.get("employeeType", "")).startswith("JIT:")] == []
    approved = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {"comment": "ok"}, ANN_APPROVER)
    assert approved.status_code == 202, approved.get_body()
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))["status"] == "Active"


# Hardening -----------------------------------------------------------------------------------------------------


def test_a_quote_in_a_upn_cannot_change_a_query(stack: Stack) -> None:
    user_id = stack.tenant.add_user("o'brien@contoso.onmicrosoft.com", "Pat O'Brien")
    grant = body_of(post(stack, ALICE, user={"type": "existing", "userPrincipalName": "o'brien@contoso.onmicrosoft.com"}))
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))["status"] == "Active"
    assert [a["principalId"] for a in stack.tenant.role_assignments] == [user_id]
    stack.tenant.add_user("x@contoso.onmicrosoft.com", "X", employee_type="JIT:' or 1 eq 1 or employeeType eq '")
    assert [f["kind"] for f in body_of(stack.call("GET", "/api/jit/drift", headers=ADAM_ADMIN))["value"]] == []
    stack.host.fire("drift_check")
    kinds = [f["kind"] for f in body_of(stack.call("GET", "/api/jit/drift", headers=ADAM_ADMIN))["value"]]
    assert kinds == ["JitAccountWithoutGrant"]


def test_no_secret_anywhere_over_a_whole_lifecycle(stack: Stack, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    grant = body_of(post(stack, ALICE, expirationActions=["DisableUser"], groups=[GROUP_HELPDESK]))
    stack.drain()
    user_id = stack.services.grants.get(grant["id"]).progress.account_id
    [tap] = stack.tenant.taps(user_id)
    secrets = {tap["temporaryAccessPass"], stack.tenant.password_of(user_id)}
    credentials = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials", headers=ALICE))
    assert credentials["temporaryAccessPass"] == tap["temporaryAccessPass"]  # the one place it may appear
    stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "done"}, ALICE)
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.REVOKED
    secrets.add(stack.tenant.password_of(user_id))  # the rotated one
    assert all(secrets) and len(secrets) == 3
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    stored: list[str] = []
    for table in service.list_tables():
        if table.name.startswith(stack.env["JIT_TABLE_PREFIX"]):
            stored += [json.dumps(e, default=str) for e in service.get_table_client(table.name).list_entities()]
    queued = [str(m.content) for m in stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"]).peek_messages(max_messages=32)]
    views = [stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE).get_body().decode()]
    views.append(stack.call("GET", "/api/jit/requests", headers=ALICE).get_body().decode())
    views.append(stack.call("GET", f"/api/jit/audit?tenantId={TENANT}", headers=ADAM_ADMIN).get_body().decode())
    everything = "\n".join([caplog.text, *stored, *queued, *views])
    for secret in secrets:
        assert secret not in everything
    assert len(stored) > 10


def test_every_directory_write_is_audited_with_its_outcome(stack: Stack) -> None:
    grant = body_of(post(stack, ALICE, groups=[GROUP_HELPDESK]))
    stack.drain()
    stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "done"}, ALICE)
    stack.drain()
    entries = audit_entries(stack, TENANT_GUID, grant["id"])
    writes = {e.action: e.detail for e in entries if e.action.startswith("directory.")}
    assert set(writes) == {"directory.account.create", "directory.access.grant", "directory.access.remove+account.delete"}
    granted = writes["directory.access.grant"]
    for item in ("role 29232cdf-9323-42fd-ade2-1d097af3e4de: made", f"group {GROUP_HELPDESK}: made", "credential"):
        assert item in granted, granted
    removed = writes["directory.access.remove+account.delete"]
    for item in ("role 29232cdf-9323-42fd-ade2-1d097af3e4de", f"group {GROUP_HELPDESK}", "account"):
        assert item in removed, removed
    assert all(e.outcome == "success" for e in entries if e.action.startswith("directory."))
    decisions = [e.action for e in entries if not e.action.startswith("directory.")]
    assert decisions[:3] == ["grant.Scheduled", "grant.Provisioning", "grant.Active"]


def test_a_refused_directory_write_is_audited_with_graphs_request_id(stack: Stack) -> None:
    user_id = stack.tenant.add_user("lee@contoso.onmicrosoft.com", "Lee")  # the UPN the request asks for is taken
    grant = body_of(
        post(stack, ALICE, user={"type": "new", "displayName": "Lee", "userPrincipalName": "lee@contoso.onmicrosoft.com"})
    )
    stack.drain()
    failed = [e for e in audit_entries(stack, TENANT_GUID, grant["id"]) if e.outcome == "failure"]
    assert failed and failed[0].action == "directory.account.create"
    assert "request-id " in failed[-1].detail
    assert stack.tenant.user(user_id) is not None
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))["status"] == "Failed"


# Groups that confer roles ---------------------------------------------------------------------------------------

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def tier0_group(stack: Stack, *roles: str) -> str:
    """A role-assignable group holding directory roles, as a customer's admins would have made it."""
    group = stack.tenant.add_group("Tier 0 admins", is_assignable_to_role=True)
    for role in roles:
        stack.tenant.assign_role(group, role)
    return group


def test_a_group_that_confers_global_administrator_waits_for_an_approver(stack: Stack) -> None:
    group = tier0_group(stack, GLOBAL_ADMIN)
    grant = body_of(post(stack, ALICE, groups=[group]))
    stack.drain()
    waiting = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))
    assert waiting["status"] == "AwaitingApproval"
    reason = waiting["history"][-1]["reason"]
    assert "Global Administrator (through group" in reason and "roleAssignableGroup" in reason
    assert [u for u in stack.tenant.users if str(u.get("employeeType", "")).startswith("JIT:")] == []
    assert stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {}, ANN_APPROVER).status_code == 202
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))["status"] == "Active"


def test_a_group_that_confers_a_role_outside_the_allowed_ones_is_refused(stack: Stack) -> None:
    group = tier0_group(stack, GLOBAL_ADMIN)
    assert put_policy(stack, TENANT, {"allowedRoles": ["Exchange Administrator"], "groupsWithoutApproval": [group]}).status_code == 200
    grant = body_of(post(stack, ALICE, groups=[group]))
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))
    assert final["status"] == "Failed"
    assert final["error"]["step"] == "policy" and "allowedRoles" in final["error"]["message"]
    assert stack.tenant.group_members(group) == []


def test_admins_can_allow_list_a_role_assignable_group_that_confers_nothing_gated(stack: Stack) -> None:
    helpers = tier0_group(stack, "29232cdf-9323-42fd-ade2-1d097af3e4de")  # Exchange Administrator
    without = body_of(post(stack, ALICE, groups=[helpers]))
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{without['id']}", headers=ALICE))["status"] == "AwaitingApproval"
    assert put_policy(stack, TENANT, {"groupsWithoutApproval": [helpers]}).status_code == 200
    allowed = body_of(post(stack, ALICE, groups=[helpers], ticketId="4712"))
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{allowed['id']}", headers=ALICE))["status"] == "Active"


def test_a_ticket_pattern_cannot_make_a_request_slow(stack: Stack) -> None:
    """A backtracking engine needs minutes for this pattern and ticket; RE2's linear time answers at once."""
    import time

    assert put_policy(stack, TENANT, {"ticketPattern": "^(a+)+$"}).status_code == 200
    started = time.monotonic()
    response = post(stack, ALICE, ticketId="a" * 40 + "!")
    assert time.monotonic() - started < 5
    assert response.status_code == 403
    assert body_of(response)["errors"][0]["rule"] == "ticketPattern"


def test_a_policy_larger_than_a_table_property_is_a_413_and_nothing_changes(stack: Stack) -> None:
    huge = {"allowedRoles": [f"Role number {n:06d} with a long name" for n in range(3000)]}
    response = put_policy(stack, "default", huge)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert body_of(stack.call("GET", "/api/jit/policies/default", headers=ALICE))["version"] == 0


def test_the_inbox_says_why_a_caller_may_not_decide(stack: Stack) -> None:
    own = principal("ann@msp.com", "Jit.Approver", "Jit.Requester")
    mine = body_of(stack.post_request(valid_request(roles=["Global Administrator"]), headers=own))
    theirs = body_of(post(stack, ALICE, roles=["Global Administrator"], ticketId="4712"))
    inbox = {g["id"]: g for g in body_of(stack.call("GET", "/api/jit/approvals", headers=own))["value"]}
    assert inbox[mine["id"]]["canDecide"] is False
    assert "requester" in inbox[mine["id"]]["cannotDecideReason"]
    assert inbox[theirs["id"]]["canDecide"] is True and "cannotDecideReason" not in inbox[theirs["id"]]
    assert any("Global Administrator" in r for r in inbox[theirs["id"]]["approvalReasons"])
