"""Every app setting the product reads, read in one place, with one clear error listing all that is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from pydantic import TypeAdapter, ValidationError

from jit.domain.errors import JitError
from jit.domain.request import RequestLimits

_DURATION = TypeAdapter(timedelta)
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,52}[a-z0-9]$")


class ConfigurationError(JitError):
    """One or more app settings are missing or invalid."""


@dataclass(frozen=True)
class StorageSettings:
    """Where Tables and Queues live: a connection string, or service URIs reached with a managed identity."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    # Client id of a user-assigned managed identity; None means the system-assigned one (or the developer's login).
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    table_prefix: str
    work_queue: str
    limits: RequestLimits
    max_body_bytes: int
    idempotency_ttl: timedelta
    graph_base_url: str
    poll_interval_seconds: int

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
            graph_base_url=reader.url("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"),
            poll_interval_seconds=reader.integer("JIT_POLL_INTERVAL_SECONDS", 5, minimum=1),
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
        loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            self.problems.append(f"{name}={value!r} must be an https URL (plain http only on loopback)")
        return value

    def storage(self) -> StorageSettings:
        connection_string = self.env.get("AzureWebJobsStorage", "").strip()
        if connection_string:
            return StorageSettings(connection_string=connection_string)
        # Identity-based connection, named as the Functions host names it (AzureWebJobsStorage__*).
        account = self.env.get("AzureWebJobsStorage__accountName", "").strip()
        table_uri = self.env.get("AzureWebJobsStorage__tableServiceUri", "").strip()
        queue_uri = self.env.get("AzureWebJobsStorage__queueServiceUri", "").strip()
        if account:
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
            queue_uri = queue_uri or f"https://{account}.queue.core.windows.net"
        if not (table_uri and queue_uri):
            self.problems.append(
                "storage is not configured: set AzureWebJobsStorage (connection string) or "
                "AzureWebJobsStorage__accountName (or both __tableServiceUri and __queueServiceUri)"
            )
        client_id = self.env.get("AzureWebJobsStorage__clientId", "").strip() or None
        return StorageSettings(table_service_uri=table_uri, queue_service_uri=queue_uri, managed_identity_client_id=client_id)
