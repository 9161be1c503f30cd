"""Shared fixtures: a real Azurite per test process, and a per-test stack with its own tables and queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest
from azure.storage.queue import QueueServiceClient

import function_app
from devstack.azurite import Azurite, AzuriteEndpoints
from devstack.function_host import LocalFunctionHost
from devstack.graph_simulator import GraphSimulator, Tenant
from devstack.oidc_issuer import OidcIssuer
from jit import bootstrap
from jit.bootstrap import Services
from jit.domain.clock import Clock
from jit.settings import Settings

TENANT = "contoso.onmicrosoft.com"
OTHER_TENANT = "fabrikam.onmicrosoft.com"
TENANT_GUID = "11111111-2222-4333-8444-555555555555"
GROUP_HELPDESK = "aaaaaaaa-0000-4000-8000-000000000001"
GROUP_SECURITY = "aaaaaaaa-0000-4000-8000-000000000002"
TAP_KEY = "W2PgLJgo3wa+gh4zbz5kuU9rqYnnPwBGW6iyvtMpHss="  # tests only
AUDIT_KEY = "c2lnbmluZy1rZXktZm9yLXRlc3RzLW9ubHktMzJieXQ="  # tests only
FUNCTION_KEY = "test-function-key"  # the machine key the local host accepts on /api/svc/ routes
# Who calls when a test does not say: a person who may request and administer (but never approve their own).
DEFAULT_CALLER = "tech@msp.com"
DEFAULT_ROLES = ("Jit.Requester", "Jit.Admin")

_issuer: OidcIssuer | None = None


def _running_issuer() -> OidcIssuer:
    """The session's issuer, started on first use (modules may build headers while being collected)."""
    global _issuer
    if _issuer is None:
        _issuer = OidcIssuer().start()
    return _issuer


@pytest.fixture(scope="session", autouse=True)
def issuer() -> Iterator[OidcIssuer]:
    """The local OpenID issuer that stands in for Entra ID: tests sign people in with its tokens."""
    global _issuer
    started = _running_issuer()
    yield started
    started.stop()
    _issuer = None


def token_for(name: str, *roles: str, object_id: str | None = None) -> str:
    """An Entra-shaped access token for a person (the same name gets the same object id)."""
    running = _running_issuer()
    oid = object_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    try:
        person = running.person(oid)
    except KeyError:
        person = running.add_person(name, name, roles, object_id=oid)
    return running.mint(person, roles=roles)


def principal(name: str, *roles: str, object_id: str | None = None) -> dict[str, str]:
    """The Authorization header a person signed in with Entra ID sends."""
    return {"Authorization": f"Bearer {token_for(name, *roles, object_id=object_id)}"}


def machine(**extra: str) -> dict[str, str]:
    """The headers of a machine caller with a function key (on /api/svc/ routes)."""
    return {"x-functions-key": FUNCTION_KEY, **extra}


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteEndpoints]:
    with Azurite() as endpoints:
        yield endpoints


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, **span: float) -> datetime:
        self.current += timedelta(**span)
        return self.current


