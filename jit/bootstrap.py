"""Composition: build the real adapters once per process, lazily, from the app settings.

Nothing happens at import time (an import error takes every function down); the first invocation builds the
object graph and later ones reuse it and its connections.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from jit.adapters.audit_store import TableAuditLog
from jit.adapters.delivery_store import TableDeliveries
from jit.adapters.drift_store import TableDriftLog
from jit.adapters.grant_store import TableGrantRepository
from jit.adapters.graph.clients import GraphDirectories
from jit.adapters.idempotency_store import TableIdempotencyStore
from jit.adapters.notify.channels import notification_channels
from jit.adapters.policy_store import TablePolicyStore
from jit.adapters.schedule_store import TableScheduleIndex
from jit.adapters.storage import StorageAccount
from jit.adapters.tap_vault import TableTapVault
from jit.adapters.template_store import TableTemplateStore
from jit.adapters.work_queue import StorageJsonQueue, StorageWorkQueue
from jit.domain.clock import Clock, SystemClock
from jit.domain.notification import Event
from jit.services.audited_directory import AuditedDirectories
from jit.services.directory import DirectoryProvider
from jit.services.drift import DriftCheck
from jit.services.expire import ExpirationSaga
from jit.services.intake import Intake
from jit.services.lifecycle import Lifecycle
from jit.services.notify import NotificationDispatcher, NotifyDefaults, NotifyingAuditLog
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
    notifications: NotificationDispatcher
    deliveries: TableDeliveries


def build(settings: Settings, clock: Clock | None = None, directory_provider: DirectoryProvider | None = None) -> Services:
    clock = clock or SystemClock()
    storage = StorageAccount(settings.storage)
    grants = TableGrantRepository(storage.table(settings.grants_table), storage.table(settings.grant_index_table))
    schedule = TableScheduleIndex(storage.table(settings.schedule_table))
    audit_store = TableAuditLog(storage.table(settings.audit_table))
    notify_queue = StorageJsonQueue(storage.queue(settings.notify.queue))
    # Every grant transition is audited, and the audit announces the ones people should hear about.
    audit = NotifyingAuditLog(audit_store, notify_queue)
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
    retry = RetryPolicy(budget_seconds=settings.graph_retry_budget.total_seconds())
    graph = directory_provider or GraphDirectories(settings.graph)
    directories = AuditedDirectories(graph, audit, clock)
    roles = RoleCatalog()
    saga = ProvisioningSaga(
        grants=grants,
        directories=directories,
        vault=vault,
        schedule=schedule,
        queue=queue,
        audit=audit,
        clock=clock,
        retry=retry,
        roles=roles,
        deadline=settings.provisioning_deadline,
        policies=policies,
        expiring_lead=settings.notify.expiring_lead,
    )
    expirer = ExpirationSaga(
        grants=grants,
        directories=directories,
        vault=vault,
        audit=audit,
        clock=clock,
        retry=retry,
        alert_after=settings.expiry_alert_after,
        permanent_delete=settings.permanent_delete,
    )
    lifecycle = Lifecycle(
        grants=grants,
        schedule=schedule,
        queue=queue,
        audit=audit,
        clock=clock,
        provisioner=saga,
        expirer=expirer,
        notify_queue=notify_queue,
    )
    deliveries = TableDeliveries(storage.table(settings.deliveries_table), storage.table(settings.dead_letters_table))
    notifications = NotificationDispatcher(
        grants=grants,
        channels=notification_channels(settings, graph),
        deliveries=deliveries,
        queue=notify_queue,
        audit=audit_store,
        clock=clock,
        defaults=NotifyDefaults(
            emails=settings.notify.emails,
            teams_urls=settings.notify.teams_urls,
            webhook_urls=settings.notify.webhook_urls,
            events=frozenset(Event(e) for e in settings.notify.events) or frozenset(Event),
            ticket_notes=settings.notify.psa.get("JIT_PSA_KIND", "none").lower() != "none",
            expiring_lead=settings.notify.expiring_lead,
            public_base_url=settings.notify.public_base_url,
            retry_base=settings.notify.retry_base,
        ),
    )
    drift_log = TableDriftLog(storage.table(settings.drift_table))
    drift = DriftCheck(
        notify_queue=notify_queue,
        grants=grants,
        findings=drift_log,
        directories=directories,
        clock=clock,
        lookback=settings.drift_lookback,
        retry=retry,
    )
    return Services(
        settings,
        storage,
        grants,
        audit_store,
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
        notifications,
        deliveries,
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
