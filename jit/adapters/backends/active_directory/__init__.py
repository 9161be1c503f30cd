"""On-premises Active Directory sites ("ad:<site>"), served by the site's agent (agent/, docs/onprem-agent.md).

Each (tenant, site) backend is built from the `JIT_AD_*` settings (settings.py), read from the process environment
when the provider first needs the site: it must be listed there, for this tenant, with its agent's key pinned;
otherwise (or when the settings are invalid) every call is refused with the reason, which the tenant's view shows.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from azure.core.exceptions import ResourceExistsError

from agent import protocol as p
from jit.adapters.backends import BackendKind
from jit.adapters.backends.active_directory.backend import ActiveDirectoryBackend
from jit.adapters.backends.active_directory.link import AgentLink
from jit.adapters.backends.active_directory.settings import AdSettings
from jit.domain.tenant import AD_PREFIX
from jit.settings import ConfigurationError


def _build(context: Any, tenant_id: str, directory: str) -> ActiveDirectoryBackend:
    site = directory.removeprefix(AD_PREFIX)
    try:
        settings = AdSettings.from_env(os.environ)
    except ConfigurationError as error:
        # Refused with the reason (grants fail saying it, the tenant view shows it) rather than crash each caller.
        return ActiveDirectoryBackend(tenant_id, site, None, refusal=str(error))
    configured = settings.sites.get(site)
    if configured is None:
        refusal = f"site {site!r} is not configured: an admin lists it in JIT_AD_SITES with its tenant and agent key"
        return ActiveDirectoryBackend(tenant_id, site, None, refusal=refusal)
    if configured.tenant_id != tenant_id.lower():
        return ActiveDirectoryBackend(tenant_id, site, None, refusal=f"site {site!r} serves another tenant (JIT_AD_SITES)")
    storage = context.storage
    prefix = context.settings.table_prefix
    # The agent's queue carries the protocol's own base64 text: no encoding policy on top.
    queue = storage.queues.get_queue_client(p.queue_name(site))
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    link = AgentLink(configured, settings, queue, storage.table(p.results_table(prefix)), storage.table(p.agents_table(prefix)))
    return ActiveDirectoryBackend(tenant_id, site, link, upn_suffix=configured.upn_suffix)


KIND = BackendKind(
    name="ad",
    serves=lambda directory: directory.startswith(AD_PREFIX) and len(directory) > len(AD_PREFIX),
    build=_build,
    description="membership of a site's allowed AD groups and a one-time password, through the site's agent",
)
