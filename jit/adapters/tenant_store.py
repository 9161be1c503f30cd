"""The tenant registry in Azure Table Storage.

The registration itself lives in the tenant's own partition of the Grants table (`~r|registration`), with the
tenant's role definitions beside it (`~r|roles`); its changes and their audit entries (chain `registration`) commit
together. Table `<prefix>Tenants` is the index that finds a tenant by any of its names, rebuilt from the registration
on every check: PartitionKey `domain` (RowKey: a verified domain, lower case -> TenantId), `tenant` (RowKey: the GUID,
a copy for listing), and `pending` (RowKey: what an admin asked to onboard, before the directory said who it is).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys
from jit.domain.audit import AuditEntry
from jit.domain.errors import Conflict, FieldError, ValidationFailed
from jit.domain.ids import is_domain_name, normalize_tenant
from jit.domain.roles import RoleDefinition
from jit.domain.tenant import OnboardingState, TenantRegistration

REGISTRATION = "~r|registration"
ROLES = "~r|roles"
CHAIN = "registration"
_CACHE_SECONDS = 30.0


class TableTenantRegistry:
    def __init__(self, grants: TableClient, index: TableClient, keys: AuditKeys) -> None:
        self._grants = grants
        self._index = index
        self._keys = keys
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, TenantRegistration | None]] = {}

    # Finding ------------------------------------------------------------------------------------------------------

    def resolve(self, reference: str) -> TenantRegistration:
        """The registration a GUID or a verified domain names; ValidationFailed (field `tenantId`) otherwise."""
        found = self.find(reference)
        if found is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "tenantId",
                        f"tenant {reference!r} is not onboarded: an admin onboards it with POST /api/jit/tenants "
                        '{"tenant": "<its GUID or a verified domain>"} and the app\'s admin consent in that tenant',
                    )
                ]
            )
        return found

    def find(self, reference: str) -> TenantRegistration | None:
        key = normalize_tenant(reference) or reference.strip().lower()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        if not _is_guid(key) and not is_domain_name(key):
            return None  # not a tenant's name, and not a key Table Storage could hold ('/', '#', '?', control characters)
        tenant_id = key if _is_guid(key) else self._tenant_of_domain(key)
        found = self.get(tenant_id) if tenant_id else None
        with self._lock:
            self._cache[key] = (now, found)
        return found

    def get(self, tenant_id: str) -> TenantRegistration | None:
        try:
            entity = self._grants.get_entity(tenant_id, REGISTRATION)
        except ResourceNotFoundError:
            return None
        return _registration(entity)

    def list(self) -> builtins.list[TenantRegistration]:
        rows = self._index.query_entities("PartitionKey eq 'tenant'")
        found = [self.get(str(r["RowKey"])) for r in rows]
        return sorted((r for r in found if r is not None), key=lambda r: r.display_name.casefold())

    def pending(self) -> builtins.list[dict[str, Any]]:
        return [
            {
                "tenant": r["RowKey"],
                "requestedBy": r.get("RequestedBy"),
                "requestedAt": r.get("RequestedAt"),
                "detail": r.get("Detail") or "",
            }
            for r in self._index.query_entities("PartitionKey eq 'pending'")
        ]

    def pending_request(self, reference: str) -> dict[str, Any] | None:
        try:
            row = self._index.get_entity("pending", reference.lower())
        except ResourceNotFoundError:
            return None
        return {
            "tenant": row["RowKey"],
            "requestedBy": row.get("RequestedBy"),
            "requestedAt": row.get("RequestedAt"),
            "directories": json.loads(row.get("Directories") or "[]"),
            "defaultDirectory": row.get("DefaultDirectory") or "",
            "detail": row.get("Detail") or "",
        }

    # Writing ------------------------------------------------------------------------------------------------------

    def request_onboarding(self, reference: str, *, by: str, at: datetime, directories: builtins.list[str], default: str) -> None:
        self._index.upsert_entity(
            {
                "PartitionKey": "pending",
                "RowKey": reference.lower(),
                "RequestedBy": by,
                "RequestedAt": at,
                "Directories": json.dumps(directories),
                "DefaultDirectory": default,
            },
            mode=UpdateMode.REPLACE,
        )

    def note_pending_problem(self, reference: str, detail: str) -> None:
        try:
            row = self._index.get_entity("pending", reference.lower())
        except ResourceNotFoundError:
            return
        self._index.upsert_entity({**row, "Detail": detail[:2000]}, mode=UpdateMode.REPLACE)

    def save(self, registration: TenantRegistration, entries: builtins.list[AuditEntry]) -> TenantRegistration:
        """Store the registration (conditional on its ETag when it was read) with its audit entries, then its index."""
        try:
            current = self._grants.get_entity(registration.id, REGISTRATION)
        except ResourceNotFoundError:
            current = None
        if current is not None and registration.etag is not None and current.metadata["etag"] != registration.etag:
            raise Conflict(f"the registration of tenant {registration.id} was changed meanwhile; read it again")
        results = audit_chain.commit_record(
            self._grants, registration.id, REGISTRATION, _entity(registration), CHAIN, current, entries, self._keys,
            conflict=f"the registration of tenant {registration.id} was changed meanwhile; try again",
        )
        saved = TenantRegistration(**{**registration.__dict__, "etag": str(results[0].get("etag") or "")})
        self._write_index(saved)
        return saved

    def _write_index(self, registration: TenantRegistration) -> None:
        for domain in {*registration.domains, registration.initial_domain} - {""}:
            self._index.upsert_entity(
                {"PartitionKey": "domain", "RowKey": domain.lower(), "TenantId": registration.id}, mode=UpdateMode.REPLACE
            )
        self._index.upsert_entity(
            {
                "PartitionKey": "tenant",
                "RowKey": registration.id,
                "DisplayName": registration.display_name,
                "State": registration.state.value,
            },
            mode=UpdateMode.REPLACE,
        )
        for name in (registration.requested_as, *registration.domains, registration.id):
            if name:
                with contextlib.suppress(ResourceNotFoundError):
                    self._index.delete_entity("pending", name.lower())
        with self._lock:
            self._cache.clear()

    # Role definitions (for rules that compare canonical role ids before the directory is read) -------------------

    def role_definitions(self, tenant_id: str) -> tuple[RoleDefinition, ...] | None:
        try:
            entity = self._grants.get_entity(tenant_id, ROLES)
        except ResourceNotFoundError:
            return None
        return tuple(RoleDefinition(*row) for row in json.loads(entity["Definitions"]))

    def save_role_definitions(self, tenant_id: str, definitions: tuple[RoleDefinition, ...]) -> None:
        rows = [[d.id, d.template_id, d.display_name] for d in sorted(definitions, key=lambda d: d.display_name)]
        self._grants.upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": ROLES, "Definitions": json.dumps(rows), "SavedAt": datetime.now(UTC)},
            mode=UpdateMode.REPLACE,
        )

    def _tenant_of_domain(self, domain: str) -> str | None:
        try:
            return str(self._index.get_entity("domain", domain)["TenantId"])
        except ResourceNotFoundError:
            return None


def _entity(registration: TenantRegistration) -> dict[str, Any]:
    return {
        "DisplayName": registration.display_name,
        "InitialDomain": registration.initial_domain,
        "Domains": json.dumps(list(registration.domains)),
        "State": registration.state.value,
        "Directories": json.dumps(list(registration.directories)),
        "DefaultDirectory": registration.default_directory,
        "PimLicensed": registration.pim_licensed,
        "Detail": registration.detail[:2000],
        "RequestedAs": registration.requested_as,
        "OnboardedBy": registration.onboarded_by,
        "OnboardedAt": registration.onboarded_at,
        "CheckedAt": registration.checked_at,
    }


def _registration(entity: Any) -> TenantRegistration:
    return TenantRegistration(
        id=str(entity["PartitionKey"]),
        display_name=str(entity.get("DisplayName") or ""),
        initial_domain=str(entity.get("InitialDomain") or ""),
        domains=tuple(json.loads(entity.get("Domains") or "[]")),
        state=OnboardingState(entity["State"]),
        directories=tuple(json.loads(entity.get("Directories") or '["entra"]')),
        default_directory=str(entity.get("DefaultDirectory") or "entra"),
        pim_licensed=entity.get("PimLicensed"),
        detail=str(entity.get("Detail") or ""),
        requested_as=str(entity.get("RequestedAs") or ""),
        onboarded_by=str(entity.get("OnboardedBy") or ""),
        onboarded_at=_utc(entity.get("OnboardedAt")),
        checked_at=_utc(entity.get("CheckedAt")),
        etag=entity.metadata["etag"],
    )


def _utc(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC) if value else None


def _is_guid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4
