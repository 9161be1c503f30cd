"""A grant as a Table Storage entity, and back: the one place where a grant and its progress are (de)serialized.

Progress is stored as versioned JSON (`"v": 2`). Grants stored before progress was typed hold the old free-form
dict (`user`, `roles` and `groups` keyed by id, `tap`, `expiration`, `lease`); they are read into the typed form
here, and written back in the new form by their next update.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jit.domain.grant import Extension, ExtensionState, Grant, Stamp, Status, Transition
from jit.domain.ids import newest_first_key
from jit.domain.progress import (
    AccountRecord,
    CredentialKind,
    CredentialRecord,
    ExpirationRecord,
    GroupRecord,
    ItemState,
    LeaseRecord,
    Progress,
    RoleRecord,
)
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec

PROGRESS_VERSION = 2


def to_entity(grant: Grant, *, chain_sequence: int, chain_hash: str) -> dict[str, Any]:
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
        "TemporaryAccessPass": json.dumps(
            {
                "enabled": request.tap.enabled,
                "lifetimeInMinutes": request.tap.lifetime_in_minutes,
                "isUsableOnce": request.tap.is_usable_once,
            }
        ),
        "ExpirationActions": json.dumps([a.value for a in request.expiration_actions]),
        "Notifications": json.dumps(request.notifications) if request.notifications is not None else None,
        "TemplateName": request.template_name,
        "Directory": request.directory,
        "CreatedAt": grant.created_at,
        "RequestedBy": grant.requested_by,
        "RequestedById": grant.requester_id,
        "RequesterName": grant.requester_name,
        "History": json.dumps([_transition_json(t) for t in grant.history]),
        "RevokeRequestedAt": grant.revoke_requested_at,
        "RevokedAt": grant.revoked_at,
        "Progress": json.dumps(progress_json(grant.progress), separators=(",", ":")),
        "AccountId": grant.progress.account_id,
        "Error": json.dumps(grant.error) if grant.error else None,
        "Extension": json.dumps(_extension_json(grant.extension)) if grant.extension else None,
        "AuditSequence": chain_sequence,
        "AuditHash": chain_hash,
    }


def from_entity(entity: Any) -> Grant:
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
        directory=entity.get("Directory") or "entra",
    )
    revoke_at = entity.get("RevokeRequestedAt")
    revoked_at = entity.get("RevokedAt")
    error = entity.get("Error")
    extension = entity.get("Extension")
    return Grant(
        id=entity["Id"],
        request=request,
        status=Status(entity["Status"]),
        created_at=_utc(entity["CreatedAt"]),
        requested_by=entity["RequestedBy"],
        history=tuple(_transition(t) for t in json.loads(entity["History"])),
        revoke_requested_at=_utc(revoke_at) if revoke_at else None,
        revoked_at=_utc(revoked_at) if revoked_at else None,
        progress=progress_from_json(json.loads(entity.get("Progress") or "{}")),
        error=json.loads(error) if error else None,
        stamp=Stamp(
            etag=entity.metadata["etag"],
            chain_sequence=int(entity.get("AuditSequence") or 0),
            chain_hash=str(entity.get("AuditHash") or ""),
        ),
        requester_id=str(entity.get("RequestedById") or ""),
        requester_name=str(entity.get("RequesterName") or ""),
        extension=_extension(json.loads(extension)) if extension else None,
    )


# Progress ---------------------------------------------------------------------------------------------------------


def progress_json(progress: Progress) -> dict[str, Any]:
    body: dict[str, Any] = {"v": PROGRESS_VERSION}
    if progress.account is not None:
        a = progress.account
        body["account"] = _compact(
            {
                "created": a.created,
                "state": a.state.value,
                "id": a.id,
                "principalName": a.principal_name,
                "attempt": a.attempt or None,
            }
        )
    if progress.roles:
        body["roles"] = [
            _compact(
                {
                    "roleId": r.role_id,
                    "name": r.name,
                    "state": r.state.value,
                    "templateId": r.template_id or None,
                    "reference": r.reference,
                }
            )
            for r in progress.roles
        ]
    if progress.groups:
        body["groups"] = [
            _compact({"groupId": g.group_id, "state": g.state.value, "name": g.name or None}) for g in progress.groups
        ]
    if progress.credential is not None:
        c = progress.credential
        body["credential"] = _compact(
            {
                "kind": c.kind.value,
                "state": c.state.value,
                "lifetimeInMinutes": c.lifetime_minutes,
                "isUsableOnce": c.usable_once,
                "id": c.id,
                "expiresAt": _iso(c.expires_at),
                "retrievedAt": _iso(c.retrieved_at),
                "retrievedBy": c.retrieved_by,
            }
        )
    if progress.expiration is not None:
        e = progress.expiration
        body["expiration"] = _compact(
            {
                "verifiedAt": _iso(e.verified_at),
                "actions": list(e.actions) or None,
                "remaining": list(e.remaining) or None,
                "attempts": e.attempts or None,
                "lastAttemptAt": _iso(e.last_attempt_at),
                "alertedAt": _iso(e.alerted_at),
                "flag": e.flag,
                "accountDeletedAt": _iso(e.account_deleted_at),
                "accountPurged": e.account_purged or None,
            }
        )
    if progress.lease is not None:
        body["lease"] = {"owner": progress.lease.owner, "until": _iso(progress.lease.until)}
    if progress.conferred_roles:
        body["conferredRoles"] = list(progress.conferred_roles)
    return body


def progress_from_json(body: dict[str, Any]) -> Progress:
    if body.get("v") != PROGRESS_VERSION:
        return _legacy_progress(body)
    account = body.get("account")
    credential = body.get("credential")
    expiration = body.get("expiration")
    lease = body.get("lease")
    return Progress(
        account=AccountRecord(
            created=bool(account["created"]),
            state=ItemState(account["state"]),
            id=account.get("id"),
            principal_name=account.get("principalName"),
            attempt=int(account.get("attempt") or 0),
        )
        if account
        else None,
        roles=tuple(
            RoleRecord(r["roleId"], r.get("name", ""), ItemState(r["state"]), r.get("templateId", ""), r.get("reference"))
            for r in body.get("roles", [])
        ),
        groups=tuple(GroupRecord(g["groupId"], ItemState(g["state"]), g.get("name", "")) for g in body.get("groups", [])),
        credential=CredentialRecord(
            kind=CredentialKind(credential["kind"]),
            state=ItemState(credential["state"]),
            lifetime_minutes=int(credential.get("lifetimeInMinutes", 60)),
            usable_once=bool(credential.get("isUsableOnce", False)),
            id=credential.get("id"),
            expires_at=_moment(credential.get("expiresAt")),
            retrieved_at=_moment(credential.get("retrievedAt")),
            retrieved_by=credential.get("retrievedBy"),
        )
        if credential
        else None,
        expiration=_expiration(expiration) if expiration else None,
        lease=LeaseRecord(lease["owner"], _moment(lease["until"]) or datetime.min.replace(tzinfo=UTC)) if lease else None,
        conferred_roles=tuple(body.get("conferredRoles", ())),
    )


def _legacy_progress(body: dict[str, Any]) -> Progress:
    """The free-form progress grants carried before it was typed (states "pending", "done", "preexisting")."""
    user = body.get("user") or {}
    tap = body.get("tap") or {}
    lease = body.get("lease") or {}
    account = None
    if user:
        account = AccountRecord(
            created=bool(user.get("created")),
            state=ItemState(user.get("state", "pending")),
            id=user.get("id"),
            principal_name=user.get("userPrincipalName"),
            attempt=int(user.get("attempt", 0)),
        )
    credential = None
    if tap.get("state"):
        credential = CredentialRecord(
            kind=CredentialKind.TEMPORARY_ACCESS_PASS,
            state=ItemState(tap["state"]),
            lifetime_minutes=int(tap.get("lifetimeInMinutes", 60)),
            usable_once=bool(tap.get("isUsableOnce", False)),
            id=tap.get("id"),
            expires_at=_moment(tap.get("expiresAt")),
            retrieved_at=_moment(tap.get("retrievedAt")),
            retrieved_by=tap.get("retrievedBy"),
        )
    return Progress(
        account=account,
        roles=tuple(
            RoleRecord(
                role_id, entry.get("name", role_id), ItemState(entry.get("state", "pending")), reference=entry.get("assignmentId")
            )
            for role_id, entry in (body.get("roles") or {}).items()
        ),
        groups=tuple(
            GroupRecord(group_id, ItemState(entry.get("state", "pending")))
            for group_id, entry in (body.get("groups") or {}).items()
        ),
        credential=credential,
        expiration=_expiration(body["expiration"]) if body.get("expiration") else None,
        lease=LeaseRecord(lease["owner"], _moment(lease["until"]) or datetime.min.replace(tzinfo=UTC))
        if lease.get("owner")
        else None,
    )


def _expiration(raw: dict[str, Any]) -> ExpirationRecord:
    return ExpirationRecord(
        verified_at=_moment(raw.get("verifiedAt")),
        actions=tuple(raw.get("actions") or ()),
        remaining=tuple(raw.get("remaining") or ()),
        attempts=int(raw.get("attempts") or 0),
        last_attempt_at=_moment(raw.get("lastAttemptAt")),
        alerted_at=_moment(raw.get("alertedAt")),
        flag=raw.get("flag"),
        account_deleted_at=_moment(raw.get("accountDeletedAt")),
        account_purged=bool(raw.get("accountPurged", False)),
    )


# Other parts ------------------------------------------------------------------------------------------------------


def _extension_json(extension: Extension) -> dict[str, Any]:
    return _compact(
        {
            "end": _iso(extension.end),
            "requestedAt": _iso(extension.requested_at),
            "requestedBy": extension.requested_by,
            "requesterId": extension.requester_id,
            "reason": extension.reason,
            "state": extension.state.value,
            "previousEnd": _iso(extension.previous_end),
            "decidedBy": extension.decided_by,
            "decidedAt": _iso(extension.decided_at),
            "comment": extension.comment or None,
        }
    )


def _extension(raw: dict[str, Any]) -> Extension:
    return Extension(
        end=_moment(raw["end"]) or datetime.min.replace(tzinfo=UTC),
        requested_at=_moment(raw["requestedAt"]) or datetime.min.replace(tzinfo=UTC),
        requested_by=raw.get("requestedBy", ""),
        requester_id=raw.get("requesterId", ""),
        reason=raw.get("reason", ""),
        state=ExtensionState(raw["state"]),
        previous_end=_moment(raw.get("previousEnd")),
        decided_by=raw.get("decidedBy"),
        decided_at=_moment(raw.get("decidedAt")),
        comment=raw.get("comment", ""),
    )


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


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _utc(value: datetime) -> datetime:
    """Table timestamps come back as a datetime subclass; keep plain aware datetimes in the domain."""
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC)
