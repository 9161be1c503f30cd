"""Microsoft Graph v1.0 simulator for tests and the local dev stack.

See BEHAVIOUR.md for which Graph behaviours are modelled and where each one
was confirmed (or marked as an assumption).
"""

from __future__ import annotations

from .apps import DEFAULT_APP_PERMISSIONS, DEV_APP_ID
from .contract import least_privileged
from .counters import Counters
from .demo import DEMO_TENANT_ID, seed_demo_tenant
from .faults import FaultRule, Faults
from .licences import Sku, entra_id_p2
from .served import Denied, Served
from .simulator import GraphSimulator
from .state import TapPolicy, Tenant
from .tokens import forge_unsigned_token

__all__ = [
    "DEFAULT_APP_PERMISSIONS",
    "DEMO_TENANT_ID",
    "DEV_APP_ID",
    "Counters",
    "Denied",
    "FaultRule",
    "Faults",
    "GraphSimulator",
    "Served",
    "Sku",
    "TapPolicy",
    "Tenant",
    "entra_id_p2",
    "forge_unsigned_token",
    "least_privileged",
    "seed_demo_tenant",
]
