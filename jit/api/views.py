"""How a grant looks in API responses (camelCase JSON, as the request was written). Never a secret: no credential,
no lease, and addresses in notification settings lose their query strings (webhook URLs carry signatures there)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jit.domain.grant import Extension, Grant
from jit.domain.progress import CredentialKind, CredentialRecord
from jit.services.access_backend import Health


def grant_json(grant: Grant) -> dict[str, Any]:
    request = grant.request
    return {
        "id": grant.id,
        "tenantId": grant.tenant_id,
        "directory": request.directory or "entra",
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
        "notifications": _redacted(request.notifications),
        "templateName": request.template_name,
        "requestedBy": grant.requested_by,
        "requesterId": grant.requester_id,
        "createdDateTime": _iso(grant.created_at),
        "lastModifiedDateTime": _iso(grant.updated_at),
        "revokeRequestedDateTime": _iso(grant.revoke_requested_at) if grant.revoke_requested_at else None,
        "revokedDateTime": _iso(grant.revoked_at) if grant.revoked_at else None,
        "latenessSeconds": round(grant.lateness.total_seconds(), 3) if grant.lateness is not None else None,
        "access": _access(grant),
        "extension": _extension(grant.extension) if grant.extension else None,
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


def health_json(health: Health) -> dict[str, Any]:
    """A directory's reachability as the backend knows it (for an on-premises site: its agent's heartbeat)."""
    return {
        "available": health.available,
        "detail": health.detail or None,
        "lastSeen": _iso(health.last_seen) if health.last_seen else None,
        "facts": dict(health.facts),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _access(grant: Grant) -> dict[str, Any]:
    """What the grant holds in the directory, as far as the system knows. `state` says whose access it is: made by
    this grant (done), there before (preexisting), another live grant's too (shared), handed over at the end (kept)."""
    progress = grant.progress
    account = progress.account
    credential = progress.credential
    view: dict[str, Any] = {
        "user": {"id": account.id, "userPrincipalName": account.principal_name, "created": account.created} if account else None,
        "roles": [
            {"roleDefinitionId": r.role_id, "templateId": r.template_id or None, "name": r.name, "state": r.state.value}
            for r in progress.roles
        ],
        "groups": [{"id": g.group_id, "name": g.name or None, "state": g.state.value} for g in progress.groups],
        # The credential of whatever kind; `temporaryAccessPass` repeats it when it is a pass (older clients).
        "credential": {"kind": credential.kind.value, **_credential_state(credential)} if credential else None,
        "temporaryAccessPass": _credential_state(credential)
        if credential and credential.kind is CredentialKind.TEMPORARY_ACCESS_PASS
        else None,
    }
    if progress.conferred_roles:
        view["rolesConferredByGroups"] = list(progress.conferred_roles)
    expiration = progress.expiration
    if expiration is not None:
        view["expiration"] = {
            k: v
            for k, v in {
                "verifiedAt": _iso(expiration.verified_at) if expiration.verified_at else None,
                "actions": list(expiration.actions) or None,
                "remaining": list(expiration.remaining) or None,
                "attempts": expiration.attempts or None,
                "lastAttemptAt": _iso(expiration.last_attempt_at) if expiration.last_attempt_at else None,
                "alertedAt": _iso(expiration.alerted_at) if expiration.alerted_at else None,
                "flag": expiration.flag,
            }.items()
            if v is not None
        }
    return view


def _credential_state(credential: CredentialRecord) -> dict[str, Any]:
    return {
        "state": credential.state.value,
        "expiresAt": _iso(credential.expires_at) if credential.expires_at else None,
        "retrievedAt": _iso(credential.retrieved_at) if credential.retrieved_at else None,
    }


def _extension(extension: Extension) -> dict[str, Any]:
    return {
        "endDateTime": _iso(extension.end),
        "previousEndDateTime": _iso(extension.previous_end) if extension.previous_end else None,
        "status": extension.state.value,
        "requestedBy": extension.requested_by,
        "requestedDateTime": _iso(extension.requested_at),
        "reason": extension.reason,
        "decidedBy": extension.decided_by,
        "decidedDateTime": _iso(extension.decided_at) if extension.decided_at else None,
        "comment": extension.comment or None,
    }


def _redacted(notifications: dict[str, Any] | None) -> dict[str, Any] | None:
    if notifications is None:
        return None
    shown = dict(notifications)
    for key in ("teamsWebhookUrls", "webhookUrls"):
        if isinstance(shown.get(key), list):
            shown[key] = [_without_query(str(u)) for u in shown[key]]
    return shown


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + ("?…" if parts.query else "")
