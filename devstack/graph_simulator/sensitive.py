"""Who may perform sensitive actions on which users: Microsoft's two tables, encoded.

Source: MicrosoftDocs/entra-docs docs/identity/role-based-access-control/privileged-roles-permissions.md
(commit 13ac541a), sections "Who can reset passwords" (columns: roles that can reset passwords *and invalidate
refresh tokens*) and "Who can perform sensitive actions" (accountEnabled, businessPhones, mobilePhone,
onPremisesImmutableId, otherMails, passwordProfile, userPrincipalName, "Delete or restore users"). Rows are the
roles the *target* holds; a target with several roles needs a caller allowed by every row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .catalog import ROLE_IDS

AUTH = ROLE_IDS["Authentication Administrator"]
USER = ROLE_IDS["User Administrator"]
PAA = ROLE_IDS["Privileged Authentication Administrator"]
GA = ROLE_IDS["Global Administrator"]
PASSWORD = ROLE_IDS["Password Administrator"]
HELPDESK = ROLE_IDS["Helpdesk Administrator"]

# Row keys besides role template ids.
NO_ADMIN_ROLE = "user"
ROLE_ASSIGNABLE_GROUP_MEMBER = "user-in-role-assignable-group"
OTHER_ROLE = "all-other-roles"

_ALL4 = frozenset({AUTH, USER, PAA, GA})
_TOP = frozenset({PAA, GA})

# "Who can perform sensitive actions": columns Auth Admin, User Admin, Privileged Auth Admin, Global Admin.
SENSITIVE_ACTIONS: dict[str, frozenset[str]] = {
    ROLE_IDS["Authentication Administrator"]: frozenset({AUTH, PAA, GA}),
    ROLE_IDS["Directory Readers"]: _ALL4,
    ROLE_IDS["Global Administrator"]: _TOP,
    ROLE_IDS["Groups Administrator"]: frozenset({USER, PAA, GA}),
    ROLE_IDS["Guest Inviter"]: _ALL4,
    ROLE_IDS["Helpdesk Administrator"]: frozenset({USER, PAA, GA}),
    ROLE_IDS["Message Center Reader"]: _ALL4,
    ROLE_IDS["Password Administrator"]: _ALL4,
    ROLE_IDS["Privileged Authentication Administrator"]: _TOP,
    ROLE_IDS["Privileged Role Administrator"]: _TOP,
    ROLE_IDS["Reports Reader"]: _ALL4,
    NO_ADMIN_ROLE: _ALL4,
    ROLE_ASSIGNABLE_GROUP_MEMBER: _TOP,
    ROLE_IDS["User Administrator"]: frozenset({USER, PAA, GA}),
    ROLE_IDS["Usage Summary Reports Reader"]: _ALL4,
    OTHER_ROLE: _TOP,
}

_ALL6 = frozenset({PASSWORD, HELPDESK, AUTH, USER, PAA, GA})
_NOT_PASSWORD = frozenset({HELPDESK, AUTH, USER, PAA, GA})

# "Who can reset passwords" (and invalidate refresh tokens): columns Password, Helpdesk, Auth, User, PAA, GA.
RESET_PASSWORDS: dict[str, frozenset[str]] = {
    ROLE_IDS["Authentication Administrator"]: frozenset({AUTH, PAA, GA}),
    ROLE_IDS["Directory Readers"]: _ALL6,
    ROLE_IDS["Global Administrator"]: _TOP,
    ROLE_IDS["Groups Administrator"]: frozenset({USER, PAA, GA}),
    ROLE_IDS["Guest Inviter"]: _ALL6,
    ROLE_IDS["Helpdesk Administrator"]: frozenset({HELPDESK, USER, PAA, GA}),
    ROLE_IDS["Message Center Reader"]: _NOT_PASSWORD,
    ROLE_IDS["Password Administrator"]: _ALL6,
    ROLE_IDS["Privileged Authentication Administrator"]: _TOP,
    ROLE_IDS["Privileged Role Administrator"]: _TOP,
    ROLE_IDS["Reports Reader"]: _NOT_PASSWORD,
    NO_ADMIN_ROLE: _ALL6,
    ROLE_ASSIGNABLE_GROUP_MEMBER: _TOP,
    ROLE_IDS["User Administrator"]: frozenset({USER, PAA, GA}),
    ROLE_IDS["Usage Summary Reports Reader"]: _NOT_PASSWORD,
    OTHER_ROLE: _TOP,
}

# Properties the tables call sensitive ("Who can perform sensitive actions", first table).
SENSITIVE_PROPERTIES = frozenset(
    {
        "accountenabled",
        "businessphones",
        "mobilephone",
        "onpremisesimmutableid",
        "othermails",
        "passwordprofile",
        "userprincipalname",
    }
)


def target_rows(target_roles: Iterable[str], in_role_assignable_group: bool) -> list[str]:
    """The table rows a target user falls under."""
    rows = []
    for role in target_roles:
        rows.append(role if role in SENSITIVE_ACTIONS else OTHER_ROLE)
    if in_role_assignable_group:
        rows.append(ROLE_ASSIGNABLE_GROUP_MEMBER)
    return rows or [NO_ADMIN_ROLE]


def allowed(table: dict[str, frozenset[str]], caller_roles: Collection[str], rows: Iterable[str]) -> bool:
    """True when one of the caller's roles is ticked for every row that applies to the target."""
    return all(any(role in table[row] for role in caller_roles) for row in rows)


def is_privileged_target(rows: Iterable[str]) -> bool:
    return any(row != NO_ADMIN_ROLE for row in rows)
