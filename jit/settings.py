"""Every app setting the product reads, read in one place, with one clear error listing all that is wrong."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlparse

from pydantic import TypeAdapter, ValidationError

from jit.domain.errors import JitError
from jit.domain.request import RequestLimits
from jit.identity.settings import IdentitySettings, read_identity_settings

_DURATION = TypeAdapter(timedelta)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,52}[a-z0-9]$")
_CRON_FIELD = r"(?:\*|\?|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/[0-9]+)?(?:,(?:\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/[0-9]+)?)*"
_NCRONTAB = re.compile(rf"^{_CRON_FIELD}(?:\s+{_CRON_FIELD}){{5}}$")


class ConfigurationError(JitError):
    """One or more app settings are missing or invalid."""


@dataclass(frozen=True)
class StorageSettings:
    """Where Tables and Queues live: a connection string, or service URIs reached with a managed identity."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    blob_service_uri: str | None = None
    # Client id of a user-assigned managed identity; None means the system-assigned one (or the developer's login).
    managed_identity_client_id: str | None = None


class GraphAuth(StrEnum):
    """How the app gets Graph tokens for a customer tenant."""

    # A managed identity as the federated credential of a multi-tenant app registration: no secret anywhere.
    WORKLOAD_IDENTITY = "workload_identity"
    # The function app's own managed identity: its home tenant only.
    MANAGED_IDENTITY = "managed_identity"
    CLIENT_CERTIFICATE = "client_certificate"
    CLIENT_SECRET = "client_secret"  # noqa: S105 - the name of a mode, not a secret
    # Unsigned tokens carrying `tid`, for the Graph simulator; refused unless Graph is on loopback.
    DEVELOPMENT = "development"


# Where each cloud's tokens come from, by its Graph host.
AUTHORITY_BY_GRAPH_HOST = {
    "graph.microsoft.com": "login.microsoftonline.com",
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}


@dataclass(frozen=True)
class GraphSettings:
    base_url: str
    auth: GraphAuth
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    managed_identity_client_id: str | None = None
    authority_host: str = "login.microsoftonline.com"

    @property
    def host(self) -> str:
        return urlparse(self.base_url).hostname or ""

    @property
    def scope(self) -> str:
        # Tokens are for the cloud's Graph resource; the simulator accepts any audience.
        host = self.host if self.host in AUTHORITY_BY_GRAPH_HOST else "graph.microsoft.com"
        return f"https://{host}/.default"

    @property
    def is_loopback(self) -> bool:
        return self.host in _LOOPBACK


