"""The Entra backend: access as permanent directory role assignments at tenant scope, group memberships and a
Temporary Access Pass, written through Microsoft Graph. Access ends when the expiration saga takes it away.

Reads and writes are batched: a survey is one `$batch` (two when a requested group can hold roles), a grant one
`$batch` of writes, an end one `$batch` of removals ordered with `dependsOn` so an account loses its roles before it
is disabled or deleted (in app-only calls Graph refuses sensitive actions on users holding admin roles unless the app
holds a privileged role itself: microsoft-graph-docs-contrib resources/users.md, "Who can perform sensitive actions").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from jit.adapters.backends import BackendKind
from jit.adapters.graph.gateway import GraphAnswer, GraphCall, GraphGateway, segment
from jit.domain.roles import RoleDefinition, RoleIndex
from jit.services.access_backend import (
    Account,
    AccountEnd,
    AlreadyExists,
    Catalog,
    CredentialPolicy,
    DirectoryFacts,
    GroupFacts,
    Health,
    Holdings,
    Item,
    ItemKind,
    Need,
    NewAccount,
    NotFoundInDirectory,
    Outcome,
    OutcomeStatus,
    Rejected,
    Survey,
    Window,
    WrongDirectory,
)

USER_FIELDS = "id,userPrincipalName,employeeType,accountEnabled"
ALL_USERS = "all_users"
EVENTUAL = {"ConsistencyLevel": "eventual"}
# Graph's words when a membership to remove is not there (a 400, not a 404: group-delete-members.md and the
# simulator's sources); removing what is gone counts as done.
_NOT_A_MEMBER = "removed object references do not exist"


class RoleDefinitionsCache:
    """Each tenant's role definitions, kept a few minutes: every grant needs them and they change rarely."""

    def __init__(self, ttl_seconds: float = 600) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, tuple[RoleDefinition, ...]]] = {}

    def get(self, tenant: str) -> tuple[RoleDefinition, ...] | None:
        entry = self._entries.get(tenant)
        if entry is None or time.monotonic() - entry[0] > self._ttl:
            return None
        return entry[1]

    def put(self, tenant: str, definitions: tuple[RoleDefinition, ...]) -> None:
        self._entries[tenant] = (time.monotonic(), definitions)


