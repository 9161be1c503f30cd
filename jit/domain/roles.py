"""Entra roles in the product's words: a role is known by its template id (the same in every tenant for built-in
roles); names are how people write it. Which built-in roles Microsoft labels *privileged* is fixed here.

Source of the privileged list: MicrosoftDocs/entra-docs `docs/identity/role-based-access-control/
permissions-reference.md` (roles carrying the "Privileged" label, page dated 2026-01-20, commit 00fe95d6), the same
set `privileged-roles-permissions.md` describes. Graph v1.0's `unifiedRoleDefinition` has no `isPrivileged`
property (v1.0 CSDL, msgraph-metadata f54f11b6), so the list cannot be read from the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"

# The names Graph (and older PowerShell modules) use for roles whose display name differs.
ALIASES = {"company administrator": GLOBAL_ADMINISTRATOR}

PRIVILEGED_ROLES: frozenset[str] = frozenset(
    {
        "db506228-d27e-4b7d-95e5-295956d6615f",  # Agent ID Administrator
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
        "cf1c38e5-3621-4004-a7cb-879624dced7c",  # Application Developer
        "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe",  # Attribute Provisioning Administrator
        "422218e4-db15-4ef9-bbe0-8afb41546d79",  # Attribute Provisioning Reader
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",  # Authentication Administrator
        "25a516ed-2fa0-40ea-a2d0-12923a21473a",  # Authentication Extensibility Administrator
        "aaf43236-0c0d-4d5f-883a-6955382ac081",  # B2C IEF Keyset Administrator
        "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
        "7698a772-787b-4ac8-901f-60d6b08affd2",  # Cloud Device Administrator
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",  # Conditional Access Administrator
        "9360feb5-f418-4baa-8175-e2a00bac4301",  # Directory Writers
        "8329153b-31d0-4727-b945-745eb3bc5f31",  # Domain Name Administrator
        "be2f45a1-457d-42af-a067-6ec1fa63bc45",  # External Identity Provider Administrator
        GLOBAL_ADMINISTRATOR,
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",  # Hybrid Identity Administrator
        "3a2c62db-5318-420d-8d74-23affee5d9d5",  # Intune Administrator
        "59d46f88-662b-457b-bceb-5c3809e5908f",  # Lifecycle Workflows Administrator
        "4ba39ca4-527c-499a-b93d-d9b492c50246",  # Partner Tier1 Support
        "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8",  # Partner Tier2 Support
        "966707d0-3269-4727-9be2-8c3a10f19b9d",  # Password Administrator
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        PRIVILEGED_ROLE_ADMINISTRATOR,
        "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
        "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",  # Security Operator
        "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
        "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    }
)


@dataclass(frozen=True)
class RoleDefinition:
    """A role as a tenant defines it: `id` is what assignments name, `template_id` is the same across tenants."""

    id: str
    template_id: str
    display_name: str

    @property
    def privileged(self) -> bool:
        return self.template_id.lower() in PRIVILEGED_ROLES


class RoleIndex:
    """A tenant's roles, looked up by display name (case-insensitive), template id, definition id or alias."""

    def __init__(self, definitions: list[RoleDefinition]) -> None:
        self.definitions = definitions
        self._by_key: dict[str, RoleDefinition] = {}
        for definition in definitions:
            self._by_key[definition.display_name.casefold()] = definition
            self._by_key[definition.template_id.lower()] = definition
            self._by_key[definition.id.lower()] = definition

    def find(self, text: str) -> RoleDefinition | None:
        key = text.strip().casefold()
        return self._by_key.get(ALIASES.get(key, key))

    def canonical(self, text: str) -> str:
        """The role's template id when the tenant knows it; otherwise the text as a key (an alias resolved)."""
        found = self.find(text)
        if found is not None:
            return found.template_id.lower()
        key = text.strip().casefold()
        return ALIASES.get(key, key)