@dataclass(frozen=True)
class TapKeys:
    """Keys that encrypt TAPs at rest: the current one encrypts, every one listed can decrypt (rotation)."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class AuditKeySettings:
    """Keys that sign audit entries and checkpoints (HMAC-SHA256): the current one signs, every one listed verifies."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class NotifySettings:
    queue: str
    emails: tuple[str, ...]
    teams_urls: tuple[str, ...]
    webhook_urls: tuple[str, ...]
    events: tuple[str, ...]
    expiring_lead: timedelta
    mailbox: str | None
    mail_tenant: str | None
    webhook_secret: str | None = field(repr=False)
    public_base_url: str
    retry_base: timedelta
    # JIT_PSA_* settings as given (kind, base URL, credentials): the PSA adapter named by `JIT_PSA_KIND` reads them.
    psa: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    table_prefix: str
    work_queue: str
    limits: RequestLimits
    max_body_bytes: int
    idempotency_ttl: timedelta
    graph: GraphSettings
    poll_interval_seconds: int
    tap_keys: TapKeys | None
    provisioning_deadline: timedelta
    graph_retry_budget: timedelta
    expiry_alert_after: timedelta
    drift_lookback: timedelta
    approval_timeout: timedelta
    service_identity: str
    service_roles: tuple[str, ...]
    notify: NotifySettings
    permanent_delete: bool
    audit_keys: AuditKeySettings | None = None
    checkpoint_schedule: str = "0 */1 * * * *"
    # Read by the timer triggers' bindings (%JIT_SWEEP_SCHEDULE%, %JIT_DRIFT_SCHEDULE%); checked here so a bad one
    # is named at start, not found by a timer that never fires.
    sweep_schedule: str = "0 */1 * * * *"
    drift_schedule: str = "0 0 3 * * *"
    identity: IdentitySettings = field(default_factory=lambda: IdentitySettings(None, (), ()))
    # The portal's own app registration (a single-page application) that signs people in for the API.
    portal_client_id: str | None = None

    @property
    def grants_table(self) -> str:
        return f"{self.table_prefix}Grants"

    @property
    def grant_index_table(self) -> str:
        return f"{self.table_prefix}GrantIndex"

    @property
    def schedule_table(self) -> str:
        return f"{self.table_prefix}Schedule"

    @property
    def audit_table(self) -> str:
        return f"{self.table_prefix}Audit"

    @property
    def idempotency_table(self) -> str:
        return f"{self.table_prefix}Idempotency"

    @property
    def deliveries_table(self) -> str:
        return f"{self.table_prefix}Deliveries"

    @property
    def dead_letters_table(self) -> str:
        return f"{self.table_prefix}DeadLetters"

    @property
    def templates_table(self) -> str:
        return f"{self.table_prefix}Templates"

    @property
    def policies_table(self) -> str:
        return f"{self.table_prefix}Policies"

    @property
    def drift_table(self) -> str:
        return f"{self.table_prefix}Drift"

    @property
    def secrets_table(self) -> str:
        return f"{self.table_prefix}Secrets"

    @property
    def tenants_table(self) -> str:
        return f"{self.table_prefix}Tenants"

    @property
    def checkpoint_container(self) -> str:
        """Blob container names are lower case, 3-63 letters, digits and hyphens."""
        return f"{self.table_prefix.lower()}-audit-checkpoints"

    @property
    def graph_base_url(self) -> str:
        return self.graph.base_url

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _Reader(env)
        settings = cls(
            storage=reader.storage(),
            table_prefix=reader.matching("JIT_TABLE_PREFIX", "Jit", _TABLE_PREFIX, "letters and digits, starting with a letter"),
            work_queue=reader.matching("JIT_WORK_QUEUE", "jit-work", _QUEUE_NAME, "a valid Azure queue name"),
            limits=RequestLimits(
                max_duration=reader.duration("JIT_MAX_DURATION", "PT8H"),
                min_duration=reader.duration("JIT_MIN_DURATION", "PT5M"),
                start_skew=reader.duration("JIT_START_SKEW", "PT5M"),
                max_start_ahead=reader.duration("JIT_MAX_START_AHEAD", "P90D"),
            ),
            max_body_bytes=reader.integer("JIT_MAX_BODY_BYTES", 65536, minimum=1024),
            idempotency_ttl=reader.duration("JIT_IDEMPOTENCY_TTL", "P1D"),
            graph=reader.graph(),
            poll_interval_seconds=reader.integer("JIT_POLL_INTERVAL_SECONDS", 5, minimum=1),
            tap_keys=reader.tap_keys(),
            provisioning_deadline=reader.duration("JIT_PROVISIONING_DEADLINE", "PT1H"),
            graph_retry_budget=reader.duration("JIT_GRAPH_RETRY_BUDGET", "PT60S"),
            expiry_alert_after=reader.duration("JIT_EXPIRY_ALERT_AFTER", "PT10M"),
            drift_lookback=reader.duration("JIT_DRIFT_LOOKBACK", "P7D"),
            approval_timeout=reader.duration("JIT_APPROVAL_TIMEOUT", "PT4H"),
            service_identity=reader._get("JIT_SERVICE_IDENTITY", "function-key"),
            service_roles=reader.roles("JIT_SERVICE_ROLES", "Jit.Requester"),
            notify=reader.notify(),
            permanent_delete=reader.flag("JIT_PERMANENT_DELETE", default=False),
            audit_keys=reader.audit_keys(),
            checkpoint_schedule=reader.schedule("JIT_AUDIT_CHECKPOINT_SCHEDULE", "0 */1 * * * *"),
            sweep_schedule=reader.schedule("JIT_SWEEP_SCHEDULE", "0 */1 * * * *"),
            drift_schedule=reader.schedule("JIT_DRIFT_SCHEDULE", "0 0 3 * * *"),
            # JIT_AUTH_CLIENT_ID, JIT_AUTH_AUDIENCES, JIT_AUTH_TENANT_IDS, JIT_AUTH_AUTHORITY: who may present tokens.
            identity=read_identity_settings(env, reader.problems),
            portal_client_id=reader.optional("JIT_PORTAL_CLIENT_ID"),
        )
        if reader.problems:
            raise ConfigurationError("invalid app settings: " + "; ".join(reader.problems))
        return settings


