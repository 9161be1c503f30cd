"""How a grant looks in API responses (camelCase JSON, as the request was written)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jit.domain.grant import Grant


def grant_json(grant: Grant) -> dict[str, Any]:
    request = grant.request
    body: dict[str, Any] = {
        "id": grant.id,
        "tenantId": grant.tenant_id,
        "status": grant.status.value,
        "user": request.user.to_json(),
        "startDateTime": _iso(request.start),
        "endDateTime": _iso(request.end),
        "roles": list(request.roles),
        "groups": list(request.groups),
        "reason": request.reason,
        "ticketId": request.ticket_id,
        "temporaryAccessPass": {
            "enabled": request.tap.enabled,
            "lifetimeInMinutes": request.tap.lifetime_in_minutes,
            "isUsableOnce": request.tap.is_usable_once,
        },
        "expirationActions": [a.value for a in request.expiration_actions],
        "notifications": request.notifications,
        "templateName": request.template_name,
        "requestedBy": grant.requested_by,
        "createdDateTime": _iso(grant.created_at),
        "lastModifiedDateTime": _iso(grant.updated_at),
        "revokeRequestedDateTime": _iso(grant.revoke_requested_at) if grant.revoke_requested_at else None,
        "revokedDateTime": _iso(grant.revoked_at) if grant.revoked_at else None,
        "latenessSeconds": round(grant.lateness.total_seconds(), 3) if grant.lateness is not None else None,
        "access": _access(grant),
        "error": grant.error,
        "history": [
            {
                "from": t.from_status.value if t.from_status else None,
                "to": t.to_status.value,
                "at": _iso(t.at),
                "actor": t.actor,
                "reason": t.reason,
            }
            for t in grant.history
        ],
    }
    return body


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _access(grant: Grant) -> dict[str, Any]:
    """What the grant holds in the directory, as far as the system knows (no lease, no secrets)."""
    progress = grant.progress
    user = progress.get("user") or {}
    tap = progress.get("tap") or {}
    view: dict[str, Any] = {
        "user": {k: user[k] for k in ("id", "userPrincipalName", "created") if k in user} or None,
        "roles": [
            {"roleDefinitionId": role_id, "name": entry.get("name"), "state": entry.get("state")}
            for role_id, entry in (progress.get("roles") or {}).items()
        ],
        "groups": [{"id": group_id, "state": entry.get("state")} for group_id, entry in (progress.get("groups") or {}).items()],
        "temporaryAccessPass": {k: tap[k] for k in ("state", "expiresAt", "retrievedAt") if k in tap} or None,
    }
    if progress.get("expiration"):
        view["expiration"] = progress["expiration"]
    return view
