"""The monthly access report: who had which access in a tenant during a month, for how long, why, with which ticket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from jit.domain.grant import Grant, Status
from jit.services.ports import GrantPage

_PAGE = 100


class GrantLister(Protocol):
    def list(
        self,
        *,
        tenant_id: str | None,
        status: Status | None,
        top: int,
        continuation_token: str | None,
        requester_id: str | None = None,
    ) -> GrantPage: ...


def access_window(grant: Grant) -> tuple[datetime, datetime] | None:
    """When the grant's access existed: from becoming Active to verified removal (or its end while it lasts).
    None for a grant that never became Active (it gave no access)."""
    active_at = next((t.at for t in grant.history if t.to_status is Status.ACTIVE), None)
    if active_at is None:
        return None
    return active_at, grant.revoked_at or grant.request.end


def monthly_rows(grants: GrantLister, tenant: str, first: datetime, after: datetime) -> list[dict[str, Any]]:
    rows = [row for row in (_row(g, first, after) for g in _all(grants, tenant)) if row is not None]
    rows.sort(key=lambda r: (r["from"], r["grantId"]))
    return rows


def _all(grants: GrantLister, tenant: str) -> Iterator[Grant]:
    token: str | None = None
    while True:
        page = grants.list(tenant_id=tenant, status=None, top=_PAGE, continuation_token=token)
        yield from page.grants
        token = page.continuation_token
        if not token:
            return


def _row(grant: Grant, first: datetime, after: datetime) -> dict[str, Any] | None:
    window = access_window(grant)
    if window is None or not (window[0] < after and window[1] >= first):
        return None
    start, end = window
    request = grant.request
    return {
        "grantId": grant.id,
        "user": _user_name(grant),
        "roles": list(request.roles),
        "groups": list(request.groups),
        "from": _iso(start),
        "to": _iso(end),
        "durationMinutes": round((end - start).total_seconds() / 60, 1),
        "reason": request.reason,
        "ticketId": request.ticket_id,
        "status": grant.status.value,
        "requestedBy": grant.requested_by,
    }


def _user_name(grant: Grant) -> str | None:
    """The account's name once provisioning knows it, else what the request named it by."""
    account = grant.progress.account
    spec = grant.request.user
    name = (account.principal_name if account else None) or spec.user_principal_name or spec.display_name or spec.object_id
    return str(name) if name else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
