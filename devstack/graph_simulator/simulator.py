"""GraphSimulator: the public, in-process face of the simulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from . import control
from .auth import make_dev_token
from .batch import run_batch
from .counters import Counters
from .dispatcher import Dispatcher
from .faults import Faults
from .messages import Drop, SimRequest, SimResponse
from .server import SimulatorHTTPServer
from .state import TapPolicy, Tenant, is_guid


class GraphSimulator:
    """A loopback Microsoft Graph v1.0 simulator.

    >>> with GraphSimulator() as sim:
    ...     tenant = sim.add_tenant()
    ...     # point msgraph-sdk / httpx at sim.base_url with make_dev_token(tenant.id)
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
        self._lag = float(replication_lag_seconds)
        self._verbose = verbose
        self._dispatcher = Dispatcher(self.lock, self.tenants, self.faults, self.counters)
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
            verbose=self._verbose,
        )
        self._server = server
        server.base_url = self.base_url
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="graph-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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

    # -- tenants --------------------------------------------------------------

    def add_tenant(
        self,
        tenant_id: str | None = None,
        initial_domain: str = "contoso.onmicrosoft.com",
        display_name: str = "Contoso",
        extra_verified_domains: Iterable[str] = (),
        tap_policy: TapPolicy | None = None,
    ) -> Tenant:
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
            )
            self.tenants[tid] = tenant
        return tenant

    def tenant(self, tenant_id: str) -> Tenant:
        with self.lock:
            return self.tenants[tenant_id.lower()]

    def remove_tenant(self, tenant_id: str) -> None:
        with self.lock:
            self.tenants.pop(tenant_id.lower(), None)

    def token_for(self, tenant_id: str, lifetime_s: int = 3600) -> str:
        return make_dev_token(tenant_id, lifetime_s)

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
        }

    # -- server entry points --------------------------------------------------

    def _graph_entry(self, request: SimRequest) -> SimResponse | Drop:
        return self._dispatcher.dispatch(request)

    def _control_entry(self, method: str, path: str, query: str, body: bytes) -> SimResponse:
        return control.handle(self, method, path, query, body)
