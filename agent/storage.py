"""Azure Storage clients for the agent: the site's command queue and the results and heartbeat tables.

Production authenticates with Microsoft Entra ID, never a storage key: a certificate of an app registration
(CertificateCredential) or the Arc-enabled server's managed identity (ManagedIdentityCredential, which detects Arc's
local identity endpoint). A connection string is accepted for Azurite only (config.py refuses any other).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.identity import CertificateCredential, ManagedIdentityCredential
from azure.storage.queue import QueueClient

from agent import protocol
from agent.config import CREDENTIAL_CERTIFICATE, AgentConfig


@dataclass
class Clients:
    queue: QueueClient
    results: TableClient
    agents: TableClient

    def close(self) -> None:
        self.queue.close()
        self.results.close()
        self.agents.close()


def credential_for(config: AgentConfig) -> TokenCredential:
    storage = config.storage
    if storage.credential == CREDENTIAL_CERTIFICATE:
        return CertificateCredential(storage.tenant_id, storage.client_id, certificate_path=storage.certificate_file)
    if storage.managed_identity_client_id:
        return ManagedIdentityCredential(client_id=storage.managed_identity_client_id)
    return ManagedIdentityCredential()


def connect(config: AgentConfig) -> Clients:
    queue_name = protocol.queue_name(config.site)
    results_name = protocol.results_table(config.table_prefix)
    agents_name = protocol.agents_table(config.table_prefix)
    if config.storage.connection_string:
        connection_string = config.storage.connection_string
        queue = QueueClient.from_connection_string(connection_string, queue_name)
        tables = TableServiceClient.from_connection_string(connection_string)
        clients = Clients(queue, tables.get_table_client(results_name), tables.get_table_client(agents_name))
        # Against the emulator the agent creates what it uses; in Azure the deployment does (the agent's roles
        # cannot create queues).
        for create in (queue.create_queue, clients.results.create_table, clients.agents.create_table):
            with contextlib.suppress(ResourceExistsError):
                create()
        return clients
    credential = credential_for(config)
    storage = config.storage
    return Clients(
        queue=QueueClient(storage.queue_endpoint, queue_name, credential=credential),
        results=TableClient(storage.table_endpoint, results_name, credential=credential),
        agents=TableClient(storage.table_endpoint, agents_name, credential=credential),
    )
