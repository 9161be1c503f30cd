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

from jit.domain.audit import AuditEntry
from jit.domain.clock import Clock
from jit.domain.errors import NotFound
from jit.domain.grant import Grant, Status, Transition
from jit.domain.notification import ChannelKind, DeliveryFailed, Event, Notification, Target
from jit.services.notify_ports import Channel
from jit.services.ports import GrantRepository

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
    def done(self, tenant_id: str, grant_id: str, key: str) -> set[int]: ...

    def record(self, tenant_id: str, grant_id: str, key: str, index: int, state: str, entry: AuditEntry) -> None:
        """Mark one target delivered (or dead-lettered) together with the audit entry that says so."""

    def audit(self, tenant_id: str, grant_id: str, entry: AuditEntry) -> None: ...

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


def event_of(transition: Transition) -> Event | None:
    """The notification event a grant transition stands for, if any."""
    if transition.to_status is Status.SCHEDULED:
        return Event.APPROVED if transition.from_status is Status.AWAITING_APPROVAL else Event.REQUESTED
    return _EVENT_OF_STATUS.get(transition.to_status)


class ChannelDirectory(Protocol):
    def get(self, name: str) -> dict[str, Any] | None:
        """A named channel an admin configured: `kind`, `addresses`, `allowPrivateNetwork`."""


def targets(
    grant: Grant | None, event: Event, defaults: NotifyDefaults, channels: ChannelDirectory | None = None
) -> list[Target]:
    """Where this event goes: the named channels the grant chose, and the operator's defaults (app settings, trusted
    like the rest of the configuration), each address once. A request never names an address itself."""
    wanted = dict(grant.request.notifications or {}) if grant is not None else {}
    events = {Event(e) for e in wanted["events"]} if "events" in wanted else set(defaults.events)
    if event not in events:
        return []
    found: list[Target] = []

    def add(target: Target) -> None:
        if all((t.channel, t.address) != (target.channel, target.address) for t in found):
            found.append(target)

    for name in wanted.get("channels", []):
        channel = channels.get(str(name)) if channels is not None else None
        if channel is None:
            continue
        for address in channel.get("addresses", []):
            add(Target(ChannelKind(channel["kind"]), str(address), bool(channel.get("allowPrivateNetwork"))))
    for kind, default in (
        (ChannelKind.EMAIL, defaults.emails),
        (ChannelKind.TEAMS, defaults.teams_urls),
        (ChannelKind.WEBHOOK, defaults.webhook_urls),
    ):
        for address in default:
            add(Target(kind, address, allow_private=True))
    ticket = grant.request.ticket_id if grant is not None else None
    if ticket and defaults.ticket_notes and wanted.get("ticketNotes", True) and event in PSA_EVENTS:
        found.append(Target(ChannelKind.PSA, ticket))
    return found


@dataclass(frozen=True)
class TransitionAnnouncer:
    """Queues a notification for each new transition of a grant that somebody listens to (ids only). It runs before
    the change is stored; the message names the transition's place in the grant's history, so the worker can tell a
    change that was stored from one that was not."""

    queue: NotifyQueue
    defaults: NotifyDefaults
    channels: ChannelDirectory | None = None

    def transitions(self, before: Grant | None, after: Grant) -> None:
        known = len(before.history) if before is not None else 0
        for index in range(known, len(after.history)):
            transition = after.history[index]
            event = event_of(transition)
            if event is not None and targets(after, event, self.defaults, self.channels):
                announce(self.queue, after.tenant_id, after.id, event, transition.at, index=index)


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
    clock: Clock
    defaults: NotifyDefaults = field(default_factory=NotifyDefaults)
    directory: ChannelDirectory | None = None

    def targets(self, grant: Grant | None, event: Event) -> list[Target]:
        return targets(grant, event, self.defaults, self.directory)

    async def deliver(self, message: dict[str, Any]) -> None:
        event = Event(message["event"])
        grant = await self._grant(message)
        if grant is None and event is not Event.DRIFT_FOUND:
            return  # the grant is gone: nothing to say
        if grant is not None and not await self._stored(grant, message, event):
            return
        found = self.targets(grant, event)
        if not found:
            return
        notification = self._notification(event, message, grant)
        key = _key(message)
        tenant, grant_id = str(message["tenantId"]), str(message.get("grantId") or "")
        done = await asyncio.to_thread(self.deliveries.done, tenant, grant_id, key)
        attempt = int(message.get("attempt", 0)) + 1
        retry = False
        for index, target in enumerate(found):
            if index in done:
                continue
            outcome = await self._deliver_one(notification, target)
            if outcome is None:
                entry = self._entry(notification, "notification.delivered", "success", target, "")
                await asyncio.to_thread(self.deliveries.record, tenant, grant_id, key, index, "delivered", entry)
            elif outcome.transient and attempt < MAX_ATTEMPTS:
                retry = True
                entry = self._entry(notification, "notification.failed", "retry", target, str(outcome))
                await asyncio.to_thread(self.deliveries.audit, tenant, grant_id, entry)
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
                entry = self._entry(notification, "notification.dead-letter", "failure", target, str(outcome))
                await asyncio.to_thread(self.deliveries.record, tenant, grant_id, key, index, "dead-letter", entry)
        if retry:
            # 10 s, 30 s, 90 s … (with the default base), at most an hour.
            delay = min(self.defaults.retry_base * 3 ** (attempt - 1), timedelta(hours=1))
            await asyncio.to_thread(self.queue.send_json, {**message, "attempt": attempt}, delay)

    async def _deliver_one(self, notification: Notification, target: Target) -> DeliveryFailed | None:
        channel = self.channels.get(target.channel)
        if channel is None:
            return DeliveryFailed(f"the {target.channel.value} channel is not configured", transient=False)
        try:
            await channel.deliver(notification, target.address, allow_private=target.allow_private)
        except DeliveryFailed as failed:
            return failed
        except Exception as unexpected:
            log.exception("channel %s raised", target.channel.value)
            return DeliveryFailed(f"{type(unexpected).__name__}", transient=True)
        return None

    async def _stored(self, grant: Grant, message: dict[str, Any], event: Event) -> bool:
        """Whether the transition the message announces was stored (it is announced just before it is stored). Not
        yet: look again shortly, a few times; then it never was, and there is nothing to say."""
        index = message.get("index")
        if index is None:
            return True
        if int(index) < len(grant.history) and event_of(grant.history[int(index)]) is event:
            return True
        checks = int(message.get("checks", 0)) + 1
        if checks <= 3:
            await asyncio.to_thread(self.queue.send_json, {**message, "checks": checks}, timedelta(seconds=2 * checks))
        else:
            log.info("notification %s of grant %s dropped: the change it announced was never stored", event.value, grant.id)
        return False

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
        account = grant.progress.account
        links = {"grant": f"{base}/api/jit/requests/{grant.id}"}
        if event is Event.ACTIVE and request.tap.enabled:
            links["credentials"] = f"{base}/api/jit/requests/{grant.id}/credentials"
        detail = (grant.error or {}).get("message", "") if event is Event.FAILED else grant.history[-1].reason
        who = (account.principal_name if account else None) or request.user.user_principal_name or request.user.display_name or ""
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

    def _entry(self, notification: Notification, action: str, outcome: str, target: Target, error: str) -> AuditEntry:
        detail = f"{notification.event.value} via {target.channel.value} to {_masked(target)}" + (f": {error}" if error else "")
        return AuditEntry(self.clock.now(), notification.tenant_id, notification.grant_id, SYSTEM, action, outcome, detail)


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
