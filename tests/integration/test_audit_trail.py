"""The hash-chained audit trail and the monthly report, through the functions of function_app.py against real Azurite."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from jit.adapters.audit_store import HEAD_KEY, TableAuditLog, entry_hash, hashed_fields
from jit.domain.audit import AuditEntry
from tests.conftest import TENANT, Stack, body_of, valid_request


def audit_table(stack: Stack) -> TableClient:
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    return service.get_table_client(stack.services.settings.audit_table)


def read_trail(stack: Stack, query: str = f"tenantId={TENANT}") -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The endpoint's entries, its verification line and its X-Audit-Intact header."""
    response = stack.call("GET", f"/api/jit/audit?{query}")
    assert response.status_code == 200, response.get_body()
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_body().decode().splitlines()]
    return lines[:-1], lines[-1]["verification"], response.headers["X-Audit-Intact"]


def full_lifecycle(stack: Stack) -> dict[str, Any]:
    """POST, provision to Active, 90 minutes of access, revoke, expire to Revoked."""
    grant = body_of(stack.post_request(valid_request()))
    stack.drain()
    stack.clock.advance(minutes=90)
    assert stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "work done early"}).status_code == 202
    stack.drain()
    ended = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert ended["status"] == "Revoked"
    return ended


def append(log: TableAuditLog, at: datetime, detail: str, tenant: str = TENANT) -> None:
    log.append(AuditEntry(at=at, tenant_id=tenant, grant_id="", actor="test", action="test.append", detail=detail))


