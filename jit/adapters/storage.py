"""Clients for Azure Tables and Queues, from a connection string or an identity-based connection."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import requests
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from jit.settings import StorageSettings

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _transport() -> RequestsTransport:
    """One HTTP session for every storage client of the process. Without proxy settings in the environment it does
    not look for them on every request: `requests` otherwise walks the whole environment per call (a sixth of the
    CPU a grant cost, measured with yappi)."""
    session = requests.Session()
    session.trust_env = any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES)
    return RequestsTransport(session=session, session_owner=False)


class StorageAccount:
    """Builds table and queue clients once per process; the Azure SDK clients are thread-safe and reuse connections."""

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        self._credential: Any = None
        self._transport = _transport()
        if settings.connection_string:
            self.tables = TableServiceClient.from_connection_string(settings.connection_string, transport=self._transport)
            self.queues = QueueServiceClient.from_connection_string(settings.connection_string, transport=self._transport)
        else:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
            assert settings.table_service_uri and settings.queue_service_uri
            self.tables = TableServiceClient(
                endpoint=settings.table_service_uri, credential=self._credential, transport=self._transport
            )
            self.queues = QueueServiceClient(
                account_url=settings.queue_service_uri, credential=self._credential, transport=self._transport
            )

    def container(self, name: str) -> Any:
        """A blob container client (the audit checkpoints); created on first use by its user."""
        from azure.storage.blob import BlobServiceClient

        if self._settings.connection_string:
            service = BlobServiceClient.from_connection_string(self._settings.connection_string, transport=self._transport)
        else:
            assert self._settings.blob_service_uri, "AzureWebJobsStorage__blobServiceUri (or __accountName) is needed"
            service = BlobServiceClient(
                account_url=self._settings.blob_service_uri, credential=self._credential, transport=self._transport
            )
        return service.get_container_client(name)

    def table(self, name: str) -> TableClient:
        """The table, created if it does not exist yet (one call per table per process)."""
        return self.tables.create_table_if_not_exists(name)

    def queue(self, name: str) -> QueueClient:
        """The queue, created if missing. Messages are base64 text, as the Functions queue trigger expects by
        default (host.json: extensions.queues.messageEncoding = base64)."""
        client = self.queues.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client
