"""Notification channels: email (Graph sendMail), Teams/Workflows (Adaptive Card), a signed generic webhook,
and PSA ticket notes (HaloPSA, ConnectWise Manage, Autotask).

Each channel makes one delivery attempt per call and raises `DeliveryFailed` (transient for timeouts,
connection errors, 429 and 5xx); retries, back-off, dead letters and routing belong to the dispatcher.
"""

from __future__ import annotations

from jit.adapters.notify.email import EmailChannel
from jit.adapters.notify.psa import AutotaskChannel, ConnectWiseChannel, HaloPsaChannel
from jit.adapters.notify.teams import TeamsChannel
from jit.adapters.notify.webhook import WebhookChannel, verify_signature

__all__ = [
    "AutotaskChannel",
    "ConnectWiseChannel",
    "EmailChannel",
    "HaloPsaChannel",
    "TeamsChannel",
    "WebhookChannel",
    "verify_signature",
]
