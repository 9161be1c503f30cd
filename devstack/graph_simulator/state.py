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
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from .apps import DEFAULT_APP_PERMISSIONS, DEV_APP_ID, DEV_APP_NAME
from .catalog import BUILTIN_ROLES, role_id
from .clock import SimClock
from .licences import Sku, default_skus
from .records import (
    EXTENSION_ATTRIBUTE_KEYS,
    GUID_RE,
    Domain,
    GroupRecord,
    Schedule,
    SentMessage,
    ServicePrincipalRecord,
    TapPolicy,
    TapRecord,
    UserRecord,
    default_user_props,
    is_guid,
    iso,
    iso_now,
)

# How a not-yet-replicated object surfaces in writes that reference it.
LAG_STATUSES = ("404", "400", "mixed")

__all__ = [
    "EXTENSION_ATTRIBUTE_KEYS",
    "GUID_RE",
    "LAG_STATUSES",
    "Domain",
    "GroupRecord",
    "Schedule",
    "SentMessage",
    "ServicePrincipalRecord",
    "TapPolicy",
    "TapRecord",
    "Tenant",
    "UserRecord",
    "default_user_props",
    "is_guid",
    "iso",
    "iso_now",
]


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
        clock: SimClock | None = None,
    ) -> None:
        self.id = tenant_id.lower()
        self.display_name = display_name
        self.initial_domain = initial_domain.lower()
        self.created = iso_now()
        self._lock = lock
        self._global_lag = global_lag
        self.clock = clock or SimClock()
        self.domains: dict[str, Domain] = {self.initial_domain: Domain(self.initial_domain, True, True, True)}
        for name in extra_verified_domains:
            self.domains[name.lower()] = Domain(name.lower(), True)
        self.tap_policy: TapPolicy = tap_policy or TapPolicy()
        # None = follow the simulator-wide replication lag.
        self.replication_lag_seconds: float | None = None
        # How a not-yet-replicated object surfaces in writes that reference it: 404, 400, or alternating.
        self.lag_status = "404"
        self._lag_flip = False
        # "Accepted but not performed": DELETE answers 204 and changes nothing.
        self.accept_deletes_without_effect = False
        # Graph docs: a new TAP replaces a user's existing one. False = reject instead.
        self.tap_replace_existing = True
        self.user_records: dict[str, UserRecord] = {}
        self.deleted_user_records: dict[str, UserRecord] = {}
        self.group_records: dict[str, GroupRecord] = {}
        self.service_principals: dict[str, ServicePrincipalRecord] = {}  # by appId
        self.role_definitions: dict[str, dict[str, Any]] = {}
        self.role_assignment_records: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, Schedule] = {}
        self.schedule_requests: dict[str, dict[str, Any]] = {}
        self.skus: list[Sku] = default_skus()
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

    def lag_error_status(self) -> int:
        """404 or 400 for a write that references an object replicas don't know yet (per `lag_status`)."""
        if self.lag_status == "mixed":
            self._lag_flip = not self._lag_flip
            return 400 if self._lag_flip else 404
        return int(self.lag_status)

    def lagging(self, object_id: str) -> bool:
        """True while `object_id` exists on the write side but replicas haven't seen it."""
        record = self.user_records.get(object_id.lower())
        return record is not None and not self.is_visible(record)

    # -- lookups used by handlers (caller holds the lock) ------------------

    def now(self) -> float:
        return self.clock.time()

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

    def service_principal_by_id(self, object_id: str) -> ServicePrincipalRecord | None:
        return next((sp for sp in self.service_principals.values() if sp.id == object_id.lower()), None)

    def directory_object(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        """Resolve a user, group or service principal id to (kind, props); hides lagging users."""
        key = object_id.lower()
        user = self.user_records.get(key)
        if user is not None:
            return ("user", user.props) if self.is_visible(user) else None
        group = self.group_records.get(key)
        if group is not None:
            return ("group", group.props)
        sp = self.service_principal_by_id(key)
        if sp is not None:
            return ("servicePrincipal", sp.view())
        return None

    def verified_domain(self, name: str) -> bool:
        domain = self.domains.get(name.lower())
        return bool(domain and domain.verified)

    # -- role and group facts (caller holds the lock) -----------------------

    def active_schedules(self, kind: str) -> list[Schedule]:
        now = self.now()
        return [s for s in self.schedules.values() if s.kind == kind and s.active(now)]

    def role_assignments_now(self) -> list[dict[str, Any]]:
        """Direct role assignments plus those PIM schedules make active right now (as Graph lists them)."""
        from .handlers.roles import assignment_id  # local: handlers import state

        out = [dict(ra) for ra in self.role_assignment_records.values()]
        for schedule in self.active_schedules("role"):
            ra_id = assignment_id(schedule.role_definition_id, schedule.principal_id, schedule.directory_scope_id)
            if ra_id not in self.role_assignment_records:
                out.append(
                    {
                        "id": ra_id,
                        "principalId": schedule.principal_id,
                        "roleDefinitionId": schedule.role_definition_id,
                        "directoryScopeId": schedule.directory_scope_id,
                        "appScopeId": None,
                        "condition": None,
                    }
                )
        return out

    def members_of(self, group_id: str) -> list[str]:
        """Direct members, plus PIM-for-Groups members while their schedule is active."""
        group = self.group_records[group_id.lower()]
        members = list(group.members)
        for schedule in self.active_schedules("group"):
            if schedule.group_id == group.id and schedule.access_id == "member" and schedule.principal_id not in members:
                members.append(schedule.principal_id)
        return members

    def owners_of(self, group_id: str) -> list[str]:
        group = self.group_records[group_id.lower()]
        owners = list(group.owners)
        for schedule in self.active_schedules("group"):
            if schedule.group_id == group.id and schedule.access_id == "owner" and schedule.principal_id not in owners:
                owners.append(schedule.principal_id)
        return owners

    def groups_of(self, object_id: str, *, transitive: bool = False) -> list[GroupRecord]:
        """Groups the object is a member of (directly, or also through nested groups)."""
        found: list[GroupRecord] = []
        frontier = [object_id.lower()]
        seen: set[str] = set()
        while frontier:
            current = frontier.pop()
            for group in self.group_records.values():
                if group.id not in seen and current in self.members_of(group.id):
                    seen.add(group.id)
                    found.append(group)
                    if transitive:
                        frontier.append(group.id)
        return found

    def roles_of(self, object_id: str, *, include_groups: bool = True) -> set[str]:
        """Role definition ids active for a principal: direct, and via role-assignable groups it belongs to."""
        principals = {object_id.lower()}
        if include_groups:
            principals |= {g.id for g in self.groups_of(object_id, transitive=False) if g.role_assignable}
        return {ra["roleDefinitionId"] for ra in self.role_assignments_now() if ra["principalId"] in principals}

    def in_role_assignable_group(self, user_id: str) -> bool:
        """Member or owner of a role-assignable group (the sensitive-action tables' special row)."""
        uid = user_id.lower()
        return any(
            g.role_assignable and (uid in self.members_of(g.id) or uid in self.owners_of(g.id))
            for g in self.group_records.values()
        )

    def has_licence_plan(self, *plan_names: str) -> bool:
        wanted = {p.upper() for p in plan_names}
        return any(
            sku.capability_status == "Enabled" and any(p.upper() in wanted for p in sku.service_plans) for sku in self.skus
        )

    # -- mutations shared by handlers and test helpers --------------------

    def insert_user(self, props: dict[str, Any], password: str | None, visible_after: float = 0.0) -> UserRecord:
        record = UserRecord(props=props, password=password, visible_after=visible_after)
        self.user_records[record.id] = record
        return record

    def soft_delete_user(self, record: UserRecord) -> None:
        del self.user_records[record.id]
        record.props["deletedDateTime"] = iso_now()
        lag = self.effective_lag()
        record.deleted_visible_after = time.monotonic() + lag if lag > 0 else 0.0
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
        owners: Iterable[str] = (),
        is_assignable_to_role: bool = False,
        security_enabled: bool = True,
        group_types: Iterable[str] = (),
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
                "groupTypes": list(group_types),
                # Graph returns null unless the group was created role-assignable (group.md).
                "isAssignableToRole": True if is_assignable_to_role else None,
                "mail": None,
                "mailEnabled": "Unified" in group_types,
                "mailNickname": nickname,
                "securityEnabled": security_enabled,
                "securityIdentifier": None,
                "visibility": "Private" if is_assignable_to_role else None,
            }
            self.group_records[gid] = GroupRecord(
                props=props, members=[m.lower() for m in members], owners=[o.lower() for o in owners]
            )
        return gid

    def remove_group(self, group_id: str) -> None:
        """Delete a group for good (security groups are not soft-deleted: group-delete.md). Its memberships in other
        groups, the role assignments and PIM schedules naming it go with it (assumption, BEHAVIOUR.md section 9)."""
        gid = group_id.lower()
        with self._lock:
            self.group_records.pop(gid, None)
            for group in self.group_records.values():
                group.members = [m for m in group.members if m != gid]
                group.owners = [o for o in group.owners if o != gid]
            for ra_id, ra in list(self.role_assignment_records.items()):
                if ra["principalId"] == gid:
                    del self.role_assignment_records[ra_id]
            for schedule_id, schedule in list(self.schedules.items()):
                if gid in (schedule.group_id, schedule.principal_id):
                    del self.schedules[schedule_id]

    def add_user(
        self,
        upn: str,
        display_name: str,
        *,
        user_id: str | None = None,
        account_enabled: bool = True,
        password: str | None = None,
        has_mailbox: bool = False,
        **extra: Any,
    ) -> str:
        """Seed a pre-existing user (no validation, no replication lag). `has_mailbox`: an Exchange Online mailbox."""
        uid = (user_id or str(uuid.uuid4())).lower()
        with self._lock:
            if self.upn_taken(upn):
                raise ValueError(f"userPrincipalName {upn!r} already exists")
            if uid in self.user_records or uid in self.group_records:
                raise ValueError(f"object {uid} already exists")
            props = default_user_props(uid, upn, display_name)
            props["accountEnabled"] = account_enabled
            if has_mailbox:
                props["mail"] = upn
                props["proxyAddresses"] = [f"SMTP:{upn}"]
            for key, value in extra.items():
                props[_camel(key)] = value
            record = self.insert_user(props, password)
            record.has_mailbox = has_mailbox
        return uid

    def set_mailbox(self, id_or_upn: str, has_mailbox: bool = True) -> None:
        with self._lock:
            record = self.find_user(id_or_upn, include_invisible=True)
            if record is None:
                raise KeyError(id_or_upn)
            record.has_mailbox = has_mailbox

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

    def assign_role(self, principal_id: str, role: str, scope: str = "/") -> str:
        """Seed an active role assignment (role: template id or built-in display name)."""
        from .handlers.roles import assignment_id

        definition_id = role_id(role) if role.lower() not in self.role_definitions else role.lower()
        with self._lock:
            ra_id = assignment_id(definition_id, principal_id, scope)
            self.role_assignment_records[ra_id] = {
                "id": ra_id,
                "principalId": principal_id.lower(),
                "roleDefinitionId": definition_id,
                "directoryScopeId": scope,
                "appScopeId": None,
                "condition": None,
            }
        return ra_id

    # -- the app's service principal: consent and directory roles ----------

    def consent(
        self,
        app_id: str = DEV_APP_ID,
        permissions: Iterable[str] | None = None,
        *,
        display_name: str | None = None,
        directory_roles: Iterable[str] | None = None,
    ) -> ServicePrincipalRecord:
        """Admin consent: create the app's service principal here with these application permissions."""
        with self._lock:
            sp = self.service_principals.get(app_id.lower())
            if sp is None:
                sp = ServicePrincipalRecord(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.id}:{app_id.lower()}")),
                    app_id=app_id.lower(),
                    display_name=display_name or (DEV_APP_NAME if app_id.lower() == DEV_APP_ID else app_id),
                    permissions=set(),
                )
                self.service_principals[sp.app_id] = sp
            sp.permissions = set(DEFAULT_APP_PERMISSIONS if permissions is None else permissions)
            if directory_roles is not None:
                self.set_app_directory_roles(directory_roles, app_id)
            return sp

    def revoke_consent(self, app_id: str = DEV_APP_ID) -> None:
        with self._lock:
            sp = self.service_principals.pop(app_id.lower(), None)
            if sp is not None:
                for ra_id, ra in list(self.role_assignment_records.items()):
                    if ra["principalId"] == sp.id:
                        del self.role_assignment_records[ra_id]

    def set_app_directory_roles(self, roles: Iterable[str], app_id: str = DEV_APP_ID) -> None:
        """Replace the Entra roles assigned to the app's service principal (names or template ids)."""
        wanted = {role_id(r) for r in roles}
        with self._lock:
            sp = self.service_principals[app_id.lower()]
            for ra_id, ra in list(self.role_assignment_records.items()):
                if ra["principalId"] == sp.id and ra["roleDefinitionId"] not in wanted:
                    del self.role_assignment_records[ra_id]
            for role in wanted:
                self.assign_role(sp.id, role)

    def app_directory_roles(self, app_id: str = DEV_APP_ID) -> set[str]:
        with self._lock:
            sp = self.service_principals.get(app_id.lower())
            return self.roles_of(sp.id, include_groups=False) if sp else set()

    @property
    def app_permissions(self) -> set[str]:
        with self._lock:
            sp = self.service_principals.get(DEV_APP_ID)
            return set(sp.permissions) if sp else set()

    @app_permissions.setter
    def app_permissions(self, permissions: Iterable[str]) -> None:
        with self._lock:
            sp = self.service_principals.get(DEV_APP_ID)
            if sp is None:
                self.consent(DEV_APP_ID, permissions)
            else:
                sp.permissions = set(permissions)

    # -- licences ------------------------------------------------------------

    def set_skus(self, skus: Iterable[Sku]) -> None:
        with self._lock:
            self.skus = list(skus)

    # -- assertions ----------------------------------------------------------

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
        """Members right now: direct ones and active PIM-for-Groups memberships."""
        with self._lock:
            return self.members_of(group_id)

    @property
    def role_assignments(self) -> list[dict[str, Any]]:
        """Active role assignments right now (direct and PIM), excluding the app's own."""
        with self._lock:
            app_ids = {sp.id for sp in self.service_principals.values()}
            return [copy.deepcopy(ra) for ra in self.role_assignments_now() if ra["principalId"] not in app_ids]

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
                "lagStatus": self.lag_status,
                "acceptDeletesWithoutEffect": self.accept_deletes_without_effect,
                "tapReplaceExisting": self.tap_replace_existing,
                "tapPolicy": self.tap_policy.to_graph(),
                "servicePrincipals": [
                    {
                        **sp.view(),
                        "permissions": sorted(sp.permissions),
                        "directoryRoles": sorted(self.roles_of(sp.id, include_groups=False)),
                    }
                    for sp in self.service_principals.values()
                ],
                "subscribedSkus": [sku.view() for sku in self.skus],
                "users": [{**copy.deepcopy(r.props), "hasMailbox": r.has_mailbox} for r in self.user_records.values()],
                "deletedUsers": self.deleted_items,
                "groups": [
                    {**copy.deepcopy(g.props), "members": self.members_of(g.id), "owners": self.owners_of(g.id)}
                    for g in self.group_records.values()
                ],
                "customRoleDefinitions": [copy.deepcopy(r) for r in self.role_definitions.values() if not r["isBuiltIn"]],
                "roleAssignments": self.role_assignments,
                "schedules": [asdict(s) for s in self.schedules.values()],
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
