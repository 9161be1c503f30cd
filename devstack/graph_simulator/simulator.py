"""GraphSimulator: the public, in-process face of the simulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from devstack.serving import serve_in_thread, stop_serving

from . import control, sts
from .apps import DEFAULT_APP_DIRECTORY_ROLES, DEV_APP_ID, DEV_APP_NAME
from .batch import run_batch
from .clock import SimClock
from .counters import Counters
from .dispatcher import Dispatcher
from .faults import Faults
from .messages import Drop, SimRequest, SimResponse
from .served import Authorized, Denied, Served, ServedLog
from .server import SimulatorHTTPServer
from .state import TapPolicy, Tenant, is_guid
from .tokens import TokenIssuer


class GraphSimulator:
    """A loopback Microsoft Graph v1.0 simulator.

    >>> with GraphSimulator() as sim:
    ...     tenant = sim.add_tenant()
    ...     # point msgraph-sdk / httpx at sim.base_url with sim.token_for(tenant.id),
    ...     # or get a token as the product does: POST sim.token_url(tenant.id) (client credentials)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        replication_lag_seconds: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.faults = Faults(seed)
        self.counters = Counters()
        self.clock = SimClock()
        self.issuer = TokenIssuer()
        self.served_log = ServedLog()
        # Applications Entra knows (client id -> name); tenants consent to them (Tenant.consent).
        self.apps: dict[str, str] = {DEV_APP_ID: DEV_APP_NAME}
        self._lag = float(replication_lag_seconds)
        self._verbose = verbose
        self._dispatcher = Dispatcher(self.lock, self.tenants, self.faults, self.counters, self.issuer, self.served_log)
        self._dispatcher.batch_runner = run_batch
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> GraphSimulator:
        if self._server is not None:
            return self
        server = SimulatorHTTPServer(
            (self.host, self._requested_port),
            self._graph_entry,
            self._control_entry,
            self._token_entry,
            verbose=self._verbose,
        )
        self._server = server
        server.base_url = self.base_url
        self._thread = serve_in_thread(server, "graph-simulator")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_serving(server, thread)

    def __enter__(self) -> GraphSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1.0"

    @property
    def control_url(self) -> str:
        return f"{self.origin}{control.PREFIX}"

    def token_url(self, tenant: str) -> str:
        """Entra's v2 token endpoint for `tenant` (GUID or verified domain), served by the simulator."""
        return f"{self.origin}/{tenant}/oauth2/v2.0/token"

    # -- tenants --------------------------------------------------------------

    def add_tenant(
        self,
        tenant_id: str | None = None,
        initial_domain: str = "contoso.onmicrosoft.com",
        display_name: str = "Contoso",
        extra_verified_domains: Iterable[str] = (),
        tap_policy: TapPolicy | None = None,
        *,
        consent: bool = True,
        app_directory_roles: Iterable[str] = DEFAULT_APP_DIRECTORY_ROLES,
    ) -> Tenant:
        """A tenant. `consent`: the development app is consented (default permissions, `app_directory_roles`)."""
        tid = (tenant_id or str(uuid.uuid4())).lower()
        if not is_guid(tid):
            raise ValueError(f"tenant id must be a GUID, got {tid!r}")
        with self.lock:
            if tid in self.tenants:
                raise ValueError(f"tenant {tid} already exists")
            tenant = Tenant(
                tid,
                initial_domain,
                display_name,
                extra_verified_domains,
                tap_policy,
                self.lock,
                lambda: self._lag,
                self.clock,
            )
            self.tenants[tid] = tenant
            if consent:
                tenant.consent(DEV_APP_ID, directory_roles=app_directory_roles)
        return tenant

    def tenant(self, tenant_id: str) -> Tenant:
        with self.lock:
            return self.tenants[tenant_id.lower()]

    def remove_tenant(self, tenant_id: str) -> None:
        with self.lock:
            self.tenants.pop(tenant_id.lower(), None)

    def register_app(self, client_id: str, display_name: str) -> None:
        """Make an application known to the simulated Entra (tenants still have to consent to it)."""
        with self.lock:
            self.apps[client_id.lower()] = display_name

    def token_for(
        self,
        tenant_id: str,
        lifetime_s: int = 3600,
        *,
        roles: Iterable[str] | None = None,
        app_id: str = DEV_APP_ID,
    ) -> str:
        """A properly issued access token (test helper). `roles` overrides the tenant's consented permissions."""
        with self.lock:
            tenant = self.tenants.get(tenant_id.lower())
            sp = tenant.service_principals.get(app_id.lower()) if tenant else None
            granted = set(roles) if roles is not None else (set(sp.permissions) if sp else set())
            sp_id = sp.id if sp else str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id.lower()}:{app_id.lower()}"))
            wids = tenant.roles_of(sp.id, include_groups=False) if tenant and sp else set()
        return self.issuer.issue(tenant_id.lower(), app_id.lower(), sp_id, granted, lifetime_s=lifetime_s, directory_roles=wids)

    # -- what was served ------------------------------------------------------

    @property
    def served(self) -> frozenset[Served]:
        """(method, route template, permission that authorized it) for every authorized call, batch items included."""
        return self.served_log.served

    @property
    def authorized(self) -> frozenset[Authorized]:
        """Every authorized call with what authorizing it took (see served.Authorized)."""
        return self.served_log.authorized

    @property
    def denied(self) -> frozenset[Denied]:
        return self.served_log.denied

    def reset_served(self) -> None:
        self.served_log.reset()

    # -- the directory clock ---------------------------------------------------

    @property
    def clock_offset(self) -> float:
        return self.clock.offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self.clock.offset = seconds

    def advance(self, seconds: float) -> None:
        """Move the directory clock forward: schedules (PIM) and TAP lifetimes end on it."""
        self.clock.advance(seconds)

    # -- knobs ----------------------------------------------------------------

    @property
    def replication_lag_seconds(self) -> float:
        return self._lag

    @replication_lag_seconds.setter
    def replication_lag_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("replication lag cannot be negative")
        self._lag = float(value)

    def reset_faults(self) -> None:
        """Remove all fault rules and restart the fault RNG from its seed."""
        self.faults.reset()

    def reset_counters(self) -> None:
        self.counters.reset()

    def info(self) -> dict[str, Any]:
        with self.lock:
            tenants = sorted(self.tenants)
        return {
            "baseUrl": self.base_url if self._server else None,
            "controlUrl": self.control_url if self._server else None,
            "tenants": tenants,
            "replicationLagSeconds": self._lag,
            "clockOffsetSeconds": self.clock.offset,
            "apps": dict(self.apps),
        }

    # -- server entry points --------------------------------------------------

    def _graph_entry(self, request: SimRequest) -> SimResponse | Drop:
        return self._dispatcher.dispatch(request)

    def _control_entry(self, method: str, path: str, query: str, body: bytes) -> SimResponse:
        return control.handle(self, method, path, query, body)

    def _token_entry(self, method: str, tenant: str, body: bytes) -> SimResponse:
        return sts.handle_token(self, method, tenant, body)
