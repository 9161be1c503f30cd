"""Audit API (blueprint): the tenant's hash-chained audit trail with its verification, and the monthly access report."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from jit import bootstrap
from jit.adapters.audit_store import ChainedEntry, Verification
from jit.adapters.grant_store import TableGrantRepository
from jit.api import problems
from jit.api.caller import caller as caller_of
from jit.domain.caller import AppRole
from jit.domain.errors import FieldError, Forbidden, ValidationFailed
from jit.domain.grant import Grant, Status
from jit.domain.ids import normalize_tenant

bp = func.Blueprint()

_NDJSON = "application/x-ndjson"
_DEFAULT_SPAN = timedelta(days=30)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_PAGE = 100


def _answer(handler: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        return handler()
    except Exception as error:  # noqa: BLE001 - every error becomes a problem-details answer
        return problems.from_error(error)


@bp.route(route="jit/audit", methods=["GET"])
def read_audit(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _audit(req))


def _audit(req: func.HttpRequest) -> func.HttpResponse:
    """One JSON object per line per entry in the range, then one line with the verification of the whole chain."""
    services = bootstrap.services()
    if not caller_of(req).is_admin:
        raise Forbidden("the audit trail is for Jit.Admin")
    errors: list[FieldError] = []
    tenant = _tenant(req.params, errors)
    now = services.clock.now()
    end = _moment(req.params, "to", now, errors)
    # A "to" near the start of the calendar has no room for the default span before it.
    start = _moment(req.params, "from", max(end, datetime(1970, 1, 31, tzinfo=UTC)) - _DEFAULT_SPAN, errors)
    if not errors and start > end:
        errors.append(FieldError("from", "must not be later than to"))
    if errors or tenant is None:
        raise ValidationFailed(errors)
    trail = services.audit.read(tenant, start, end)
    lines = [json.dumps(_entry_json(c)) for c in trail.entries]
    lines.append(json.dumps({"verification": _verification_json(trail.verification)}))
    headers = {"X-Audit-Intact": "true" if trail.verification.intact else "false", "Cache-Control": "no-store"}
    return func.HttpResponse("\n".join(lines) + "\n", status_code=200, mimetype=_NDJSON, headers=headers)


def _entry_json(chained: ChainedEntry) -> dict[str, Any]:
    entry = chained.entry
    return {
        "at": _iso(entry.at),
        "sequence": chained.sequence,
        "tenantId": entry.tenant_id,
        "grantId": entry.grant_id,
        "actor": entry.actor,
        "action": entry.action,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "hash": chained.hash,
        "prevHash": chained.prev_hash,
    }


def _verification_json(verification: Verification) -> dict[str, Any]:
    return {
        "intact": verification.intact,
        "checked": verification.checked,
        "brokenAt": verification.broken_at,
        "problem": verification.problem,
    }


@bp.route(route="jit/reports/monthly", methods=["GET"])
def monthly_report(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _monthly(req))


def _monthly(req: func.HttpRequest) -> func.HttpResponse:
    """Who had which access in the tenant during the month, for how long, why and with which ticket."""
    if not caller_of(req).has(AppRole.APPROVER, AppRole.ADMIN):
        raise Forbidden("the monthly report is for Jit.Approver and Jit.Admin")
    errors: list[FieldError] = []
    tenant = _tenant(req.params, errors)
    month = _month(req.params.get("month", ""), errors)
    if errors or tenant is None or month is None:
        raise ValidationFailed(errors)
    first, after = month
    grants = _all_grants(bootstrap.services().grants, tenant)
    rows = [row for row in (_report_row(g, first, after) for g in grants) if row is not None]
    rows.sort(key=lambda r: (r["from"], r["grantId"]))
    body = {"tenantId": tenant, "month": f"{first:%Y-%m}", "rows": rows}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")


def _all_grants(grants: TableGrantRepository, tenant: str) -> Iterator[Grant]:
    token: str | None = None
    while True:
        page = grants.list(tenant_id=tenant, status=None, top=_PAGE, continuation_token=token)
        yield from page.grants
        token = page.continuation_token
        if not token:
            return


def access_window(grant: Grant) -> tuple[datetime, datetime] | None:
    """When the grant's access existed: from becoming Active to verified removal (or its end while it lasts).
    None for a grant that never became Active (it gave no access)."""
    active_at = next((t.at for t in grant.history if t.to_status is Status.ACTIVE), None)
    if active_at is None:
        return None
    return active_at, grant.revoked_at or grant.request.end


def _report_row(grant: Grant, first: datetime, after: datetime) -> dict[str, Any] | None:
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
    }


def _user_name(grant: Grant) -> str | None:
    """The account's UPN once provisioning knows it, else what the request named it by."""
    provisioned = grant.progress.get("user") or {}
    spec = grant.request.user
    name = provisioned.get("userPrincipalName") or spec.user_principal_name or spec.display_name or spec.object_id
    return str(name) if name else None


def _tenant(params: Mapping[str, str], errors: list[FieldError]) -> str | None:
    tenant = normalize_tenant(params.get("tenantId", ""))
    if tenant is None:
        errors.append(FieldError("tenantId", "is required: the tenant's GUID or its initial domain"))
    return tenant


def _moment(params: Mapping[str, str], name: str, default: datetime, errors: list[FieldError]) -> datetime:
    text = params.get(name)
    if not text:
        return default
    # An unencoded "+" of the offset arrives as a space: take it as meant.
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        errors.append(FieldError(name, "must be an ISO 8601 date-time with an offset"))
        return default
    return moment


def _month(text: str, errors: list[FieldError]) -> tuple[datetime, datetime] | None:
    """The month's first instant and the first instant of the next one (UTC)."""
    match = _MONTH.match(text)
    if match is None:
        errors.append(FieldError("month", "is required, as YYYY-MM"))
        return None
    year, month = int(match[1]), int(match[2])
    if not 1970 <= year <= 9998:
        errors.append(FieldError("month", "must be a month from 1970-01 on"))
        return None
    first = datetime(year, month, 1, tzinfo=UTC)
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return first, after


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
