"""The request pipeline shared by HTTP requests and the requests inside $batch.

Order: route -> count -> latency/drop faults -> authenticate (signature, lifetime, audience, tenant) ->
throttling/5xx faults -> contract (path, method, query, body) -> permissions -> handler. Network-level faults
come before authentication (a dropped connection never reaches Graph's auth); throttling comes after it, as in
Graph. Every authorized call is recorded in the served log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from .authz import AuthContext, authorize
from .contract import contract
from .counters import Counters
from .errors import MSG_TOKEN_INVALID, GraphError, error_body, unauthorized
from .faults import FaultDecision, Faults
from .handlers import register_all
from .messages import DROP, Drop, SimRequest, SimResponse
from .routing import Router
from .served import ServedLog
from .state import Tenant
from .tokens import TokenIssuer
from .validation import check_request, not_modelled

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


def _json_object(req: SimRequest) -> Mapping[str, Any] | None:
    try:
        data = json.loads(req.body) if req.body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, Mapping) else None


class Dispatcher:
    def __init__(
        self,
        lock: threading.RLock,
        tenants: dict[str, Tenant],
        faults: Faults,
        counters: Counters,
        issuer: TokenIssuer,
        served: ServedLog,
    ) -> None:
        self.lock = lock
        self.tenants = tenants
        self.faults = faults
        self.counters = counters
        self.issuer = issuer
        self.served = served
        self.router = Router()
        register_all(self.router)
        self.batch_runner: Callable[[Dispatcher, SimRequest, AuthContext], SimResponse] | None = None

    def authenticate(self, req: SimRequest) -> AuthContext:
        claims = self.issuer.verify(req.header("authorization"))
        with self.lock:
            tenant = self.tenants.get(claims.tenant_id)
        if tenant is None:
            raise unauthorized(MSG_TOKEN_INVALID)
        return AuthContext(tenant, claims)

    def dispatch(self, req: SimRequest, auth: AuthContext | None = None) -> SimResponse | Drop:
        is_batch = req.path.strip("/").lower() == "$batch"
        resolution = None if is_batch else self.router.resolve(req.method, req.path)
        template = BATCH_TEMPLATE if resolution is None else resolution.template
        self.counters.increment(f"{req.method} {template}", inner=req.inner)
        decision = self.faults.evaluate(req.method, template, inner=req.inner)
        if decision.delay_s > 0:
            time.sleep(decision.delay_s)
        if decision.action == "drop":
            return DROP
        try:
            if auth is None:
                auth = self.authenticate(req)
            req.auth = AuthContext(auth.tenant, auth.claims)
            if decision.action is not None:
                raise fault_error(decision)
            if is_batch:
                if req.inner or self.batch_runner is None or req.method.upper() != "POST":
                    raise GraphError(400, "BadRequest", "Invalid batch payload format.")
                response = self.batch_runner(self, req, req.auth)
            else:
                assert resolution is not None
                response = self._serve(req, req.auth, resolution.template, resolution.handler, resolution.params)
        except GraphError as err:
            response = error_response(err, req)
        except Exception:  # noqa: BLE001 - a simulator bug must still look like a Graph 500
            traceback.print_exc(file=sys.stderr)
            response = error_response(GraphError(500, "generalException", "An internal server error occurred."), req)
        response.headers.setdefault("request-id", req.request_id)
        response.headers.setdefault("client-request-id", req.client_request_id)
        return response

    def _serve(
        self,
        req: SimRequest,
        auth: AuthContext,
        template: str,
        handler: Callable[[Tenant, SimRequest, dict[str, str]], SimResponse] | None,
        params: dict[str, str],
    ) -> SimResponse:
        graph = contract()
        resolved = check_request(req, graph)
        req.resolved = resolved
        body = _json_object(req)
        properties = tuple(sorted(k for k in body or {} if not k.startswith("@")))
        with self.lock:
            try:
                permission = authorize(graph.permissions, req.method, resolved, body, auth.roles)
            except GraphError as err:
                if err.status == 403:
                    self.served.deny(req.method, template, "missing permission")
                raise
            auth.granted = [permission]
            if handler is None:
                raise not_modelled(f"{req.method} {resolved.permission_path} has no handler")
            try:
                return handler(auth.tenant, req, params)
            except GraphError as err:
                if err.status == 403:
                    self.served.deny(req.method, template, "handler check (role-assignable group / sensitive action)")
                raise
            finally:
                self.served.record(
                    req.method,
                    template,
                    list(auth.granted),
                    permission_path=resolved.permission_path,
                    properties=properties,
                )
