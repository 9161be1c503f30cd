"""The product's development app: its client id, and what each simulated tenant consented to by default.

DEFAULT_APP_PERMISSIONS is the product's minimal application-permission set from docs/permissions.md
("Minimal set to consent to"), plus Mail.Send (sendMail notifications: permissions.json lists it alone for
POST /users/{id}/sendMail) and PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup, the opt-in of docs/permissions.md
"PIM mode" (PIM for Groups requests and schedule reads: least privileged in permissions.json). PIM for roles needs
nothing more: RoleManagement.ReadWrite.Directory is accepted for roleAssignmentScheduleRequests.
DEFAULT_APP_DIRECTORY_ROLES: the Entra role docs/permissions.md tells customers to assign to the app.
"""

from __future__ import annotations

from .catalog import PRIVILEGED_AUTHENTICATION_ADMINISTRATOR

# jit/adapters/graph/credentials.py DevelopmentCredential's default client id.
DEV_APP_ID = "00000000-0000-0000-0000-00000000d0e5"
DEV_APP_NAME = "JIT admin access (development)"

DEFAULT_APP_PERMISSIONS: tuple[str, ...] = (
    "Directory.Read.All",
    "User.Read.All",
    "User.Create",
    "User.EnableDisableAccount.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All",
    "RoleManagement.ReadWrite.Directory",
    "GroupMember.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
    "Policy.Read.AuthenticationMethod",
    "User.ReadWrite.All",
    "User.DeleteRestore.All",
    "Mail.Send",
    "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
)

DEFAULT_APP_DIRECTORY_ROLES: tuple[str, ...] = (PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,)
