"""Subscribed SKUs (GET /subscribedSkus) and the licence facts PIM depends on.

Ids and names: Microsoft's "Product names and service plan identifiers for licensing"
(MicrosoftDocs/entra-docs docs/identity/users/licensing-service-plan-reference.md), cross-checked with public
code that reads real /subscribedSkus answers: SKU AAD_PREMIUM_P2 84a661c4-e949-4bd2-a560-ed7766fcaf2b; service
plans AAD_PREMIUM 41781fb2-bc02-4b7c-bd55-b576c07bb09d and AAD_PREMIUM_P2 eec0eb4f-6444-4f95-aba0-50c24d67f998.
Response shape: microsoft-graph-docs-contrib api-reference/v1.0/api/subscribedsku-list.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

ENTRA_P2_SKU_ID = "84a661c4-e949-4bd2-a560-ed7766fcaf2b"
PLAN_AAD_PREMIUM = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
PLAN_AAD_PREMIUM_P2 = "eec0eb4f-6444-4f95-aba0-50c24d67f998"
# Service plans that carry Privileged Identity Management (Entra ID P2; Entra ID Governance includes P2 features).
PIM_PLANS = ("AAD_PREMIUM_P2",)


@dataclass
class Sku:
    sku_id: str
    sku_part_number: str
    service_plans: dict[str, str]  # servicePlanName -> servicePlanId
    capability_status: str = "Enabled"  # Enabled | Warning | Suspended | Deleted | LockedOut
    enabled_units: int = 25
    consumed_units: int = 0
    account_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def view(self) -> dict[str, Any]:
        return {
            "accountName": "Simulated",
            "accountId": self.account_id,
            "appliesTo": "User",
            "capabilityStatus": self.capability_status,
            "consumedUnits": self.consumed_units,
            "id": f"{self.account_id}_{self.sku_id}",
            "skuId": self.sku_id,
            "skuPartNumber": self.sku_part_number,
            "subscriptionIds": [],
            "prepaidUnits": {"enabled": self.enabled_units, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [
                {"servicePlanId": plan_id, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"}
                for name, plan_id in self.service_plans.items()
            ],
        }


def entra_id_p2(capability_status: str = "Enabled") -> Sku:
    return Sku(
        ENTRA_P2_SKU_ID,
        "AAD_PREMIUM_P2",
        {"AAD_PREMIUM": PLAN_AAD_PREMIUM, "AAD_PREMIUM_P2": PLAN_AAD_PREMIUM_P2},
        capability_status,
    )


def default_skus() -> list[Sku]:
    """A tenant that can use PIM, as a JIT-admin customer would have; `tenant.set_skus([])` removes it."""
    return [entra_id_p2()]
