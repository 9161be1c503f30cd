"""A benchmark stack: Azurite and the Graph simulator in processes of their own, a local OpenID issuer for bearer
tokens, and the function app in this process, run by a `FunctionsInstance`.

The simulator runs in its own process so that neither its CPU time nor its share of the GIL is counted as the
product's. Tenants are onboarded as an admin does it (`POST /api/jit/tenants`, then the worker checks them).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import httpx

from bench.instance import FunctionsInstance
from bench.meter import StorageMeter
from devstack.azurite import Azurite, AzuriteEndpoints
from devstack.function_host import ROOT
from devstack.oidc_issuer import OidcIssuer

REQUESTER = ("tech@msp.com", ("Jit.Requester", "Jit.Admin"))
ROLES = [
    "Exchange Administrator",
    "User Administrator",
    "Global Reader",
    "Helpdesk Administrator",
    "Security Administrator",
    "SharePoint Administrator",
    "Teams Administrator",
    "Intune Administrator",
]


class SimulatorProcess:
    """`python -m devstack.graph_simulator` on a free loopback port, driven through its control API."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.graph_simulator", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"the Graph simulator did not start: {line!r}")
        self.base_url = line
        self.origin = line.rsplit("/v1.0", 1)[0]
        self._http = httpx.Client(base_url=f"{self.origin}/_simulator", timeout=30.0)

    @property
    def pid(self) -> int:
        return self._process.pid

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = self._http.request(method, path, json=body)
        if answer.status_code >= 300:
            raise RuntimeError(f"simulator control {method} {path}: {answer.status_code} {answer.text}")
        return answer.json() if answer.content else None

    def add_tenant(self, domain: str) -> str:
        return str(self.control("POST", "/tenants", {"initialDomain": domain, "displayName": domain.split(".")[0]})["id"])

    def add_user(self, tenant: str, upn: str, name: str) -> str:
        return str(self.control("POST", f"/tenants/{tenant}/users", {"userPrincipalName": upn, "displayName": name})["id"])

    def add_group(self, tenant: str, name: str) -> str:
        return str(self.control("POST", f"/tenants/{tenant}/groups", {"displayName": name})["id"])

    def latency(self, ms: float) -> None:
        """Every HTTP round trip to Graph takes `ms` more (a $batch once, not once per request inside it)."""
        self.control("DELETE", "/faults")
        if ms > 0:
            self.control("POST", "/faults", {"kind": "latency", "latencyMs": ms, "batchInner": False})

    def counters(self) -> dict[str, int]:
        return dict(self.control("GET", "/counters"))

    def reset_counters(self) -> None:
        self.control("DELETE", "/counters")

    def tenant(self, tenant: str) -> dict[str, Any]:
        return dict(self.control("GET", f"/tenants/{tenant}"))

    def token(self, tenant: str) -> str:
        return str(self.control("POST", f"/tenants/{tenant}/token", {})["accessToken"])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()


@dataclass
class Tenant:
    domain: str
    id: str