@dataclass
class Product:
    """The function app wired to Azurite, driven through the same functions Azure would call."""

    host: LocalFunctionHost
    services: Services
    clock: Clock
    env: dict[str, str]
    queues: QueueServiceClient

    def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> func.HttpResponse:
        headers = dict(headers or {})
        path = urlsplit(url).path
        if path.startswith("/api/jit/") and not any(k.lower() in ("authorization", "x-functions-key") for k in headers):
            headers.update(principal(DEFAULT_CALLER, *DEFAULT_ROLES))
        return self.host.http(method, url, body, headers)

    def post_request(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
        return self.call("POST", "/api/jit/requests", body, headers)

    def drain(self, rounds: int = 20) -> int:
        """Deliver queued messages (work and notifications) until none is visible; returns how many work messages
        were handled."""
        total = 0
        for _ in range(rounds):
            handled = self.host.deliver(self.queues)
            total += self.host.last_handled.get(self.env["JIT_WORK_QUEUE"], 0)
            if not handled:
                break
        return total

    def onboard(self, reference: str, directories: tuple[str, ...] = ("entra",)) -> dict[str, Any]:
        """Onboard a tenant as an admin would: ask for it, let the worker check it with its directory."""
        answer = self.call("POST", "/api/jit/tenants", {"tenant": reference, "directories": list(directories)})
        assert answer.status_code in (200, 202), answer.get_body()
        self.drain()
        found = self.call("GET", f"/api/jit/tenants/{reference}")
        assert found.status_code == 200, found.get_body()
        registration: dict[str, Any] = body_of(found)
        assert registration["state"] == "Ready", registration
        return registration

    def queued(self) -> int:
        props = self.queues.get_queue_client(self.env["JIT_WORK_QUEUE"]).get_queue_properties()
        return int(props.approximate_message_count)


@dataclass
class Stack(Product):
    """The product with the Graph simulator it talks to, and the simulated tenant tests look into."""

    clock: FakeClock
    graph: GraphSimulator
    tenant: Tenant


def start_product(env: dict[str, str], clock: Clock) -> tuple[LocalFunctionHost, Services, QueueServiceClient]:
    """Build the services from `env`, install them as the process's, and host `function_app.py` on them."""
    services = bootstrap.build(Settings.from_env(env), clock=clock)
    bootstrap.reset(services)
    host = LocalFunctionHost(function_app.app, env, function_keys=(FUNCTION_KEY,))
    queues = QueueServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    return host, services, queues


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def stack_env(endpoints: AzuriteEndpoints, graph_base_url: str, **overrides: str) -> dict[str, str]:
    unique = uuid.uuid4().hex[:10]
    assert _issuer is not None
    env = {
        **_issuer.identity_env(),
        "JIT_AUDIT_KEY": AUDIT_KEY,
        "AzureWebJobsStorage": endpoints.connection_string,
        "JIT_TABLE_PREFIX": f"T{unique}",
        "JIT_WORK_QUEUE": f"work-{unique}",
        "JIT_NOTIFY_QUEUE": f"notify-{unique}",
        "JIT_WEBHOOK_SECRET": "test-webhook-secret",
        "JIT_PUBLIC_BASE_URL": "https://jit.example.com",
        "JIT_SWEEP_SCHEDULE": "0 */1 * * * *",
        "JIT_DRIFT_SCHEDULE": "0 0 3 * * *",
        "GRAPH_BASE_URL": graph_base_url,
        "GRAPH_AUTH": "development",
        "JIT_TAP_ENCRYPTION_KEY": TAP_KEY,
        "JIT_GRAPH_RETRY_BUDGET": "PT10S",
        "JIT_AUDIT_CHECKPOINT_SCHEDULE": "0 */1 * * * *",
        # Machines with the function key may request and administer (never approve, never take a credential).
        "JIT_SERVICE_ROLES": "Jit.Requester,Jit.Admin",
    }
    env.update(overrides)
    return env


@pytest.fixture
def graph() -> Iterator[GraphSimulator]:
    """A Graph simulator of the test's own, with Contoso (two groups) and Fabrikam."""
    with GraphSimulator() as simulator:
        contoso = simulator.add_tenant(TENANT_GUID, initial_domain=TENANT, display_name="Contoso")
        contoso.add_group("Helpdesk", GROUP_HELPDESK)
        contoso.add_group("Security", GROUP_SECURITY)
        simulator.add_tenant(initial_domain=OTHER_TENANT, display_name="Fabrikam")
        yield simulator


@pytest.fixture
def make_stack(azurite: AzuriteEndpoints, graph: GraphSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    hosts: list[LocalFunctionHost] = []

    def make(*, onboard: tuple[str, ...] = (TENANT, OTHER_TENANT), **overrides: str) -> Stack:
        env = stack_env(azurite, graph.base_url, **overrides)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        clock = FakeClock()
        host, services, queues = start_product(env, clock)
        hosts.append(host)
        stack = Stack(host, services, clock, env, queues, graph, graph.tenant(TENANT_GUID))
        for reference in onboard:
            stack.onboard(reference)
        return stack

    yield make
    for host in hosts:
        host.close()
    bootstrap.reset()


@pytest.fixture
def stack(make_stack: Any) -> Stack:
    result: Stack = make_stack()
    return result


def valid_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": TENANT,
        "user": {"type": "new", "displayName": "JIT Admin for ticket 4711"},
        "duration": "PT2H",
        "roles": ["Exchange Administrator"],
        "groups": [],
        "reason": "Mailbox migration for ticket 4711",
        "ticketId": "4711",
    }
    body.update(overrides)
    return body


def audit_entries(stack: Stack, tenant: str = TENANT_GUID, grant_id: str | None = None) -> list[Any]:
    """The tenant's audit entries, oldest first (of one grant, when named)."""
    read = stack.services.audit.read(tenant, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    entries = [e.entry for e in read.entries]
    return [e for e in entries if grant_id is None or e.grant_id == grant_id]


def caller_id(name: str) -> str:
    """The object id `principal(name)` signs in with."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