class _Reader:
    """Reads settings and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _get(self, name: str, default: str) -> str:
        value = self.env.get(name, "").strip()
        return value or default

    def matching(self, name: str, default: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self._get(name, default)
        if not pattern.match(value):
            self.problems.append(f"{name}={value!r} must be {expected}")
        return value

    def schedule(self, name: str, default: str) -> str:
        """An NCRONTAB expression as the Functions timer reads it: six fields, seconds first."""
        value = self._get(name, default)
        if not _NCRONTAB.match(value):
            self.problems.append(
                f"{name}={value!r} must be an NCRONTAB schedule of six fields, seconds first, such as '0 */1 * * * *'"
            )
        return value

    def duration(self, name: str, default: str) -> timedelta:
        value = self._get(name, default)
        try:
            parsed = _DURATION.validate_python(value)
        except ValidationError:
            self.problems.append(f"{name}={value!r} must be an ISO 8601 duration such as PT8H")
            return _DURATION.validate_python(default)
        if parsed <= timedelta(0):
            self.problems.append(f"{name}={value!r} must be positive")
        return parsed

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self._get(name, str(default))
        if not value.isdigit() or int(value) < minimum:
            self.problems.append(f"{name}={value!r} must be a whole number of at least {minimum}")
            return default
        return int(value)

    def url(self, name: str, default: str) -> str:
        value = self._get(name, default).rstrip("/")
        parsed = urlparse(value)
        loopback = parsed.hostname in _LOOPBACK
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            self.problems.append(f"{name}={value!r} must be an https URL (plain http only on loopback)")
        return value

    def roles(self, name: str, default: str) -> tuple[str, ...]:
        known = ("Jit.Requester", "Jit.Approver", "Jit.Admin")
        roles = tuple(r.strip() for r in self._get(name, default).split(",") if r.strip())
        unknown = [r for r in roles if r not in known]
        if unknown:
            self.problems.append(f"{name} has unknown app roles {unknown}; known: {', '.join(known)}")
        return tuple(r for r in roles if r in known)

    def listed(self, name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in self._get(name, "").split(",") if v.strip())

    def notify(self) -> NotifySettings:
        events = self.listed("JIT_NOTIFY_EVENTS")
        known = {
            "Requested",
            "AwaitingApproval",
            "Approved",
            "Denied",
            "Active",
            "ExpiringSoon",
            "Expired",
            "Revoked",
            "Failed",
            "DriftFound",
        }
        if set(events) - known:
            self.problems.append(f"JIT_NOTIFY_EVENTS has unknown events {sorted(set(events) - known)}")
        psa = {k: v.strip() for k, v in self.env.items() if k.startswith("JIT_PSA_") and v.strip()}
        kind = psa.get("JIT_PSA_KIND", "none").lower()
        if kind not in ("none", "halopsa", "connectwise", "autotask"):
            self.problems.append(f"JIT_PSA_KIND={kind!r} must be none, halopsa, connectwise or autotask")
        return NotifySettings(
            queue=self.matching("JIT_NOTIFY_QUEUE", "jit-notify", _QUEUE_NAME, "a valid Azure queue name"),
            emails=self.listed("JIT_NOTIFY_EMAILS"),
            teams_urls=self.listed("JIT_NOTIFY_TEAMS_WEBHOOK_URLS"),
            webhook_urls=self.listed("JIT_NOTIFY_WEBHOOK_URLS"),
            events=tuple(e for e in events if e in known),
            expiring_lead=self.duration("JIT_NOTIFY_EXPIRING_LEAD", "PT15M"),
            mailbox=self.optional("JIT_NOTIFY_MAILBOX"),
            mail_tenant=self.optional("JIT_NOTIFY_MAIL_TENANT"),
            webhook_secret=self.optional("JIT_WEBHOOK_SECRET"),
            public_base_url=self._get("JIT_PUBLIC_BASE_URL", "").rstrip("/"),
            retry_base=self.duration("JIT_NOTIFY_RETRY_BASE", "PT10S"),
            psa=psa,
        )

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._get(name, str(default)).lower()
        if value not in ("true", "false"):
            self.problems.append(f"{name}={value!r} must be true or false")
            return default
        return value == "true"

    def optional(self, name: str) -> str | None:
        return self.env.get(name, "").strip() or None

    def graph(self) -> GraphSettings:
        base_url = self.url("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0")
        host = urlparse(base_url).hostname or ""
        loopback = host in _LOOPBACK
        auth_text = self._get("GRAPH_AUTH", "development" if loopback else "managed_identity")
        try:
            auth = GraphAuth(auth_text)
        except ValueError:
            self.problems.append(f"GRAPH_AUTH={auth_text!r} must be one of {', '.join(a.value for a in GraphAuth)}")
            auth = GraphAuth.MANAGED_IDENTITY
        settings = GraphSettings(
            base_url=base_url,
            auth=auth,
            client_id=self.optional("GRAPH_CLIENT_ID"),
            client_secret=self.optional("GRAPH_CLIENT_SECRET"),
            certificate_path=self.optional("GRAPH_CLIENT_CERTIFICATE_PATH"),
            managed_identity_client_id=self.optional("GRAPH_MANAGED_IDENTITY_CLIENT_ID"),
            authority_host=self._get("GRAPH_AUTHORITY_HOST", AUTHORITY_BY_GRAPH_HOST.get(host, "login.microsoftonline.com")),
        )
        needs = {
            GraphAuth.WORKLOAD_IDENTITY: ["GRAPH_CLIENT_ID"],
            GraphAuth.CLIENT_CERTIFICATE: ["GRAPH_CLIENT_ID", "GRAPH_CLIENT_CERTIFICATE_PATH"],
            GraphAuth.CLIENT_SECRET: ["GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET"],
        }.get(auth, [])
        for name in needs:
            if not self.optional(name):
                self.problems.append(f"GRAPH_AUTH={auth.value} needs {name}")
        if auth is GraphAuth.DEVELOPMENT and not loopback:
            self.problems.append("GRAPH_AUTH=development is only allowed when GRAPH_BASE_URL is on loopback")
        return settings

    def audit_keys(self) -> AuditKeySettings | None:
        keys = self._keys("JIT_AUDIT_KEY", "JIT_AUDIT_KEY_PREVIOUS")
        return AuditKeySettings(current=keys[0], previous=keys[1]) if keys else None

    def tap_keys(self) -> TapKeys | None:
        keys = self._keys("JIT_TAP_ENCRYPTION_KEY", "JIT_TAP_ENCRYPTION_KEY_PREVIOUS")
        return TapKeys(current=keys[0], previous=keys[1]) if keys else None

    def _keys(self, current: str, previous: str) -> tuple[bytes, tuple[bytes, ...]] | None:
        """A key and the one before a rotation: 32 random bytes each, base64. None when the current one is not set
        (or not valid: a problem is noted for every bad one)."""
        keys: dict[str, bytes] = {}
        for name in (current, previous):
            text = self.optional(name)
            if text is None:
                continue
            try:
                key = base64.b64decode(text, validate=True)
            except binascii.Error:
                key = b""
            if len(key) != 32:
                self.problems.append(f"{name} must be 32 random bytes, base64-encoded")
                continue
            keys[name] = key
        if current not in keys:
            return None
        return keys[current], tuple(v for k, v in keys.items() if k != current)

    def storage(self) -> StorageSettings:
        connection_string = self.env.get("AzureWebJobsStorage", "").strip()
        if connection_string:
            return StorageSettings(connection_string=connection_string)
        # Identity-based connection, named as the Functions host names it (AzureWebJobsStorage__*).
        account = self.env.get("AzureWebJobsStorage__accountName", "").strip()
        table_uri = self.env.get("AzureWebJobsStorage__tableServiceUri", "").strip()
        queue_uri = self.env.get("AzureWebJobsStorage__queueServiceUri", "").strip()
        blob_uri = self.env.get("AzureWebJobsStorage__blobServiceUri", "").strip()
        if account:
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
            queue_uri = queue_uri or f"https://{account}.queue.core.windows.net"
            blob_uri = blob_uri or f"https://{account}.blob.core.windows.net"
        if not (table_uri and queue_uri):
            self.problems.append(
                "storage is not configured: set AzureWebJobsStorage (connection string) or "
                "AzureWebJobsStorage__accountName (or both __tableServiceUri and __queueServiceUri)"
            )
        client_id = self.env.get("AzureWebJobsStorage__clientId", "").strip() or None
        return StorageSettings(
            table_service_uri=table_uri,
            queue_service_uri=queue_uri,
            blob_service_uri=blob_uri or None,
            managed_identity_client_id=client_id,
        )
