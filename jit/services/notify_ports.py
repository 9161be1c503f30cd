"""What delivering a notification needs from a channel adapter."""

from __future__ import annotations

from typing import Protocol

from jit.domain.notification import ChannelKind, Notification


class Channel(Protocol):
    kind: ChannelKind

    async def deliver(self, notification: Notification, address: str) -> None:
        """Deliver one notification to one address; raise DeliveryFailed when it could not be delivered."""
