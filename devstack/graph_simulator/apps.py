"""The product's development app: its client id, and what each simulated tenant consented to by default.

DEFAULT_APP_PERMISSIONS is the product's documented application-permission set (scripts/graph/permissions.json, which
docs/permissions.md's "Minimal set to consent to" equals: every group, the optional features' too, including the PIM
opt-in PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup). PIM for roles needs nothing more:
RoleManagement.ReadWrite.Directory is accepted for roleAssignmentScheduleRequests. Tests narrow it where they check
what a call needs.
DEFAULT_APP_DIRECTORY_ROLES: the Entra role docs/permissions.md tells customers to assign to the app.
"""

from __future__ import annotations

import json
from pathlib import Path

from .catalog import PRIVILEGED_AUTHENTICATION_ADMINISTRATOR

# jit/adapters/graph/credentials.py DevelopmentCredential's default client id.
DEV_APP_ID = "00000000-0000-0000-0000-00000000d0e5"
DEV_APP_NAME = "JIT admin access (development)"

_DOCUMENTED = json.loads((Path(__file__).resolve().parents[2] / "scripts" / "graph" / "permissions.json").read_text())
DEFAULT_APP_PERMISSIONS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(p for group in _DOCUMENTED["applicationPermissions"].values() for p in group),
            "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
        ]
    )
)

DEFAULT_APP_DIRECTORY_ROLES: tuple[str, ...] = (PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,)
