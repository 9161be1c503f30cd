"""What the benchmark counts without touching product code: storage requests (a hook on azure-core's requests
transport, which every synchronous Table, Queue and Blob client of the product uses) and CPU time per thread.

Every request is charged to the function invocation running when it was made: the instance (`bench/instance.py`)
puts an `Invocation` in a context variable before it calls a function, and `asyncio.to_thread` carries the context
into the worker threads where the product does its storage calls. Requests made outside any invocation are the
host's own (receiving and deleting queue messages) or the benchmark's; they are counted apart.
"""

from __future__ import annotations

import contextvars
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import RequestsTransport

# Azurite answers a failed table transaction with the failing operation's status inside the multipart body.
_BATCH_STATUS = re.compile(rb"HTTP/1\.1 (\d{3})")
_AUDIT_ROW = re.compile(r"~a\|")


@dataclass
class Invocation:
    """One call of one function, as the host makes it."""

    function: str
    grant_id: str = ""
    step: str = ""
    started: float = 0.0  # time.monotonic()
    finished: float = 0.0
    finished_wall: float = 0.0  # time.time(), to compare with the product's own timestamps
    failed: bool = False
    storage: Counter[str] = field(default_factory=Counter)  # "table" / "queue" / "blob" -> requests


current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("bench_invocation", default=None)


@dataclass
class AuditTally:
    """Table transactions that append audit entries (rows `~a|…`), and how they ended."""

    attempts: int = 0
    committed: int = 0
    conflicts: int = 0  # 409 or 412: somebody else wrote first (an ETag or an existing row)
    other_failures: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            "transactions": self.attempts,
            "committed": self.committed,
            "conflicts": self.conflicts,
            "otherFailures": self.other_failures,
            "attemptsPerAppend": round(self.attempts / self.committed, 4) if self.committed else float("nan"),
            "conflictPercent": round(100.0 * self.conflicts / self.attempts, 3) if self.attempts else float("nan"),
        }


class StorageMeter:
    """Counts every request the process sends to Azurite, by service, charged to the running invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.services: dict[int, str] = {}  # Azurite port -> service
        self.outside: Counter[str] = Counter()  # requests made outside any invocation (host or benchmark)
        self.on_event_loop: Counter[str] = Counter()  # product requests made on the event loop thread itself
        self.audit = AuditTally()
        self._original: Any = None

    def watch(self, blob: str, queue: str, table: str) -> None:
        for service, url in (("blob", blob), ("queue", queue), ("table", table)):
            port = urlsplit(url).port
            assert port is not None
            self.services[port] = service

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = RequestsTransport.send
        meter = self

        def send(transport: Any, request: Any, **kwargs: Any) -> Any:
            response = meter._original(transport, request, **kwargs)
            meter._record(request, response)
            return response

        RequestsTransport.send = send  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            RequestsTransport.send = self._original  # type: ignore[method-assign]
            self._original = None

    def reset_audit(self) -> None:
        with self._lock:
            self.audit = AuditTally()

    def _record(self, request: Any, response: Any) -> None:
        parts = urlsplit(request.url)
        service = self.services.get(parts.port or 0)
        if service is None:
            return
        invocation = current.get()
        with self._lock:
            if invocation is None:
                self.outside[service] += 1
                return
            invocation.storage[service] += 1
            if threading.current_thread().name == "functions-event-loop":
                self.on_event_loop[f"{invocation.function} {invocation.step} ({service})"] += 1
            if service == "table" and unquote(parts.path).endswith("$batch"):
                self._tally_batch(request, response)

    def _tally_batch(self, request: Any, response: Any) -> None:
        body = _request_text(request)
        if not _AUDIT_ROW.search(body):
            return
        self.audit.attempts += 1
        statuses = [int(s) for s in _BATCH_STATUS.findall(_response_bytes(response))]
        failed = [s for s in statuses if s >= 300]
        if response.status_code >= 300 or failed:
            status = failed[0] if failed else response.status_code
            if status in (409, 412):
                self.audit.conflicts += 1
            else:
                self.audit.other_failures += 1
        else:
            self.audit.committed += 1


def _request_text(request: Any) -> str:
    """The body of a table transaction: azure-core builds it as multipart parts (each an HttpRequest)."""
    chunks: list[str] = []
    for part in (getattr(request, "multipart_mixed_info", None) and request.multipart_mixed_info[0]) or ():
        chunks.append(unquote(str(part.url)))
        data = part.data if hasattr(part, "data") else None
        chunks.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or ""))
    if not chunks:
        data = request.data if hasattr(request, "data") else request.body
        chunks.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or ""))
    return "\n".join(chunks)


def _response_bytes(response: Any) -> bytes:
    try:
        return bytes(response.internal_response.content or b"")
    except Exception:  # noqa: BLE001 - a streamed body we must not consume; batches are never streamed
        return b""


# CPU time ----------------------------------------------------------------------------------------------------------

PRODUCT_THREADS = ("functions-event-loop", "asyncio_", "worker-sync")


def thread_cpu(prefixes: tuple[str, ...] = PRODUCT_THREADS) -> dict[int, float]:
    """CPU seconds so far of each live thread whose name starts with `prefixes`, by native id (Linux schedstat)."""
    found: dict[int, float] = {}
    for thread in threading.enumerate():
        if not thread.name.startswith(prefixes) or thread.native_id is None:
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/schedstat") as stat:
                found[thread.native_id] = int(stat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return found


def cpu_since(before: dict[int, float]) -> float:
    """CPU the product's threads used since `before` (a thread that ended meanwhile, such as an earlier stack's
    event loop winding down, drops out instead of taking its whole life's CPU with it)."""
    return sum(now - before.get(tid, 0.0) for tid, now in thread_cpu().items())


def pid_cpu_seconds(pid: int) -> float:
    """CPU time so far of another process (Linux: /proc/<pid>/stat utime + stime)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
