"""The request pipeline shared by HTTP requests and the requests inside $batch.

Order: route -> count -> latency/drop faults -> authenticate -> throttling/5xx
faults -> handler. Network-level faults come before authentication (a dropped
connection never reaches Graph's auth); throttling comes after it, as in Graph.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable

from .auth import tenant_from_authorization
from .counters import Counters
from .errors import MSG_TOKEN_INVALID, GraphError, error_body, unauthorized
from .faults import FaultDecision, Faults
from .handlers import register_all
from .messages import DROP, Drop, SimRequest, SimResponse
from .routing import Router
from .state import Tenant

BATCH_TEMPLATE = "/$batch"


def fault_error(decision: FaultDecision) -> GraphError:
    headers: dict[str, str] = {}
    if decision.retry_after is not None:
        headers["Retry-After"] = str(decision.retry_after)
    if decision.action == "throttle":
        return GraphError(429, "TooManyRequests", "Too many requests. Please try again later.", headers=headers)
    if decision.action == "unavailable":
        return GraphError(
            503,
            "serviceNotAvailable",
            "The service is not available. Try the request again after a delay.",
            headers=headers,
        )
    return GraphError(
        504,
        "gatewayTimeout",
        "The gateway did not receive a timely response from the upstream server.",
    )


def error_response(err: GraphError, req: SimRequest) -> SimResponse:
    body = error_body(err.code, err.message, req.request_id, req.client_request_id, err.details)
    return SimResponse(err.status, body, dict(err.headers))


class Dispatcher:
    def __init__(
        self,
        lock: threading.RLock,
        tenants: dict[str, Tenant],
        faults: Faults,
        counters: Counters,
    ) -> None:
        self.lock = lock
        self.tenants = tenants
        self.faults = faults
        self.counters = counters
        self.router = Router()
        register_all(self.router)
        # Placeholder: the dispatcher runs $batch itself (outside the state lock).
        self.router.add("POST", BATCH_TEMPLATE, _never_called)
        self.batch_runner: Callable[[Dispatcher, SimRequest, Tenant], SimResponse] | None = None

    def authenticate(self, req: SimRequest) -> Tenant:
        tenant_id = tenant_from_authorization(req.header("authorization"))
        with self.lock:
            tenant = self.tenants.get(tenant_id)
            if tenant is None:
                # Entra issues a token for a domain-named authority (contoso.onmicrosoft.com) with the tenant's
                # GUID in `tid`. Development tokens are minted without asking Entra, so they may carry the domain:
                # resolve it here as Entra would have.
                tenant = next((t for t in self.tenants.values() if t.verified_domain(tenant_id)), None)
        if tenant is None:
            raise unauthorized(MSG_TOKEN_INVALID)
        return tenant

    def dispatch(self, req: SimRequest, tenant: Tenant | None = None) -> SimResponse | Drop:
        resolution = self.router.resolve(req.method, req.path)
        self.counters.increment(f"{req.method} {resolution.template}", inner=req.inner)
        decision = self.faults.evaluate(req.method, resolution.template, inner=req.inner)
        if decision.delay_s > 0:
            time.sleep(decision.delay_s)
        if decision.action == "drop":
            return DROP
        try:
            if tenant is None:
                tenant = self.authenticate(req)
            if decision.action is not None:
                raise fault_error(decision)
            if resolution.error is not None:
                raise resolution.error
            if resolution.template == BATCH_TEMPLATE:
                if req.inner or self.batch_runner is None:
                    raise GraphError(400, "BadRequest", "Nested batch requests are not supported.")
                response = self.batch_runner(self, req, tenant)
            else:
                assert resolution.handler is not None
                with self.lock:
                    response = resolution.handler(tenant, req, resolution.params)
        except GraphError as err:
            response = error_response(err, req)
        except Exception:  # noqa: BLE001 - a simulator bug must still look like a Graph 500
            traceback.print_exc(file=sys.stderr)
            response = error_response(GraphError(500, "generalException", "An internal server error occurred."), req)
        response.headers.setdefault("request-id", req.request_id)
        response.headers.setdefault("client-request-id", req.client_request_id)
        return response


def _never_called(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    raise AssertionError("$batch is dispatched by Dispatcher.dispatch")
