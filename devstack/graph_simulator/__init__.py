"""Microsoft Graph v1.0 simulator for tests and the local dev stack.

See BEHAVIOUR.md for which Graph behaviours are modelled and where each one
was confirmed (or marked as an assumption).
"""

from __future__ import annotations

from .auth import make_dev_token
from .counters import Counters
from .demo import DEMO_TENANT_ID, seed_demo_tenant
from .faults import FaultRule, Faults
from .simulator import GraphSimulator
from .state import TapPolicy, Tenant

__all__ = [
    "DEMO_TENANT_ID",
    "Counters",
    "FaultRule",
    "Faults",
    "GraphSimulator",
    "TapPolicy",
    "Tenant",
    "make_dev_token",
    "seed_demo_tenant",
]
