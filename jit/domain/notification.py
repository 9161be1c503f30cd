"""Notifications: which events people hear about, and what a notification may say (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Event(StrEnum):
    REQUESTED = "Requested"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    DENIED = "Denied"
    ACTIVE = "Active"
    EXPIRING_SOON = "ExpiringSoon"
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    FAILED = "Failed"
    DRIFT_FOUND = "DriftFound"


class ChannelKind(StrEnum):
    EMAIL = "email"
    TEAMS = "teams"  # Teams incoming webhook or a Workflows (Power Automate) URL: an Adaptive Card
    WEBHOOK = "webhook"  # generic JSON webhook, HMAC-SHA256 signed
    PSA = "psa"  # a note on the PSA ticket (HaloPSA, ConnectWise Manage or Autotask, from settings)


@dataclass(frozen=True)
class Target:
    """Where one notification goes: a channel and its address (mailbox, URL, or the ticket id for PSA). Web
    addresses on private networks are refused unless the destination's admin allowed them (`allow_private`)."""

    channel: ChannelKind
    address: str
    allow_private: bool = False


@dataclass(frozen=True)
class Notification:
    """What a channel renders. Built from the grant when it is sent; it carries no TAP and no password, only the
    URL where the requester retrieves the TAP once."""

    event: Event
    tenant_id: str
    grant_id: str
    occurred_at: datetime
    title: str
    status: str
    user: str = ""  # UPN or display name
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""
    ticket_id: str | None = None
    requested_by: str = ""
    detail: str = ""  # a failure message, a decision comment, a drift finding
    links: dict[str, str] = field(default_factory=dict)  # "grant": status URL, "credentials": where the TAP is fetched once


class DeliveryFailed(Exception):
    """A channel could not deliver. `transient` failures are retried; others go straight to the dead letters."""

    def __init__(self, message: str, *, transient: bool, status: int = 0) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