class EntraBackend:
    kind: ClassVar[str] = "entra"

    def __init__(self, tenant_id: str, gateway: GraphGateway, base_url: str, definitions: RoleDefinitionsCache) -> None:
        self._tenant = tenant_id
        self._graph = gateway
        self._base_url = base_url.rstrip("/")
        self._definitions = definitions

    # Reads ----------------------------------------------------------------------------------------------------

    async def describe(self) -> DirectoryFacts:
        answers = await self._graph.batch(
            [
                GraphCall("GET", "/organization", {"$select": "id,displayName,verifiedDomains"}),
                self._definitions_call(),
                GraphCall("GET", "/subscribedSkus", {"$select": "skuPartNumber,capabilityStatus,servicePlans"}),
            ]
        )
        organization = _organization(answers[0].json())
        definitions = await self._definitions_from(answers[1])
        # Licences only decide whether PIM can be offered: a tenant whose subscriptions can't be read is onboarded
        # for the direct backend all the same, and the answer says why PIM is unknown.
        licensed: bool | None = None
        detail = ""
        if answers[2].ok:
            licensed = any(_licenses_pim(s) for s in await self._rest_of_pages(answers[2]))
        else:
            detail = f"licences could not be read ({answers[2].error().message}): PIM availability unknown"
        return DirectoryFacts(
            id=organization["id"],
            display_name=organization["displayName"],
            initial_domain=organization["initialDomain"],
            domains=organization["domains"],
            definitions=definitions,
            schedules_available=licensed,
            detail=detail,
        )

    async def survey(self, need: Need) -> Survey:
        calls = [GraphCall("GET", "/organization", {"$select": "id,displayName,verifiedDomains"})]
        cached = self._definitions.get(self._tenant)
        at_definitions = at_policy = at_user = at_member_of = -1
        if cached is None and need.roles:
            at_definitions = len(calls)
            calls.append(self._definitions_call())
        if need.credential:
            at_policy = len(calls)
            calls.append(
                GraphCall("GET", "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass")
            )
        if need.existing_account:
            key = segment(need.existing_account)
            at_user = len(calls)
            calls.append(GraphCall("GET", f"/users/{key}", {"$select": USER_FIELDS}))
            # Direct memberships (groups and directory roles: what the account already has) and transitive ones
            # (what makes it privileged, and what TAP policy targeting sees).
            at_member_of = len(calls)
            calls.append(GraphCall("GET", f"/users/{key}/memberOf"))
            calls.append(GraphCall("GET", f"/users/{key}/transitiveMemberOf"))
            if need.credential:
                calls.append(GraphCall("GET", f"/users/{key}/authentication/temporaryAccessPassMethods"))
        at_groups = len(calls)
        calls += [
            GraphCall("GET", f"/groups/{segment(g)}", {"$select": "id,displayName,isAssignableToRole"}) for g in need.groups
        ]
        answers = await self._graph.batch(calls)

        organization = _organization(answers[0].json())
        if organization["id"].lower() != need.directory_id.lower():
            raise WrongDirectory(
                f"Graph answered for tenant {organization['id']}, not {need.directory_id}: the credential does not "
                "reach the grant's tenant",
                code="WrongTenant",
            )
        if at_definitions >= 0:
            definitions = await self._definitions_from(answers[at_definitions])
        else:
            definitions = cached if cached is not None else ()
        index = RoleIndex(list(definitions))
        found = {text: d for text in need.roles if (d := index.find(text)) is not None}
        if len(found) < len(need.roles) and at_definitions < 0:
            # Cached definitions may predate a role made since: read them again before calling a role unknown.
            definitions = await self._definitions_from(await self._graph.answer(self._definitions_call()))
            index = RoleIndex(list(definitions))
            found = {text: d for text in need.roles if (d := index.find(text)) is not None}
        unknown = tuple(text for text in need.roles if text not in found)

        groups: list[GroupFacts] = []
        missing: list[str] = []
        for group_id, answer in zip(need.groups, answers[at_groups:], strict=True):
            if answer.status == 404:
                missing.append(group_id)
                continue
            body = answer.json()
            groups.append(GroupFacts(str(body["id"]), str(body.get("displayName") or ""), bool(body.get("isAssignableToRole"))))
        groups = await self._with_conferred_roles(groups, index)

        account = None
        direct: list[Any] = []
        transitive: list[Any] = []
        passes: tuple[str, ...] = ()
        if at_user >= 0 and answers[at_user].status != 404:
            account = _account(answers[at_user].json())
            direct = await self._rest_of_pages(answers[at_member_of])
            transitive = await self._rest_of_pages(answers[at_member_of + 1])
            if need.credential:
                passes = tuple(str(m["id"]) for m in await self._rest_of_pages(answers[at_member_of + 2]) if m.get("id"))
        account_groups = _ids_of(transitive, "group")
        policy = None
        if at_policy >= 0:
            policy = _credential_policy(answers[at_policy].json(), account_groups, {g.lower() for g in need.groups})
        return Survey(
            directory_id=organization["id"],
            display_name=organization["displayName"],
            initial_domain=organization["initialDomain"],
            verified_domains=organization["domains"],
            roles=found,
            unknown_roles=unknown,
            groups=tuple(groups),
            missing_groups=tuple(missing),
            account=account,
            account_direct_roles=_role_templates(direct),
            account_direct_groups=_ids_of(direct, "group"),
            account_roles=_role_templates(transitive),
            account_groups=account_groups,
            account_in_role_assignable_group=any(_is(o, "group") and o.get("isAssignableToRole") for o in transitive),
            account_credentials=passes,
            credential_policy=policy,
            definitions=tuple(definitions),
        )

    async def find_account(self, key: str) -> Account | None:
        answer = await self._graph.answer(GraphCall("GET", f"/users/{segment(key)}", {"$select": USER_FIELDS}))
        if answer.status == 404:
            return None
        return _account(answer.json())

    async def holdings(self, account_key: str, *, recycle_bin: bool = False) -> Holdings:
        account = await self.find_account(account_key) if "@" in account_key else None
        user_id = account.id if account else account_key
        key = segment(user_id)
        calls = [
            GraphCall("GET", f"/users/{key}", {"$select": USER_FIELDS}),
            GraphCall("GET", "/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{_literal(user_id)}'"}),
            GraphCall("GET", f"/users/{key}/memberOf"),
            GraphCall("GET", f"/users/{key}/authentication/temporaryAccessPassMethods"),
        ]
        if recycle_bin:
            calls.append(GraphCall("GET", f"/directory/deletedItems/{key}", {"$select": "id"}))
        answers = await self._graph.batch(calls)
        in_bin = recycle_bin and answers[4].status != 404 and answers[4].json() is not None
        if answers[0].status == 404:
            return Holdings(None, {}, frozenset(), (), in_recycle_bin=in_bin)
        account = _account(answers[0].json())
        assignments = await self._rest_of_pages(answers[1])
        roles = {
            str(a["roleDefinitionId"]).lower(): str(a.get("id") or "") or None
            for a in assignments
            if (a.get("directoryScopeId") or "/") == "/" and a.get("roleDefinitionId")
        }
        groups = _ids_of(await self._rest_of_pages(answers[2]), "group")
        credentials = tuple(str(m["id"]) for m in await self._rest_of_pages(answers[3]) if m.get("id"))
        return Holdings(account, roles, groups, credentials, in_recycle_bin=in_bin)

    async def catalog(self, group_search: str = "") -> Catalog:
        # Read live: the list people pick roles from shows a role the day it appears (and refreshes the cache).
        definitions = None if not group_search else self._definitions.get(self._tenant)
        calls = [] if definitions is not None else [self._definitions_call()]
        if group_search:
            query = {
                "$filter": f"startswith(displayName,'{_literal(group_search)}')",
                "$select": "id,displayName,isAssignableToRole",
            }
            calls.append(GraphCall("GET", "/groups", {**query, "$top": "50"}))
        answers = await self._graph.batch(calls) if calls else []
        if definitions is None:
            definitions = await self._definitions_from(answers.pop(0))
        groups = tuple(
            GroupFacts(str(g["id"]), str(g.get("displayName") or ""), bool(g.get("isAssignableToRole")))
            for g in ((answers[0].json() or {}).get("value", []) if group_search else [])
        )
        return Catalog(tuple(definitions), groups)

    async def marked_accounts(self, prefix: str) -> list[Account]:
        # employeeType filters are advanced queries: ConsistencyLevel: eventual and $count=true, on every page.
        call = GraphCall(
            "GET",
            "/users",
            {
                "$filter": f"startswith(employeeType,'{_literal(prefix)}')",
                "$count": "true",
                "$select": USER_FIELDS,
                "$top": "999",
            },
            headers=dict(EVENTUAL),
        )
        return [_account(u) for u in await self._graph.pages(call)]

    async def health(self) -> Health | None:
        return None  # Graph is asked on every call; there is nothing to know in between

    # Writes ---------------------------------------------------------------------------------------------------

    async def create_account(self, account: NewAccount) -> Account:
        body = {
            "accountEnabled": True,
            "displayName": account.display_name,
            "mailNickname": account.mail_nickname,
            "userPrincipalName": account.principal_name,
            "employeeType": account.marker,
            "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": account.password},
        }
        created = await self._graph.send(GraphCall("POST", "/users", body=body))
        return Account(str(created["id"]), str(created.get("userPrincipalName") or account.principal_name), account.marker, True)

    async def grant(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        # One batch, fully parallel (Graph takes a batch either fully sequential or fully parallel, and a sequential
        # one fails everything after an "already there"). A pass the TAP policy grants only through a membership this
        # grant adds goes in a second batch, once the memberships are in.
        later = [i for i in items if i.kind is ItemKind.CREDENTIAL and i.after_memberships]
        first = [i for i in items if not (i.kind is ItemKind.CREDENTIAL and i.after_memberships)]
        answers = dict(
            zip(
                (id(i) for i in first),
                await self._graph.batch([self._grant_call(account, i, window) for i in first]),
                strict=True,
            )
        )
        if later:
            groups = [i for i in first if i.kind is ItemKind.GROUP]
            if all(_done_or_present(answers[id(g)]) for g in groups):
                answers.update(
                    zip(
                        (id(i) for i in later),
                        await self._graph.batch([self._grant_call(account, i, window) for i in later]),
                        strict=True,
                    )
                )
            else:
                answers.update((id(i), _failed_dependency()) for i in later)
        return [self._granted(item, answers[id(item)]) for item in items]

    # How each item is written, removed, and what the answer means: the points a backend that holds the same
    # items another way (PIM schedules) changes.

    def _grant_call(self, account: Account, item: Item, window: Window) -> GraphCall:
        if item.kind is ItemKind.ROLE:
            body: dict[str, Any] = {"principalId": account.id, "roleDefinitionId": item.key, "directoryScopeId": "/"}
            return GraphCall("POST", "/roleManagement/directory/roleAssignments", body=body)
        if item.kind is ItemKind.GROUP:
            reference = {"@odata.id": f"{self._base_url}/directoryObjects/{account.id}"}
            return GraphCall("POST", f"/groups/{segment(item.key)}/members/$ref", body=reference)
        body = {"lifetimeInMinutes": item.lifetime_minutes, "isUsableOnce": item.usable_once}
        return GraphCall("POST", f"/users/{segment(account.id)}/authentication/temporaryAccessPassMethods", body=body)

    def _granted(self, item: Item, answer: GraphAnswer) -> Outcome:
        return _granted(item, answer)

    def _removal_call(self, account: Account, item: Item) -> GraphCall | None:
        """The call that takes the item away; None when there is nothing to remove (no reference found)."""
        user = segment(account.id)
        if item.kind is ItemKind.ROLE:
            if item.reference is None:
                return None  # not assigned (any more)
            return GraphCall("DELETE", f"/roleManagement/directory/roleAssignments/{segment(item.reference)}")
        if item.kind is ItemKind.GROUP:
            return GraphCall("DELETE", f"/groups/{segment(item.key)}/members/{user}/$ref")
        if item.reference is None:
            return None
        return GraphCall("DELETE", f"/users/{user}/authentication/temporaryAccessPassMethods/{segment(item.reference)}")

    def _removed(self, item: Item, answer: GraphAnswer) -> Outcome:
        return _removed(item, answer)

    async def extend(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        # Permanent assignments have no end in Graph: the expiration saga ends them, at the grant's (new) end.
        return [Outcome(item, OutcomeStatus.PRESENT, item.reference) for item in items]

    async def take_away(
        self, account: Account, items: Sequence[Item], *, end: AccountEnd | None = None, new_password: str | None = None
    ) -> list[Outcome]:
        user = segment(account.id)
        items = await self._with_references(account, items)
        calls: list[GraphCall] = []
        plan: list[tuple[Item, int | None]] = []
        for item in items:
            call = self._removal_call(account, item)
            if call is None:
                plan.append((item, None))
                continue
            calls.append(call)
            plan.append((item, len(calls) - 1))
        ends: list[GraphCall] = []
        if end is AccountEnd.DISABLE:
            password = {"forceChangePasswordNextSignIn": False, "password": new_password}
            ends = [
                GraphCall("PATCH", f"/users/{user}", body={"accountEnabled": False, "passwordProfile": password}),
                GraphCall("POST", f"/users/{user}/revokeSignInSessions"),
            ]
        elif end in (AccountEnd.DELETE, AccountEnd.PURGE):
            ends = [GraphCall("DELETE", f"/users/{user}")]
        # Removals first, then the account's end in a second batch: an account must lose its roles before it is
        # disabled or deleted, and a batch with an order must be fully sequential, where one "already gone" would
        # fail everything after it. Each batch is fully parallel.
        answers = await self._graph.batch(calls) if calls else []
        removed = [self._removed(item, answers[at]) for item, at in plan if at is not None]
        end_at = list(range(len(answers), len(answers) + len(ends)))
        if ends:
            if all(o.status is not OutcomeStatus.FAILED for o in removed):
                answers += await self._graph.batch(ends)
            else:
                answers += [_failed_dependency()] * len(ends)
        outcomes = [
            self._removed(item, answers[at]) if at is not None else Outcome(item, OutcomeStatus.PRESENT) for item, at in plan
        ]
        if end is not None:
            account_item = Item(ItemKind.ACCOUNT, end.value)
            failed = next((answers[i] for i in end_at if not answers[i].ok and answers[i].status != 404), None)
            if failed is not None:
                outcomes.append(Outcome(account_item, OutcomeStatus.FAILED, error=failed.error()))
            elif end is AccountEnd.PURGE:
                outcomes.append(await self._purge(account_item, user))
            else:
                outcomes.append(Outcome(account_item, OutcomeStatus.MADE))
        return outcomes

    async def _purge(self, item: Item, user: str) -> Outcome:
        answer = await self._graph.answer(GraphCall("DELETE", f"/directory/deletedItems/{user}"))
        if answer.ok:
            return Outcome(item, OutcomeStatus.MADE)
        # Right after the delete, deleted items may not show the user yet (replication): the caller retries.
        return Outcome(item, OutcomeStatus.FAILED, error=answer.error())

    # Helpers --------------------------------------------------------------------------------------------------

    def _definitions_call(self) -> GraphCall:
        return GraphCall("GET", "/roleManagement/directory/roleDefinitions", {"$select": "id,templateId,displayName"})

    async def _definitions_from(self, answer: GraphAnswer) -> tuple[RoleDefinition, ...]:
        definitions = tuple(
            RoleDefinition(str(r["id"]).lower(), str(r.get("templateId") or r["id"]).lower(), str(r["displayName"]))
            for r in await self._rest_of_pages(answer)
            if r.get("id") and r.get("displayName")
        )
        self._definitions.put(self._tenant, definitions)
        return definitions

    async def _rest_of_pages(self, answer: GraphAnswer) -> list[Any]:
        """A collection answered inside $batch, with any further pages read directly."""
        body = answer.json() or {}
        items = list(body.get("value") or [])
        link = body.get("@odata.nextLink")
        while link:
            page = await self._graph.next_page(str(link), {})
            items += page.get("value") or []
            link = page.get("@odata.nextLink")
        return items

    async def _with_conferred_roles(self, groups: list[GroupFacts], index: RoleIndex) -> list[GroupFacts]:
        """Role-assignable groups can hold directory roles, which every member then has: read them."""
        assignable = [g for g in groups if g.role_assignable]
        if not assignable:
            return groups
        calls = [
            GraphCall("GET", "/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{_literal(g.id)}'"})
            for g in assignable
        ]
        answers = await self._graph.batch(calls)
        conferred: dict[str, tuple[str, ...]] = {}
        for group, answer in zip(assignable, answers, strict=True):
            roles = []
            for assignment in await self._rest_of_pages(answer):
                definition = index.find(str(assignment.get("roleDefinitionId") or ""))
                roles.append(definition.template_id if definition else str(assignment.get("roleDefinitionId") or "").lower())
            conferred[group.id] = tuple(sorted(set(roles)))
        return [GroupFacts(g.id, g.display_name, g.role_assignable, conferred.get(g.id, ())) for g in groups]

    async def _with_references(self, account: Account, items: Sequence[Item]) -> list[Item]:
        """Fill in what removal addresses: the assignment ids of roles, the ids of credentials to delete ("*": all)."""
        need_roles = any(i.kind is ItemKind.ROLE and i.reference is None for i in items)
        need_passes = any(i.kind is ItemKind.CREDENTIAL and i.reference in (None, "*") for i in items)
        if not (need_roles or need_passes):
            return list(items)
        calls = []
        if need_roles:
            calls.append(
                GraphCall(
                    "GET", "/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{_literal(account.id)}'"}
                )
            )
        if need_passes:
            calls.append(GraphCall("GET", f"/users/{segment(account.id)}/authentication/temporaryAccessPassMethods"))
        answers = await self._graph.batch(calls)
        assigned: dict[str, str] = {}
        passes: list[str] = []
        if need_roles:
            answer = answers.pop(0)
            if answer.status != 404:
                for assignment in await self._rest_of_pages(answer):
                    if (assignment.get("directoryScopeId") or "/") == "/":
                        assigned[str(assignment.get("roleDefinitionId") or "").lower()] = str(assignment["id"])
        if need_passes and answers[0].status != 404:
            passes = [str(m["id"]) for m in await self._rest_of_pages(answers[0]) if m.get("id")]
        resolved: list[Item] = []
        for item in items:
            if item.kind is ItemKind.ROLE and item.reference is None:
                resolved.append(Item(item.kind, item.key, reference=assigned.get(item.key.lower())))
            elif item.kind is ItemKind.CREDENTIAL and item.reference in (None, "*"):
                resolved += [Item(item.kind, item.key, reference=p) for p in passes] or [Item(item.kind, item.key)]
            else:
                resolved.append(item)
        return resolved


