"""function_app.py declares what Azure will index: names, triggers, and bindings that match parameters.

A binding whose name does not match a parameter silently drops the whole app in Azure, so it is checked here.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import function_app
from devstack.function_host import indexed_functions
from jit.api.routes import ROUTES, Audience

ROOT = Path(__file__).resolve().parents[2]

# Functions outside the route table.
WORKERS = {
    "grant_worker": "queueTrigger",
    "notification_worker": "queueTrigger",
    "schedule_sweep": "timerTrigger",
    "audit_checkpoint": "timerTrigger",
    "drift_check": "timerTrigger",
}
# A few routes spelled out by hand, so a mistake in the table (or in how it is registered) shows here.
SPOT_CHECKS = {
    "create_request": ("api/jit/requests", "POST", "anonymous"),
    "create_request_by_key": ("api/svc/jit/requests", "POST", "function"),
    "get_credentials": ("api/jit/requests/{id}/credentials", "GET", "anonymous"),
    "approve_request": ("api/jit/requests/{id}/approve", "POST", "anonymous"),
    "health": ("api/health", "GET", "anonymous"),
    "portal_index": ("portal", "GET", "anonymous"),
}
# Machines (a function key) never approve, deny or receive a credential.
PEOPLE_ONLY = {"approve_request", "deny_request", "get_credentials", "list_approvals"}


def expected_http() -> dict[str, tuple[str, str, str]]:
    found: dict[str, tuple[str, str, str]] = {}
    for route in ROUTES:
        if route.audience & (Audience.PEOPLE | Audience.PUBLIC):
            found[route.name] = (route.full_path, route.method, "anonymous")
        if route.audience & Audience.MACHINES:
            found[f"{route.name}_by_key"] = (route.machine_path, route.method, "function")
    return found


def functions() -> dict[str, object]:
    return {f.get_function_name(): f for f in indexed_functions(function_app.app)}


def test_the_app_declares_exactly_the_expected_functions() -> None:
    found = functions()
    http = expected_http()
    assert set(found) == set(http) | set(WORKERS)
    for name, (route, method, level) in {**http, **SPOT_CHECKS}.items():
        trigger = found[name].get_trigger()  # type: ignore[attr-defined]
        assert trigger.type == "httpTrigger", name
        assert trigger.route == route, name
        assert {str(getattr(m, "value", m)) for m in trigger.methods} == {method}, name
        assert str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() == level, name
    for name, trigger_type in WORKERS.items():
        assert found[name].get_trigger().type == trigger_type  # type: ignore[attr-defined]


def test_people_only_routes_have_no_key_variant() -> None:
    found = functions()
    for name in PEOPLE_ONLY:
        assert name in found
        assert f"{name}_by_key" not in found, name


def test_every_binding_names_a_parameter_of_its_function() -> None:
    for name, function in functions().items():
        parameters = set(inspect.signature(function.get_user_function()).parameters)  # type: ignore[attr-defined]
        for binding in function.get_bindings():  # type: ignore[attr-defined]
            if binding.name != "$return":
                assert binding.name in parameters, f"{name}: binding {binding.name} has no parameter"


def test_trigger_settings_are_app_settings_listed_in_the_sample() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    found = functions()
    queue = found["grant_worker"].get_trigger()  # type: ignore[attr-defined]
    timer = found["schedule_sweep"].get_trigger()  # type: ignore[attr-defined]
    assert queue.queue_name == "%JIT_WORK_QUEUE%"
    assert queue.connection == "AzureWebJobsStorage"
    assert timer.schedule == "%JIT_SWEEP_SCHEDULE%"
    assert timer.run_on_startup is False
    assert found["drift_check"].get_trigger().schedule == "%JIT_DRIFT_SCHEDULE%"  # type: ignore[attr-defined]
    assert found["audit_checkpoint"].get_trigger().schedule == "%JIT_AUDIT_CHECKPOINT_SCHEDULE%"  # type: ignore[attr-defined]
    for setting in ("JIT_WORK_QUEUE", "JIT_NOTIFY_QUEUE", "JIT_SWEEP_SCHEDULE", "JIT_DRIFT_SCHEDULE", "JIT_AUDIT_CHECKPOINT_SCHEDULE"):
        assert setting in sample
    assert re.fullmatch(r"\d+ \S+ \S+ \S+ \S+ \S+", sample["JIT_SWEEP_SCHEDULE"])  # NCRONTAB has six fields


def test_importing_the_app_reads_no_settings_and_builds_no_clients() -> None:
    source = (ROOT / "function_app.py").read_text()
    assert "os.environ" not in source
    from jit import bootstrap

    assert "services()" not in (ROOT / "jit" / "api" / "http_api.py").read_text().split("bp = func.Blueprint()")[0]
    assert callable(bootstrap.services)


def test_host_json_uses_base64_queue_messages() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"


def test_output_bindings_have_types_the_python_worker_accepts() -> None:
    """The worker resolves annotations (typing.get_type_hints) and checks each output's type with its converter;
    a type it refuses fails the function's load in Azure."""
    import typing

    from azure.functions.queue import QueueMessageOutConverter

    enqueuing = {r.name for r in ROUTES if r.enqueues}
    assert {"create_request", "revoke_request", "approve_request"} <= enqueuing
    for name, function in functions().items():
        outputs = [b for b in function.get_bindings() if b.type == "queue"]  # type: ignore[attr-defined]
        assert bool(outputs) == (name.removesuffix("_by_key") in enqueuing), name
        for binding in outputs:
            assert binding.queue_name == "%JIT_WORK_QUEUE%"
            hints = typing.get_type_hints(function.get_user_function())  # type: ignore[attr-defined]
            [inner] = typing.get_args(hints[binding.name])
            assert QueueMessageOutConverter.check_output_type_annotation(inner), (name, inner)
