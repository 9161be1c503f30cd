"""The audit trail: per-grant (and per-subject) chains signed with the audit key, written in the same transaction as
the change they record, anchored in write-once checkpoints outside the table. Tampering of every kind is detected and
named; a crash between any two storage calls leaves state and audit in agreement; appends in one tenant don't fight."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from jit.adapters import audit_chain
from jit.adapters.audit_store import TableAuditLog
from jit.domain.audit import AuditEntry
from jit.domain.grant import Status
from jit.domain.work import Step, WorkItem
from tests.conftest import OTHER_TENANT, TENANT, TENANT_GUID, Stack, body_of, valid_request


def grants_table(stack: Stack) -> TableClient:
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    return service.get_table_client(stack.services.settings.grants_table)


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


def chain_rows(stack: Stack, chain: str) -> list[Any]:
    prefix = audit_chain.chain_prefix(chain)
    return list(
        grants_table(stack).query_entities(
            "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
            parameters={"p": TENANT_GUID, "low": prefix, "high": prefix[:-1] + "}"},
        )
    )


def checkpoint(stack: Stack) -> None:
    stack.host.fire("audit_checkpoint")


def test_a_grant_lifecycle_gives_one_intact_chain_of_its_own(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    entries, verification, intact = read_trail(stack)
    own = [e for e in entries if e["chain"] == grant["id"]]
    actions = [e["action"] for e in own]
    assert actions[0] == "grant.Scheduled"
    assert {"grant.Provisioning", "grant.Active", "grant.Expiring", "grant.Revoked"} <= set(actions)
    # Every directory write is there too, in the same chain.
    assert "directory.account.create" in actions and "directory.access.grant" in actions
    assert verification["intact"] is True and verification["problems"] == []
    assert intact == "true"
    # One unbroken chain: 1, 2, 3 … each linked to the one before by its signature.
    assert [e["sequence"] for e in own] == list(range(1, len(own) + 1))
    assert own[0]["prevHash"] == "0" * 64
    for before, after in itertools.pairwise(own):
        assert after["prevHash"] == before["hash"]
    revoked = next(e for e in own if e["action"] == "grant.Expiring")
    assert revoked["tenantId"] == TENANT_GUID
    assert "work done early" in revoked["detail"]
    # Every transition of the grant has its entry, once.
    transitions = [f"grant.{h['to']}" for h in grant["history"]]
    assert [a for a in actions if a.startswith("grant.") and a[6].isupper()] == transitions


def test_an_edited_entry_is_detected_at_its_place(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    victim = rows[2]
    grants_table(stack).upsert_entity({**victim, "Detail": "nothing to see"}, mode=UpdateMode.REPLACE)
    _, verification, intact = read_trail(stack)
    assert intact == "false"
    assert verification["brokenAt"] == f"{grant['id']}#3"
    assert "altered or forged" in verification["problem"]


def test_an_entry_re_signed_without_the_key_is_detected(stack: Stack) -> None:
    """Somebody who can write to the table can recompute any unkeyed hash; without the audit key a forged entry
    still does not verify."""
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    victim = rows[1]
    forged = {**victim, "Actor": "someone else"}
    parsed = audit_chain.parse_entry_key(victim["RowKey"])
    assert parsed is not None
    fields = audit_chain.hashed_fields(forged, *parsed)
    # What an unkeyed hash chain would accept: SHA-256 of the previous hash and the fields, recomputed.
    forged["Hash"] = hashlib.sha256((victim["PrevHash"] + json.dumps(fields, sort_keys=True, separators=(",", ":"))).encode()).hexdigest()
    grants_table(stack).upsert_entity(forged, mode=UpdateMode.REPLACE)
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert verification["brokenAt"] == f"{grant['id']}#2"


def test_an_appended_forgery_is_detected(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    last = rows[-1]
    sequence = len(rows) + 1
    fake = {**last, "RowKey": audit_chain.entry_key(grant["id"], sequence), "Action": "grant.Approved", "PrevHash": last["Hash"]}
    fake["Hash"] = audit_chain.signature(b"not the audit key, but 32 bytes.", last["Hash"], audit_chain.hashed_fields(fake, grant["id"], sequence))
    grants_table(stack).create_entity(fake)
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert any(f"entry {sequence} of {grant['id']} was altered or forged" in p for p in verification["problems"])


def test_a_deleted_entry_is_detected(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    grants_table(stack).delete_entity(TENANT_GUID, rows[3]["RowKey"])
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert verification["brokenAt"] == f"{grant['id']}#4"
    assert "missing" in verification["problem"]


def test_reordered_entries_are_detected(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    a, b = rows[1], rows[2]
    table = grants_table(stack)
    table.upsert_entity({**b, "RowKey": a["RowKey"]}, mode=UpdateMode.REPLACE)
    table.upsert_entity({**a, "RowKey": b["RowKey"]}, mode=UpdateMode.REPLACE)
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert verification["brokenAt"] == f"{grant['id']}#2"


def test_cut_tail_entries_and_a_rolled_back_head_are_named_by_the_checkpoint(stack: Stack) -> None:
    """The newest entries deleted and the grant's head set back to the last one kept: every remaining signature
    verifies and the record agrees; the checkpoint outside the table does not."""
    grant = full_lifecycle(stack)
    checkpoint(stack)
    rows = chain_rows(stack, grant["id"])
    table = grants_table(stack)
    for row in rows[-3:]:
        table.delete_entity(TENANT_GUID, row["RowKey"])
    kept = rows[-4]
    record = next(
        e for e in table.query_entities("PartitionKey eq @p and Id eq @id", parameters={"p": TENANT_GUID, "id": grant["id"]})
    )
    parsed = audit_chain.parse_entry_key(kept["RowKey"])
    assert parsed is not None
    table.upsert_entity({**record, "AuditSequence": parsed[1], "AuditHash": kept["Hash"]}, mode=UpdateMode.REPLACE)
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    first_cut = len(rows) - 2
    assert any(f"entries {first_cut}-{len(rows)} of {grant['id']} were cut: a checkpoint of" in p for p in verification["problems"])


def test_cut_tail_entries_without_rolling_back_the_head_are_named_by_the_record(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    rows = chain_rows(stack, grant["id"])
    grants_table(stack).delete_entity(TENANT_GUID, rows[-1]["RowKey"])
    _, verification, _ = read_trail(stack)
    assert any(f"entries {len(rows)}-{len(rows)} of {grant['id']} were cut: its record counts" in p for p in verification["problems"])


def test_a_whole_grant_deleted_with_its_chain_is_named(stack: Stack) -> None:
    grant = full_lifecycle(stack)
    checkpoint(stack)
    table = grants_table(stack)
    for row in list(table.query_entities("PartitionKey eq @p", parameters={"p": TENANT_GUID})):
        if grant["id"] in row["RowKey"] or row.get("Id") == grant["id"]:
            table.delete_entity(TENANT_GUID, row["RowKey"])
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert any(p.startswith(f"chain {grant['id']} is missing") for p in verification["problems"])


def test_a_tenants_whole_partition_deleted_is_named(stack: Stack) -> None:
    full_lifecycle(stack)
    checkpoint(stack)
    table = grants_table(stack)
    registration = next(table.query_entities("PartitionKey eq @p and RowKey eq '~r|registration'", parameters={"p": TENANT_GUID}))
    for row in list(table.query_entities("PartitionKey eq @p", parameters={"p": TENANT_GUID})):
        table.delete_entity(TENANT_GUID, row["RowKey"])
    table.create_entity(registration)  # the registration alone is put back, so the tenant can still be named
    _, verification, _ = read_trail(stack)
    assert verification["intact"] is False
    assert verification["chains"] == 0
    assert any("is missing" in p for p in verification["problems"])


def test_an_altered_checkpoint_is_reported(stack: Stack) -> None:
    full_lifecycle(stack)
    checkpoint(stack)
    container = stack.services.storage.container(stack.services.settings.checkpoint_container)
    [blob] = [b.name for b in container.list_blobs(name_starts_with=f"{TENANT_GUID}/")]
    body = json.loads(container.download_blob(blob).readall())
    body["chains"] = {}
    container.upload_blob(blob, json.dumps(body), overwrite=True)  # Azure's WORM policy forbids this; Azurite does not
    _, verification, _ = read_trail(stack)
    assert any("does not verify" in p for p in verification["problems"])


# Atomic: a change and its entry together, or neither ----------------------------------------------------------


class Killed(BaseException):
    """The writer dies here (BaseException: nothing in the product catches it)."""


class DyingTable:
    """The grants table, dying before its n-th storage call."""

    def __init__(self, real: TableClient, kill_at: int) -> None:
        self._real = real
        self.kill_at = kill_at
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.kill_at:
                raise Killed(f"killed before storage call {self.kill_at} ({name})")
            return attribute(*args, **kwargs)

        return call


def transitions_and_entries_agree(stack: Stack, grant_id: str) -> None:
    grant = stack.services.grants.get(grant_id)
    entries, verification, _ = read_trail(stack)
    assert verification["intact"] is True, verification
    recorded = [e["action"] for e in entries if e["chain"] == grant_id and e["action"].startswith("grant.") and e["action"][6].isupper()]
    assert recorded == [f"grant.{t.to_status.value}" for t in grant.history]


# Provisioning a new user with a TAP makes 5 calls to the grants table: the read, the claim (-> Provisioning), the
# account's intent, the writes' intent, and the final save (access, sealed pass, Active and their entries).
# Provisioning reads the grant, claims it with its intent, and stores the end: three calls to the grants table.
@pytest.mark.parametrize("kill_at", range(1, 4))
def test_a_crash_between_any_two_storage_calls_leaves_state_and_audit_in_agreement(stack: Stack, kill_at: int) -> None:
    created = body_of(stack.post_request(valid_request(startDateTime=(stack.clock.now() + timedelta(minutes=1)).isoformat())))
    stack.clock.advance(minutes=2)
    repository = stack.services.grants
    real = repository._grants  # type: ignore[attr-defined]
    dying = DyingTable(real, kill_at)
    repository._grants = dying  # type: ignore[attr-defined]
    item = WorkItem(TENANT_GUID, created["id"], Step.PROVISION)
    killed = False
    try:
        stack.host.run(stack.services.lifecycle.handle(item))
    except Killed:
        killed = True
    finally:
        repository._grants = real  # type: ignore[attr-defined]
    assert killed, f"only {dying.calls} storage calls: nothing to kill at {kill_at}"
    transitions_and_entries_agree(stack, created["id"])
    # And the next delivery (after the dead worker's lease) finishes the job, still in agreement.
    stack.clock.advance(minutes=6)
    stack.host.run(stack.services.lifecycle.handle(item))
    assert stack.services.grants.get(created["id"]).status is Status.ACTIVE
    transitions_and_entries_agree(stack, created["id"])


def test_extend_and_its_entry_commit_together_or_not_at_all(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    stack.drain()
    end = stack.services.grants.get(grant["id"]).request.end
    repository = stack.services.grants
    real = repository._grants  # type: ignore[attr-defined]

    class FailingTransaction:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def submit_transaction(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("storage went away")

    repository._grants = FailingTransaction()  # type: ignore[attr-defined]
    try:
        response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": (end + timedelta(hours=1)).isoformat()})
    finally:
        repository._grants = real  # type: ignore[attr-defined]
    assert response.status_code == 500
    assert stack.services.grants.get(grant["id"]).request.end == end  # nothing saved
    entries, verification, _ = read_trail(stack)
    assert verification["intact"] is True
    assert not any(e["action"] == "grant.extended" for e in entries)


# No contention: appends to different grants of one tenant never fight ----------------------------------------


def test_appends_to_many_grants_of_one_tenant_do_not_conflict(stack: Stack) -> None:
    ids = [body_of(stack.post_request(valid_request(ticketId=f"T{i}", startDateTime=(stack.clock.now() + timedelta(hours=1)).isoformat())))["id"] for i in range(12)]
    repository = stack.services.grants
    real = repository._grants  # type: ignore[attr-defined]
    attempts = {"n": 0}
    lock = threading.Lock()

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def submit_transaction(self, *args: Any, **kwargs: Any) -> Any:
            with lock:
                attempts["n"] += 1
            return real.submit_transaction(*args, **kwargs)

    repository._grants = Counting()  # type: ignore[attr-defined]
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda i: stack.services.lifecycle.revoke(i, actor="ops", reason="batch cancel"), ids))
    finally:
        repository._grants = real  # type: ignore[attr-defined]
    assert attempts["n"] == len(ids)  # one transaction each: no retry, no lock on the tenant
    assert all(stack.services.grants.get(i).status is Status.CANCELLED for i in ids)
    assert read_trail(stack)[1]["intact"] is True


# Other subjects, other tenants, the earlier trail ---------------------------------------------------------------


def test_policy_and_template_edits_have_chains_of_their_own(stack: Stack) -> None:
    assert stack.call("PUT", f"/api/jit/policies/{TENANT}", {"ticketRequired": True}).status_code == 200
    assert stack.call("PUT", f"/api/jit/templates/mailbox?tenantId={TENANT}", {"roles": ["Exchange Administrator"]}).status_code == 201
    entries, verification, _ = read_trail(stack)
    assert {(e["chain"], e["action"]) for e in entries} >= {("policy", "policy.updated"), ("template:mailbox", "template.saved")}
    assert verification["intact"] is True
    global_entries, _, _ = read_trail(stack, "tenantId=global")
    assert global_entries == []  # the tenant's policy is the tenant's, not the default


def test_tenants_have_trails_of_their_own_and_the_range_filters(stack: Stack) -> None:
    body_of(stack.post_request(valid_request()))
    body_of(stack.post_request(valid_request(tenantId=OTHER_TENANT)))
    fabrikam = stack.services.tenants.find(OTHER_TENANT)
    assert fabrikam is not None
    entries, verification, _ = read_trail(stack, "tenantId=FABRIKAM.onmicrosoft.com")
    assert {e["tenantId"] for e in entries} == {fabrikam.id}
    assert verification["intact"] is True
    now = stack.clock.now()
    later, much_later = (now + timedelta(hours=1)).isoformat(), (now + timedelta(hours=2)).isoformat()
    entries, _, _ = read_trail(stack, f"tenantId={TENANT}&from={later.replace('+', '%2B')}&to={much_later}")
    assert entries == []
    # An offset's "+" left unencoded in the query arrives as a space, and is still read as meant.
    around = f"from={(now - timedelta(minutes=1)).isoformat()}&to={(now + timedelta(minutes=1)).isoformat()}"
    entries, _, _ = read_trail(stack, f"tenantId={TENANT}&{around}")
    assert any(e["action"] == "grant.Scheduled" for e in entries)


def test_the_earlier_trail_kept_under_a_domain_name_is_still_read_and_verified(stack: Stack) -> None:
    legacy = TableAuditLog(TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"]).create_table_if_not_exists(stack.services.settings.audit_table))
    legacy.append(AuditEntry(stack.clock.now(), TENANT, "01JD0000000000000000000001", "old", "grant.Scheduled"))
    entries, verification, _ = read_trail(stack)
    assert any(e["chain"] == f"legacy:{TENANT}" and e["actor"] == "old" for e in entries)
    assert verification["intact"] is True


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
        (f"tenantId={TENANT}&month=2024-01&format=xlsx", "format"),
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
    assert report["tenantId"] == TENANT_GUID
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
            "requestedBy": "tech@msp.com",
        }
    ]
    assert report["rows"][0]["user"].startswith("jit-")
    elsewhere = body_of(stack.call("GET", f"/api/jit/reports/monthly?tenantId={TENANT}&month=2001-01"))
    assert elsewhere["rows"] == []


def test_the_monthly_report_downloads_as_csv_that_cannot_run_formulas(stack: Stack) -> None:
    granted = full_lifecycle(stack)
    month = next(h["at"] for h in granted["history"] if h["to"] == "Active")[:7]
    response = stack.call("GET", f"/api/jit/reports/monthly?tenantId={TENANT}&month={month}&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_body().decode())))
    assert rows[0][:3] == ["grantId", "user", "roles"]
    assert rows[1][0] == granted["id"]

