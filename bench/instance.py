"""One Functions instance, as the Azure Functions host and its Python worker run `function_app.py`.

The Functions host (a .NET process) owns the triggers; the Python worker (one process, one event loop) runs the
functions. This module plays both, in one process, with the host's part on threads of its own so that its work is
not counted as the product's:

* **Worker.** `async def` functions run as tasks on one event loop thread (the worker runs every async invocation on
  its single loop, concurrently); plain functions run in a thread pool (the worker's sync pool, `worker-sync`,
  sized as `ThreadPoolExecutor`'s default as the worker leaves it unless PYTHON_THREADPOOL_THREAD_COUNT is set).
  The functions are the very objects `function_app.py` registers, called with `azure.functions` objects
  (`devstack.function_host.LocalFunctionHost` indexes them and builds the HTTP requests).
* **Queue trigger.** One listener per queue-triggered function, following the storage extension's `QueueListener`
  (Microsoft.Azure.WebJobs.Extensions.Storage.Queues, `ExecuteAsync`): receive up to `batchSize` messages (10 min
  invisible), start each one's invocation at once, then wait until no more than `newBatchThreshold` are still in
  flight before receiving again (so up to batchSize + newBatchThreshold run at once: 8 + 4 with this host.json).
  An empty receive backs off as `RandomizedExponentialBackoffStrategy(100 ms, maxPollingInterval)` does:
  100 ms after a receive that found messages, then 100 ms + 100 ms x 2^(n-1) x U(0.8, 1.2), capped at
  maxPollingInterval (host.json, 2 s here; 1 min by default). On success the host deletes the message; on failure it
  makes it visible again after `visibilityTimeout`, and after `maxDequeueCount` deliveries moves it to
  `<queue>-poison`. A function of the instance that writes to a queue through an output binding notifies that
  queue's listener (`IMessageEnqueuedWatcher.Notify`, called by the extension's queue output binding): the
  listener's current delay is cut short and it receives at once, as `QueueListener.Notify` does. Not modelled:
  renewing a message's invisibility while a function runs longer than 5 minutes, and dynamic concurrency (off
  unless host.json turns it on).
* **Timer trigger.** Each timer function fires at its NCRONTAB schedule from the app settings
  (`%JIT_SWEEP_SCHEDULE%` …), in real time, one invocation at a time (the host waits for one before scheduling the
  next occurrence).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from bench import meter
from bench.meter import Invocation
from devstack.function_host import ROOT, LocalFunctionHost, QueueFunction, TimerFunction

log = logging.getLogger(__name__)

MIN_POLLING_INTERVAL = 0.1  # QueuePollingIntervals.Minimum
RECEIVE_VISIBILITY_SECONDS = 600  # QueueListener: messages stay invisible 10 minutes while a function runs


@dataclass(frozen=True)
class QueueOptions:
    """host.json extensions.queues, with the storage extension's defaults where it says nothing."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # default: batchSize / 2
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5

    @property
    def threshold(self) -> int:
        return self.new_batch_threshold if self.new_batch_threshold is not None else self.batch_size // 2

    @classmethod
    def from_host_json(cls) -> QueueOptions:
        queues = json.loads((ROOT / "host.json").read_text()).get("extensions", {}).get("queues", {})
        threshold = queues.get("newBatchThreshold")
        return cls(
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=int(threshold) if threshold is not None else None,
            max_polling_interval=_timespan(queues.get("maxPollingInterval", "00:01:00")),
            visibility_timeout=_timespan(queues.get("visibilityTimeout", "00:00:00")),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
        )