def test_a_grant_lifecycle_gives_an_intact_chain(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    entries, verification, intact = read_trail(stack)
    actions = [e["action"] for e in entries]
    assert actions[0] == "grant.Scheduled"
    assert {"grant.Provisioning", "grant.Active", "grant.Expiring", "grant.Revoked"} <= set(actions)
    assert verification == {"intact": True, "checked": len(entries), "brokenAt": None, "problem": None}
    assert intact == "true"
    # One unbroken chain: 1, 2, 3 … each linked to the one before by its hash.
    assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prevHash"] == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after["prevHash"] == before["hash"]
    assert len({e["hash"] for e in entries}) == len(entries)
    revoked = next(e for e in entries if e["action"] == "grant.Expiring")
    assert revoked["grantId"] == grant["id"]
    assert revoked["tenantId"] == TENANT
    assert "work done early" in revoked["detail"]
    assert set(entries[0]) == {
        "at",
        "sequence",
        "tenantId",
        "grantId",
        "actor",
        "action",
        "outcome",
        "detail",
        "hash",
        "prevHash",
    }
    # The adapter's own view agrees, oldest first.
    assert [e.action for e in stack.services.audit.entries(TENANT)] == actions


def test_an_edited_entry_is_detected_at_its_sequence(stack: Stack) -> None:
    full_lifecycle(stack)
    table = audit_table(stack)
    row = table.get_entity(TENANT, "000000000003")
    row["Detail"] = "nothing to see here"
    table.update_entity(row, mode=UpdateMode.REPLACE)

    entries, verification, intact = read_trail(stack)
    assert intact == "false"
    assert verification["intact"] is False
    assert verification["brokenAt"] == 3
    assert "altered" in verification["problem"]
    assert next(e for e in entries if e["sequence"] == 3)["detail"] == "nothing to see here"


def test_an_edited_entry_with_a_recomputed_hash_is_detected_at_the_next_one(stack: Stack) -> None:
    full_lifecycle(stack)
    table = audit_table(stack)
    row = table.get_entity(TENANT, "000000000002")
    row["Actor"] = "somebody else"
    row["Hash"] = entry_hash(row["PrevHash"], hashed_fields(row, 2))  # the forger rehashes the entry it edited …
    table.update_entity(row, mode=UpdateMode.REPLACE)
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert verification["brokenAt"] == 3  # … but entry 3 still carries the hash of the original
    assert "does not follow" in verification["problem"]


def test_a_deleted_entry_is_detected(stack: Stack) -> None:
    full_lifecycle(stack)
    before, _, _ = read_trail(stack)
    audit_table(stack).delete_entity(TENANT, "000000000004")

    entries, verification, intact = read_trail(stack)
    assert intact == "false"
    assert verification["brokenAt"] == 4
    assert "missing" in verification["problem"]
    assert len(entries) == len(before) - 1
    assert 4 not in [e["sequence"] for e in entries]


def test_deleting_the_last_entry_is_detected(stack: Stack) -> None:
    full_lifecycle(stack)
    before, _, _ = read_trail(stack)
    last = before[-1]["sequence"]
    audit_table(stack).delete_entity(TENANT, f"{last:012d}")

    entries, verification, intact = read_trail(stack)
    assert [e["sequence"] for e in entries] == list(range(1, last))  # what is left still links up …
    assert intact == "false"  # … but the head knows there was one more
    assert verification["brokenAt"] == last
    assert "missing" in verification["problem"]


def test_an_append_after_a_deletion_does_not_hide_it(stack: Stack) -> None:
    for n in range(3):
        append(stack.services.audit, stack.clock.now(), f"entry {n}")
    audit_table(stack).delete_entity(TENANT, "000000000003")
    append(stack.services.audit, stack.clock.now(), "after the deletion")
    entries, verification, _ = read_trail(stack)
    assert [e["sequence"] for e in entries] == [1, 2, 4]  # the slot of the deleted entry is not reused
    assert verification["brokenAt"] == 3


def test_concurrent_appends_give_one_unbroken_chain(stack: Stack) -> None:
    threads, each = 8, 10
    connection = stack.env["AzureWebJobsStorage"]
    table_name = stack.services.settings.audit_table
    now = stack.clock.now()
    start = threading.Barrier(threads)

    def instance(worker: int) -> None:
        # Each thread is a function instance of its own: its own client, its own connections.
        log = TableAuditLog(TableClient.from_connection_string(connection, table_name))
        start.wait()
        for n in range(each):
            append(log, now, f"worker {worker} entry {n}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(instance, w) for w in range(threads)]:
            done.result()  # re-raises what an instance raised (a ConcurrencyConflict, say)

    details = [e.detail for e in stack.services.audit.entries(TENANT)]
    assert sorted(details) == sorted(f"worker {w} entry {n}" for w in range(threads) for n in range(each))  # none lost
    entries, verification, intact = read_trail(stack)
    assert [e["sequence"] for e in entries] == list(range(1, threads * each + 1))
    assert verification == {"intact": True, "checked": threads * each, "brokenAt": None, "problem": None}
    assert intact == "true"
    # Each worker's own entries keep the order it appended them in.
    for w in range(threads):
        mine = [d for d in details if d.startswith(f"worker {w} ")]
        assert mine == [f"worker {w} entry {n}" for n in range(each)]


def test_an_entry_stored_past_the_head_is_adopted_by_the_next_append(stack: Stack) -> None:
    """Entry and head move in one transaction; an entry left past the head (a writer that wrote the two separately
    and died in between) is linked in, not overwritten, by the next append."""
    from jit.adapters.audit_store import _to_entity
    from jit.domain.audit import AuditEntry

    log = stack.services.audit
    append(log, stack.clock.now(), "first")
    head = audit_table(stack).get_entity(TENANT, HEAD_KEY)
    orphan = AuditEntry(stack.clock.now(), TENANT, "g", "tester", "test.entry", "success", "second")
    audit_table(stack).create_entity(_to_entity(orphan, 2, str(head["Hash"])))
    assert audit_table(stack).get_entity(TENANT, HEAD_KEY)["Sequence"] == 1  # the head lags its entries

    append(log, stack.clock.now(), "third")
    entries, verification, _ = read_trail(stack)
    assert [(e["sequence"], e["detail"]) for e in entries] == [(1, "first"), (2, "second"), (3, "third")]
    assert entries[2]["prevHash"] == entries[1]["hash"]
    assert verification["intact"] is True
    assert audit_table(stack).get_entity(TENANT, HEAD_KEY)["Sequence"] == 3


def test_tenants_have_chains_of_their_own_and_the_range_filters(stack: Stack) -> None:
    log = stack.services.audit
    append(log, stack.clock.now(), "contoso")
    append(log, stack.clock.now(), "fabrikam", tenant="fabrikam.onmicrosoft.com")
    entries, verification, _ = read_trail(stack, "tenantId=FABRIKAM.onmicrosoft.com")
    assert [(e["sequence"], e["detail"]) for e in entries] == [(1, "fabrikam")]
    assert verification["intact"] is True

    now = stack.clock.now()
    later, much_later = (now + timedelta(hours=1)).isoformat(), (now + timedelta(hours=2)).isoformat()
    entries, verification, _ = read_trail(stack, f"tenantId={TENANT}&from={later.replace('+', '%2B')}&to={much_later}")
    assert entries == []
    assert verification["checked"] == 1  # the whole chain is verified whatever the range
    # An offset's "+" left unencoded in the query arrives as a space, and is still read as meant.
    around = f"from={(now - timedelta(minutes=1)).isoformat()}&to={(now + timedelta(minutes=1)).isoformat()}"
    entries, _, _ = read_trail(stack, f"tenantId={TENANT}&{around}")
    assert [e["detail"] for e in entries] == ["contoso"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "tenantId"),
        ("tenantId=contoso.com", "tenantId"),
        (f"tenantId={TENANT}&from=yesterday", "from"),
        (f"tenantId={TENANT}&from=2024-01-01T00:00:00", "from"),  # no offset
        (f"tenantId={TENANT}&to=2024-13-01T00:00:00Z", "to"),
        (f"tenantId={TENANT}&from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from"),
    ],
)
def test_bad_audit_parameters_are_a_400_naming_the_field(stack: Stack, query: str, field: str) -> None:
    response = stack.call("GET", f"/api/jit/audit?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in body_of(response)["errors"]] == [field]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("month=2024-01", "tenantId"),
        (f"tenantId={TENANT}", "month"),
        (f"tenantId={TENANT}&month=2024-13", "month"),
        (f"tenantId={TENANT}&month=24-01", "month"),
    ],
)
def test_bad_report_parameters_are_a_400_naming_the_field(stack: Stack, query: str, field: str) -> None:
    response = stack.call("GET", f"/api/jit/reports/monthly?{query}")
    assert response.status_code == 400
    assert [e["field"] for e in body_of(response)["errors"]] == [field]


