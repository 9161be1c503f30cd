"""Built-in Microsoft Entra role definitions shipped with every simulated tenant.

Names, descriptions and template ids are copied from the "Microsoft Entra
built-in roles" page (MicrosoftDocs/entra-docs,
docs/identity/role-based-access-control/permissions-reference.md); the ids of the
five roles added for the sensitive-action tables (Guest Inviter ... Directory
Writers) were cross-checked against a public list of Entra role template ids
(a ScubaGear-style Rego policy found by code search). For built-in
roles Graph returns id == templateId, isBuiltIn true, isEnabled true.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoleTemplate:
    template_id: str
    display_name: str
    description: str


BUILTIN_ROLES: tuple[RoleTemplate, ...] = (
    RoleTemplate(
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
    ),
    RoleTemplate(
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
        "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
    ),
    RoleTemplate(
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    ),
    RoleTemplate(
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        "Can manage all aspects of the Exchange product.",
    ),
    RoleTemplate(
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
        "Can manage all aspects of the SharePoint service.",
    ),
    RoleTemplate(
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Teams Administrator",
        "Can manage the Microsoft Teams service.",
    ),
    RoleTemplate(
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
        "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
    ),
    RoleTemplate(
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
        "Can manage all aspects of the Intune product.",
    ),
    RoleTemplate(
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
    ),
    RoleTemplate(
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Global Reader",
        "Can read everything that a Global Administrator can, but not update anything.",
    ),
    RoleTemplate(
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
        "Can access to view, set and reset authentication method information for any non-admin user.",
    ),
    RoleTemplate(
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
        "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
    ),
    RoleTemplate(
        "0526716b-113d-4c15-b2c8-68e3c22b9f80",
        "Authentication Policy Administrator",
        "Can create and manage the authentication methods policy, tenant-wide MFA "
        "settings, password protection policy, and verifiable credentials.",
    ),
    RoleTemplate(
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Billing Administrator",
        "Can perform common billing related tasks like updating payment information.",
    ),
    RoleTemplate(
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
        "Can create and manage all aspects of app registrations and enterprise apps.",
    ),
    RoleTemplate(
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
        "Can create and manage all aspects of app registrations and enterprise apps except App Proxy.",
    ),
    RoleTemplate(
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
        "Can manage Conditional Access capabilities.",
    ),
    RoleTemplate(
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Groups Administrator",
        "Members of this role can create/manage groups, create/manage groups settings "
        "like naming and expiration policies, and view groups activity and audit reports.",
    ),
    RoleTemplate(
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
        "Can reset passwords for non-administrators and Password Administrators.",
    ),
    RoleTemplate(
        "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
        "License Administrator",
        "Can manage product licenses on users and groups.",
    ),
    RoleTemplate(
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        "Security Reader",
        "Can read security information and reports in Microsoft Entra ID and Office 365.",
    ),
    RoleTemplate(
        "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",
        "Security Operator",
        "Creates and manages security events.",
    ),
    RoleTemplate(
        "17315797-102d-40b4-93e0-432062caca18",
        "Compliance Administrator",
        "Can read and manage compliance configuration and reports in Microsoft Entra ID and Microsoft 365.",
    ),
    RoleTemplate(
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        "Directory Readers",
        "Can read basic directory information. Commonly used to grant directory read access to applications and guests.",
    ),
    RoleTemplate(
        "95e79109-95c0-4d8e-aee3-d01accf2d47b",
        "Guest Inviter",
        "Can invite guest users independent of the 'members can invite guests' setting.",
    ),
    RoleTemplate(
        "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
        "Message Center Reader",
        "Can read messages and updates for their organization in Office 365 Message Center only.",
    ),
    RoleTemplate(
        "4a5d8f65-41da-4de4-8968-e035b65339cf",
        "Reports Reader",
        "Can read sign-in and audit reports.",
    ),
    RoleTemplate(
        "75934031-6c7e-415a-99d7-48dbd49e875e",
        "Usage Summary Reports Reader",
        "Read Usage reports and Adoption Score, but can't access user details.",
    ),
    RoleTemplate(
        "9360feb5-f418-4baa-8175-e2a00bac4301",
        "Directory Writers",
        "Can read and write basic directory information. For granting access to applications, not intended for users.",
    ),
)

ROLE_IDS = {role.display_name: role.template_id for role in BUILTIN_ROLES}
GLOBAL_ADMINISTRATOR = ROLE_IDS["Global Administrator"]
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = ROLE_IDS["Privileged Authentication Administrator"]
PRIVILEGED_ROLE_ADMINISTRATOR = ROLE_IDS["Privileged Role Administrator"]
USER_ADMINISTRATOR = ROLE_IDS["User Administrator"]
AUTHENTICATION_ADMINISTRATOR = ROLE_IDS["Authentication Administrator"]
HELPDESK_ADMINISTRATOR = ROLE_IDS["Helpdesk Administrator"]
PASSWORD_ADMINISTRATOR = ROLE_IDS["Password Administrator"]


def role_id(name_or_id: str) -> str:
    """A built-in role's template id from its display name (or the id itself)."""
    if name_or_id in ROLE_IDS:
        return ROLE_IDS[name_or_id]
    lowered = name_or_id.lower()
    for name, template in ROLE_IDS.items():
        if name.lower() == lowered or template == lowered:
            return template
    raise ValueError(f"unknown built-in role {name_or_id!r}")
