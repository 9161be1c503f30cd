"""The fixed demo tenant seeded by `python -m devstack.graph_simulator --demo`.

Ids are fixed so the local dev stack's configuration can hard-code them.
"""

from __future__ import annotations

from .simulator import GraphSimulator
from .state import Tenant

# "de30" ~ "demo": a valid GUID (the brief's "...d3m0" is not hexadecimal).
DEMO_TENANT_ID = "00000000-0000-4000-8000-00000000de30"
DEMO_INITIAL_DOMAIN = "demo.onmicrosoft.com"
DEMO_DISPLAY_NAME = "JIT Demo Tenant"
DEMO_GROUPS = {
    "00000000-0000-4000-8000-00000000a001": "JIT Admin Requesters",
    "00000000-0000-4000-8000-00000000a002": "JIT Admin Approvers",
}
DEMO_APPROVER_ID = "00000000-0000-4000-8000-00000000b001"
DEMO_APPROVER_UPN = "approver@demo.onmicrosoft.com"
# The mailbox user notifications are sent from (POST /users/{id}/sendMail needs an Exchange Online mailbox).
DEMO_MAILBOX_ID = "00000000-0000-4000-8000-00000000b002"
DEMO_MAILBOX_UPN = "jit-notifications@demo.onmicrosoft.com"


def seed_demo_tenant(sim: GraphSimulator) -> Tenant:
    tenant = sim.add_tenant(
        tenant_id=DEMO_TENANT_ID,
        initial_domain=DEMO_INITIAL_DOMAIN,
        display_name=DEMO_DISPLAY_NAME,
    )
    for group_id, name in DEMO_GROUPS.items():
        tenant.add_group(name, group_id)
    tenant.add_user(DEMO_APPROVER_UPN, "Demo Approver", user_id=DEMO_APPROVER_ID, employee_type="Employee")
    tenant.add_member("00000000-0000-4000-8000-00000000a002", DEMO_APPROVER_ID)
    tenant.add_user(DEMO_MAILBOX_UPN, "JIT Notifications", user_id=DEMO_MAILBOX_ID, has_mailbox=True)
    return tenant
