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

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "create_request": ("httpTrigger", "jit/requests", {"POST"}),
    "list_requests": ("httpTrigger", "jit/requests", {"GET"}),
    "get_request": ("httpTrigger", "jit/requests/{id}", {"GET"}),
    "revoke_request": ("httpTrigger", "jit/requests/{id}/revoke", {"POST"}),
    "extend_request": ("httpTrigger", "jit/requests/{id}/extend", {"POST"}),
    "get_credentials": ("httpTrigger", "jit/requests/{id}/credentials", {"GET"}),
    "list_tenant_roles": ("httpTrigger", "jit/tenants/{tenantId}/roles", {"GET"}),
    "health": ("httpTrigger", "health", {"GET"}),
    "grant_worker": ("queueTrigger", None, None),
    "notification_worker": ("queueTrigger", None, None),
    "list_templates": ("httpTrigger", "jit/templates", {"GET"}),
    "get_template": ("httpTrigger", "jit/templates/{name}", {"GET"}),
    "put_template": ("httpTrigger", "jit/templates/{name}", {"PUT"}),
    "delete_template": ("httpTrigger", "jit/templates/{name}", {"DELETE"}),
    "schedule_sweep": ("timerTrigger", None, None),
    "drift_check": ("timerTrigger", None, None),
    "list_drift": ("httpTrigger", "jit/drift", {"GET"}),
    "read_audit": ("httpTrigger", "jit/audit", {"GET"}),
    "approve_request": ("httpTrigger", "jit/requests/{id}/approve", {"POST"}),
    "deny_request": ("httpTrigger", "jit/requests/{id}/deny", {"POST"}),
    "get_policy": ("httpTrigger", "jit/policies/{scope}", {"GET"}),
    "put_policy": ("httpTrigger", "jit/policies/{scope}", {"PUT"}),
    "monthly_report": ("httpTrigger", "jit/reports/monthly", {"GET"}),
    "get_openapi": ("httpTrigger", "jit/openapi.json", {"GET"}),
}


def functions() -> dict[str, object]:
    return {f.get_function_name(): f for f in indexed_functions(function_app.app)}


def test_the_app_declares_exactly_the_expected_functions() -> None:
    found = functions()
    assert set(found) == set(EXPECTED)
    for name, (trigger_type, route, methods) in EXPECTED.items():
        trigger = found[name].get_trigger()  # type: ignore[attr-defined]
        assert trigger.type == trigger_type, name
        if route is not None:
            assert trigger.route == route
            assert {str(getattr(m, "value", m)) for m in trigger.methods} == methods


def test_every_binding_names_a_parameter_of_its_function() -> None:
    for name, function in functions().items():
        parameters = set(inspect.signature(function.get_user_function()).parameters)  # type: ignore[attr-defined]
        for binding in function.get_bindings():  # type: ignore[attr-defined]
            if binding.name != "$return":
                assert binding.name in parameters, f"{name}: binding {binding.name} has no parameter"


def test_only_health_is_anonymous_and_the_rest_need_a_function_key() -> None:
    for name, function in functions().items():
        trigger = function.get_trigger()  # type: ignore[attr-defined]
        if trigger.type == "httpTrigger":
            level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower()
            assert level == ("anonymous" if name == "health" else "function"), name


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
    for setting in ("JIT_WORK_QUEUE", "JIT_SWEEP_SCHEDULE", "JIT_DRIFT_SCHEDULE"):
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
