"""Grants in Azure Table Storage.

Layout: table `<prefix>Grants` holds one partition per tenant, RowKey = the grant id mirrored so that a partition
reads newest first. Table `<prefix>GrantIndex` maps every grant id to its tenant in one partition (same newest-first
keys), which serves look-ups by id alone and the cross-tenant list. Every update is conditional on the ETag read.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.domain.errors import ConcurrencyConflict, Conflict, FieldError, NotFound, ValidationFailed
from jit.domain.grant import Grant, Status, Transition
from jit.domain.ids import grant_id_from_key, is_grant_id, newest_first_key
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec
from jit.services.ports import GrantPage

INDEX_PARTITION = "grant"
TENANT_PARTITION = "tenant"
MAX_UPDATE_ATTEMPTS = 8


class TableGrantRepository:
    def __init__(self, grants: TableClient, index: TableClient) -> None:
        self._grants = grants
        self._index = index
        # Which tenant a grant belongs to never changes, so look-ups by id are remembered per process.
        self._tenant_of: dict[str, str] = {}
        self._known_tenants: set[str] = set()

    def add(self, grant: Grant) -> Grant:
        key = newest_first_key(grant.id)
        try:
            self._index.create_entity({"PartitionKey": INDEX_PARTITION, "RowKey": key, "TenantId": grant.tenant_id})
        except ResourceExistsError:
            if self._locate(grant.id) != grant.tenant_id:
                raise Conflict(f"grant id {grant.id} is taken") from None
        if grant.tenant_id not in self._known_tenants:
            # Every tenant the system ever served, for checks that must look at all of them (drift).
            self._index.upsert_entity({"PartitionKey": TENANT_PARTITION, "RowKey": grant.tenant_id})
            self._known_tenants.add(grant.tenant_id)
        try:
            meta = self._grants.create_entity(_to_entity(grant))
        except ResourceExistsError:
            raise Conflict(f"grant {grant.id} exists already") from None
        self._tenant_of[grant.id] = grant.tenant_id
        return replace(grant, version=meta["etag"])

    def get(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        if not is_grant_id(grant_id):
            raise NotFound(f"grant {grant_id} not found")
        tenant = tenant_id or self._locate(grant_id)
        try:
            entity = self._grants.get_entity(tenant, newest_first_key(grant_id))
        except ResourceNotFoundError:
            raise NotFound(f"grant {grant_id} not found") from None
        return _from_entity(entity)

    def update(self, grant_id: str, change: Callable[[Grant], Grant], tenant_id: str | None = None) -> Grant:
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = self.get(grant_id, tenant_id)
            changed = change(current)
            if changed == current:
                return current
            try:
                meta = self._grants.update_entity(
                    _to_entity(changed),
                    mode=UpdateMode.REPLACE,
                    etag=current.version,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                continue  # somebody else wrote first: read their version and apply the change to it
            return replace(changed, version=meta["etag"])
        raise ConcurrencyConflict(f"grant {grant_id} kept changing; gave up after {MAX_UPDATE_ATTEMPTS} attempts")

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
            query, params = "PartitionKey eq @tenant", {"tenant": tenant_id}
            if status is not None:
                query, params = query + " and Status eq @status", {**params, "status": status.value}
            if requester_id is not None:
                query, params = query + " and RequestedById eq @requester", {**params, "requester": requester_id}
            pages: Any = self._grants.query_entities(query, parameters=params, results_per_page=top).by_page(token)
            grants = [_from_entity(e) for e in next(pages, [])]
            return GrantPage(grants, _encode_token(pages.continuation_token, "tenant"))
        # Across tenants: read one page of the index (newest first), then the grants themselves.
        pages = self._index.query_entities("PartitionKey eq @p", parameters={"p": INDEX_PARTITION}, results_per_page=top).by_page(
            token
        )
        rows = [(grant_id_from_key(e["RowKey"]), e["TenantId"]) for e in next(pages, [])]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(lambda row: self._get_or_none(*row), rows))
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
        query = "PartitionKey eq @tenant and RequestedById eq @requester"
        rows = self._grants.query_entities(query, parameters={"tenant": tenant_id, "requester": requester_id}, select=["Status"])
        return sum(1 for row in rows if not Status(row["Status"]).is_final)

    def active_and_recently_ended(self, since: datetime) -> builtins.list[Grant]:
        """Active grants, and grants whose access ended since `since` (a scan: the daily drift check's read)."""
        # Parameters must stand as words of their own: the SDK substitutes "@since", not "@since)".
        query = "Status eq 'Active' or ((Status eq 'Expired' or Status eq 'Revoked') and RevokedAt ge @since )"
        entities = self._grants.query_entities(query, parameters={"since": since.astimezone(UTC)})
        return [_from_entity(e) for e in entities]

    def tenants(self) -> builtins.list[str]:
        return [e["RowKey"] for e in self._index.query_entities("PartitionKey eq @p", parameters={"p": TENANT_PARTITION})]

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


def _to_entity(grant: Grant) -> dict[str, Any]:
    request = grant.request
    return {
        "PartitionKey": grant.tenant_id,
        "RowKey": newest_first_key(grant.id),
        "Id": grant.id,
        "TenantId": grant.tenant_id,
        "Status": grant.status.value,
        "User": json.dumps(request.user.to_json()),
        "StartDateTime": request.start,
        "EndDateTime": request.end,
        "Roles": json.dumps(list(request.roles)),
        "Groups": json.dumps(list(request.groups)),
        "Reason": request.reason,
        "TicketId": request.ticket_id,
        "TemporaryAccessPass": json.dumps(_tap_json(request.tap)),
        "ExpirationActions": json.dumps([a.value for a in request.expiration_actions]),
        "Notifications": json.dumps(request.notifications) if request.notifications is not None else None,
        "TemplateName": request.template_name,
        "CreatedAt": grant.created_at,
        "RequestedBy": grant.requested_by,
        "RequestedById": grant.requester_id,
        "History": json.dumps([_transition_json(t) for t in grant.history]),
        "RevokeRequestedAt": grant.revoke_requested_at,
        "RevokedAt": grant.revoked_at,
        "Progress": json.dumps(grant.progress),
        "Error": json.dumps(grant.error) if grant.error else None,
    }


def _from_entity(entity: Any) -> Grant:
    user = json.loads(entity["User"])
    tap = json.loads(entity["TemporaryAccessPass"])
    notifications = entity.get("Notifications")
    request = GrantRequest(
        tenant_id=entity["TenantId"],
        user=UserSpec(UserKind(user["type"]), user.get("displayName"), user.get("userPrincipalName"), user.get("id")),
        start=_utc(entity["StartDateTime"]),
        end=_utc(entity["EndDateTime"]),
        roles=tuple(json.loads(entity["Roles"])),
        groups=tuple(json.loads(entity["Groups"])),
        reason=entity["Reason"],
        ticket_id=entity.get("TicketId"),
        tap=TapSettings(tap["enabled"], tap["lifetimeInMinutes"], tap["isUsableOnce"]),
        expiration_actions=tuple(ExpirationAction(a) for a in json.loads(entity["ExpirationActions"])),
        notifications=json.loads(notifications) if notifications else None,
        template_name=entity.get("TemplateName"),
    )
    revoke_at = entity.get("RevokeRequestedAt")
    revoked_at = entity.get("RevokedAt")
    error = entity.get("Error")
    return Grant(
        id=entity["Id"],
        request=request,
        status=Status(entity["Status"]),
        created_at=_utc(entity["CreatedAt"]),
        requested_by=entity["RequestedBy"],
        history=tuple(_transition(t) for t in json.loads(entity["History"])),
        revoke_requested_at=_utc(revoke_at) if revoke_at else None,
        revoked_at=_utc(revoked_at) if revoked_at else None,
        progress=json.loads(entity.get("Progress") or "{}"),
        error=json.loads(error) if error else None,
        version=entity.metadata["etag"],
        requester_id=str(entity.get("RequestedById") or ""),
    )


def _tap_json(tap: TapSettings) -> dict[str, Any]:
    return {"enabled": tap.enabled, "lifetimeInMinutes": tap.lifetime_in_minutes, "isUsableOnce": tap.is_usable_once}


def _transition_json(step: Transition) -> dict[str, Any]:
    return {
        "from": step.from_status.value if step.from_status else None,
        "to": step.to_status.value,
        "at": step.at.isoformat(),
        "actor": step.actor,
        "reason": step.reason,
    }


def _transition(raw: dict[str, Any]) -> Transition:
    return Transition(
        from_status=Status(raw["from"]) if raw["from"] else None,
        to_status=Status(raw["to"]),
        at=datetime.fromisoformat(raw["at"]),
        actor=raw["actor"],
        reason=raw["reason"],
    )


def _utc(value: datetime) -> datetime:
    """Table timestamps come back as a datetime subclass; keep plain aware datetimes in the domain."""
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC)
