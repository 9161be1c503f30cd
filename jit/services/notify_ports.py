"""What delivering a notification needs from a channel adapter."""

from __future__ import annotations

from typing import Protocol

from jit.domain.notification import ChannelKind, Notification


class Channel(Protocol):
    kind: ChannelKind

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        """Deliver one notification to one address; raise DeliveryFailed when it could not be delivered. Web addresses
        on private networks are refused unless `allow_private` (an admin allowed it for the destination)."""
