"""The on-premises Active Directory backend: access as membership of the groups a site allows (Domain Admins and
the like are its "roles"), on a JIT account the site's agent creates, and a one-time password as the credential —
all carried out by the agent (`agent/`) through commands on the site's queue (`AgentLink`).

How the port's words map onto the agent's operations:

- an account is a user under the agent's OU carrying `JIT:<grant id>` (the grant's marker, as in Entra). Its id here
  is `<sAMAccountName>:<grant id>`, so every later command names the marker the agent insists on; the
  sAMAccountName is derived from the principal name (`sam_for`), so a create that died unrecorded is found again;
- roles and groups are the site's allowed groups (`list_groups`), known by SID; granting is `add_to_group`, taking
  away `remove_from_group`, each verified by the agent through the account's tokenGroups;
- the credential is a random password the backend makes, sealed to the agent's pinned key and set with
  `ensure_account`; the saga seals it again for the requester's one retrieval, exactly as a Temporary Access Pass;
- the account's end is `disable` (disabled, and a random password nobody learns) or `delete`; taking the password
  back without an end also disables (the agent sets passwords only as part of those). AD has no purge the agent can
  do: PURGE deletes (objects stay in the AD Recycle Bin for its lifetime when that is on);
- holdings are `read_back`: enabled, direct and effective (tokenGroups) memberships.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from agent import protocol as p
from agent import sealing
from jit.adapters.backends.active_directory.link import AgentLink, Reply
from jit.domain.accounts import MARKER_PREFIX
from jit.domain.progress import CredentialKind
from jit.domain.roles import RoleDefinition
from jit.services.access_backend import (
    Account,
    AccountEnd,
    AlreadyExists,
    Catalog,
    CredentialPolicy,
    Denied,
    DirectoryError,
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
    Unavailable,
    Window,
)

CATALOG_SECONDS = 60.0
PASSWORD_ATTEMPTS = 3
_SAM = re.compile(r'^[^"/\\\[\]:;|=,+*?<>@\s]{1,20}$')
_DISPLAY_NAME_MAX = 64


@dataclass(frozen=True)
class AdGroup:
    name: str
    dn: str
    sid: str  # lower case: the id roles and groups go by

    def matches(self, text: str) -> bool:
        wanted = text.strip().casefold()
        return wanted in (self.name.casefold(), self.dn.casefold(), self.sid)


class ActiveDirectoryBackend:
    kind: ClassVar[str] = "ad"

    def __init__(self, tenant_id: str, site: str, link: AgentLink | None, *, upn_suffix: str = "", refusal: str = "") -> None:
        self._tenant = tenant_id
        self._site = site
        self._link = link
        self._upn_suffix = upn_suffix
        self._refusal = refusal  # why this tenant may not use this site at all (settings)
        self._groups: tuple[float, tuple[AdGroup, ...]] | None = None

    # Reads ------------------------------------------------------------------------------------------------------

    async def health(self) -> Health | None:
        if self._link is None:
            return Health(False, self._refusal)
        return await self._link.health()

    async def describe(self) -> DirectoryFacts:
        groups = await self._allowed_groups(fresh=True)
        domain = self._domain(groups)
        return DirectoryFacts(
            id=self._site,
            display_name=f"on-premises site {self._site}",
            initial_domain=domain,
            domains=(domain,) if domain else (),
            definitions=tuple(_definition(g) for g in groups),
            schedules_available=False,
        )

    async def survey(self, need: Need) -> Survey:
        if need.existing_account:
            raise Rejected(
                f"on-premises site {self._site} grants access to JIT accounts its agent creates; an existing account "
                "can not be used (the agent touches only accounts it created and marked)",
                code="ExistingAccountNotSupported",
            )
        groups = await self._allowed_groups()
        roles = {text: _definition(g) for text in need.roles if (g := _find(groups, text)) is not None}
        found_groups = {text: g for text in need.groups if (g := _find(groups, text)) is not None}
        domain = self._domain(groups)
        policy = CredentialPolicy(
            enabled=True,
            minimum_lifetime_minutes=10,
            maximum_lifetime_minutes=43200,
            kind=CredentialKind.PASSWORD.value,
            usable_once_available=False,
        )
        return Survey(
            directory_id=need.directory_id,
            display_name=f"on-premises site {self._site}",
            initial_domain=domain,
            verified_domains=(domain,) if domain else (),
            roles=roles,
            unknown_roles=tuple(t for t in need.roles if t not in roles),
            groups=tuple(GroupFacts(g.sid, g.name) for g in found_groups.values()),
            missing_groups=tuple(t for t in need.groups if t not in found_groups),
            credential_policy=policy if need.credential else None,
            # Not the tenant's Entra role definitions: the role catalog keeps those per tenant, and these must not
            # replace them.
            definitions=(),
        )

    async def find_account(self, key: str) -> Account | None:
        sam, marker = _parse(key)
        if marker is None:
            return await self._scan(sam)
        described = await self._read_back(sam, marker)
        return _account_of(described, sam, marker)

    async def holdings(self, account_key: str, *, recycle_bin: bool = False) -> Holdings:
        sam, marker = _parse(account_key)
        if marker is None:
            found = await self._scan(sam)
            if found is None:
                return Holdings(None, {}, frozenset(), ())
            marker = _parse(found.id)[1]
            assert marker is not None
        described = await self._read_back(sam, marker)
        account = _account_of(described, sam, marker)
        if account is None or not described.get("ours"):
            return Holdings(account, {}, frozenset(), ())
        held = {str(g["sid"]).lower() for g in described.get("tokenGroups") or []}
        allowed = {g.sid for g in await self._allowed_groups()}
        # Credentials: a password can not be read back; the account's end (disabled, deleted) is what verifies it.
        return Holdings(account, {sid: None for sid in sorted(held & allowed)}, frozenset(held), ())

    async def catalog(self, group_search: str = "") -> Catalog:
        groups = await self._allowed_groups(fresh=True)
        search = group_search.strip().casefold()
        listed = tuple(GroupFacts(g.sid, g.name) for g in groups if search and g.name.casefold().startswith(search))
        return Catalog(tuple(_definition(g) for g in groups), listed)

    async def marked_accounts(self, prefix: str) -> list[Account]:
        wanted = prefix.removeprefix(MARKER_PREFIX) if prefix.startswith(MARKER_PREFIX) else None
        if wanted is None:
            return []  # every marker the agent writes starts with JIT:
        [reply] = await self._run([self._command(p.OP_MARKED_ACCOUNTS, {"markerPrefix": wanted})])
        accounts = _ok(reply).get("accounts") or []
        return [_marked(a) for a in accounts]

    # Writes -----------------------------------------------------------------------------------------------------

    async def create_account(self, account: NewAccount) -> Account:
        if not account.marker.startswith(MARKER_PREFIX):
            raise Rejected(f"the account's marker {account.marker!r} is not a JIT marker", code="BadMarker")
        marker = account.marker.removeprefix(MARKER_PREFIX)
        sam = sam_for(account.principal_name)
        display = unique_display_name(account.display_name, sam)
        password = account.password
        for _ in range(PASSWORD_ATTEMPTS):
            reply = await self._ensure(sam, account.principal_name, display, marker, password)
            if reply.ok:
                return Account(f"{sam}:{marker}", account.principal_name, account.marker, True)
            if reply.code != p.E_PASSWORD_REJECTED:
                raise _failure(reply, conflict_means_exists=True)
            password = one_time_password()  # nobody knows it either; the domain's policy refused the first
        raise _failure(reply)

    async def grant(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        sam, marker = _parse(account.id)
        marker = marker or window.grant_id
        groups = await self._allowed_groups()
        outcomes: dict[int, Outcome] = {}
        sent: list[tuple[Item, p.Command]] = []
        for item in items:
            if item.kind in (ItemKind.ROLE, ItemKind.GROUP):
                group = _find(groups, item.key)
                if group is None:
                    error = Rejected(f"{item.key} is not a group site {self._site} allows", code=p.E_GROUP_NOT_ALLOWED)
                    outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, error=error)
                    continue
                args = {"samAccountName": sam, "marker": marker, "group": group.dn}
                sent.append((item, self._command(p.OP_ADD_TO_GROUP, args, marker)))
        described: dict[str, Any] = {}
        for (item, _), reply in zip(sent, await self._run([c for _, c in sent]), strict=True):
            if reply.ok:
                described = reply.result
                status = OutcomeStatus.MADE if reply.result.get("changed") else OutcomeStatus.PRESENT
                outcomes[id(item)] = Outcome(item, status, str(reply.result["group"]["sid"]).lower())
            else:
                outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, error=_failure(reply))
        for item in items:
            if item.kind is ItemKind.CREDENTIAL:
                outcomes[id(item)] = await self._issue_password(item, sam, marker, account, described, window)
        return [outcomes[id(item)] for item in items]

    async def _issue_password(
        self, item: Item, sam: str, marker: str, account: Account, described: dict[str, Any], window: Window
    ) -> Outcome:
        """Set a new one-time password (ensure_account re-enables the account and sets it); the outcome carries it
        for the saga to seal for the requester. It works until the grant's end disables or deletes the account."""
        if not described.get("displayName"):
            described = await self._read_back(sam, marker)
            if not described.get("exists") or not described.get("ours"):
                error = NotFoundInDirectory(f"account {sam} is not there (or not this grant's) to set its password")
                return Outcome(item, OutcomeStatus.FAILED, error=error)
        upn = str(described.get("userPrincipalName") or account.principal_name)
        display = str(described["displayName"])
        for _ in range(PASSWORD_ATTEMPTS):
            password = one_time_password()
            reply = await self._ensure(sam, upn, display, marker, password)
            if reply.ok:
                return Outcome(item, OutcomeStatus.MADE, reply.command.id, password, window.end)
            if reply.code != p.E_PASSWORD_REJECTED:
                break
        return Outcome(item, OutcomeStatus.FAILED, error=_failure(reply))

    async def extend(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        # Memberships have no end in AD: the expiration saga ends them, at the grant's (new) end.
        return [Outcome(item, OutcomeStatus.PRESENT, item.reference) for item in items]

    async def take_away(
        self, account: Account, items: Sequence[Item], *, end: AccountEnd | None = None, new_password: str | None = None
    ) -> list[Outcome]:
        # `new_password` is not used: the agent's `disable` sets a random password of its own, which never leaves the DC.
        sam, marker = _parse(account.id)
        if marker is None:
            marker = (account.marker or "").removeprefix(MARKER_PREFIX) or None
        if marker is None:
            raise Rejected(f"account {account.id} carries no JIT marker: the agent does not touch it", code=p.E_NOT_OURS)
        groups = await self._allowed_groups()
        outcomes: dict[int, Outcome] = {}
        sent: list[tuple[Item, p.Command]] = []
        for item in items:
            if item.kind in (ItemKind.ROLE, ItemKind.GROUP):
                group = _find(groups, item.key)
                if group is None:
                    outcomes[id(item)] = Outcome(item, OutcomeStatus.PRESENT)  # not grantable here: nothing to remove
                    continue
                args = {"samAccountName": sam, "marker": marker, "group": group.dn}
                sent.append((item, self._command(p.OP_REMOVE_FROM_GROUP, args, marker)))
        for (item, _), reply in zip(sent, await self._run([c for _, c in sent]), strict=True):
            if reply.ok:
                status = OutcomeStatus.MADE if reply.result.get("changed") else OutcomeStatus.PRESENT
                outcomes[id(item)] = Outcome(item, status, item.reference)
            else:
                outcomes[id(item)] = Outcome(item, OutcomeStatus.FAILED, item.reference, error=_failure(reply))
        credentials = [item for item in items if item.kind is ItemKind.CREDENTIAL]
        # The end runs even when a removal failed: a disabled or deleted account is safe whatever it still holds.
        finish = end if end is not None else (AccountEnd.DISABLE if credentials else None)
        ended: Outcome | None = None
        if finish is not None:
            op = p.OP_DISABLE if finish is AccountEnd.DISABLE else p.OP_DELETE
            [reply] = await self._run([self._command(op, {"samAccountName": sam, "marker": marker}, marker)])
            account_item = Item(ItemKind.ACCOUNT, finish.value)
            if reply.ok or reply.code == p.E_NOT_FOUND:
                ended = Outcome(account_item, OutcomeStatus.MADE)
            else:
                ended = Outcome(account_item, OutcomeStatus.FAILED, error=_failure(reply))
        for item in credentials:
            assert ended is not None
            outcomes[id(item)] = Outcome(item, ended.status, item.reference, error=ended.error)
        result = [outcomes[id(item)] for item in items]
        if end is not None and ended is not None:
            result.append(ended)
        return result

    # Helpers ----------------------------------------------------------------------------------------------------

    def _command(self, op: str, args: dict[str, Any], grant_id: str = "") -> p.Command:
        return self._ready().command(op, args, grant_id=grant_id)

    def _ready(self) -> AgentLink:
        if self._link is None:
            raise Rejected(self._refusal, code="SiteNotConfigured")
        return self._link

    async def _run(self, commands: list[p.Command]) -> list[Reply]:
        if not commands:
            return []
        return await self._ready().run(commands)

    async def _ensure(self, sam: str, upn: str, display: str, marker: str, password: str) -> Reply:
        link = self._ready()
        sealed = sealing.seal_for_agent(await link.agent_key(), password)
        args = {"samAccountName": sam, "userPrincipalName": upn, "displayName": display, "marker": marker, "password": sealed}
        [reply] = await self._run([link.command(p.OP_ENSURE_ACCOUNT, args, grant_id=marker)])
        return reply

    async def _read_back(self, sam: str, marker: str) -> dict[str, Any]:
        [reply] = await self._run([self._command(p.OP_READ_BACK, {"samAccountName": sam, "marker": marker}, marker)])
        return _ok(reply)

    async def _scan(self, sam: str) -> Account | None:
        """Find an account by sAMAccountName among those the agent marked (when its marker is not known)."""
        found = [a for a in await self.marked_accounts(MARKER_PREFIX) if a.principal_name.casefold() == sam.casefold()]
        return found[0] if found else None

    async def _allowed_groups(self, *, fresh: bool = False) -> tuple[AdGroup, ...]:
        """The groups the site allows, as its agent lists them (kept a minute: every grant needs them)."""
        if not fresh and self._groups is not None and time.monotonic() - self._groups[0] < CATALOG_SECONDS:
            return self._groups[1]
        [reply] = await self._run([self._command(p.OP_LIST_GROUPS, {})])
        listed = _ok(reply)
        groups = tuple(AdGroup(str(g["name"]), str(g["dn"]), str(g["sid"]).lower()) for g in listed.get("groups") or [])
        self._groups = (time.monotonic(), groups)
        return groups

    def _domain(self, groups: tuple[AdGroup, ...]) -> str:
        """The UPN suffix of new accounts: the site's setting, or the domain's DNS name read from a group's DN."""
        if self._upn_suffix:
            return self._upn_suffix
        for group in groups:
            labels: list[str] = []
            for part in reversed(group.dn.split(",")):  # the trailing DC= components only (a CN may hold escaped commas)
                if not part.strip().upper().startswith("DC="):
                    break
                labels.insert(0, part.strip()[3:])
            if labels:
                return ".".join(labels).lower()
        return ""


# Names -------------------------------------------------------------------------------------------------------------


def sam_for(principal_name: str) -> str:
    """The sAMAccountName (at most 20 characters) of the account with this principal name: its local part when that
    fits, otherwise the local part's start and a digest of the whole name — the same every time, so a create whose
    answer was lost is found again by name."""
    local = principal_name.split("@", 1)[0]
    if _SAM.match(local) and not local.endswith("."):
        return local
    digest = hashlib.sha256(principal_name.casefold().encode()).hexdigest()[:8]
    head = re.sub(r"[^A-Za-z0-9-]", "", local)[:11].rstrip("-") or "jit"
    return f"{head}-{digest}"


def unique_display_name(display_name: str, sam: str) -> str:
    """The display name, which the agent also makes the account's CN: unique in the OU with the sAMAccountName."""
    suffix = f" ({sam})"
    return display_name.strip()[: _DISPLAY_NAME_MAX - len(suffix)].rstrip() + suffix


def one_time_password(length: int = 20) -> str:
    """A password for a person to type once: every character class, no look-alike characters."""
    classes = ["ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "-_!#%+=?"]
    alphabet = "".join(classes)
    chosen = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - len(classes))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def _parse(key: str) -> tuple[str, str | None]:
    """An account key as the sagas hold it: `<sam>:<grant id>` (our id), a principal name, or a sAMAccountName."""
    if ":" in key:
        sam, marker = key.split(":", 1)
        return sam, marker
    if "@" in key:
        return sam_for(key), None
    return key, None


# Answers -----------------------------------------------------------------------------------------------------------


def _definition(group: AdGroup) -> RoleDefinition:
    return RoleDefinition(group.sid, group.sid, group.name)


def _find(groups: tuple[AdGroup, ...], text: str) -> AdGroup | None:
    return next((g for g in groups if g.matches(text)), None)


def _account_of(described: dict[str, Any], sam: str, marker: str) -> Account | None:
    if not described.get("exists"):
        return None
    if not described.get("ours"):
        # There, but not (any more) under the OU with this grant's marker: the sagas leave it alone and flag it.
        return Account(f"{sam}:{marker}", sam, None, None)
    upn = str(described.get("userPrincipalName") or sam)
    return Account(f"{sam}:{marker}", upn, MARKER_PREFIX + str(described["marker"]), bool(described["enabled"]))


def _marked(found: dict[str, Any]) -> Account:
    sam, marker = str(found["samAccountName"]), str(found["marker"])
    return Account(f"{sam}:{marker}", sam, MARKER_PREFIX + marker, bool(found["enabled"]))


def _ok(reply: Reply) -> dict[str, Any]:
    if not reply.ok:
        raise _failure(reply)
    return reply.result


def _failure(reply: Reply, *, conflict_means_exists: bool = False) -> DirectoryError:
    """The agent's error as the port's kind: transient ones (and no answer) are retried later, the rest decide."""
    code, message, command_id = reply.code, reply.message, reply.command.id
    if reply.transient:
        return Unavailable(message, code=code, request_id=command_id)
    if code == p.E_SEALED_PASSWORD:
        # The agent's key changed after its heartbeat was read: read it again and retry.
        return Unavailable(message, code=code, request_id=command_id)
    if code == p.E_NOT_FOUND:
        return NotFoundInDirectory(message, code=code, request_id=command_id)
    if code in (p.E_NOT_OURS, p.E_NAME_CONFLICT) and conflict_means_exists:
        return AlreadyExists(message, code=code, request_id=command_id)
    if code in (p.E_WRONG_SITE, p.E_WRONG_TENANT):
        return Denied(f"the agent refused the command: {message}", code=code, request_id=command_id)
    return Rejected(message, code=code, request_id=command_id)


__all__ = ["ActiveDirectoryBackend", "one_time_password", "sam_for", "unique_display_name"]