def test_the_monthly_report_lists_who_had_which_role_for_how_long_and_why(stack: Stack) -> None:
    granted = full_lifecycle(stack)
    # A grant cancelled before it started gave no access and is not in the report.
    later = (stack.clock.now() + timedelta(hours=1)).isoformat()
    cancelled = body_of(stack.post_request(valid_request(startDateTime=later, reason="Never used, cancelled")))
    assert stack.call("POST", f"/api/jit/requests/{cancelled['id']}/revoke").status_code == 200

    active_at = next(h["at"] for h in granted["history"] if h["to"] == "Active")
    month = active_at[:7]
    response = stack.call("GET", f"/api/jit/reports/monthly?tenantId={TENANT.upper()}&month={month}")
    assert response.status_code == 200
    report = body_of(response)
    assert report["tenantId"] == TENANT
    assert report["month"] == month
    assert report["rows"] == [
        {
            "grantId": granted["id"],
            "user": granted["access"]["user"]["userPrincipalName"],
            "roles": ["Exchange Administrator"],
            "groups": [],
            "from": active_at,
            "to": granted["revokedDateTime"],
            "durationMinutes": 90.0,
            "reason": "Mailbox migration for ticket 4711",
            "ticketId": "4711",
            "status": "Revoked",
        }
    ]
    assert report["rows"][0]["user"].startswith("jit-")

    elsewhere = body_of(stack.call("GET", f"/api/jit/reports/monthly?tenantId={TENANT}&month=2001-01"))
    assert elsewhere["rows"] == []