def _licenses_pim(sku: dict[str, Any]) -> bool:
    """A subscription whose service plans include Entra ID P2 (alone or in a suite such as Microsoft 365 E5) or
    Entra ID Governance: what Privileged Identity Management needs (subscribedsku resource; servicePlanInfo)."""
    if str(sku.get("capabilityStatus") or "Enabled") not in ("Enabled", "Warning"):
        return False
    names = {str(p.get("servicePlanName") or "").upper() for p in sku.get("servicePlans") or []}
    return "AAD_PREMIUM_P2" in names or any("IDENTITY_GOVERNANCE" in n for n in names)


def _organization(body: Any) -> dict[str, Any]:
    organizations = (body or {}).get("value") or []
    organization = organizations[0] if organizations else {}
    if not organization.get("id"):
        raise NotFoundInDirectory("the tenant has no organization object")
    domains = organization.get("verifiedDomains") or []
    return {
        "id": str(organization["id"]),
        "displayName": str(organization.get("displayName") or ""),
        "initialDomain": next((str(d["name"]) for d in domains if d.get("isInitial") and d.get("name")), ""),
        "domains": tuple(str(d["name"]) for d in domains if d.get("name")),
    }


def _credential_policy(body: Any, account_groups: frozenset[str], requested: set[str]) -> CredentialPolicy:
    """The TAP method configuration, and whether it reaches this account: `includeTargets` name `all_users` or groups,
    `excludeTargets` groups (temporaryAccessPassAuthenticationMethodConfiguration)."""
    enabled = str(body.get("state", "")).lower() == "enabled"
    included = {str(t.get("id") or "").lower() for t in body.get("includeTargets") or []}
    excluded = {str(t.get("id") or "").lower() for t in body.get("excludeTargets") or []}
    groups = {g.lower() for g in account_groups} | requested
    targeted = (ALL_USERS in included or bool(included & groups)) and not (excluded & groups)
    already = ALL_USERS in included or bool(included & {g.lower() for g in account_groups})
    detail = ""
    if enabled and not targeted:
        detail = "the tenant's Temporary Access Pass policy does not target this account " + (
            "(it is in an excluded group)" if excluded & groups else "(it is in none of the groups the policy includes)"
        )
    return CredentialPolicy(
        enabled=enabled,
        minimum_lifetime_minutes=int(body.get("minimumLifetimeInMinutes") or 60),
        maximum_lifetime_minutes=int(body.get("maximumLifetimeInMinutes") or 480),
        usable_once_enforced=bool(body.get("isUsableOnce", False)),
        targets_account=targeted,
        through_requested_groups=targeted and not already,
        detail=detail,
    )


