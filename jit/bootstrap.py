"""Composition: build the real adapters once per process, lazily, from the app settings.

Nothing happens at import time (an import error takes every function down, and a cold start pays for every module
imported): the first invocation builds the object graph, importing the adapters it needs, and later ones reuse it and
its connections.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jit.domain.clock import Clock, SystemClock

if TYPE_CHECKING:
    from jit.adapters.audit_reader import AuditTrail
    from jit.adapters.channel_store import TableChannelStore
    from jit.adapters.checkpoints import CheckpointLog
    from jit.adapters.delivery_store import TableDeliveries
    from jit.adapters.drift_store import TableDriftLog
    from jit.adapters.grant_store import TableGrantRepository
    from jit.adapters.storage import StorageAccount
    from jit.adapters.subject_audit import TableSubjectAudit
    from jit.adapters.template_store import TableTemplateStore
    from jit.adapters.tenant_store import TableTenantRegistry
    from jit.services.access_backend import BackendProvider
    from jit.services.credentials import CredentialHandOut
    from jit.services.drift import DriftCheck
    from jit.services.grant_writer import GrantWriter
    from jit.services.intake import Intake
    from jit.services.lifecycle import Lifecycle
    from jit.services.notify import NotificationDispatcher
    from jit.services.policies import Policies
    from jit.services.roles import RoleCatalog
    from jit.services.tenants import Onboarding
    from jit.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    storage: StorageAccount
    grants: TableGrantRepository
    writer: GrantWriter
    audit: AuditTrail
    subject_audit: TableSubjectAudit
    checkpoints: CheckpointLog
    intake: Intake
    lifecycle: Lifecycle
    backends: BackendProvider
    catalog: RoleCatalog
    clock: Clock
    drift: DriftCheck
    drift_log: TableDriftLog
    policies: Policies
    templates: TableTemplateStore
    notifications: NotificationDispatcher
    deliveries: TableDeliveries
    tenants: TableTenantRegistry
    onboarding: Onboarding
    credentials: CredentialHandOut
    channels: TableChannelStore


@dataclass(frozen=True)
class BackendContext:
    """What backends are built from."""

    settings: Settings
    graph: Any  # GraphGateways
    role_definitions: Any  # RoleDefinitionsCache
    storage: Any  # StorageAccount


def build(settings: Settings, clock: Clock | None = None, backends: BackendProvider | None = None) -> Services:
    from jit.adapters.audit_chain import AuditKeys
    from jit.adapters.audit_reader import AuditTrail
    from jit.adapters.audit_store import TableAuditLog
    from jit.adapters.backends import Backends
    from jit.adapters.backends.entra import RoleDefinitionsCache
    from jit.adapters.channel_store import TableChannelStore
    from jit.adapters.checkpoints import CheckpointLog
    from jit.adapters.delivery_store import TableDeliveries
    from jit.adapters.drift_store import TableDriftLog
    from jit.adapters.grant_store import TableGrantRepository
    from jit.adapters.graph.clients import GraphGateways
    from jit.adapters.idempotency_store import TableIdempotencyStore
    from jit.adapters.notify.channels import notification_channels
    from jit.adapters.policy_store import TablePolicyStore
    from jit.adapters.schedule_store import TableScheduleIndex
    from jit.adapters.sealing import Sealer
    from jit.adapters.storage import StorageAccount
    from jit.adapters.subject_audit import TableSubjectAudit
    from jit.adapters.template_store import TableTemplateStore
    from jit.adapters.tenant_migration import TenantMigration
    from jit.adapters.tenant_store import TableTenantRegistry
    from jit.adapters.work_queue import StorageJsonQueue, StorageWorkQueue
    from jit.domain.notification import Event
    from jit.services.audited_backend import AuditedBackends
    from jit.services.credentials import CredentialHandOut
    from jit.services.drift import DriftCheck
    from jit.services.expire import ExpirationSaga
    from jit.services.extend import ExtensionSaga
    from jit.services.grant_writer import GrantWriter
    from jit.services.intake import Intake
    from jit.services.lifecycle import Lifecycle
    from jit.services.notify import NotificationDispatcher, NotifyDefaults, TransitionAnnouncer
    from jit.services.notify import targets as notify_targets
    from jit.services.policies import Policies
    from jit.services.provision import ProvisioningSaga
    from jit.services.retrying import RetryPolicy
    from jit.services.roles import RoleCatalog
    from jit.services.tenants import Onboarding
    from jit.settings import ConfigurationError

    clock = clock or SystemClock()
    if settings.tap_keys is None:
        raise ConfigurationError("JIT_TAP_ENCRYPTION_KEY is not set (32 random bytes, base64): TAPs cannot be kept safely")
    if settings.audit_keys is None:
        raise ConfigurationError("JIT_AUDIT_KEY is not set (32 random bytes, base64): the audit trail cannot be signed")
    keys = AuditKeys(settings.audit_keys.current, settings.audit_keys.previous)
    storage = StorageAccount(settings.storage)
    grants_table = storage.table(settings.grants_table)
    grants = TableGrantRepository(grants_table, storage.table(settings.grant_index_table), keys)
    schedule = TableScheduleIndex(storage.table(settings.schedule_table))
    notify_queue = StorageJsonQueue(storage.queue(settings.notify.queue))
    queue = StorageWorkQueue(storage.queue(settings.work_queue))
    defaults = NotifyDefaults(
        emails=settings.notify.emails,
        teams_urls=settings.notify.teams_urls,
        webhook_urls=settings.notify.webhook_urls,
        events=frozenset(Event(e) for e in settings.notify.events) or frozenset(Event),
        ticket_notes=settings.notify.psa.get("JIT_PSA_KIND", "none").lower() != "none",
        expiring_lead=settings.notify.expiring_lead,
        public_base_url=settings.notify.public_base_url,
        retry_base=settings.notify.retry_base,
    )
    channels = TableChannelStore(grants_table, keys)
    writer = GrantWriter(grants, TransitionAnnouncer(notify_queue, defaults, channels))
    subject_audit = TableSubjectAudit(grants_table, keys)
    policies = Policies(TablePolicyStore(grants_table, keys, legacy=storage.table(settings.policies_table)))
    tenants = TableTenantRegistry(grants_table, storage.table(settings.tenants_table), keys)
    catalog = RoleCatalog(tenants)
    sealer = Sealer(settings.tap_keys)
    graph = GraphGateways(settings.graph)
    context = BackendContext(settings, graph, RoleDefinitionsCache(), storage)
    raw_backends = backends or Backends(context)
    audited = AuditedBackends(raw_backends, clock, subject_audit.append_many)
    retry = RetryPolicy(budget_seconds=settings.graph_retry_budget.total_seconds())
    intake = Intake(
        writer=writer,
        schedule=schedule,
        queue=queue,
        idempotency=TableIdempotencyStore(storage.table(settings.idempotency_table)),
        clock=clock,
        idempotency_ttl=settings.idempotency_ttl,
        policies=policies,
        tenants=tenants,
        catalog=catalog,
        approval_timeout=settings.approval_timeout,
    )
    provisioner = ProvisioningSaga(
        writer=writer,
        backends=audited,
        sealer=sealer,
        schedule=schedule,
        queue=queue,
        clock=clock,
        retry=retry,
        catalog=catalog,
        policies=policies,
        deadline=settings.provisioning_deadline,
        approval_timeout=settings.approval_timeout,
        expiring_lead=settings.notify.expiring_lead if Event.EXPIRING_SOON in defaults.events else None,
        hears=lambda grant, event: bool(notify_targets(grant, event, defaults, channels)),
    )
    expirer = ExpirationSaga(
        writer=writer,
        backends=audited,
        clock=clock,
        retry=retry,
        alert_after=settings.expiry_alert_after,
        permanent_delete=settings.permanent_delete,
    )
    migration = TenantMigration(storage, settings)
    onboarding = Onboarding(tenants, audited, queue, clock, catalog, migration)
    lifecycle = Lifecycle(
        writer=writer,
        schedule=schedule,
        queue=queue,
        clock=clock,
        policies=policies,
        catalog=catalog,
        limits=settings.limits,
        provisioner=provisioner,
        expirer=expirer,
        extender=ExtensionSaga(writer, audited, retry),
        onboarding=onboarding,
        notify_queue=notify_queue,
        approval_timeout=settings.approval_timeout,
    )
    deliveries = TableDeliveries(subject_audit, storage.table(settings.dead_letters_table))
    notifications = NotificationDispatcher(
        grants=grants,
        channels=notification_channels(settings, graph),
        deliveries=deliveries,
        queue=notify_queue,
        clock=clock,
        defaults=defaults,
        directory=channels,
    )
    drift_log = TableDriftLog(storage.table(settings.drift_table))
    drift = DriftCheck(
        grants=grants,
        findings=drift_log,
        backends=audited,
        clock=clock,
        lookback=settings.drift_lookback,
        retry=retry,
        notify_queue=notify_queue,
        audit=subject_audit,
        registry=tenants,
    )
    checkpoints = CheckpointLog(storage.container(settings.checkpoint_container), [grants_table], keys)
    legacy_audit = TableAuditLog(storage.table(settings.audit_table))
    return Services(
        settings=settings,
        storage=storage,
        grants=grants,
        writer=writer,
        audit=AuditTrail(grants_table, checkpoints, keys, legacy_audit),
        subject_audit=subject_audit,
        checkpoints=checkpoints,
        intake=intake,
        lifecycle=lifecycle,
        backends=audited,
        catalog=catalog,
        clock=clock,
        drift=drift,
        drift_log=drift_log,
        policies=policies,
        templates=TableTemplateStore(grants_table, keys, legacy=storage.table(settings.templates_table)),
        notifications=notifications,
        deliveries=deliveries,
        tenants=tenants,
        onboarding=onboarding,
        credentials=CredentialHandOut(writer, sealer, clock),
        channels=channels,
    )


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's services, built on first use from the environment's app settings."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                from jit.settings import Settings  # settings (and pydantic) load with the first invocation

                _services = build(Settings.from_env(os.environ))
    return _services


def reset(replacement: Services | None = None) -> None:
    """Forget the built services (tests and the local runner change settings between runs)."""
    global _services
    with _lock:
        _services = replacement


__all__ = ["BackendContext", "Services", "build", "reset", "services"]
