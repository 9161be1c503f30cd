"""The directory under test: a real Entra tenant, or a Graph simulator tenant set up the way docs/live-testing.md
tells an administrator to set up theirs. Either way the suite sees it only through Graph's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from devstack.graph_simulator import GraphSimulator
from devstack.graph_simulator.apps import DEFAULT_APP_DIRECTORY_ROLES, DEFAULT_APP_PERMISSIONS, DEV_APP_ID

from .config import LiveTenant, Mode, SuiteOptions, live_tenant, new_run_id, suite_options
from .graph import GRAPH_BASE_URL, CertificateTokens, DirectoryApi, GraphClient, SimulatorTokens

# The suite's own needs beyond the product's permissions (docs/permissions.md): it creates and deletes the
# security group its grants use (group-post-groups.md, group-delete.md). Cleanup's purge of soft-deleted users
# (User.DeleteRestore.All) and creating the "existing" user (User.ReadWrite.All) are in the product's set already.
SUITE_PERMISSIONS = ("Group.ReadWrite.All",)
SIMULATED_TENANT_ID = "5eb1a7e0-11fe-4c0d-9b1e-2a5e11fe0001"
SIMULATED_DOMAIN = "livesuite.onmicrosoft.com"


@dataclass(frozen=True)
class DirectoryUnderTest:
    mode: Mode
    tenant: str  # what requests and onboarding name: a GUID or a domain
    api: DirectoryApi  # the suite's own Graph calls (read-back, fixtures, out-of-band changes)
    product_env: dict[str, str]  # the product's GRAPH_* settings for this directory
    options: SuiteOptions
    run_id: str  # every object the suite creates has a display name starting with it
    settle_s: float  # how long a read waits for a change to replicate (Entra is eventually consistent)
    poll_s: float


@contextmanager
def simulated_directory(options: SuiteOptions, run_id: str) -> Iterator[DirectoryUnderTest]:
    """A simulator with one tenant whose admin consented the product's permissions plus the suite's, and assigned
    the app its documented Entra role (Privileged Authentication Administrator)."""
    with GraphSimulator() as simulator:
        tenant = simulator.add_tenant(SIMULATED_TENANT_ID, initial_domain=SIMULATED_DOMAIN, display_name="Live suite (simulated)")
        tenant.consent(DEV_APP_ID, [*DEFAULT_APP_PERMISSIONS, *SUITE_PERMISSIONS], directory_roles=DEFAULT_APP_DIRECTORY_ROLES)
        graph = GraphClient(simulator.base_url, SimulatorTokens(simulator.origin, SIMULATED_DOMAIN), attempts=2)
        try:
            yield DirectoryUnderTest(
                mode=Mode.SIMULATOR,
                tenant=SIMULATED_DOMAIN,
                api=DirectoryApi(graph),
                product_env={"GRAPH_BASE_URL": simulator.base_url, "GRAPH_AUTH": "development"},
                options=options,
                run_id=run_id,
                settle_s=0.0,
                poll_s=0.05,
            )
        finally:
            graph.close()


@contextmanager
def live_directory(tenant: LiveTenant, options: SuiteOptions, run_id: str) -> Iterator[DirectoryUnderTest]:
    """A real tenant through https://graph.microsoft.com, as the app registration holding the certificate."""
    graph = GraphClient(GRAPH_BASE_URL, CertificateTokens(tenant))
    try:
        yield DirectoryUnderTest(
            mode=Mode.LIVE,
            tenant=tenant.tenant,
            api=DirectoryApi(graph),
            product_env={
                "GRAPH_BASE_URL": GRAPH_BASE_URL,
                "GRAPH_AUTH": "client_certificate",
                "GRAPH_CLIENT_ID": tenant.client_id,
                "GRAPH_CLIENT_CERTIFICATE_PATH": str(tenant.certificate_path),
            },
            options=options,
            run_id=run_id,
            settle_s=180.0,
            poll_s=3.0,
        )
    finally:
        graph.close()


def open_directory(env: Mapping[str, str]) -> AbstractContextManager[DirectoryUnderTest]:
    """The directory the environment names (LiveSetupError when it names one badly), not yet opened."""
    tenant = live_tenant(env)
    options = suite_options(env)
    run_id = new_run_id()
    return live_directory(tenant, options, run_id) if tenant is not None else simulated_directory(options, run_id)
