"""Tenant onboarding: an admin names a tenant (by GUID or a verified domain); a worker asks the directory who it is
(its GUID, names, verified domains, role definitions, whether it has the licence PIM needs) and whether the app may
act there, and records the answer in the registry. Records an earlier version kept under a domain name move to the
GUID. Requests name a tenant by any of its names and are stored under its GUID.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from jit.domain.audit import AuditEntry
from jit.domain.caller import Caller
from jit.domain.clock import Clock
from jit.domain.errors import FieldError, NotFound, ValidationFailed
from jit.domain.ids import is_domain_name, normalize_tenant
from jit.domain.tenant import ENTRA, ENTRA_PIM, OnboardingState, TenantRegistration
from jit.domain.work import Step, WorkItem
from jit.services.access_backend import BackendProvider, Denied, DirectoryError, DirectoryFacts
from jit.services.ports import WorkQueue
from jit.services.roles import RoleCatalog

log = logging.getLogger(__name__)
SYSTEM = "system"


class Registry(Protocol):
    def find(self, reference: str) -> TenantRegistration | None: ...

    def get(self, tenant_id: str) -> TenantRegistration | None: ...

    def list(self) -> builtins.list[TenantRegistration]: ...

    def pending_request(self, reference: str) -> dict[str, object] | None: ...

    def request_onboarding(
        self, reference: str, *, by: str, at: datetime, directories: builtins.list[str], default: str
    ) -> None: ...

    def note_pending_problem(self, reference: str, detail: str) -> None: ...

    def save(self, registration: TenantRegistration, entries: builtins.list[AuditEntry]) -> TenantRegistration: ...


class Migration(Protocol):
    def move(self, registration: TenantRegistration) -> int:
        """Move records kept under any of the tenant's domain names to its GUID; how many moved."""


def tenant_reference(text: str, field: str = "tenant") -> str:
    """A tenant named by GUID or by a domain, normalized; ValidationFailed naming `field` otherwise."""
    candidate = text.strip().lower()
    normalized = normalize_tenant(candidate)
    if normalized is not None:
        return normalized
    if is_domain_name(candidate):
        return candidate
    raise ValidationFailed([FieldError(field, "must be the tenant's GUID or one of its verified domains")])


def check_directories(directories: list[str], default: str, serves: Callable[[str], bool]) -> None:
    """Every name must be one a backend serves (backends are found in jit/adapters/backends: a new one needs no
    change here)."""
    errors: list[FieldError] = []
    for name in directories:
        if not serves(name):
            errors.append(FieldError("directories", f"{name!r} is not a directory: use entra, entra-pim or ad:<site>"))
    if default not in directories:
        errors.append(FieldError("defaultDirectory", "must be one of the tenant's directories"))
    if errors:
        raise ValidationFailed(errors)


