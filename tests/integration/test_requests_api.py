"""POST/GET/list/revoke through the functions of function_app.py, against real Azurite."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from jit.domain.grant import Status
from tests.conftest import (
    DEFAULT_CALLER,
    OTHER_TENANT,
    TENANT,
    TENANT_GUID,
    Stack,
    audit_entries,
    body_of,
    caller_id,
    principal,
    valid_request,
)


def stored_rows(stack: Stack) -> dict[str, int]:
    """How many entities each of the stack's tables holds (missing tables count as empty)."""
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    prefix = stack.env["JIT_TABLE_PREFIX"]
    counts = {}
    for table in service.list_tables():
        if table.name.startswith(prefix):
            counts[table.name[len(prefix) :]] = len(list(service.get_table_client(table.name).list_entities()))
    return counts


def peek_messages(stack: Stack) -> list[dict[str, Any]]:
    queue = stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"])
    return [json.loads(base64.b64decode(m.content)) for m in queue.peek_messages(max_messages=32)]


def test_post_stores_the_grant_enqueues_its_id_and_answers_202(stack: Stack) -> None:
    before = stored_rows(stack)
    response = stack.post_request(valid_request())
    assert response.status_code == 202
    grant = body_of(response)
    assert grant["status"] == "Scheduled"
    assert response.headers["Location"].endswith(f"/api/jit/requests/{grant['id']}")
    assert int(response.headers["Retry-After"]) > 0
    assert response.mimetype == "application/json"
    after = stored_rows(stack)
    added = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    # The grant, its first audit entry and its checkpoint bucket, in one partition; its index and tenant rows; its
    # wake-up. Nothing else.
    assert {k: v for k, v in added.items() if v} == {"Grants": 3, "GrantIndex": 2, "Schedule": 1}
    # Stored, and queued, under the tenant's GUID, however the request named it; ids only: no name, no UPN.
    assert grant["tenantId"] == TENANT_GUID
    assert peek_messages(stack) == [{"tenantId": TENANT_GUID, "grantId": grant["id"], "step": "provision"}]

    fetched = stack.call("GET", f"/api/jit/requests/{grant['id']}")
    assert fetched.status_code == 202  # still on its way: keep polling
    assert body_of(fetched)["id"] == grant["id"]
    assert body_of(fetched)["reason"] == "Mailbox migration for ticket 4711"


def test_the_queue_trigger_picks_the_grant_up(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    assert stack.drain() == 1
    assert stack.host.failures == []
    after = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert after["status"] == "Active"
    assert [h["to"] for h in after["history"]] == ["Scheduled", "Provisioning", "Active"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (valid_request(tenantId="contoso.com"), "tenantId"),
        (valid_request(extra=1), "extra"),
        (valid_request(duration="PT72H"), "duration"),
        (valid_request(roles=[], groups=[]), "roles"),
        (valid_request(user={"type": "new", "displayName": "A", "userPrincipalName": "not an upn"}), "user.userPrincipalName"),
    ],
)
def test_invalid_requests_get_a_problem_and_write_nothing(stack: Stack, body: Any, field: str) -> None:
    before = stored_rows(stack)
    response = stack.call("POST", "/api/jit/requests", body)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = body_of(response)
    assert problem["status"] == 400
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    assert stored_rows(stack) == before
    assert peek_messages(stack) == []


def test_an_oversize_body_is_refused(make_stack: Any) -> None:
    stack = make_stack(JIT_MAX_BODY_BYTES="2048")
    before = stored_rows(stack)
    response = stack.post_request(valid_request(reason="x" * 3000))
    assert response.status_code == 413
    assert "2048 bytes" in body_of(response)["detail"]
    assert stored_rows(stack) == before


def test_deeply_nested_json_is_a_400_not_a_500(stack: Stack) -> None:
    before = stored_rows(stack)
    body = '{"tenantId": ' + "[" * 5000 + "]" * 5000 + "}"
    response = stack.call("POST", "/api/jit/requests", body)
    assert response.status_code == 400, response.get_body()
    assert body_of(response)["errors"][0]["field"] == "body"
    assert stored_rows(stack) == before


