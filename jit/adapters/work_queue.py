"""The work queue in Azure Queue Storage. Messages are JSON with ids only, base64-encoded for the trigger."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jit.domain.work import Step, WorkItem

if TYPE_CHECKING:  # the triggers import `decode` at load; the storage SDK loads with the first invocation
    from azure.storage.queue import QueueClient


class StorageWorkQueue:
    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    def send(self, item: WorkItem, visible_after: timedelta = timedelta(0)) -> None:
        # Whole seconds, rounded up: a message visible a moment before its time would find nothing due yet.
        delay = math.ceil(max(visible_after.total_seconds(), 0))
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
