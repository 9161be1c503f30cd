"""Composition: build the real adapters once per process, lazily, from the app settings.

Nothing happens at import time (an import error takes every function down); the first invocation builds the
object graph and later ones reuse it and its connections.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from jit.adapters.audit_store import TableAuditLog
from jit.adapters.drift_store import TableDriftLog
from jit.adapters.grant_store import TableGrantRepository
from jit.adapters.graph.clients import GraphDirectories
from jit.adapters.idempotency_store import TableIdempotencyStore
from jit.adapters.policy_store import TablePolicyStore
from jit.adapters.schedule_store import TableScheduleIndex
from jit.adapters.storage import StorageAccount
from jit.adapters.tap_vault import TableTapVault
from jit.adapters.template_store import TableTemplateStore
from jit.adapters.work_queue import StorageWorkQueue
from jit.domain.clock import Clock, SystemClock
from jit.services.audited_directory import AuditedDirectories
from jit.services.directory import DirectoryProvider
from jit.services.drift import DriftCheck
from jit.services.expire import ExpirationSaga
from jit.services.intake import Intake
from jit.services.lifecycle import Lifecycle
from jit.services.policies import Policies
from jit.services.provision import ProvisioningSaga
from jit.services.retrying import RetryPolicy
from jit.services.roles import RoleCatalog
from jit.settings import ConfigurationError, Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    storage: StorageAccount
    grants: TableGrantRepository
    audit: TableAuditLog
    intake: Intake
    lifecycle: Lifecycle
    directories: DirectoryProvider
    roles: RoleCatalog
    vault: TableTapVault
    clock: Clock
    drift: DriftCheck
    drift_log: TableDriftLog
    policies: Policies
    templates: TableTemplateStore


def build(settings: Settings, clock: Clock | None = None, directory_provider: DirectoryProvider | None = None) -> Services:
    clock = clock or SystemClock()
    storage = StorageAccount(settings.storage)
    grants = TableGrantRepository(storage.table(settings.grants_table), storage.table(settings.grant_index_table))
    schedule = TableScheduleIndex(storage.table(settings.schedule_table))
    audit = TableAuditLog(storage.table(settings.audit_table))
    queue = StorageWorkQueue(storage.queue(settings.work_queue))
    policies = Policies(TablePolicyStore(storage.table(settings.policies_table)))
    intake = Intake(
        grants=grants,
        schedule=schedule,
        queue=queue,
        audit=audit,
        idempotency=TableIdempotencyStore(storage.table(settings.idempotency_table)),
        clock=clock,
        idempotency_ttl=settings.idempotency_ttl,
        policies=policies,
        approval_timeout=settings.approval_timeout,
    )
    if settings.tap_keys is None:
        raise ConfigurationError("JIT_TAP_ENCRYPTION_KEY is not set (32 random bytes, base64): TAPs cannot be kept safely")
    vault = TableTapVault(storage.table(settings.secrets_table), settings.tap_keys)
    directories = AuditedDirectories(directory_provider or GraphDirectories(settings.graph), audit, clock)
    roles = RoleCatalog()
    saga = ProvisioningSaga(
        grants=grants,
        directories=directories,
        vault=vault,
        schedule=schedule,
        queue=queue,
        audit=audit,
        clock=clock,
        retry=RetryPolicy(budget_seconds=settings.graph_retry_budget.total_seconds()),
        roles=roles,
        deadline=settings.provisioning_deadline,
        policies=policies,
    )
    expirer = ExpirationSaga(
        grants=grants,
        directories=directories,
        vault=vault,
        audit=audit,
        clock=clock,
        retry=RetryPolicy(budget_seconds=settings.graph_retry_budget.total_seconds()),
        alert_after=settings.expiry_alert_after,
        permanent_delete=settings.permanent_delete,
    )
    lifecycle = Lifecycle(
        grants=grants, schedule=schedule, queue=queue, audit=audit, clock=clock, provisioner=saga, expirer=expirer
    )
    drift_log = TableDriftLog(storage.table(settings.drift_table))
    drift = DriftCheck(
        grants=grants,
        findings=drift_log,
        directories=directories,
        clock=clock,
        lookback=settings.drift_lookback,
        retry=RetryPolicy(budget_seconds=settings.graph_retry_budget.total_seconds()),
    )
    return Services(
        settings,
        storage,
        grants,
        audit,
        intake,
        lifecycle,
        directories,
        roles,
        vault,
        clock,
        drift,
        drift_log,
        policies,
        TableTemplateStore(storage.table(settings.templates_table)),
    )


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's services, built on first use from the environment's app settings."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build(Settings.from_env(os.environ))
    return _services


def reset(replacement: Services | None = None) -> None:
    """Forget the built services (tests and the local runner change settings between runs)."""
    global _services
    with _lock:
        _services = replacement