def _account(body: Any) -> Account:
    return Account(
        id=str(body["id"]),
        principal_name=str(body.get("userPrincipalName") or ""),
        marker=body.get("employeeType"),
        enabled=body.get("accountEnabled"),
    )


def _ids_of(objects: list[Any], kind: str) -> frozenset[str]:
    return frozenset(str(o["id"]).lower() for o in objects if _is(o, kind) and o.get("id"))


def _role_templates(objects: list[Any]) -> frozenset[str]:
    """Directory roles among directory objects (memberOf lists them beside groups), by template id."""
    return frozenset(str(o["roleTemplateId"]).lower() for o in objects if _is(o, "directoryRole") and o.get("roleTemplateId"))


def _is(obj: dict[str, Any], kind: str) -> bool:
    return str(obj.get("@odata.type") or "").lower() == f"#microsoft.graph.{kind.lower()}"


def _failed_dependency() -> GraphAnswer:
    return GraphAnswer(424, {}, {"error": {"code": "FailedDependency", "message": "a request it depends on failed"}})


def _done_or_present(answer: GraphAnswer) -> bool:
    return answer.ok or isinstance(answer.error(), AlreadyExists)


def _granted(item: Item, answer: GraphAnswer) -> Outcome:
    if answer.ok:
        body = answer.body or {}
        if item.kind is ItemKind.CREDENTIAL:
            return Outcome(item, OutcomeStatus.MADE, str(body.get("id") or ""), body.get("temporaryAccessPass"), _expiry(body))
        return Outcome(item, OutcomeStatus.MADE, str(body.get("id") or "") or None)
    error = answer.error()
    if isinstance(error, AlreadyExists):
        return Outcome(item, OutcomeStatus.PRESENT)
    return Outcome(item, OutcomeStatus.FAILED, error=error)


