"""The work queue in Azure Queue Storage. Messages are JSON with ids only, base64-encoded for the trigger.

Work an HTTP function asks for at once (provision now, end now) leaves through the function's queue output binding
instead (`collecting_work`): the Functions host writes it when the function returns and tells the queue trigger's
listener in the same instance, which polls at once (the Storage extension's IMessageEnqueuedWatcher) instead of
after its back-off. The schedule's wake-up stays the safety net, as for every message.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jit.domain.work import Step, WorkItem

if TYPE_CHECKING:  # the triggers import `decode` at load; the storage SDK loads with the first invocation
    from azure.storage.queue import QueueClient


_outbox: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("jit_work_outbox", default=None)


@contextmanager
def collecting_work() -> Iterator[list[str]]:
    """Within this block, work due at once is collected (encoded) for the caller's queue output binding."""
    collected: list[str] = []
    token = _outbox.set(collected)
    try:
        yield collected
    finally:
        _outbox.reset(token)


class StorageWorkQueue:
    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    def send(self, item: WorkItem, visible_after: timedelta = timedelta(0)) -> None:
        # Whole seconds, rounded up: a message visible a moment before its time would find nothing due yet.
        delay = math.ceil(max(visible_after.total_seconds(), 0))
        outbox = _outbox.get()
        if outbox is not None and not delay:
            outbox.append(encode(item))
            return
        self._queue.send_message(encode(item), visibility_timeout=delay or None)


class StorageJsonQueue:
    """A queue of small JSON messages (the notification queue): ids and event names only."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    def send_json(self, message: dict[str, Any], visible_after: timedelta = timedelta(0)) -> None:
        delay = math.ceil(max(visible_after.total_seconds(), 0))
        self._queue.send_message(json.dumps(message, separators=(",", ":")), visibility_timeout=delay or None)


def encode(item: WorkItem) -> str:
    return json.dumps({"tenantId": item.tenant_id, "grantId": item.grant_id, "step": item.step.value})


def decode(body: str) -> WorkItem:
    """The work item a message body carries; ValueError for a body this product did not write."""
    try:
        raw = json.loads(body)
        return WorkItem(tenant_id=str(raw["tenantId"]), grant_id=str(raw["grantId"]), step=Step(raw["step"]))
    except (KeyError, TypeError, json.JSONDecodeError) as bad:
        raise ValueError(f"not a work item: {bad}") from None