def test_a_form_post_is_refused(stack: Stack) -> None:
    response = stack.call(
        "POST", "/api/jit/requests", "tenantId=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert body_of(response)["errors"][0]["field"] == "body"


def test_idempotency_key_replays_the_same_grant(stack: Stack) -> None:
    body = valid_request()
    first = stack.post_request(body, headers={"Idempotency-Key": "ticket-4711-try"})
    # The same JSON written differently (other key order, spacing) is the same request.
    rewritten = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = stack.call("POST", "/api/jit/requests", rewritten, headers={"Idempotency-Key": "ticket-4711-try"})
    assert first.status_code == again.status_code == 202
    assert body_of(first)["id"] == body_of(again)["id"]
    assert len(stack.services.grants.list(tenant_id=TENANT_GUID, status=None, top=10, continuation_token=None).grants) == 1
    assert len(peek_messages(stack)) == 1


def test_idempotency_key_with_another_body_is_a_conflict(stack: Stack) -> None:
    stack.post_request(valid_request(), headers={"Idempotency-Key": "k1"})
    response = stack.post_request(valid_request(reason="A different reason for this"), headers={"Idempotency-Key": "k1"})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert len(stack.services.grants.list(tenant_id=TENANT_GUID, status=None, top=10, continuation_token=None).grants) == 1


def test_idempotency_keys_belong_to_their_caller(stack: Stack) -> None:
    a = stack.post_request(valid_request(), headers={"Idempotency-Key": "k", **principal("alice@msp.com", "Jit.Requester")})
    b = stack.post_request(valid_request(), headers={"Idempotency-Key": "k", **principal("bob@msp.com", "Jit.Requester")})
    assert body_of(a)["id"] != body_of(b)["id"]
    assert body_of(a)["requestedBy"] == "alice@msp.com"


def test_idempotent_replay_still_works_after_the_start_has_passed(stack: Stack) -> None:
    start = stack.clock.now() + timedelta(minutes=1)
    body = valid_request(startDateTime=start.isoformat())
    first = stack.post_request(body, headers={"Idempotency-Key": "late-retry"})
    stack.clock.advance(minutes=30)  # a replay of the same body would now be "start in the past"
    again = stack.post_request(body, headers={"Idempotency-Key": "late-retry"})
    assert again.status_code == 202
    assert body_of(again)["id"] == body_of(first)["id"]


def test_a_crashed_idempotent_attempt_is_finished_by_its_retry(stack: Stack) -> None:
    # The first attempt claimed its key and died before it stored the grant.
    from jit.services.ports import IdempotencyRecord

    body = valid_request()
    fingerprint = __import__("hashlib").sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    orphan_id = "01JD0000000000000000000042"
    stack.services.intake.idempotency.claim(
        caller_id(DEFAULT_CALLER),
        "crash-key",
        IdempotencyRecord(fingerprint, orphan_id, TENANT_GUID),
        now=stack.clock.now(),
        ttl=timedelta(days=1),
    )
    response = stack.post_request(body, headers={"Idempotency-Key": "crash-key"})
    assert response.status_code == 202
    assert body_of(response)["id"] == orphan_id
    assert stack.call("GET", f"/api/jit/requests/{orphan_id}").status_code == 202


def test_a_future_grant_is_scheduled_and_its_message_waits(stack: Stack) -> None:
    start = stack.clock.now() + timedelta(hours=3)
    grant = body_of(stack.post_request(valid_request(startDateTime=start.isoformat())))
    assert grant["status"] == "Scheduled"
    assert stack.drain() == 0  # the message is invisible until the start
    assert stack.queued() == 1
    fetched = stack.call("GET", f"/api/jit/requests/{grant['id']}")
    assert fetched.status_code == 202


def test_unknown_and_malformed_ids_are_404(stack: Stack) -> None:
    for grant_id in ("01JD0000000000000000000000", "nope", "'; drop table"):
        response = stack.call("GET", f"/api/jit/requests/{grant_id}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_health(stack: Stack) -> None:
    response = stack.call("GET", "/api/health")
    assert response.status_code == 200
    assert body_of(response) == {"status": "healthy"}


def test_unknown_route_and_wrong_method(stack: Stack) -> None:
    assert stack.call("GET", "/api/jit/nothing").status_code == 404
    assert stack.call("DELETE", "/api/jit/requests").status_code == 405


# Listing ----------------------------------------------------------------------------------------------------


def make_grants(stack: Stack, count: int, tenant: str = TENANT) -> list[str]:
    ids = []
    for i in range(count):
        stack.clock.advance(seconds=1)
        ids.append(body_of(stack.post_request(valid_request(tenantId=tenant, ticketId=f"T{i}")))["id"])
    return ids


def test_list_pages_newest_first_within_a_tenant(stack: Stack) -> None:
    ids = make_grants(stack, 7)
    make_grants(stack, 2, tenant=OTHER_TENANT)
    seen: list[str] = []
    url = f"/api/jit/requests?tenantId={TENANT}&top=3"
    pages = 0
    while url:
        page = body_of(stack.call("GET", url))
        pages += 1
        assert len(page["value"]) <= 3
        assert all(g["tenantId"] == TENANT_GUID for g in page["value"])
        seen += [g["id"] for g in page["value"]]
        url = page.get("nextLink", "")
    assert seen == ids[::-1]
    assert pages >= 3


def test_list_across_tenants_is_newest_first(stack: Stack) -> None:
    a = make_grants(stack, 2)
    b = make_grants(stack, 2, tenant=OTHER_TENANT)
    page = body_of(stack.call("GET", "/api/jit/requests?top=10"))
    assert [g["id"] for g in page["value"]] == (a + b)[::-1]


def test_list_filters_by_status(stack: Stack) -> None:
    ids = make_grants(stack, 3)
    stack.call("POST", f"/api/jit/requests/{ids[1]}/revoke", {"reason": "not needed any more"})
    for url in (f"/api/jit/requests?tenantId={TENANT}&status=Cancelled", "/api/jit/requests?status=Cancelled"):
        page = body_of(stack.call("GET", url))
        assert [g["id"] for g in page["value"]] == [ids[1]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("top=0", "top"),
        ("top=101", "top"),
        ("top=x", "top"),
        ("status=Gone", "status"),
        ("tenantId=contoso.com", "tenantId"),
        ("continuationToken=bogus", "continuationToken"),
    ],
)
def test_list_rejects_bad_parameters(stack: Stack, query: str, field: str) -> None:
    response = stack.call("GET", f"/api/jit/requests?{query}")
    assert response.status_code == 400
    assert [e["field"] for e in body_of(response)["errors"]] == [field]


# Revoke -----------------------------------------------------------------------------------------------------


def test_revoking_a_scheduled_grant_cancels_it(stack: Stack) -> None:
    start = stack.clock.now() + timedelta(hours=1)
    grant = body_of(stack.post_request(valid_request(startDateTime=start.isoformat())))
    response = stack.call(
        "POST",
        f"/api/jit/requests/{grant['id']}/revoke",
        {"reason": "change postponed"},
        headers=principal("carol@msp.com", "Jit.Admin"),
    )
    assert response.status_code == 200
    revoked = body_of(response)
    assert revoked["status"] == "Cancelled"
    assert revoked["history"][-1] | {"at": None} == {
        "from": "Scheduled",
        "to": "Cancelled",
        "at": None,
        "actor": "carol@msp.com",
        "reason": "change postponed",
    }
    audit = audit_entries(stack, grant_id=grant["id"])
    assert [e.action for e in audit] == ["grant.Scheduled", "grant.Cancelled"]
    assert audit[-1].actor == "carol@msp.com"


def test_revoking_an_active_grant_starts_its_expiration(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.ACTIVE
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke")
    assert response.status_code == 202  # on its way out: poll until Revoked
    revoked = body_of(response)
    assert revoked["status"] == "Expiring"
    assert revoked["revokeRequestedDateTime"] is not None
    assert {"tenantId": TENANT_GUID, "grantId": grant["id"], "step": "expire"} in peek_messages(stack)
    # Revoking again changes nothing; revoking something final is a conflict.
    assert body_of(stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke"))["history"] == revoked["history"]


def test_revoking_a_final_grant_is_a_conflict_and_unknown_is_404(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request(startDateTime=(stack.clock.now() + timedelta(hours=1)).isoformat())))
    assert stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke").status_code == 200
    again = stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke")
    assert again.status_code == 409
    assert "Cancelled" in body_of(again)["detail"]
    assert stack.call("POST", "/api/jit/requests/01JD0000000000000000000000/revoke").status_code == 404


def test_revoke_rejects_unknown_fields(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"why": "x"})
    assert response.status_code == 400
    assert body_of(response)["errors"][0]["field"] == "why"


def test_a_grant_scheduled_for_later_says_to_come_back_at_its_start(stack: Stack) -> None:
    start = stack.clock.now() + timedelta(minutes=10)
    response = stack.post_request(valid_request(startDateTime=start.isoformat()))
    assert response.status_code == 202
    wait = int(response.headers["Retry-After"])
    assert 10 * 60 <= wait <= 10 * 60 + 2  # not ~120 polls of 5 s before anything can happen
    polled = stack.call("GET", f"/api/jit/requests/{body_of(response)['id']}")
    assert 10 * 60 - 5 <= int(polled.headers["Retry-After"]) <= 10 * 60 + 2


def test_limits_are_said_as_people_say_them(stack: Stack) -> None:
    response = stack.post_request(valid_request(duration="PT9H"))
    assert response.status_code == 400
    [error] = body_of(response)["errors"]
    assert error == {"field": "duration", "pointer": "#/duration", "detail": "must not exceed the maximum of 8 hours"}
