"""Queue-triggered work (blueprint): provisioning and expiration steps for one grant per message."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from jit import bootstrap
from jit.adapters.work_queue import decode

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name="%JIT_WORK_QUEUE%", connection="AzureWebJobsStorage")
async def grant_worker(msg: func.QueueMessage) -> None:
    try:
        item = decode(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        # Retrying a message this product did not write would fail the same way five times: drop it loudly.
        log.error("dropped malformed work message %s", msg.id)
        return
    grant = await bootstrap.services().lifecycle.handle(item)
    log.info(
        "work %s for grant %s done (delivery %s): %s",
        item.step.value,
        item.grant_id,
        msg.dequeue_count,
        grant.status.value if grant else "unknown grant",
    )


@bp.queue_trigger(arg_name="msg", queue_name="%JIT_NOTIFY_QUEUE%", connection="AzureWebJobsStorage")
async def notification_worker(msg: func.QueueMessage) -> None:
    try:
        message = json.loads(msg.get_body().decode("utf-8"))
        if not isinstance(message, dict) or "event" not in message or "tenantId" not in message:
            raise ValueError("not a notification")
    except (ValueError, UnicodeDecodeError):
        log.error("dropped malformed notification message %s", msg.id)
        return
    # Failures are retried by the dispatcher itself (with back-off) and end in dead letters: the function succeeds.
    await bootstrap.services().notifications.deliver(message)
