"""Directory records and small value types the tenant state is made of (plain data, no locking)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# onPremisesExtensionAttributes always has these 15 keys in Graph responses.
EXTENSION_ATTRIBUTE_KEYS = tuple(f"extensionAttribute{i}" for i in range(1, 16))


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def iso(moment: datetime, precise: bool = False) -> str:
    if precise:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_now(precise: bool = False) -> str:
    """Graph timestamps: `2024-05-01T10:00:00Z` (directory) or with fractions (auth methods)."""
    return iso(datetime.now(UTC), precise)


@dataclass
class TapPolicy:
    """Temporary Access Pass method policy; defaults are the documented example values.

    include_targets / exclude_targets: group ids, or "all_users" (include only), as in the configuration's
    includeTargets (authenticationMethodTarget) and excludeTargets (excludeTarget).
    """

    state: str = "enabled"
    default_lifetime_minutes: int = 60
    default_length: int = 8
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    is_usable_once: bool = False
    include_targets: tuple[str, ...] = ("all_users",)
    exclude_targets: tuple[str, ...] = ()

    _GRAPH_NAMES = {
        "state": "state",
        "defaultLifetimeInMinutes": "default_lifetime_minutes",
        "defaultLength": "default_length",
        "minimumLifetimeInMinutes": "minimum_lifetime_minutes",
        "maximumLifetimeInMinutes": "maximum_lifetime_minutes",
        "isUsableOnce": "is_usable_once",
        "includeTargets": "include_targets",
        "excludeTargets": "exclude_targets",
    }

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
            "id": "TemporaryAccessPass",
            "state": self.state,
            "defaultLifetimeInMinutes": self.default_lifetime_minutes,
            "defaultLength": self.default_length,
            "minimumLifetimeInMinutes": self.minimum_lifetime_minutes,
            "maximumLifetimeInMinutes": self.maximum_lifetime_minutes,
            "isUsableOnce": self.is_usable_once,
            "excludeTargets": [{"targetType": "group", "id": t} for t in self.exclude_targets],
            "includeTargets@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/authenticationMethodsPolicy/"
            "authenticationMethodConfigurations('TemporaryAccessPass')/microsoft.graph."
            "temporaryAccessPassAuthenticationMethodConfiguration/includeTargets",
            "includeTargets": [{"targetType": "group", "id": t, "isRegistrationRequired": False} for t in self.include_targets],
        }

    def updated(self, data: Mapping[str, Any]) -> TapPolicy:
        """Copy with fields from Graph (camelCase) or Python (snake_case) names."""
        values = {k: v for k, v in asdict(self).items()}
        for key, value in data.items():
            name = self._GRAPH_NAMES.get(key, key)
            if name not in values:
                raise ValueError(f"unknown TAP policy field {key!r}")
            if name in ("include_targets", "exclude_targets"):
                value = tuple(_target_id(v) for v in value)
            values[name] = value
        policy = TapPolicy(**values)
        if policy.state not in ("enabled", "disabled"):
            raise ValueError("state must be 'enabled' or 'disabled'")
        if "all_users" in policy.exclude_targets:
            raise ValueError("excludeTargets take groups only")
        return policy


def _target_id(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    if not isinstance(value, str) or not (value == "all_users" or is_guid(value)):
        raise ValueError(f"a TAP policy target is a group id or 'all_users', got {value!r}")
    return value.lower() if value != "all_users" else value


@dataclass
class Domain:
    name: str
    verified: bool = True
    is_initial: bool = False
    is_default: bool = False


@dataclass
class UserRecord:
    props: dict[str, Any]
    password: str | None
    # time.monotonic() before which replicas don't know the user yet (lag model).
    visible_after: float = 0.0
    # After a soft delete: time.monotonic() before which /directory/deletedItems doesn't show it yet.
    deleted_visible_after: float = 0.0
    revocations: list[str] = field(default_factory=list)
    has_mailbox: bool = False

    @property
    def id(self) -> str:
        return str(self.props["id"])

    @property
    def upn(self) -> str:
        return str(self.props["userPrincipalName"])


@dataclass
class GroupRecord:
    props: dict[str, Any]
    members: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.props["id"])

    @property
    def role_assignable(self) -> bool:
        return bool(self.props.get("isAssignableToRole"))


@dataclass
class ServicePrincipalRecord:
    """An application's service principal in this tenant: the admin's consent and the app's directory roles."""

    id: str
    app_id: str
    display_name: str
    permissions: set[str]  # application permissions (Graph app roles) the tenant consented to

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "servicePrincipalType": "Application",
            "accountEnabled": True,
            "deletedDateTime": None,
        }


@dataclass
class TapRecord:
    user_id: str
    props: dict[str, Any]  # includes the secret under "temporaryAccessPass"


@dataclass
class SentMessage:
    sender_id: str
    sender_upn: str
    message: dict[str, Any]
    save_to_sent_items: bool
    sent_at: str


@dataclass
class Schedule:
    """A PIM schedule (Entra role or group membership): active from start until end on the directory clock."""

    id: str
    kind: str  # "role" | "group"
    principal_id: str
    start: float
    end: float | None  # None = noExpiration
    request_id: str
    role_definition_id: str = ""
    directory_scope_id: str = "/"
    group_id: str = ""
    access_id: str = ""  # member | owner
    created: str = ""
    assigned_at: float = 0.0  # directory-clock time of the request that made it (the five-minute floor counts from here)

    def active(self, now: float) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


def default_user_props(user_id: str, upn: str, display_name: str) -> dict[str, Any]:
    """All properties the simulator tracks for a user, at their Graph defaults."""
    created = iso_now()
    return {
        "id": user_id,
        "accountEnabled": True,
        "businessPhones": [],
        "city": None,
        "companyName": None,
        "country": None,
        "createdDateTime": created,
        "creationType": None,
        "deletedDateTime": None,
        "department": None,
        "displayName": display_name,
        "employeeId": None,
        "employeeType": None,
        "givenName": None,
        "identities": [],
        "jobTitle": None,
        # user.md: "when this Microsoft Entra user last changed their password or when their password was created".
        "lastPasswordChangeDateTime": created,
        "mail": None,
        "mailNickname": upn.split("@", 1)[0],
        "mobilePhone": None,
        "officeLocation": None,
        "onPremisesExtensionAttributes": {k: None for k in EXTENSION_ATTRIBUTE_KEYS},
        "onPremisesImmutableId": None,
        "onPremisesSyncEnabled": None,
        "otherMails": [],
        "passwordPolicies": None,
        "passwordProfile": None,  # write-only in Graph: always read back as null
        "preferredLanguage": None,
        "proxyAddresses": [],
        "signInSessionsValidFromDateTime": created,
        "state": None,
        "surname": None,
        "usageLocation": None,
        "userPrincipalName": upn,
        "userType": "Member",
    }


