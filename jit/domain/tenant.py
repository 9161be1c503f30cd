"""Tenant onboarding: the registry of tenants the product serves. A tenant is one thing however it is named: its
GUID is its identity, and any of its verified domains names it too. Everything stored about a tenant (grants,
policies, templates, the audit trail) is keyed by the GUID.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# The backends a tenant may use. "ad:<site>" names an on-premises site served by an agent.
ENTRA = "entra"
ENTRA_PIM = "entra-pim"
AD_PREFIX = "ad:"


class OnboardingState(StrEnum):
    PENDING = "Pending"  # an admin asked for it; the check against the directory has not run yet
    READY = "Ready"  # requests are accepted
    CONSENT_MISSING = "ConsentMissing"  # the directory refused the app (no consent, permission or role)
    FAILED = "Failed"  # the check failed for another reason (see detail)
    OFFBOARDED = "Offboarded"  # no new requests; what is live still ends normally


@dataclass(frozen=True)
class TenantRegistration:
    id: str  # the tenant's GUID
    display_name: str
    initial_domain: str
    domains: tuple[str, ...]
    state: OnboardingState
    directories: tuple[str, ...] = (ENTRA,)
    default_directory: str = ENTRA
    # Whether the tenant has the licence PIM needs (Entra ID P2 or Governance); None until checked.
    pim_licensed: bool | None = None
    detail: str = ""
    requested_as: str = ""
    onboarded_by: str = ""
    onboarded_at: datetime | None = None
    checked_at: datetime | None = None
    etag: str | None = None

    def names(self) -> tuple[str, ...]:
        """Every name the tenant goes by: its GUID and its verified domains."""
        return (self.id, *self.domains)

    def accepts(self, directory: str) -> bool:
        return directory in self.directories


def directory_problem(registration: TenantRegistration, directory: str) -> tuple[str, str] | None:
    """Why requests for `directory` can not go to this tenant — (the request field at fault, why) — or None."""
    if registration.state is OnboardingState.OFFBOARDED:
        return "tenantId", f"tenant {registration.id} was offboarded: it takes no new requests"
    if registration.state is not OnboardingState.READY:
        detail = f" ({registration.detail})" if registration.detail else ""
        return (
            "tenantId",
            f"tenant {registration.id} is {registration.state.value}{detail}; "
            f"an admin re-checks it with POST /api/jit/tenants/{registration.id}/check",
        )
    if not registration.accepts(directory):
        return "directory", f"tenant {registration.id} does not use {directory!r}; it uses {', '.join(registration.directories)}"
    if directory == ENTRA_PIM and registration.pim_licensed is False:
        return "directory", f"tenant {registration.id} has no Microsoft Entra ID P2 or Governance licence, which PIM needs"
    return None
