"""The audit trail with its verification, and the monthly access report (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from jit.api.http import Call, answer
from jit.domain.caller import AppRole
from jit.domain.errors import FieldError, ValidationFailed
from jit.services.reports import monthly_rows

_NDJSON = "application/x-ndjson"
_DEFAULT_SPAN = timedelta(days=30)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def read(call: Call) -> func.HttpResponse:
    """One JSON object per line per entry in the range, then one line with the verification of the tenant's chains."""
    call.require(AppRole.ADMIN)
    services = call.services
    errors: list[FieldError] = []
    partition, names = _scope(call, errors)
    now = services.clock.now()
    end = _moment(call.params, "to", now, errors)
    # A "to" near the start of the calendar has no room for the default span before it.
    start = _moment(call.params, "from", max(end, datetime(1970, 1, 31, tzinfo=UTC)) - _DEFAULT_SPAN, errors)
    if not errors and start > end:
        errors.append(FieldError("from", "must not be later than to"))
    if errors or partition is None:
        raise ValidationFailed(errors)
    trail = services.audit.read(partition, start, end, other_names=names)
    lines = [json.dumps(_entry_json(e)) for e in sorted([*trail.legacy, *trail.entries], key=lambda e: e.entry.at)]
    verification = trail.verification
    lines.append(
        json.dumps(
            {
                "verification": {
                    "intact": verification.intact,
                    "checked": verification.checked,
                    "chains": verification.chains,
                    "brokenAt": verification.broken_at,
                    "problem": verification.problem,
                    "problems": list(verification.problems),
                }
            }
        )
    )
    headers = {"X-Audit-Intact": "true" if verification.intact else "false", "Cache-Control": "no-store"}
    return func.HttpResponse("\n".join(lines) + "\n", status_code=200, mimetype=_NDJSON, headers=headers)


def _scope(call: Call, errors: list[FieldError]) -> tuple[str | None, tuple[str, ...]]:
    """The partition whose trail is read: an onboarded tenant (and its other names, for the earlier trail), or
    `global` (the default policy, global templates, channels)."""
    given = (call.params.get("tenantId") or "").strip()
    if not given:
        errors.append(FieldError("tenantId", "is required: an onboarded tenant's GUID or domain, or 'global'"))
        return None, ()
    if given.lower() == "global":
        return "global", ()
    registration = call.services.tenants.find(given)
    if registration is None:
        errors.append(FieldError("tenantId", "is not an onboarded tenant"))
        return None, ()
    return str(registration.id), tuple(registration.domains)


def _entry_json(item: Any) -> dict[str, Any]:
    entry = item.entry
    return {
        "at": _iso(entry.at),
        "chain": item.chain,
        "sequence": item.sequence,
        "tenantId": entry.tenant_id,
        "grantId": entry.grant_id,
        "actor": entry.actor,
        "action": entry.action,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "hash": item.hash,
        "prevHash": item.prev_hash,
    }


def monthly(call: Call) -> func.HttpResponse:
    """Who had which access in the tenant during the month (JSON; `format=csv` for a spreadsheet)."""
    call.require(AppRole.APPROVER, AppRole.ADMIN)
    errors: list[FieldError] = []
    given = (call.params.get("tenantId") or "").strip()
    registration = call.services.tenants.find(given) if given else None
    if registration is None:
        errors.append(FieldError("tenantId", "is required: an onboarded tenant's GUID or domain"))
    month = _month(call.params.get("month", ""), errors)
    fmt = call.params.get("format", "json")
    if fmt not in ("json", "csv"):
        errors.append(FieldError("format", "must be json or csv"))
    if errors or registration is None or month is None:
        raise ValidationFailed(errors)
    first, after = month
    rows = monthly_rows(call.services.grants, registration.id, first, after)
    if fmt == "csv":
        return _csv(rows, f"jit-access-{registration.initial_domain or registration.id}-{first:%Y-%m}.csv")
    return answer({"tenantId": registration.id, "month": f"{first:%Y-%m}", "rows": rows})


def _csv(rows: list[dict[str, Any]], filename: str) -> func.HttpResponse:
    columns = [
        "grantId",
        "user",
        "roles",
        "groups",
        "from",
        "to",
        "durationMinutes",
        "reason",
        "ticketId",
        "status",
        "requestedBy",
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell("; ".join(row[c]) if isinstance(row[c], list) else row[c]) for c in columns])
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return func.HttpResponse(out.getvalue(), status_code=200, mimetype="text/csv", headers=headers)


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
