"""Grants in Azure Table Storage, each change committed together with its audit entries.

Layout: table `<prefix>Grants` holds one partition per tenant (its GUID). A grant's row key is its id mirrored so a
partition reads newest first. Beside the grants, the same partition holds rows whose keys start with `~` (sorting
after every grant): the grants' audit chains (`~a|`, see `audit_chain.py`), checkpoint buckets (`~c|`), sealed
credentials waiting for their one retrieval (`~s|<grant>`), and access ledgers of existing accounts (`~l|<account>`).
Because they share the partition, a grant's update, its audit entries, its sealed credential and its ledger commit
in one entity-group transaction: together or not at all, in one round trip, conditional on the grant's ETag.

Table `<prefix>GrantIndex` maps every grant id to its tenant in one partition (same newest-first keys), which serves
look-ups by id alone and the cross-tenant list, and keeps the list of tenants served.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys, ChainHead
from jit.adapters.grant_codec import from_entity, to_entity
from jit.domain.audit import AuditEntry, transition_entries
from jit.domain.errors import ConcurrencyConflict, Conflict, FieldError, NotFound, ValidationFailed
from jit.domain.grant import Grant, Stamp, Status
from jit.domain.ids import grant_id_from_key, is_grant_id, newest_first_key
from jit.domain.ledger import Ledger, LedgerEntry, LedgerWrite, Origin
from jit.services.ports import GrantPage, SealedSecret, StaleGrant

INDEX_PARTITION = "grant"
TENANT_PARTITION = "tenant"
MAX_UPDATE_ATTEMPTS = 8
SECRET_PREFIX = "~s|"  # noqa: S105 - a row key prefix, not a secret
LEDGER_PREFIX = "~l|"
# Only grants: every other row of a tenant's partition starts with "~".
_GRANTS_ONLY = "RowKey lt '~'"
_REPLACE_IF_UNCHANGED = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}


class TableGrantRepository:
    def __init__(self, grants: TableClient, index: TableClient, keys: AuditKeys) -> None:
        self._grants = grants
        self._index = index
        self._keys = keys
        # Which tenant a grant belongs to never changes, so look-ups by id are remembered per process.
        self._tenant_of: dict[str, str] = {}
        self._known_tenants: set[str] = set()

    # Writing ----------------------------------------------------------------------------------------------------

    def add(self, grant: Grant, entries: Sequence[AuditEntry] = ()) -> Grant:
        """Store a new grant with its first audit entries (its opening transition, and any given)."""
        key = newest_first_key(grant.id)
        try:
            self._index.create_entity({"PartitionKey": INDEX_PARTITION, "RowKey": key, "TenantId": grant.tenant_id})
        except ResourceExistsError:
            if self._locate(grant.id) != grant.tenant_id:
                raise Conflict(f"grant id {grant.id} is taken") from None
        if grant.tenant_id not in self._known_tenants:
            # Every tenant the system ever served, for checks that must look at all of them (drift, checkpoints).
            self._index.upsert_entity({"PartitionKey": TENANT_PARTITION, "RowKey": grant.tenant_id})
            self._known_tenants.add(grant.tenant_id)
        rows, head = audit_chain.append(
            grant.tenant_id, grant.id, ChainHead(), [*transition_entries(None, grant), *entries], self._keys
        )
        operations: list[Any] = [("create", to_entity(grant, chain_sequence=head.sequence, chain_hash=head.hash))]
        operations += [("create", row) for row in rows]
        operations.append(self._bucket(grant.tenant_id, grant.id, head, [*transition_entries(None, grant), *entries]))
        try:
            results = self._grants.submit_transaction(operations)
        except TableTransactionError as failed:
            if failed.status_code == 409:
                raise Conflict(f"grant {grant.id} exists already") from None
            raise
        self._tenant_of[grant.id] = grant.tenant_id
        return replace(grant, stamp=Stamp(_etag(results[0]), head.sequence, head.hash))

    def save(
        self,
        before: Grant,
        after: Grant,
        entries: Sequence[AuditEntry] = (),
        *,
        secret: SealedSecret | None = None,
        drop_secret: SealedSecret | None = None,
        ledger: LedgerWrite | None = None,
    ) -> Grant:
        """Store `after` in place of `before`, appending its new transitions and `entries` to its audit chain, in one
        transaction; StaleGrant when the grant (or the ledger, or the secret) changed since they were read."""
        if before.stamp is None:
            raise ValueError(f"grant {before.id} was not read from the store")
        # In the order things happened: what the work did (its directory writes) before the transition it led to.
        appended = [*entries, *transition_entries(before, after)]
        if after == before and not appended and secret is None and drop_secret is None and ledger is None:
            return before
        partition = after.tenant_id
        head = ChainHead(before.stamp.chain_sequence, before.stamp.chain_hash or audit_chain.GENESIS)
        rows, head = audit_chain.append(partition, after.id, head, appended, self._keys)
        operations: list[Any] = [
            (
                "update",
                to_entity(after, chain_sequence=head.sequence, chain_hash=head.hash),
                {**_REPLACE_IF_UNCHANGED, "etag": before.stamp.etag},
            )
        ]
        operations += [("create", row) for row in rows]
        if rows:
            operations.append(self._bucket(partition, after.id, head, appended))
        if secret is not None:
            operations.append(("upsert", _secret_entity(partition, after.id, secret), {"mode": UpdateMode.REPLACE}))
        if drop_secret is not None and drop_secret.etag:
            key = {"PartitionKey": partition, "RowKey": SECRET_PREFIX + after.id}
            operations.append(("delete", key, {"etag": drop_secret.etag, "match_condition": MatchConditions.IfNotModified}))
        if ledger is not None and ledger.after != ledger.before:
            operations.append(_ledger_operation(partition, ledger))
        try:
            results = self._grants.submit_transaction(operations)
        except TableTransactionError as failed:
            if failed.status_code in (404, 409, 412):
                raise StaleGrant(after.id) from None
            raise
        return replace(after, stamp=Stamp(_etag(results[0]), head.sequence, head.hash))

    def update(
        self,
        grant_id: str,
        change: Callable[[Grant], Grant | tuple[Grant, list[AuditEntry]]],
        tenant_id: str | None = None,
    ) -> Grant:
        """Apply `change` to the latest version and store it (with the audit entries it returns, if any), re-reading
        and re-applying on a lost race. `change` returning its argument unchanged stores nothing."""
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = self.get(grant_id, tenant_id)
            result = change(current)
            changed, entries = result if isinstance(result, tuple) else (result, [])
            if changed == current and not entries:
                return current
            try:
                return self.save(current, changed, entries)
            except StaleGrant:
                continue  # somebody else wrote first: read their version and apply the change to it
        raise ConcurrencyConflict(f"grant {grant_id} kept changing; gave up after {MAX_UPDATE_ATTEMPTS} attempts")

    def _bucket(self, partition: str, chain: str, head: ChainHead, entries: Sequence[AuditEntry]) -> Any:
        at = max((e.at for e in entries), default=datetime.now(UTC))
        return ("upsert", audit_chain.bucket_row(partition, chain, head, at), {"mode": UpdateMode.REPLACE})

    # Reading ----------------------------------------------------------------------------------------------------

    def get(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        if not is_grant_id(grant_id):
            raise NotFound(f"grant {grant_id} not found")
        tenant = tenant_id or self._locate(grant_id)
        try:
            entity = self._grants.get_entity(tenant, newest_first_key(grant_id))
        except ResourceNotFoundError:
            raise NotFound(f"grant {grant_id} not found") from None
        return from_entity(entity)

    def secret(self, grant: Grant) -> SealedSecret | None:
        """The grant's sealed credential, if one waits for retrieval."""
        try:
            entity = self._grants.get_entity(grant.tenant_id, SECRET_PREFIX + grant.id)
        except ResourceNotFoundError:
            return None
        expires = entity.get("ExpiresAt")
        return SealedSecret(str(entity["Sealed"]), _utc(expires) if expires else None, entity.metadata["etag"])

    def ledger(self, tenant_id: str, account_id: str) -> Ledger:
        try:
            entity = self._grants.get_entity(tenant_id, LEDGER_PREFIX + account_id.lower())
        except ResourceNotFoundError:
            return Ledger(account_id.lower())
        raw = json.loads(entity.get("Entries") or "{}")
        entries = {
            key: LedgerEntry(Origin(e["origin"]), tuple(e.get("holders", ())), e.get("reference"), e.get("removing"))
            for key, e in raw.items()
        }
        return Ledger(account_id.lower(), entries, entity.metadata["etag"])

    def list(
        self,
        *,
        tenant_id: str | None,
        status: Status | None,
        top: int,
        continuation_token: str | None,
        requester_id: str | None = None,
    ) -> GrantPage:
        token = _decode_token(continuation_token, "tenant" if tenant_id else "all")
        if tenant_id:
            query, params = f"PartitionKey eq @tenant and {_GRANTS_ONLY}", {"tenant": tenant_id}
            if status is not None:
                query, params = query + " and Status eq @status", {**params, "status": status.value}
            if requester_id is not None:
                query, params = query + " and RequestedById eq @requester", {**params, "requester": requester_id}
            pages: Any = self._grants.query_entities(query, parameters=params, results_per_page=top).by_page(token)
            grants = [from_entity(e) for e in next(pages, [])]
            return GrantPage(grants, _encode_token(pages.continuation_token, "tenant"))
        # Across tenants: read one page of the index (newest first), then the grants themselves.
        pages = self._index.query_entities("PartitionKey eq @p", parameters={"p": INDEX_PARTITION}, results_per_page=top).by_page(
            token
        )
        rows = [(grant_id_from_key(e["RowKey"]), e["TenantId"]) for e in next(pages, [])]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = builtins.list(pool.map(lambda row: self._get_or_none(*row), rows))
        grants = [
            g
            for g in found
            if g is not None
            and (status is None or g.status is status)
            and (requester_id is None or g.requester_id == requester_id)
        ]
        return GrantPage(grants, _encode_token(pages.continuation_token, "all"))

    def open_grants_of(self, tenant_id: str, requester_id: str) -> int:
        """Grants of this requester in this tenant that have not ended (one partition, filtered by the service)."""
        query = f"PartitionKey eq @tenant and {_GRANTS_ONLY} and RequestedById eq @requester"
        rows = self._grants.query_entities(query, parameters={"tenant": tenant_id, "requester": requester_id}, select=["Status"])
        return sum(1 for row in rows if not Status(row["Status"]).is_final)

    def live_grants_of_account(self, tenant_id: str, account_id: str) -> frozenset[str]:
        """Ids of grants on this account that have not ended (the access ledger's holders are checked against it)."""
        query = f"PartitionKey eq @tenant and {_GRANTS_ONLY} and AccountId eq @account"
        rows = self._grants.query_entities(
            query, parameters={"tenant": tenant_id, "account": account_id.lower()}, select=["Id", "Status"]
        )
        return frozenset(str(r["Id"]) for r in rows if not Status(r["Status"]).is_final)

    def active_and_recently_ended(self, since: datetime) -> builtins.list[Grant]:
        """Active grants, and grants whose access ended since `since` (a scan: the daily drift check's read)."""
        # Parameters must stand as words of their own: the SDK substitutes "@since", not "@since)".
        query = "Status eq 'Active' or ((Status eq 'Expired' or Status eq 'Revoked') and RevokedAt ge @since )"
        return [from_entity(e) for e in self._grants.query_entities(query, parameters={"since": since.astimezone(UTC)})]

    def tenants(self) -> builtins.list[str]:
        return [e["RowKey"] for e in self._index.query_entities("PartitionKey eq @p", parameters={"p": TENANT_PARTITION})]

    def audit_rows(self, tenant_id: str, prefix: str = audit_chain.ENTRY_PREFIX) -> Iterable[Any]:
        """The tenant's rows whose keys start with `prefix` (audit entries by default), in key order."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return self._grants.query_entities(
            "PartitionKey eq @t and RowKey ge @low and RowKey lt @high", parameters={"t": tenant_id, "low": prefix, "high": upper}
        )

    def _get_or_none(self, grant_id: str, tenant_id: str) -> Grant | None:
        try:
            return self.get(grant_id, tenant_id)
        except NotFound:
            return None

    def _locate(self, grant_id: str) -> str:
        if grant_id in self._tenant_of:
            return self._tenant_of[grant_id]
        try:
            entity = self._index.get_entity(INDEX_PARTITION, newest_first_key(grant_id), select=["TenantId"])
        except ResourceNotFoundError:
            raise NotFound(f"grant {grant_id} not found") from None
        tenant = str(entity["TenantId"])
        self._tenant_of[grant_id] = tenant
        return tenant


def _secret_entity(partition: str, grant_id: str, secret: SealedSecret) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": SECRET_PREFIX + grant_id,
        "Sealed": secret.sealed,
        "ExpiresAt": secret.expires_at,
    }


def _ledger_operation(partition: str, write: LedgerWrite) -> Any:
    ledger = write.after
    entity = {
        "PartitionKey": partition,
        "RowKey": LEDGER_PREFIX + ledger.account_id,
        "Entries": json.dumps(
            {
                key: {
                    k: v
                    for k, v in (
                        ("origin", e.origin.value),
                        ("holders", list(e.holders)),
                        ("reference", e.reference),
                        ("removing", e.removing),
                    )
                    if v
                }
                for key, e in ledger.entries.items()
            }
        ),
    }
    if write.before.etag is None:
        return ("create", entity)
    return ("update", entity, {**_REPLACE_IF_UNCHANGED, "etag": write.before.etag})


def _etag(result: Any) -> str:
    etag = result.get("etag") if isinstance(result, dict) else None
    return str(etag or "")


def _encode_token(token: Any, mode: str) -> str | None:
    if not token:
        return None
    raw = json.dumps({"m": mode, "t": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, mode: str) -> Any:
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if decoded["m"] == mode:
            return decoded["t"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise ValidationFailed([FieldError("continuationToken", "is not a token this list returned")])


def _utc(value: datetime) -> datetime:
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC)