class Backoff:
    """RandomizedExponentialBackoffStrategy of the storage extension (randomization factor 0.2)."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random) -> None:
        self.minimum, self.maximum, self.rng = minimum, maximum, rng
        self.current = 0.0
        self.exponent = 0

    def next_delay(self, succeeded: bool) -> float:
        if succeeded:
            self.current, self.exponent = self.minimum, 1
        elif self.current != self.maximum:
            interval = self.minimum
            if self.exponent > 0:
                interval += self.rng.uniform(0.8, 1.2) * 2.0 ** (self.exponent - 1) * self.minimum
            if interval < self.maximum:
                self.current = interval
                self.exponent += 1
            else:
                self.current = self.maximum
        return self.current


class _Host(LocalFunctionHost):
    """The local host with invocations metered: each call runs with an `Invocation` in `meter.current`."""

    def __init__(self, instance: FunctionsInstance, app: func.FunctionApp, settings: Mapping[str, str], keys: tuple[str, ...]):
        super().__init__(app, settings, function_keys=keys)
        self.instance = instance
        self.names: dict[int, str] = {id(r.handler): r.name for r in self.routes}
        self.names.update({id(q.handler): q.name for q in self.queue_functions.values()})
        self.names.update({id(t.handler): t.name for t in self.timers.values()})
        self.last = threading.local()  # the calling thread's last invocation (to name the grant a POST made)

    def enqueued(self, queue_name: str) -> None:
        self.instance.notify(queue_name)

    def invoke(self, handler: Callable[..., Any], **arguments: Any) -> Any:
        record = Invocation(function=self.names.get(id(handler), getattr(handler, "__name__", "?")))
        self.last.record = record
        return self.instance.submit(handler, record, **arguments).result()


class FunctionsInstance:
    def __init__(
        self,
        app: func.FunctionApp,
        settings: Mapping[str, str],
        queues: QueueServiceClient,
        *,
        function_keys: tuple[str, ...] = (),
        seed: int = 0,
    ) -> None:
        self.host = _Host(self, app, settings, function_keys)
        self.queues = queues
        self.options = QueueOptions.from_host_json()
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        threads = int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or 0) or min(32, (os.cpu_count() or 1) + 4)
        self._sync_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker-sync")
        self._stop = threading.Event()
        self._queues_on = threading.Event()
        self._threads: list[threading.Thread] = []
        self._notified: dict[str, threading.Event] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_finished = 0.0  # time.monotonic() of the last queue invocation that ended

    # Invoking -------------------------------------------------------------------------------------------------

    def submit(self, handler: Callable[..., Any], record: Invocation, **arguments: Any) -> Future[Any]:
        """Start one invocation the way the worker would and return its future."""
        with self._lock:
            self.invocations.append(record)
        if inspect.iscoroutinefunction(handler):

            async def run() -> Any:
                meter.current.set(record)  # the task's own context; asyncio.to_thread carries it on
                record.started = time.monotonic()
                try:
                    return await handler(**arguments)
                except BaseException:
                    record.failed = True
                    raise
                finally:
                    record.finished, record.finished_wall = time.monotonic(), time.time()

            return asyncio.run_coroutine_threadsafe(run(), self.host._event_loop())

        def call() -> Any:
            meter.current.set(record)
            record.started = time.monotonic()
            try:
                result = handler(**arguments)
                if inspect.isawaitable(result):  # a plain function that hands back an awaitable
                    return asyncio.run_coroutine_threadsafe(_awaited(result), self.host._event_loop()).result()
                return result
            except BaseException:
                record.failed = True
                raise
            finally:
                record.finished, record.finished_wall = time.monotonic(), time.time()

        return self._sync_pool.submit(contextvars.Context().run, call)

    def http(self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
        return self.host.http(method, url, body, headers)

    # Running --------------------------------------------------------------------------------------------------

    def start(self) -> FunctionsInstance:
        for function in self.host.queue_functions.values():
            client = self._client(function.queue_name)
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            thread = threading.Thread(
                target=self._listen, args=(function, client), name=f"host-queue-{function.name}", daemon=True
            )
            self._threads.append(thread)
        for timer in self.host.timers.values():
            self._threads.append(threading.Thread(target=self._tick, args=(timer,), name=f"host-timer-{timer.name}", daemon=True))
        self._queues_on.set()
        for thread in self._threads:
            thread.start()
        return self

    def notify(self, queue_name: str) -> None:
        """A message was written to `queue_name` by a function of this instance: its listener receives now."""
        event = self._notified.get(queue_name)
        if event is not None:
            event.set()

    def pause_queues(self) -> None:
        """Stop receiving (what is in flight finishes); `resume_queues` starts again with a fresh back-off."""
        self._queues_on.clear()

    def resume_queues(self) -> None:
        self._queues_on.set()

    def stop(self) -> None:
        self._stop.set()
        self._queues_on.set()
        for event in self._notified.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._sync_pool.shutdown(wait=True, cancel_futures=True)
        self.host.close()

    def _client(self, queue_name: str) -> Any:
        return self.queues.get_queue_client(
            queue_name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    def idle_since(self) -> float | None:
        """When the last queue invocation ended, if none is running now."""
        with self._lock:
            return None if self.in_flight else self.last_finished

    # The queue listener (host side) -----------------------------------------------------------------------------

    def _listen(self, function: QueueFunction, client: Any) -> None:
        options = self.options
        backoff = Backoff(MIN_POLLING_INTERVAL, options.max_polling_interval, random.Random(self._rng.random()))
        found_since_last_delay = False
        notified = self._notified.setdefault(function.queue_name, threading.Event())
        processing: set[Future[None]] = set()
        workers = ThreadPoolExecutor(
            max_workers=options.batch_size + options.threshold + 1, thread_name_prefix=f"host-msg-{function.name}"
        )
        try:
            while not self._stop.is_set():
                if not self._queues_on.is_set():
                    backoff = Backoff(MIN_POLLING_INTERVAL, options.max_polling_interval, random.Random(self._rng.random()))
                    self._queues_on.wait()
                    continue
                try:
                    pages = client.receive_messages(
                        messages_per_page=options.batch_size, visibility_timeout=RECEIVE_VISIBILITY_SECONDS
                    ).by_page()
                    batch = list(next(pages, []))
                except Exception:
                    log.exception("receive from %s failed", function.queue_name)
                    batch = []
                if not batch:
                    # QueueListener.Notify cancels the delay and counts as "found": the next wait is the minimum.
                    if notified.wait(backoff.next_delay(found_since_last_delay)):
                        notified.clear()
                        found_since_last_delay = True
                    else:
                        found_since_last_delay = False
                    continue
                for message in batch:
                    processing.add(workers.submit(self._process, function, client, message))
                found_since_last_delay = True
                while len(processing) > options.threshold and not self._stop.is_set():
                    done, _ = wait(processing, timeout=1.0, return_when=FIRST_COMPLETED)
                    processing -= done
        finally:
            wait(processing, timeout=120)
            workers.shutdown(wait=True)

    def _process(self, function: QueueFunction, client: Any, message: Any) -> None:
        text = message.content if isinstance(message.content, str) else bytes(message.content).decode()
        record = Invocation(function=function.name, **_grant_of(text))
        delivered = QueueMessage(
            id=message.id,
            body=text.encode(),
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            pop_receipt=message.pop_receipt,
        )
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.submit(function.handler, record, **{function.arg_name: delivered}).result()
            failed = False
        except Exception:
            log.exception("%s failed on message %s (delivery %d)", function.name, message.id, message.dequeue_count)
            failed = True
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last_finished = time.monotonic()
        try:
            if not failed:
                client.delete_message(message)
            elif message.dequeue_count >= self.options.max_dequeue_count:
                poison = self._client(f"{function.queue_name}-poison")
                with contextlib.suppress(ResourceExistsError):
                    poison.create_queue()
                poison.send_message(text)
                client.delete_message(message)
            else:
                client.update_message(message, visibility_timeout=int(self.options.visibility_timeout))
        except Exception:
            log.exception("completing message %s failed", message.id)

    # Timers (host side) -----------------------------------------------------------------------------------------

    def _tick(self, timer: TimerFunction) -> None:
        while not self._stop.is_set():
            due = timer.next_run(datetime.now(UTC))
            if self._stop.wait(max((due - datetime.now(UTC)).total_seconds(), 0.0)):
                return
            record = Invocation(function=timer.name)
            try:
                self.submit(timer.handler, record, **{timer.arg_name: TimerRequest(past_due=False)}).result()
            except Exception:
                log.exception("timer %s failed", timer.name)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _grant_of(body: str) -> dict[str, str]:
    try:
        raw = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {"grant_id": str(raw.get("grantId") or ""), "step": str(raw.get("step") or raw.get("event") or "")}


def _timespan(value: str) -> float:
    parts = [float(p) for p in str(value).split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts[-3:]
    return hours * 3600 + minutes * 60 + seconds
