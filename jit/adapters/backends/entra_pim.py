"""The Entra PIM backend, the "double lock": roles and group memberships become Privileged Identity Management active
assignments that end at the grant's end, so Microsoft Graph itself takes the access away then, even if no worker of
this product is running. The expiration saga still runs at the end: it removes what is left, reads the directory
back and applies the account's end (disable, delete), which PIM knows nothing about.

Everything that is not a role or group write is the Entra backend's: accounts, the Temporary Access Pass, the survey,
holdings (role assignments and memberships as they are now, which is what verification and drift need), the catalog.

    grant      POST /roleManagement/directory/roleAssignmentScheduleRequests (roles) and
               POST /identityGovernance/privilegedAccess/group/assignmentScheduleRequests (accessId member), action
               adminAssign, scheduleInfo {startDateTime, expiration {afterDateTime, endDateTime: the grant's end}},
               justification: the grant's reason, ticketInfo: its ticket (rbacapplication-post-roleassignmentschedule
               requests.md, privilegedaccessgroup-post-assignmentschedulerequests.md)
    extend     the same request with adminExtend and the new end ("Extend role assignments using Microsoft Graph API",
               entra-docs pim-how-to-renew-extend.md), then the new end read back from the schedule instances
    take_away  adminRemove; RoleAssignmentDoesNotExist means PIM ended the assignment already, which counts as done

PIM needs Microsoft Entra ID P2 or Governance in the tenant: onboarding reads it (`describe().schedules_available`)
and requests for `entra-pim` in a tenant without it are refused before they reach this backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from jit.adapters.backends import BackendKind
from jit.adapters.backends.entra import EntraBackend, _literal
from jit.adapters.graph.gateway import GraphAnswer, GraphCall, segment
from jit.services.access_backend import (
    Account,
    AccountEnd,
    DirectoryError,
    Item,
    ItemKind,
    Outcome,
    OutcomeStatus,
    ReferenceNotFound,
    Rejected,
    Unavailable,
    Window,
)

log = logging.getLogger(__name__)

DIRECTORY = "entra-pim"
ROLE_REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
ROLE_INSTANCES = "/roleManagement/directory/roleAssignmentScheduleInstances"
GROUP_REQUESTS = "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"
GROUP_INSTANCES = "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances"
_INSTANCES = ((ItemKind.ROLE, ROLE_INSTANCES), (ItemKind.GROUP, GROUP_INSTANCES))

# PIM's answers, by code (recorded in devstack/graph_simulator/BEHAVIOUR.md with their sources).
GONE = "RoleAssignmentDoesNotExist"  # removing or extending what is not (any more) there
TOO_SOON = "ActiveDurationTooShort"  # an active assignment is kept at least five minutes
SUBJECT_NOT_FOUND = "SubjectNotFound"  # PIM's replica has not seen the principal yet
NO_LICENCE = "AadPremiumLicenseRequired"
# How far the end Graph holds may be from the one asked for (Graph keeps fractions of a second; a policy that caps
# the end moves it by far more).
END_TOLERANCE = timedelta(minutes=1)


class EntraPimBackend(EntraBackend):
    kind: ClassVar[str] = DIRECTORY

    # Writes ---------------------------------------------------------------------------------------------------

    def _grant_call(self, account: Account, item: Item, window: Window) -> GraphCall:
        if item.kind is ItemKind.CREDENTIAL:
            return super()._grant_call(account, item, window)
        return self._schedule_request(account, item, "adminAssign", window)

    def _granted(self, item: Item, answer: GraphAnswer) -> Outcome:
        if item.kind is ItemKind.CREDENTIAL:
            return super()._granted(item, answer)
        if answer.ok:
            return Outcome(item, OutcomeStatus.MADE, _schedule_id(answer.body))
        outcome = super()._granted(item, answer)
        return outcome if outcome.error is None else Outcome(item, OutcomeStatus.FAILED, error=_pim_error(answer))

    async def extend(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        """adminExtend each role and membership to the window's end, then read the schedule instances back: the end
        Graph holds must be the grant's. An assignment PIM no longer holds is not made again (it ended, or someone
        took it away): that is reported, and the expiration saga ends the grant as usual."""
        held = [i for i in items if i.kind in (ItemKind.ROLE, ItemKind.GROUP)]
        answers = await self._graph.batch([self._schedule_request(account, i, "adminExtend", window) for i in held])
        outcomes: dict[int, Outcome] = {}
        for item, answer in zip(held, answers, strict=True):
            if answer.ok:
                outcomes[id(item)] = Outcome(item, OutcomeStatus.MADE, _schedule_id(answer.body) or item.reference)
            elif answer.error().code == GONE:
                message = f"PIM no longer holds {item.kind.value} {item.key} for the account: its end was not moved"
                outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, item.reference, error=Rejected(message, code=GONE))
            else:
                outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, item.reference, error=_pim_error(answer))
        moved = [outcomes[id(i)] for i in held if outcomes[id(i)].status is OutcomeStatus.MADE]
        if moved:
            ends = await self.schedule_ends(account.id, {o.item.kind for o in moved})
            for outcome in moved:
                item = outcome.item
                held_end = ends.get((item.kind, item.key.lower()))
                if held_end is None or abs(held_end - window.end) > END_TOLERANCE:
                    found = held_end.isoformat() if held_end else "no active assignment"
                    message = f"PIM was asked to end {item.kind.value} {item.key} at {window.end.isoformat()}; it holds {found}"
                    outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, outcome.reference, error=Rejected(message))
        # Anything else (a credential) has its own lifetime, which an extension does not change.
        return [outcomes.get(id(i)) or Outcome(i, OutcomeStatus.PRESENT, i.reference) for i in items]

    def _removal_call(self, account: Account, item: Item) -> GraphCall | None:
        if item.kind is ItemKind.CREDENTIAL:
            return super()._removal_call(account, item)
        return self._schedule_request(account, item, "adminRemove", None)

    def _removed(self, item: Item, answer: GraphAnswer) -> Outcome:
        if item.kind is ItemKind.CREDENTIAL or answer.ok:
            return super()._removed(item, answer)
        code = answer.error().code
        if code == GONE:
            # PIM ended it at its end (or it was removed before): what the removal wanted is so.
            return Outcome(item, OutcomeStatus.PRESENT, item.reference)
        if code == TOO_SOON:
            error: DirectoryError = Unavailable(
                "PIM keeps an active assignment at least five minutes after it starts; the removal is retried",
                code=TOO_SOON,
                status=answer.status,
                request_id=answer.error().request_id,
            )
            return Outcome(item, OutcomeStatus.FAILED, item.reference, error=error)
        return Outcome(item, OutcomeStatus.FAILED, item.reference, error=_pim_error(answer))

    async def _with_references(self, account: Account, items: Sequence[Item]) -> list[Item]:
        # PIM removes by principal and role (or group), with no assignment id: only credentials need theirs.
        held = [i for i in items if i.kind is not ItemKind.CREDENTIAL]
        credentials = [i for i in items if i.kind is ItemKind.CREDENTIAL]
        return held + (await super()._with_references(account, credentials) if credentials else [])

    async def take_away(
        self, account: Account, items: Sequence[Item], *, end: AccountEnd | None = None, new_password: str | None = None
    ) -> list[Outcome]:
        # A membership PIM does not hold needs no removal. Asking anyway can be refused for reasons other than "it
        # does not exist" (a group PIM for Groups cannot manage answers InvalidRoleAssignmentRequest), and an undo
        # after such a refusal asks to remove what was never made. PIM's own instances say what it holds.
        groups = [i for i in items if i.kind is ItemKind.GROUP]
        try:
            held = await self.schedule_ends(account.id, {ItemKind.GROUP}) if groups else {}
        except DirectoryError as error:
            if error.code != NO_LICENCE:
                raise
            return await self._without_pim(account, items, end, new_password)
        gone = [i for i in groups if (ItemKind.GROUP, i.key.lower()) not in held]
        rest = [i for i in items if not any(i is g for g in gone)]
        outcomes = [Outcome(i, OutcomeStatus.PRESENT, i.reference) for i in gone]
        outcomes += await super().take_away(account, rest, end=end, new_password=new_password)
        if any(o.error is not None and o.error.code == NO_LICENCE for o in outcomes):
            return await self._without_pim(account, items, end, new_password)
        too_soon = any(o.error is not None and o.error.code == TOO_SOON for o in outcomes)
        if end is None or not too_soon:
            return outcomes
        # A role PIM will not let go of yet keeps the account from its end for a few minutes: meanwhile the account
        # is disabled and its sessions revoked, so an early revocation stops access now. The end asked for (and the
        # roles' removal) follow when the saga tries again.
        return [*outcomes[:-1], await self._disable_meanwhile(account, end, new_password)]

    async def _without_pim(
        self, account: Account, items: Sequence[Item], end: AccountEnd | None, new_password: str | None
    ) -> list[Outcome]:
        """The tenant lost the licence PIM needs (or never had it when a grant failed): PIM can neither hold nor
        remove anything now, so whatever is there is taken away the direct way, by role assignment and membership.
        Role references here are PIM schedule ids, not assignment ids: the direct backend looks the assignments up."""
        log.warning("tenant %s: PIM answers %s; removing directly", self._tenant, NO_LICENCE)
        direct = EntraBackend(self._tenant, self._graph, self._base_url, self._definitions)
        plain = [Item(i.kind, i.key) if i.kind is ItemKind.ROLE else i for i in items]
        return await direct.take_away(account, plain, end=end, new_password=new_password)

    async def _disable_meanwhile(self, account: Account, end: AccountEnd, new_password: str | None) -> Outcome:
        user = segment(account.id)
        body: dict[str, Any] = {"accountEnabled": False}
        if new_password:
            body["passwordProfile"] = {"forceChangePasswordNextSignIn": False, "password": new_password}
        answers = await self._graph.batch(
            [GraphCall("PATCH", f"/users/{user}", body=body), GraphCall("POST", f"/users/{user}/revokeSignInSessions")]
        )
        item = Item(ItemKind.ACCOUNT, end.value)
        refused = next((a for a in answers if not a.ok and a.status != 404), None)
        if refused is not None:
            log.warning("account %s could not be disabled while PIM keeps its roles: %s", account.id, refused.error().message)
            return Outcome(item, OutcomeStatus.FAILED, error=refused.error())
        if end is AccountEnd.DISABLE:
            return Outcome(item, OutcomeStatus.MADE)
        return Outcome(
            item,
            OutcomeStatus.FAILED,
            error=Unavailable(f"account disabled; it is {end.value}d once PIM lets its roles go", code=TOO_SOON),
        )

    # Reads ----------------------------------------------------------------------------------------------------

    async def schedule_ends(
        self, principal_id: str, kinds: set[ItemKind] | None = None
    ) -> dict[tuple[ItemKind, str], datetime | None]:
        """The principal's active assignments and when each ends (None: never), from the schedule instances: roles
        by role definition id, group memberships by group id. Only the kinds asked for are read (PIM for Groups
        needs a permission of its own)."""
        wanted = kinds if kinds is not None else {ItemKind.ROLE, ItemKind.GROUP}
        query = {"$filter": f"principalId eq '{_literal(principal_id)}'"}
        reads = [(kind, path) for kind, path in _INSTANCES if kind in wanted]
        answers = await self._graph.batch([GraphCall("GET", path, query) for _, path in reads])
        ends: dict[tuple[ItemKind, str], datetime | None] = {}
        for (kind, _), answer in zip(reads, answers, strict=True):
            for instance in await self._rest_of_pages(answer):
                key = _instance_key(kind, instance)
                if key:
                    ends[(kind, key)] = _when(instance.get("endDateTime"))
        return ends

    # Helpers --------------------------------------------------------------------------------------------------

    def _schedule_request(self, account: Account, item: Item, action: str, window: Window | None) -> GraphCall:
        body: dict[str, Any] = {"action": action, "principalId": account.id}
        if item.kind is ItemKind.ROLE:
            path = ROLE_REQUESTS
            body |= {"roleDefinitionId": item.key, "directoryScopeId": "/"}
        else:
            path = GROUP_REQUESTS
            body |= {"groupId": item.key, "accessId": "member"}
        if window is not None:
            body["justification"] = f"{window.justification} (JIT grant {window.grant_id})"
            body["scheduleInfo"] = {
                "startDateTime": _text(window.start),
                "expiration": {"type": "afterDateTime", "endDateTime": _text(window.end)},
            }
            if window.ticket:
                body["ticketInfo"] = {"ticketNumber": window.ticket}
        else:
            body["justification"] = "JIT grant ended"
        return GraphCall("POST", path, body=body)


def _instance_key(kind: ItemKind, instance: dict[str, Any]) -> str | None:
    """What an active assignment instance grants: a tenant-wide role's definition id, or a membership's group id."""
    if kind is ItemKind.ROLE:
        tenant_wide = (instance.get("directoryScopeId") or "/") == "/"
        return str(instance["roleDefinitionId"]).lower() if tenant_wide and instance.get("roleDefinitionId") else None
    return str(instance["groupId"]).lower() if instance.get("accessId") == "member" and instance.get("groupId") else None


def _schedule_id(body: Any) -> str | None:
    """The schedule a request made or changed (its targetScheduleId): the reference kept for the item."""
    if not isinstance(body, dict):
        return None
    return str(body.get("targetScheduleId") or body.get("id") or "") or None


def _pim_error(answer: GraphAnswer) -> DirectoryError:
    """Graph's error, with PIM's codes read: a principal PIM has not seen yet is lag on a new account (like a 404),
    and a missing licence says what the tenant needs."""
    error = answer.error()
    if error.code == SUBJECT_NOT_FOUND:
        return ReferenceNotFound(error.message, code=error.code, status=error.status, request_id=error.request_id)
    if error.code == NO_LICENCE:
        message = f"{error.message} PIM (directory entra-pim) needs Microsoft Entra ID P2 or Governance; use entra"
        return Rejected(message, code=error.code, status=error.status, request_id=error.request_id)
    return error


def _text(moment: datetime) -> str:
    """UTC, to the second (cut, never rounded up: the schedule never outlasts the grant)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _build(context: Any, tenant_id: str, directory: str) -> EntraPimBackend:
    return EntraPimBackend(
        tenant_id, context.graph.for_tenant(tenant_id), context.graph.settings.base_url, context.role_definitions
    )


KIND = BackendKind(
    name=DIRECTORY,
    serves=lambda directory: directory == DIRECTORY,
    build=_build,
    description="Entra roles and group memberships as PIM active assignments that Graph ends at the grant's end",
)
