"""The generic webhook: signed JSON, and the check a receiver runs on it.

    POST <address>
    Content-Type: application/json
    X-JIT-Event: Active
    X-JIT-Delivery: <hex id, the same for every retry of one notification>
    X-JIT-Timestamp: <unix seconds>
    X-JIT-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

Signing the timestamp with the body lets a receiver refuse a replayed old request (see `verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from jit.adapters.notify import _http
from jit.adapters.notify.render import webhook_payload
from jit.domain.notification import ChannelKind, Notification

SIGNATURE_HEADER = "X-JIT-Signature"
TIMESTAMP_HEADER = "X-JIT-Timestamp"
EVENT_HEADER = "X-JIT-Event"
DELIVERY_HEADER = "X-JIT-Delivery"
_SCHEME = "sha256="


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for this timestamp and body."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return _SCHEME + digest


def verify_signature(
    secret: bytes,
    timestamp: str | None,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """Whether a request is signed with `secret` and fresh: what a receiver of this webhook should check.

    `timestamp` and `header` are the X-JIT-Timestamp and X-JIT-Signature values as received; `body` the raw
    bytes (before any JSON parsing). A timestamp more than `tolerance_s` away from `now` fails, so a captured
    request cannot be replayed later. The comparison takes constant time.
    """
    if not secret or not timestamp or not header or not header.startswith(_SCHEME):
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if str(sent_at) != timestamp or abs(current - sent_at) > tolerance_s:  # "+17" would sign other bytes than sent
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("utf-8"))


def delivery_id(notification: Notification) -> str:
    """Stable across retries of one notification, so receivers can drop duplicates."""
    key = "|".join((notification.tenant_id, notification.grant_id, str(notification.event), notification.occurred_at.isoformat()))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class WebhookChannel:
    """POSTs the notification as signed JSON to the address, once per call.

    `secret` is the HMAC key shared with the receiver. `client` may be shared (connection reuse); without one,
    each delivery uses its own short-lived client with short timeouts.
    """

    kind = ChannelKind.WEBHOOK

    def __init__(self, secret: bytes, client: httpx.AsyncClient | None = None, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a webhook secret is required: an empty HMAC key signs nothing")
        self._secret = secret
        self._client = client
        self._clock = clock

    def __repr__(self) -> str:  # never show the key
        return "WebhookChannel(secret=***)"

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        body = json.dumps(webhook_payload(notification), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "jit-admin-notifications/1",
            EVENT_HEADER: str(notification.event),
            DELIVERY_HEADER: delivery_id(notification),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        await _http.send(
            self._client, "POST", address, what="webhook", headers=headers, content=body, allow_private=allow_private
        )
