"""A webhook receiver: accepts JSON POSTs, optionally insists on a valid X-JIT-Signature, records deliveries.

It stands for the generic webhook's receivers and for Teams/Workflows URLs alike (both are "POST JSON here").
"""

from __future__ import annotations

import threading
import time
from typing import Any

from devstack.fake_receivers._server import LoopbackReceiver, RecordedRequest, Reply
from jit.adapters.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


class WebhookSink(LoopbackReceiver):
    """Answers `status` (default 200, body `reply_body`) to every well-formed JSON POST and keeps it in `deliveries`.

    With `secret`, a request whose signature does not verify (wrong key, altered body, stale timestamp) gets 401
    and is not a delivery: the check a real receiver should make. Non-JSON bodies get 400.
    """

    def __init__(
        self, *, secret: bytes | None = None, status: int = 200, reply_body: bytes = b"", tolerance_s: int = 300
    ) -> None:
        super().__init__()
        self._secret = secret
        self._status = status
        self._reply_body = reply_body
        self._tolerance_s = tolerance_s
        self._deliveries: list[RecordedRequest] = []
        self._delivered = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/jit"

    @property
    def deliveries(self) -> list[RecordedRequest]:
        with self._delivered:
            return list(self._deliveries)

    def payloads(self) -> list[Any]:
        return [request.json() for request in self.deliveries]

    def handle(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return Reply(405, headers={"Allow": "POST"})
        if not (request.header("Content-Type") or "").lower().startswith("application/json"):
            return Reply.json(415, {"error": "expected application/json"})
        try:
            request.json()
        except ValueError:
            return Reply.json(400, {"error": "the body is not JSON"})
        if self._secret is not None and not verify_signature(
            self._secret,
            request.header(TIMESTAMP_HEADER),
            request.body,
            request.header(SIGNATURE_HEADER),
            tolerance_s=self._tolerance_s,
            now=time.time(),
        ):
            return Reply.json(401, {"error": "bad or missing signature"})
        with self._delivered:
            self._deliveries.append(request)
        return Reply(self._status, self._reply_body, {"Content-Type": "text/plain"} if self._reply_body else {})
