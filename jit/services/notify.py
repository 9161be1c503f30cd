"""Notifications: grant events become queue messages (ids only), and the notification worker renders each one and
delivers it to every target, retrying with back-off and keeping a dead letter for what never got through.

A delivery problem never blocks or fails a grant: announcing only enqueues, and every outcome is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from jit.domain.clock import Clock
from jit.domain.errors import NotFound
from jit.domain.grant import Grant, Status
from jit.domain.notification import ChannelKind, DeliveryFailed, Event, Notification, Target
from jit.domain.work import AuditEntry
from jit.services.notify_ports import Channel
from jit.services.ports import AuditLog, GrantRepository

log = logging.getLogger(__name__)

SYSTEM = "system"
MAX_ATTEMPTS = 6
# PSA tickets get a note when access is granted and when it ends, as MSPs keep them.
PSA_EVENTS = frozenset({Event.ACTIVE, Event.EXPIRED, Event.REVOKED, Event.FAILED, Event.DENIED})
_EVENT_OF_STATUS = {
    Status.AWAITING_APPROVAL: Event.AWAITING_APPROVAL,
    Status.ACTIVE: Event.ACTIVE,
    Status.EXPIRED: Event.EXPIRED,
    Status.REVOKED: Event.REVOKED,
    Status.CANCELLED: Event.REVOKED,
    Status.DENIED: Event.DENIED,
    Status.FAILED: Event.FAILED,
}


class NotifyQueue(Protocol):
    def send_json(self, message: dict[str, Any], visible_after: timedelta = timedelta(0)) -> None: ...


class Deliveries(Protocol):
    def done(self, key: str) -> set[int]: ...

    def mark(self, key: str, index: int, state: str) -> None: ...

    def dead_letter(self, key: str, index: int, record: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class NotifyDefaults:
    emails: tuple[str, ...] = ()
    teams_urls: tuple[str, ...] = ()
    webhook_urls: tuple[str, ...] = ()
    events: frozenset[Event] = frozenset(Event)
    ticket_notes: bool = False  # a PSA is configured
    expiring_lead: timedelta = timedelta(minutes=15)
    public_base_url: str = ""
    retry_base: timedelta = timedelta(seconds=10)


def event_of(entry: AuditEntry) -> Event | None:
    """The notification event a grant transition in the audit trail stands for, if any."""
    if not entry.action.startswith("grant."):
        return None
    try:
        status = Status(entry.action.removeprefix("grant."))
    except ValueError:
        return None
    came_from = entry.detail.split(" -> ", 1)[0]
    if status is Status.SCHEDULED:
        return Event.APPROVED if came_from == Status.AWAITING_APPROVAL.value else Event.REQUESTED
    return _EVENT_OF_STATUS.get(status)


class NotifyingAuditLog:
    """The audit log, announcing each grant transition that people should hear about. Announcing must never break
    the write it follows: a failure to enqueue is logged, and the grant goes on."""

    def __init__(self, inner: AuditLog, queue: NotifyQueue) -> None:
        self._inner = inner
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def append(self, entry: AuditEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        self._inner.append_many(entries)
        for entry in entries:
            event = event_of(entry)
            if event is not None:
                announce(self._queue, entry.tenant_id, entry.grant_id, event, entry.at)


def announce(queue: NotifyQueue, tenant_id: str, grant_id: str, event: Event, at: datetime, **extra: Any) -> None:
    message = {"tenantId": tenant_id, "grantId": grant_id, "event": event.value, "at": at.isoformat(), "attempt": 0, **extra}
    try:
        queue.send_json(message)
    except Exception:
        log.exception("could not enqueue the %s notification of grant %s", event.value, grant_id)


@dataclass
class NotificationDispatcher:
    grants: GrantRepository
    channels: dict[ChannelKind, Channel]
    deliveries: Deliveries
    queue: NotifyQueue
    audit: AuditLog
    clock: Clock
    defaults: NotifyDefaults = field(default_factory=NotifyDefaults)

    def targets(self, grant: Grant | None, event: Event) -> list[Target]:
        """Where this event goes: the grant's own preferences and the defaults, each address once."""
        wanted = dict(grant.request.notifications or {}) if grant is not None else {}
        events = {Event(e) for e in wanted["events"]} if "events" in wanted else set(self.defaults.events)
        if event not in events:
            return []
        found: list[Target] = []
        for kind, given, default in (
            (ChannelKind.EMAIL, wanted.get("emails", []), self.defaults.emails),
            (ChannelKind.TEAMS, wanted.get("teamsWebhookUrls", []), self.defaults.teams_urls),
            (ChannelKind.WEBHOOK, wanted.get("webhookUrls", []), self.defaults.webhook_urls),
        ):
            for address in [*given, *default]:
                if Target(kind, address) not in found:
                    found.append(Target(kind, address))
        ticket = grant.request.ticket_id if grant is not None else None
        if ticket and self.defaults.ticket_notes and wanted.get("ticketNotes", True) and event in PSA_EVENTS:
            found.append(Target(ChannelKind.PSA, ticket))
        return found

    async def deliver(self, message: dict[str, Any]) -> None:
        event = Event(message["event"])
        grant = await self._grant(message)
        if grant is None and event is not Event.DRIFT_FOUND:
            return  # the grant is gone: nothing to say
        targets = self.targets(grant, event)
        if not targets:
            return
        notification = self._notification(event, message, grant)
        key = _key(message)
        done = await asyncio.to_thread(self.deliveries.done, key)
        attempt = int(message.get("attempt", 0)) + 1
        retry = False
        for index, target in enumerate(targets):
            if index in done:
                continue
            outcome = await self._deliver_one(notification, target)
            if outcome is None:
                await asyncio.to_thread(self.deliveries.mark, key, index, "delivered")
                self._audit(notification, "notification.delivered", "success", target, "")
            elif outcome.transient and attempt < MAX_ATTEMPTS:
                retry = True
                self._audit(notification, "notification.failed", "retry", target, str(outcome))
            else:
                record = {
                    "channel": target.channel.value,
                    "address": _masked(target),
                    "error": str(outcome),
                    "attempts": attempt,
                    "event": event.value,
                    "grantId": notification.grant_id,
                    "tenantId": notification.tenant_id,
                }
                await asyncio.to_thread(self.deliveries.dead_letter, key, index, record)
                await asyncio.to_thread(self.deliveries.mark, key, index, "dead-letter")
                self._audit(notification, "notification.dead-letter", "failure", target, str(outcome))
        if retry:
            # 10 s, 30 s, 90 s … (with the default base), at most an hour.
            delay = min(self.defaults.retry_base * 3 ** (attempt - 1), timedelta(hours=1))
            await asyncio.to_thread(self.queue.send_json, {**message, "attempt": attempt}, delay)

    async def _deliver_one(self, notification: Notification, target: Target) -> DeliveryFailed | None:
        channel = self.channels.get(target.channel)
        if channel is None:
            return DeliveryFailed(f"the {target.channel.value} channel is not configured", transient=False)
        try:
            await channel.deliver(notification, target.address)
        except DeliveryFailed as failed:
            return failed
        except Exception as unexpected:
            log.exception("channel %s raised", target.channel.value)
            return DeliveryFailed(f"{type(unexpected).__name__}", transient=True)
        return None

    async def _grant(self, message: dict[str, Any]) -> Grant | None:
        if not message.get("grantId"):
            return None
        try:
            return await asyncio.to_thread(self.grants.get, message["grantId"], message["tenantId"])
        except NotFound:
            return None

    def _notification(self, event: Event, message: dict[str, Any], grant: Grant | None) -> Notification:
        at = datetime.fromisoformat(message["at"])
        base = self.defaults.public_base_url.rstrip("/")
        if grant is None:
            detail = f"{message.get('count', 'some')} drift findings: see {base}/api/jit/drift?tenantId={message['tenantId']}"
            return Notification(
                event, message["tenantId"], "", at, f"JIT drift found in {message['tenantId']}", "", detail=detail
            )
        request = grant.request
        user = grant.progress.get("user") or {}
        links = {"grant": f"{base}/api/jit/requests/{grant.id}"}
        if event is Event.ACTIVE and request.tap.enabled:
            links["credentials"] = f"{base}/api/jit/requests/{grant.id}/credentials"
        detail = (grant.error or {}).get("message", "") if event is Event.FAILED else grant.history[-1].reason
        who = user.get("userPrincipalName") or request.user.user_principal_name or request.user.display_name or ""
        return Notification(
            event=event,
            tenant_id=grant.tenant_id,
            grant_id=grant.id,
            occurred_at=at,
            title=f"JIT access {_verb(event)}: {who} in {grant.tenant_id}",
            status=grant.status.value,
            user=who,
            roles=request.roles,
            groups=request.groups,
            start=request.start,
            end=request.end,
            reason=request.reason,
            ticket_id=request.ticket_id,
            requested_by=grant.requested_by,
            detail=detail,
            links=links,
        )

    def _audit(self, notification: Notification, action: str, outcome: str, target: Target, error: str) -> None:
        detail = f"{notification.event.value} via {target.channel.value} to {_masked(target)}" + (f": {error}" if error else "")
        self.audit.append(
            AuditEntry(self.clock.now(), notification.tenant_id, notification.grant_id, SYSTEM, action, outcome, detail)
        )


def _verb(event: Event) -> str:
    return {
        Event.REQUESTED: "requested",
        Event.AWAITING_APPROVAL: "awaiting approval",
        Event.APPROVED: "approved",
        Event.DENIED: "denied",
        Event.ACTIVE: "active",
        Event.EXPIRING_SOON: "expiring soon",
        Event.EXPIRED: "expired",
        Event.REVOKED: "revoked",
        Event.FAILED: "failed",
        Event.DRIFT_FOUND: "drift found",
    }[event]


def _key(message: dict[str, Any]) -> str:
    """One notification (an event of a grant at a moment): its deliveries are tracked under this key."""
    raw = json.dumps([message["tenantId"], message.get("grantId", ""), message["event"], message["at"]])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _masked(target: Target) -> str:
    """An address fit for logs and audit: webhook URLs lose their query (Teams and Workflows URLs carry a signature)."""
    if target.channel in (ChannelKind.TEAMS, ChannelKind.WEBHOOK):
        return target.address.split("?", 1)[0]
    return target.address
