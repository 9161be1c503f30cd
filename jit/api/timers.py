"""Timer-triggered work (blueprint): the schedule sweep, the safety net behind every queue message."""

from __future__ import annotations

import logging

import azure.functions as func

from jit import bootstrap

log = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%JIT_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def schedule_sweep(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("schedule sweep is running late")
    services = bootstrap.services()
    result = services.lifecycle.sweep()
    erased = services.vault.erase_expired(services.clock.now())
    log.info(
        "schedule sweep: %d due, %d enqueued, %d dropped; %d expired TAPs erased",
        result.due,
        result.enqueued,
        result.dropped,
        erased,
    )


@bp.timer_trigger(arg_name="timer", schedule="%JIT_DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
async def drift_check(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("drift check is running late")
    findings = await bootstrap.services().drift.run()
    log.info("drift check: %d findings", len(findings))
