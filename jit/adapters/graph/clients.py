"""One Graph gateway per tenant, sharing one HTTP connection pool, pointed at the configured Graph."""

from __future__ import annotations

import threading
from typing import Any

from jit.adapters.graph.gateway import GraphGateway
from jit.settings import GraphSettings


class GraphGateways:
    """Builds each tenant's gateway on first use and keeps it: tokens and connections are reused across calls."""

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._gateways: dict[str, GraphGateway] = {}
        self._http: Any = None

    def for_tenant(self, tenant: str) -> GraphGateway:
        with self._lock:
            if tenant not in self._gateways:
                self._gateways[tenant] = GraphGateway(self._adapter(tenant), self.settings.base_url)
            return self._gateways[tenant]

    def _adapter(self, tenant: str) -> Any:
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph_core import BaseGraphRequestAdapter, GraphClientFactory

        from jit.adapters.graph.credentials import credential_for

        if self._http is None:
            # One retry layer, chosen on purpose: the saga's RetryPolicy (which honours Retry-After, per call and per
            # $batch item), then the queue's redelivery. The SDK's own retry middleware is switched off.
            no_retry = RetryHandlerOption(max_retries=0, should_retry=False)
            self._http = GraphClientFactory.create_with_default_middleware(
                client=httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), http2=False),
                options={RetryHandlerOption.get_key(): no_retry},
            )
        provider = AzureIdentityAuthenticationProvider(
            credential_for(tenant, self.settings), scopes=[self.settings.scope], allowed_hosts=[self.settings.host]
        )
        adapter = BaseGraphRequestAdapter(provider, http_client=self._http)
        adapter.base_url = self.settings.base_url
        return adapter
