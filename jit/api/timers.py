"""Timer-triggered work (blueprint): the schedule sweep (the safety net behind every queue message), the audit
checkpoints, and the daily drift check."""

from __future__ import annotations

import asyncio
import logging

import azure.functions as func

from jit import bootstrap

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%JIT_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def schedule_sweep(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("schedule sweep is running late")
    services = bootstrap.services()
    # The sweep's storage calls are blocking: off the event loop, so queue work in this instance keeps going.
    result = await asyncio.to_thread(services.lifecycle.sweep)
    log.info("schedule sweep: %d due, %d enqueued, %d dropped", result.due, result.enqueued, result.dropped)
    # A directory that can not be reached (an on-premises agent that stopped reporting) alerts within a minute.
    await services.drift.watch_directories()


@bp.timer_trigger(arg_name="timer", schedule="%JIT_AUDIT_CHECKPOINT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def audit_checkpoint(timer: func.TimerRequest) -> None:
    """Anchor the heads of every audit chain changed since the last run outside the tables (write-once blobs)."""
    services = bootstrap.services()
    partitions = ["global", *services.grants.tenants(), *(r.id for r in services.tenants.list())]
    anchored = services.checkpoints.checkpoint(dict.fromkeys(partitions), services.clock.now())
    log.info("audit checkpoint: %d chains anchored", anchored)


@bp.timer_trigger(arg_name="timer", schedule="%JIT_DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def drift_check(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("drift check is running late")
    findings = await bootstrap.services().drift.run()
    log.info("drift check: %d findings", len(findings))
