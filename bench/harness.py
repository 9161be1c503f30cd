"""A benchmark stack: Azurite, the Graph simulator and the function app, as the tests build it."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.storage.queue import QueueServiceClient

import function_app
from devstack.azurite import Azurite
from devstack.function_host import LocalFunctionHost
from devstack.graph_simulator import GraphSimulator, Tenant
from jit import bootstrap
from jit.bootstrap import Services
from jit.settings import Settings


@dataclass
class BenchStack:
    host: LocalFunctionHost
    services: Services
    graph: GraphSimulator
    queues: QueueServiceClient
    env: dict[str, str]

    def new_tenant(self) -> tuple[str, Tenant]:
        domain = f"b{uuid.uuid4().hex[:10]}.onmicrosoft.com"
        return domain, self.graph.add_tenant(initial_domain=domain)

    def drain(self) -> None:
        while self.host.deliver(self.queues):
            pass


@contextmanager
def bench_stack(**overrides: str) -> Iterator[BenchStack]:
    with Azurite() as endpoints, GraphSimulator() as graph:
        unique = uuid.uuid4().hex[:8]
        env = {
            "AzureWebJobsStorage": endpoints.connection_string,
            "JIT_TABLE_PREFIX": f"B{unique}",
            "JIT_WORK_QUEUE": f"bench-{unique}",
            "JIT_NOTIFY_QUEUE": f"bench-notify-{unique}",
            "JIT_SWEEP_SCHEDULE": "0 */1 * * * *",
            "JIT_DRIFT_SCHEDULE": "0 0 3 * * *",
            "GRAPH_BASE_URL": graph.base_url,
            "GRAPH_AUTH": "development",
            "JIT_TAP_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            **overrides,
        }
        os.environ.update(env)
        services = bootstrap.build(Settings.from_env(env))
        bootstrap.reset(services)
        host = LocalFunctionHost(function_app.app, env)
        try:
            yield BenchStack(host, services, graph, QueueServiceClient.from_connection_string(endpoints.connection_string), env)
        finally:
            host.close()
            bootstrap.reset()


def request(tenant: str, roles: list[str], groups: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "tenantId": tenant,
        "user": {"type": "new", "displayName": "Bench Admin"},
        "duration": "PT1H",
        "roles": roles,
        "groups": groups,
        "reason": "benchmark of the provisioning saga",
        **extra,
    }
