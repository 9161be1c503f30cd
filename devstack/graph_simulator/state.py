"""Tenants and their directory objects.

A Tenant is plain data plus a few invariant-keeping operations. Graph
validation and error shapes live in the handlers; this module only knows what
exists. All mutation happens under the simulator-wide lock the tenant is given,
so test code and HTTP threads can use the same Tenant safely.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .catalog import BUILTIN_ROLES

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# onPremisesExtensionAttributes always has these 15 keys in Graph responses.
EXTENSION_ATTRIBUTE_KEYS = tuple(f"extensionAttribute{i}" for i in range(1, 16))


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def iso_now(precise: bool = False) -> str:
    """Graph timestamps: `2024-05-01T10:00:00Z` (directory) or with fractions (auth methods)."""
    now = datetime.now(UTC)
    if precise:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TapPolicy:
    """Temporary Access Pass method policy; defaults are the documented example values."""

    state: str = "enabled"
    default_lifetime_minutes: int = 60
    default_length: int = 8
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    is_usable_once: bool = False

    _GRAPH_NAMES = {
        "state": "state",
        "defaultLifetimeInMinutes": "default_lifetime_minutes",
        "defaultLength": "default_length",
        "minimumLifetimeInMinutes": "minimum_lifetime_minutes",
        "maximumLifetimeInMinutes": "maximum_lifetime_minutes",
        "isUsableOnce": "is_usable_once",
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
            "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
            "excludeTargets": [],
        }

    def updated(self, data: Mapping[str, Any]) -> TapPolicy:
        """Copy with fields from Graph (camelCase) or Python (snake_case) names."""
        values = asdict(self)
        for key, value in data.items():
            name = self._GRAPH_NAMES.get(key, key)
            if name not in values:
                raise ValueError(f"unknown TAP policy field {key!r}")
            values[name] = value
        policy = TapPolicy(**values)
        if policy.state not in ("enabled", "disabled"):
            raise ValueError("state must be 'enabled' or 'disabled'")
        return policy


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
    revocations: list[str] = field(default_factory=list)

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

    @property
    def id(self) -> str:
        return str(self.props["id"])


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


class Tenant:
    """One simulated Entra tenant. Read accessors return deep copies."""

    def __init__(
        self,
        tenant_id: str,
        initial_domain: str,
        display_name: str,
        extra_verified_domains: Iterable[str],
        tap_policy: TapPolicy | None,
        lock: threading.RLock,
        global_lag: Callable[[], float],
    ) -> None:
        self.id = tenant_id.lower()
        self.display_name = display_name
        self.initial_domain = initial_domain.lower()
        self.created = iso_now()
        self._lock = lock
        self._global_lag = global_lag
        self.domains: dict[str, Domain] = {self.initial_domain: Domain(self.initial_domain, True, True, True)}
        for name in extra_verified_domains:
            self.domains[name.lower()] = Domain(name.lower(), True)
        self.tap_policy: TapPolicy = tap_policy or TapPolicy()
        # None = follow the simulator-wide replication lag.
        self.replication_lag_seconds: float | None = None
        # "Accepted but not performed": DELETE answers 204 and changes nothing.
        self.accept_deletes_without_effect = False
        # Graph docs: a new TAP replaces a user's existing one. False = reject instead.
        self.tap_replace_existing = True
        self.user_records: dict[str, UserRecord] = {}
        self.deleted_user_records: dict[str, UserRecord] = {}
        self.group_records: dict[str, GroupRecord] = {}
        self.role_definitions: dict[str, dict[str, Any]] = {}
        self.role_assignment_records: dict[str, dict[str, Any]] = {}
        self.tap_records: dict[str, list[TapRecord]] = {}
        self.sent: list[SentMessage] = []
        for role in BUILTIN_ROLES:
            self.role_definitions[role.template_id] = _role_definition(
                role.template_id, role.display_name, role.description, built_in=True
            )

    # -- replication lag -------------------------------------------------

    def effective_lag(self) -> float:
        lag = self.replication_lag_seconds
        return self._global_lag() if lag is None else lag

    def is_visible(self, record: UserRecord) -> bool:
        return time.monotonic() >= record.visible_after

    # -- lookups used by handlers (caller holds the lock) ------------------

    def find_user(self, key: str, *, include_invisible: bool = False) -> UserRecord | None:
        """By object id or UPN (case-insensitive), as Graph resolves /users/{key}."""
        record = self.user_records.get(key.lower())
        if record is None and "@" in key:
            wanted = key.lower()
            record = next((r for r in self.user_records.values() if r.upn.lower() == wanted), None)
        if record is None or (not include_invisible and not self.is_visible(record)):
            return None
        return record

    def upn_taken(self, upn: str, except_id: str | None = None) -> UserRecord | None:
        wanted = upn.lower()
        for record in self.user_records.values():
            if record.upn.lower() == wanted and record.id != except_id:
                return record
        return None

    def directory_object(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        """Resolve a user or group id to ("user"|"group", props); hides lagging users."""
        key = object_id.lower()
        user = self.user_records.get(key)
        if user is not None:
            return ("user", user.props) if self.is_visible(user) else None
        group = self.group_records.get(key)
        if group is not None:
            return ("group", group.props)
        return None

    def verified_domain(self, name: str) -> bool:
        domain = self.domains.get(name.lower())
        return bool(domain and domain.verified)

    # -- mutations shared by handlers and test helpers --------------------

    def insert_user(self, props: dict[str, Any], password: str | None, visible_after: float = 0.0) -> UserRecord:
        record = UserRecord(props=props, password=password, visible_after=visible_after)
        self.user_records[record.id] = record
        return record

    def soft_delete_user(self, record: UserRecord) -> None:
        del self.user_records[record.id]
        record.props["deletedDateTime"] = iso_now()
        self.deleted_user_records[record.id] = record
        # Assumption (BEHAVIOUR.md): directory role assignments go with the user.
        for ra_id, ra in list(self.role_assignment_records.items()):
            if ra["principalId"] == record.id:
                del self.role_assignment_records[ra_id]

    def restore_user(self, record: UserRecord) -> None:
        del self.deleted_user_records[record.id]
        record.props["deletedDateTime"] = None
        record.visible_after = 0.0
        self.user_records[record.id] = record

    def purge_user(self, record: UserRecord) -> None:
        del self.deleted_user_records[record.id]
        self.tap_records.pop(record.id, None)
        for group in self.group_records.values():
            if record.id in group.members:
                group.members.remove(record.id)

    # -- public helpers for tests and the control API ---------------------

    def add_domain(self, name: str, verified: bool = True) -> None:
        with self._lock:
            self.domains[name.lower()] = Domain(name.lower(), verified)

    def add_group(
        self,
        display_name: str,
        group_id: str | None = None,
        *,
        description: str | None = None,
        members: Iterable[str] = (),
    ) -> str:
        gid = (group_id or str(uuid.uuid4())).lower()
        if not is_guid(gid):
            raise ValueError(f"group id must be a GUID: {gid!r}")
        with self._lock:
            if gid in self.group_records or gid in self.user_records:
                raise ValueError(f"object {gid} already exists")
            nickname = re.sub(r"[^A-Za-z0-9]", "", display_name) or "group"
            props: dict[str, Any] = {
                "id": gid,
                "createdDateTime": iso_now(),
                "deletedDateTime": None,
                "description": description,
                "displayName": display_name,
                "groupTypes": [],
                "isAssignableToRole": None,
                "mail": None,
                "mailEnabled": False,
                "mailNickname": nickname,
                "securityEnabled": True,
                "securityIdentifier": None,
                "visibility": None,
            }
            self.group_records[gid] = GroupRecord(props=props, members=[m.lower() for m in members])
        return gid

    def add_user(
        self,
        upn: str,
        display_name: str,
        *,
        user_id: str | None = None,
        account_enabled: bool = True,
        password: str | None = None,
        **extra: Any,
    ) -> str:
        """Seed a pre-existing user (no validation, no replication lag)."""
        uid = (user_id or str(uuid.uuid4())).lower()
        with self._lock:
            if self.upn_taken(upn):
                raise ValueError(f"userPrincipalName {upn!r} already exists")
            if uid in self.user_records or uid in self.group_records:
                raise ValueError(f"object {uid} already exists")
            props = default_user_props(uid, upn, display_name)
            props["accountEnabled"] = account_enabled
            for key, value in extra.items():
                props[_camel(key)] = value
            self.insert_user(props, password)
        return uid

    def add_role_definition(
        self,
        display_name: str,
        *,
        role_id: str | None = None,
        description: str = "",
        allowed_resource_actions: Iterable[str] = (),
    ) -> str:
        """Add a custom (isBuiltIn false) role definition; returns its id."""
        rid = (role_id or str(uuid.uuid4())).lower()
        with self._lock:
            if rid in self.role_definitions:
                raise ValueError(f"role definition {rid} already exists")
            self.role_definitions[rid] = _role_definition(
                rid,
                display_name,
                description,
                built_in=False,
                actions=list(allowed_resource_actions),
            )
        return rid

    def add_member(self, group_id: str, member_id: str) -> None:
        with self._lock:
            group = self.group_records[group_id.lower()]
            if member_id.lower() not in group.members:
                group.members.append(member_id.lower())

    @property
    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r.props) for r in self.user_records.values()]

    def user(self, id_or_upn: str) -> dict[str, Any] | None:
        with self._lock:
            record = self.find_user(id_or_upn, include_invisible=True)
            return copy.deepcopy(record.props) if record else None

    def password_of(self, id_or_upn: str) -> str | None:
        with self._lock:
            record = self.find_user(id_or_upn, include_invisible=True)
            return record.password if record else None

    def revocations(self, id_or_upn: str) -> list[str]:
        with self._lock:
            record = self.find_user(id_or_upn, include_invisible=True)
            return list(record.revocations) if record else []

    @property
    def groups(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(g.props) for g in self.group_records.values()]

    def group_members(self, group_id: str) -> list[str]:
        with self._lock:
            return list(self.group_records[group_id.lower()].members)

    @property
    def role_assignments(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(ra) for ra in self.role_assignment_records.values()]

    @property
    def deleted_items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r.props) for r in self.deleted_user_records.values()]

    def taps(self, user_id: str) -> list[dict[str, Any]]:
        """TAPs of a user, including the secret value (test assertions only)."""
        with self._lock:
            return [copy.deepcopy(t.props) for t in self.tap_records.get(user_id.lower(), [])]

    @property
    def sent_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(asdict(m)) for m in self.sent]

    def dump(self) -> dict[str, Any]:
        """Whole tenant state as JSON-friendly data (control API)."""
        with self._lock:
            return {
                "id": self.id,
                "displayName": self.display_name,
                "initialDomain": self.initial_domain,
                "domains": [asdict(d) for d in self.domains.values()],
                "replicationLagSeconds": self.replication_lag_seconds,
                "effectiveReplicationLagSeconds": self.effective_lag(),
                "acceptDeletesWithoutEffect": self.accept_deletes_without_effect,
                "tapReplaceExisting": self.tap_replace_existing,
                "tapPolicy": self.tap_policy.to_graph(),
                "users": self.users,
                "deletedUsers": self.deleted_items,
                "groups": [{**copy.deepcopy(g.props), "members": list(g.members)} for g in self.group_records.values()],
                "customRoleDefinitions": [copy.deepcopy(r) for r in self.role_definitions.values() if not r["isBuiltIn"]],
                "roleAssignments": self.role_assignments,
                "temporaryAccessPasses": {uid: [copy.deepcopy(t.props) for t in taps] for uid, taps in self.tap_records.items()},
                "sentMessages": self.sent_messages,
                "revocations": {r.id: list(r.revocations) for r in self.user_records.values() if r.revocations},
            }


def _camel(name: str) -> str:
    """employee_type -> employeeType, so seed helpers accept Pythonic kwargs."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _role_definition(
    role_id: str,
    display_name: str,
    description: str,
    *,
    built_in: bool,
    actions: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": role_id,
        "description": description,
        "displayName": display_name,
        "isBuiltIn": built_in,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "templateId": role_id,
        "version": "1" if built_in else None,
        "rolePermissions": [{"allowedResourceActions": list(actions or []), "condition": None}],
    }