@dataclass
class Onboarding:
    registry: Registry
    backends: BackendProvider
    queue: WorkQueue
    clock: Clock
    catalog: RoleCatalog
    migration: Migration | None = None

    def request(self, reference: str, *, caller: Caller, directories: list[str], default: str) -> TenantRegistration | None:
        """Ask for a tenant to be onboarded; the worker checks it. Returns the registration when it exists already."""
        check_directories(directories, default, self.backends.serves)
        existing = self.registry.find(reference)
        if existing is not None:
            return existing
        self.registry.request_onboarding(
            reference, by=caller.actor, at=self.clock.now(), directories=directories, default=default
        )
        self.queue.send(WorkItem(reference, "", Step.ONBOARD))
        return None

    def recheck(self, reference: str) -> None:
        if self.registry.find(reference) is None and self.registry.pending_request(reference) is None:
            raise NotFound(f"tenant {reference} is neither onboarded nor waiting to be")
        self.queue.send(WorkItem(reference, "", Step.ONBOARD))

    def configure(
        self, tenant_id: str, *, caller: Caller, directories: list[str] | None, default: str | None, offboard: bool | None
    ) -> TenantRegistration:
        registration = self.registry.find(tenant_id)
        if registration is None:
            raise NotFound(f"tenant {tenant_id} is not onboarded")
        chosen = directories if directories is not None else list(registration.directories)
        default_directory = (
            default
            if default is not None
            else (registration.default_directory if registration.default_directory in chosen else chosen[0])
        )
        check_directories(chosen, default_directory, self.backends.serves)
        state = registration.state
        if offboard is True:
            state = OnboardingState.OFFBOARDED
        elif offboard is False and state is OnboardingState.OFFBOARDED:
            state = OnboardingState.PENDING
        changed = replace(registration, directories=tuple(chosen), default_directory=default_directory, state=state)
        detail = f"directories {', '.join(chosen)} (default {default_directory}); state {state.value}"
        saved = self.registry.save(changed, [self._entry(changed.id, caller.actor, "tenant.configured", detail)])
        if offboard is False:
            self.queue.send(WorkItem(saved.id, "", Step.ONBOARD))
        return saved

    async def check(self, reference: str) -> TenantRegistration | None:
        """Ask the directory who the tenant is and record it (the worker's step)."""
        now = self.clock.now()
        # Storage calls block: they run off the event loop, so other invocations of the instance keep going.
        existing, pending = await asyncio.to_thread(
            lambda: (self.registry.find(reference), self.registry.pending_request(reference))
        )
        if existing is None and pending is None:
            log.warning("onboarding check for %s, which nobody asked for: dropped", reference)
            return None
        if existing is not None and existing.state is OnboardingState.OFFBOARDED:
            return existing
        directories = list(existing.directories) if existing else [str(d) for d in pending.get("directories") or [ENTRA]]  # type: ignore[union-attr]
        default = existing.default_directory if existing else str(pending.get("defaultDirectory") or directories[0])  # type: ignore[union-attr]
        backend = self.backends.backend(existing.id if existing else reference, ENTRA)
        try:
            facts = await backend.describe()
        except DirectoryError as error:
            state = OnboardingState.CONSENT_MISSING if isinstance(error, Denied) else OnboardingState.FAILED
            detail = _advice(error)
            if existing is None:
                await asyncio.to_thread(self.registry.note_pending_problem, reference, f"{state.value}: {detail}")
                return None
            failed = replace(existing, state=state, detail=detail, checked_at=now)
            entry = self._entry(existing.id, SYSTEM, "tenant.checked", f"{state.value}: {detail}", "failure")
            return await asyncio.to_thread(self.registry.save, failed, [entry])
        problems = []
        if ENTRA_PIM in directories and facts.schedules_available is False:
            problems.append("no Microsoft Entra ID P2 or Governance licence: PIM (entra-pim) will refuse requests; use entra")
        registration = TenantRegistration(
            id=facts.id.lower(),
            display_name=facts.display_name,
            initial_domain=facts.initial_domain.lower(),
            domains=tuple(sorted({d.lower() for d in facts.domains})),
            state=OnboardingState.READY,
            directories=tuple(directories),
            default_directory=default,
            pim_licensed=facts.schedules_available,
            detail="; ".join(problems),
            requested_as=existing.requested_as if existing else reference,
            onboarded_by=existing.onboarded_by if existing else str(pending.get("requestedBy") or ""),  # type: ignore[union-attr]
            onboarded_at=existing.onboarded_at if existing else now,
            checked_at=now,
            etag=existing.etag if existing else None,
        )
        action = "tenant.checked" if existing else "tenant.onboarded"
        detail = (
            f"{registration.display_name}: domains {', '.join(registration.domains)}; directories {', '.join(directories)}"
            + (f"; {registration.detail}" if registration.detail else "")
        )
        return await asyncio.to_thread(self._record, registration, self._entry(registration.id, SYSTEM, action, detail), facts)

    def _record(self, registration: TenantRegistration, entry: AuditEntry, facts: DirectoryFacts) -> TenantRegistration:
        saved = self.registry.save(registration, [entry])
        self.catalog.remember(saved.id, facts.definitions)
        if self.migration is not None:
            moved = self.migration.move(saved)
            if moved:
                log.info("tenant %s: %d records kept under its domain names moved to its GUID", saved.id, moved)
        return saved

    def _entry(self, tenant_id: str, actor: str, action: str, detail: str, outcome: str = "success") -> AuditEntry:
        return AuditEntry(self.clock.now(), tenant_id, "", actor, action, outcome, detail, subject="registration")


def _advice(error: DirectoryError) -> str:
    if isinstance(error, Denied):
        return (
            f"the directory refused the app ({error.code or 'denied'}: {error.message[:300]}): grant admin consent in the "
            "tenant (scripts/graph/Grant-JitTenantConsent.ps1) and assign the app its Entra role, then re-check"
        )
    return f"{error.code or type(error).__name__}: {error.message[:300]}"