@dataclass
class Stack:
    env: dict[str, str]
    endpoints: AzuriteEndpoints
    graph: SimulatorProcess
    issuer: OidcIssuer
    meter: StorageMeter
    instance: FunctionsInstance
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, url: str, body: Any = None) -> func.HttpResponse:
        return self.instance.http(method, url, body, self.headers)

    def onboard(self, count: int, timeout: float = 120.0) -> list[Tenant]:
        """`count` new tenants in the simulator, onboarded through the API; returns when all are Ready."""
        tenants = []
        for _ in range(count):
            domain = f"b{uuid.uuid4().hex[:10]}.onmicrosoft.com"
            tenant = Tenant(domain, self.graph.add_tenant(domain))
            answer = self.call("POST", "/api/jit/tenants", {"tenant": domain, "directories": ["entra"]})
            assert answer.status_code in (200, 202), answer.get_body()
            tenants.append(tenant)
        deadline = time.monotonic() + timeout
        for tenant in tenants:
            while True:
                found = self.call("GET", f"/api/jit/tenants/{tenant.domain}")
                state = json.loads(found.get_body()).get("state") if found.status_code == 200 else None
                if state == "Ready":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tenant {tenant.domain} not Ready after {timeout:.0f} s: {found.get_body()[:300]!r}")
                time.sleep(0.2)
        return tenants

    def request(self, body: dict[str, Any]) -> str:
        answer = self.call("POST", "/api/jit/requests", body)
        if answer.status_code != 202:
            raise RuntimeError(f"POST /api/jit/requests answered {answer.status_code}: {answer.get_body()[:500]!r}")
        grant_id = str(json.loads(answer.get_body())["id"])
        record = self.instance.host.last.record
        record.grant_id, record.step = grant_id, "request"
        return grant_id

    def grant(self, grant_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/api/jit/requests/{grant_id}")
        assert answer.status_code in (200, 202), answer.get_body()  # 202 (with Retry-After) while work is pending
        return dict(json.loads(answer.get_body()))

    def wait_done(self, ids: list[str], step: str, timeout: float = 300.0) -> float:
        """Wait until each grant has had an invocation for `step` end, then until the instance is idle."""
        deadline = time.monotonic() + timeout
        waiting = set(ids)
        while waiting and time.monotonic() < deadline:
            waiting -= {r.grant_id for r in list(self.instance.invocations) if r.step == step and r.finished}
            time.sleep(0.05)
        if waiting:
            raise RuntimeError(f"{len(waiting)} grants had no {step} invocation after {timeout:.0f} s")
        return self.wait_idle(quiet=1.0, timeout=max(5.0, deadline - time.monotonic()))

    def wait_idle(self, quiet: float = 1.0, timeout: float = 300.0) -> float:
        """Wait until no queue invocation has run for `quiet` seconds and no work message is visible (messages hidden
        until a grant's end do not count); returns when the last invocation ended (time.monotonic())."""
        deadline = time.monotonic() + timeout
        work = self.instance.queues.get_queue_client(self.env["JIT_WORK_QUEUE"])
        while time.monotonic() < deadline:
            ended = self.instance.idle_since()
            # peek sees visible messages only
            if ended is not None and time.monotonic() - ended >= quiet and not work.peek_messages(max_messages=1):
                return ended
            time.sleep(0.1)
        raise RuntimeError(f"the instance was still busy after {timeout:.0f} s")


def request_body(
    tenant: str,
    *,
    roles: list[str],
    groups: list[str] | None = None,
    user: dict[str, Any] | None = None,
    tap: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "tenantId": tenant,
        "user": user or {"type": "new", "displayName": "Bench Admin"},
        "duration": "PT1H",
        "roles": roles,
        "groups": groups or [],
        "reason": "benchmark of the grant lifecycle",
        "temporaryAccessPass": {"enabled": tap},
        **extra,
    }


def base_env(endpoints: AzuriteEndpoints, graph: SimulatorProcess, issuer: OidcIssuer, **overrides: str) -> dict[str, str]:
    unique = uuid.uuid4().hex[:8]
    return {
        **issuer.identity_env(),
        "AzureWebJobsStorage": endpoints.connection_string,
        "JIT_TABLE_PREFIX": f"B{unique}",
        "JIT_WORK_QUEUE": f"bench-{unique}",
        "JIT_NOTIFY_QUEUE": f"bench-notify-{unique}",
        # The deployed schedules (infra/resources.bicep, local.settings.sample.json).
        "JIT_SWEEP_SCHEDULE": "0 */1 * * * *",
        "JIT_AUDIT_CHECKPOINT_SCHEDULE": "0 */1 * * * *",
        "JIT_DRIFT_SCHEDULE": "0 0 3 * * *",
        "GRAPH_BASE_URL": graph.base_url,
        "GRAPH_AUTH": "development",
        "JIT_TAP_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "JIT_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
        # Grants of seconds: the lateness runs end grants within a minute of asking for them.
        "JIT_MIN_DURATION": "PT1S",
        **overrides,
    }


@contextmanager
def services() -> Iterator[tuple[AzuriteEndpoints, SimulatorProcess, OidcIssuer, int]]:
    """The processes a stack needs (and Azurite's pid), stopped however the block ends."""
    azurite = Azurite()
    graph: SimulatorProcess | None = None
    issuer = OidcIssuer()
    try:
        endpoints = azurite.start()
        graph = SimulatorProcess()
        issuer.start()
        assert azurite._process is not None
        yield endpoints, graph, issuer, azurite._process.pid
    finally:
        issuer.stop()
        if graph is not None:
            graph.stop()
        azurite.stop()


@contextmanager
def stack(
    endpoints: AzuriteEndpoints, graph: SimulatorProcess, issuer: OidcIssuer, meter: StorageMeter, **overrides: str
) -> Iterator[Stack]:
    """The function app on fresh tables and queues of the running services, with an instance running it."""
    from azure.storage.queue import QueueServiceClient

    import function_app
    from jit import bootstrap

    env = base_env(endpoints, graph, issuer, **overrides)
    saved = dict(os.environ)
    os.environ.update(env)
    bootstrap.reset()  # the first invocation builds the services from these settings, as in Azure
    meter.watch(endpoints.blob, endpoints.queue, endpoints.table)
    meter.install()
    queues = QueueServiceClient.from_connection_string(endpoints.connection_string)
    instance = FunctionsInstance(function_app.app, env, queues)
    name, roles = REQUESTER
    object_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    try:
        person = issuer.person(object_id)
    except KeyError:
        person = issuer.add_person(name, name, roles, object_id=object_id)
    headers = {"Authorization": f"Bearer {issuer.mint(person)}"}
    instance.start()
    try:
        yield Stack(env, endpoints, graph, issuer, meter, instance, headers)
    finally:
        instance.stop()
        bootstrap.reset()
        os.environ.clear()
        os.environ.update(saved)
