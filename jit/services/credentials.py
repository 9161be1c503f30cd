"""Handing out a grant's sign-in credential (a Temporary Access Pass in Entra ID, a one-time password in an
on-premises domain): once, to the person who asked for the grant, while the grant is Active. The sealed value is
erased in the same write that records who took it and when, with the audit entry; a value this process cannot open
(its key was dropped) is kept and reported, never lost."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from jit.domain.audit import AuditEntry
from jit.domain.caller import Caller
from jit.domain.clock import Clock
from jit.domain.errors import ConcurrencyConflict, Forbidden, JitError, NotFound
from jit.domain.grant import Grant, Status
from jit.domain.progress import CredentialKind, ItemState
from jit.services.grant_writer import GrantWriter
from jit.services.ports import StaleGrant

MAX_ATTEMPTS = 6


class CredentialGone(JitError):
    """Retrieved already, expired, or erased with the grant's end."""


class CredentialNotReady(JitError):
    """Not issued (yet): the grant is not Active, or its credential is still being issued."""

    def __init__(self, message: str, *, moving: bool) -> None:
        super().__init__(message)
        self.moving = moving


class CredentialUnreadable(JitError):
    """Sealed under a key this process does not have: kept as it is, and reported."""


class Opener(Protocol):
    def open(self, sealed: str, tenant_id: str, grant_id: str) -> str: ...


# How each kind of credential is named in answers and audit entries.
CREDENTIAL_NAMES = {CredentialKind.TEMPORARY_ACCESS_PASS: "Temporary Access Pass", CredentialKind.PASSWORD: "one-time password"}


@dataclass(frozen=True)
class HandedOut:
    grant_id: str
    principal_name: str | None
    value: str
    expires_at: datetime | None
    usable_once: bool
    kind: CredentialKind = CredentialKind.TEMPORARY_ACCESS_PASS


@dataclass(frozen=True)
class CredentialHandOut:
    writer: GrantWriter
    opener: Opener
    clock: Clock

    def take(self, grant: Grant, caller: Caller) -> HandedOut:
        if not caller.is_person:
            raise Forbidden("a credential is handed out to a person signed in with Entra ID, never to a key or an application")
        recorded = grant.progress.credential
        what = CREDENTIAL_NAMES[recorded.kind] if recorded is not None else "sign-in credential"
        if grant.requester_id != caller.id:
            # The credential belongs to whoever asked for it; nobody else, admins included, may take it.
            raise Forbidden(f"only the requester may retrieve a grant's {what}")
        if not grant.request.tap.enabled:
            raise NotFound(f"grant {grant.id} has no {what}")
        for _ in range(MAX_ATTEMPTS):
            credential = grant.progress.credential
            if credential is not None and credential.retrieved_at is not None:
                raise CredentialGone(f"the {what} of grant {grant.id} was retrieved at {credential.retrieved_at.isoformat()}")
            if grant.status is not Status.ACTIVE:
                if grant.status in (Status.AWAITING_APPROVAL, Status.SCHEDULED, Status.PROVISIONING):
                    raise CredentialNotReady(f"grant {grant.id} is {grant.status.value}; no {what} issued yet", moving=True)
                raise CredentialGone(f"grant {grant.id} is {grant.status.value}: its {what} is no longer handed out")
            if credential is None or credential.state is not ItemState.DONE:
                raise CredentialNotReady(f"grant {grant.id} has no {what} issued", moving=False)
            secret = self.writer.grants.secret(grant)
            now = self.clock.now()
            if secret is None or (secret.expires_at is not None and secret.expires_at <= now):
                raise CredentialGone(f"the {what} of grant {grant.id} was already retrieved or has expired")
            try:
                value = self.opener.open(secret.sealed, grant.tenant_id, grant.id)
            except Exception as unreadable:  # noqa: BLE001 - kept and reported, whatever the reason
                why = str(unreadable)
                entry = AuditEntry(now, grant.tenant_id, grant.id, "system", "credentials.unreadable", "failure", why)
                self.writer.update(grant.id, functools.partial(_noted, entry=entry), grant.tenant_id, current=grant)
                raise CredentialUnreadable(
                    f"the {what} of grant {grant.id} is kept but can not be opened: {why}. It stays stored; restore the "
                    "key (JIT_TAP_ENCRYPTION_KEY_PREVIOUS) and retrieve it again"
                ) from None
            taken = replace(credential, retrieved_at=now, retrieved_by=caller.actor)
            after = grant.with_progress(replace(grant.progress, credential=taken))
            entry = AuditEntry(now, grant.tenant_id, grant.id, caller.actor, "credentials.retrieved", detail=what.lower())
            try:
                self.writer.save(grant, after, [entry], drop_secret=secret)
            except StaleGrant:
                grant = self.writer.grants.get(grant.id, grant.tenant_id)
                continue
            return HandedOut(
                grant.id,
                grant.progress.account.principal_name if grant.progress.account else None,
                value,
                credential.expires_at or secret.expires_at,
                credential.usable_once,
                credential.kind,
            )
        raise ConcurrencyConflict(f"grant {grant.id} kept changing")


def _noted(grant: Grant, *, entry: AuditEntry) -> tuple[Grant, list[AuditEntry]]:
    return grant, [entry]