def _removed(item: Item, answer: GraphAnswer) -> Outcome:
    if answer.ok:
        return Outcome(item, OutcomeStatus.MADE, item.reference)
    error = answer.error()
    gone = isinstance(error, NotFoundInDirectory) or (isinstance(error, Rejected) and _NOT_A_MEMBER in error.message.lower())
    if gone:
        return Outcome(item, OutcomeStatus.PRESENT, item.reference)
    return Outcome(item, OutcomeStatus.FAILED, item.reference, error=error)


def _expiry(body: dict[str, Any]) -> Any:
    from datetime import datetime, timedelta

    start, lifetime = body.get("startDateTime"), body.get("lifetimeInMinutes")
    if not start or not lifetime:
        return None
    return datetime.fromisoformat(str(start).replace("Z", "+00:00")) + timedelta(minutes=int(lifetime))


def _literal(value: str) -> str:
    """A value inside an OData string literal: a quote is written twice, so it cannot end the literal."""
    return value.replace("'", "''")


def _build(context: Any, tenant_id: str, directory: str) -> EntraBackend:
    return EntraBackend(tenant_id, context.graph.for_tenant(tenant_id), context.graph.settings.base_url, context.role_definitions)


KIND = BackendKind(
    name="entra",
    serves=lambda directory: directory == "entra",
    build=_build,
    description="permanent Entra role assignments at tenant scope, group memberships and a TAP, ended by the product",
)
