"""One GraphServiceClient per tenant, sharing one HTTP connection pool, pointed at the configured Graph."""

from __future__ import annotations

import threading

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from jit.adapters.graph.credentials import credential_for
from jit.adapters.graph.directory import GraphDirectory
from jit.settings import GraphSettings


class GraphDirectories:
    """Builds each tenant's client on first use and keeps it: tokens and connections are reused across calls."""

    def __init__(self, settings: GraphSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._directories: dict[str, GraphDirectory] = {}
        self._http: httpx.AsyncClient | None = None

    def for_tenant(self, tenant: str) -> GraphDirectory:
        with self._lock:
            if tenant not in self._directories:
                self._directories[tenant] = GraphDirectory(self._client(tenant), self._settings.base_url)
            return self._directories[tenant]

    def _client(self, tenant: str) -> GraphServiceClient:
        if self._http is None:
            # The SDK's own middleware retries 429/503/504, honouring Retry-After; a few tries, then the saga decides.
            retry = RetryHandlerOption(delay=1.0, max_retries=3, should_retry=True)
            self._http = GraphClientFactory.create_with_default_middleware(
                client=httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), http2=False),
                options={RetryHandlerOption.get_key(): retry},
            )
        provider = AzureIdentityAuthenticationProvider(
            credential_for(tenant, self._settings), scopes=[self._settings.scope], allowed_hosts=[self._settings.host]
        )
        adapter = GraphRequestAdapter(provider, client=self._http)
        adapter.base_url = self._settings.base_url
        return GraphServiceClient(request_adapter=adapter)
