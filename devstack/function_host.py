"""A local stand-in for the Azure Functions host, driving the very functions `function_app.py` declares.

Core Tools cannot be installed here, so this does the host's part for tests and the local runner: it reads the
app's triggers (routes, queue names, schedules, with %SETTING% references resolved from the app settings), builds
the `azure.functions` objects the host would, calls the user functions, and applies the queue trigger's rules
(delete on success; on failure retry after the visibility timeout; after maxDequeueCount move to `<queue>-poison`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.decorators.core import BindingDirection
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from croniter import croniter

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")
_ROUTE_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}")


@dataclass(frozen=True)
class HttpRoute:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    handler: Callable[..., Any]
    arg_name: str
    needs_key: bool  # function (or admin) level: the host checks a key before the function runs
    outputs: tuple[tuple[str, str], ...] = ()  # queue output bindings: (argument name, queue name)


class _Out:
    """What the Python worker passes for an output binding (func.Out): the function sets a value, the host sends it."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, value: Any) -> None:
        self._value = value

    def get(self) -> Any:
        return self._value


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    handler: Callable[..., Any]
    arg_name: str


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    handler: Callable[..., Any]
    arg_name: str

    def next_run(self, after: datetime) -> datetime:
        # NCRONTAB puts seconds first, as croniter's second_at_beginning expects.
        result: datetime = croniter(self.schedule, after, second_at_beginning=True).get_next(datetime)
        return result


class LocalFunctionHost:
    def __init__(self, app: func.FunctionApp, settings: Mapping[str, str], function_keys: tuple[str, ...] = ()) -> None:
        self.settings = settings
        # The keys the host accepts for function-level routes (`x-functions-key` or `?code=`), as Azure's host does.
        self.function_keys = function_keys
        self.routes: list[HttpRoute] = []
        self.queue_functions: dict[str, QueueFunction] = {}
        self.timers: dict[str, TimerFunction] = {}
        self.failures: list[tuple[str, BaseException]] = []
        self._created_queues: set[str] = set()
        self._output_clients: dict[str, Any] = {}
        # Called when an output binding wrote to a queue (the local runner wakes its queue pump with it).
        self.on_enqueued: Callable[[str], None] | None = None
        self.last_handled: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        host = json.loads((ROOT / "host.json").read_text())
        queues = host.get("extensions", {}).get("queues", {})
        self.max_dequeue_count = int(queues.get("maxDequeueCount", 5))
        self.retry_visibility_seconds = _seconds(queues.get("visibilityTimeout", "00:00:00"))
        route_prefix = str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api"))
        for function in indexed_functions(app):
            self._register(function, route_prefix)

    def _resolve(self, value: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.settings:
                raise KeyError(f"app setting {name} is referenced by a trigger but not set")
            return self.settings[name]

        return _SETTING_REFERENCE.sub(lookup, value)

    def _register(self, function: Any, route_prefix: str) -> None:
        trigger = function.get_trigger()
        name = function.get_function_name()
        handler = function.get_user_function()
        if trigger.type == "httpTrigger":
            route = f"{route_prefix}/{trigger.route}".strip("/")
            methods = frozenset(str(m.value if hasattr(m, "value") else m).upper() for m in trigger.methods or ["GET", "POST"])
            level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "function").lower()
            outputs = tuple(
                (binding.name, self._resolve(binding.queue_name))
                for binding in function.get_bindings()
                if binding.type == "queue" and binding.direction in (BindingDirection.OUT, BindingDirection.OUT.value)
            )
            self.routes.append(
                HttpRoute(name, _route_pattern(route), methods, handler, trigger.name, level != "anonymous", outputs)
            )
        elif trigger.type == "queueTrigger":
            queue = self._resolve(trigger.queue_name)
            self.queue_functions[queue] = QueueFunction(name, queue, handler, trigger.name)
        elif trigger.type == "timerTrigger":
            self.timers[name] = TimerFunction(name, self._resolve(trigger.schedule), handler, trigger.name)
        else:
            raise ValueError(f"{name}: trigger {trigger.type} is not supported by the local host")

    def invoke(self, handler: Callable[..., Any], **arguments: Any) -> Any:
        """Call a user function as the Python worker does: `async def` ones on the worker's one event loop (so
        clients they keep stay on the loop they were made on), plain ones directly."""
        result = handler(**arguments)
        if inspect.isawaitable(result):
            return asyncio.run_coroutine_threadsafe(_awaited(result), self._event_loop()).result()
        return result

    def run(self, awaitable: Any) -> Any:
        """Await something on the worker's event loop (where the app's clients live) from another thread."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._event_loop()).result()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="functions-event-loop", daemon=True).start()
            return self._loop

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None

    # HTTP -----------------------------------------------------------------------------------------------------
    def http(
        self, method: str, url: str, body: bytes | str | dict[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> func.HttpResponse:
        """Call the HTTP function whose route and method match, as the host would. `url` may be a path."""
        if isinstance(body, dict):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        parts = urlsplit(url if "://" in url else f"http://127.0.0.1:7071{url}")
        path = parts.path.strip("/")
        all_headers = {"Content-Type": "application/json", **(headers or {})} if raw else dict(headers or {})
        allowed: set[str] = set()
        for route in self.routes:
            match = route.pattern.match(path)
            if not match:
                continue
            allowed |= route.methods
            if method.upper() not in route.methods:
                continue
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            if route.needs_key and not self._key_ok(all_headers, params):
                return func.HttpResponse(status_code=401)  # what Azure's host answers, before the function runs
            request = func.HttpRequest(
                method=method.upper(),
                url=f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
                headers=all_headers,
                params=params,
                # The host (ASP.NET Core routing) hands route values to the function percent-decoded.
                route_params={k: unquote(v) for k, v in match.groupdict().items() if v is not None},
                body=raw,
            )
            outputs = {argument: _Out() for argument, _ in route.outputs}
            response: func.HttpResponse = self.invoke(route.handler, **{route.arg_name: request}, **outputs)
            for argument, queue_name in route.outputs:
                self._write_output(queue_name, outputs[argument].get())
            return response
        status = 405 if allowed else 404
        return func.HttpResponse(status_code=status, headers={"Allow": ", ".join(sorted(allowed))} if allowed else None)

    def _write_output(self, queue_name: str, value: Any) -> None:
        """Send what a queue output binding was given (one message or a list), as the host does after the function
        returned, then tell this host's listener of the queue (`enqueued`), as the Storage extension does."""
        if value is None:
            return
        messages = [value] if isinstance(value, str | bytes) else list(value)
        if not messages:
            return
        client = self._output_clients.get(queue_name)
        if client is None:
            from azure.storage.queue import QueueClient

            client = QueueClient.from_connection_string(
                self.settings["AzureWebJobsStorage"], queue_name, message_encode_policy=TextBase64EncodePolicy()
            )
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            self._output_clients[queue_name] = client
        for message in messages:
            client.send_message(message.decode() if isinstance(message, bytes) else message)
        self.enqueued(queue_name)

    def enqueued(self, queue_name: str) -> None:
        """A function of this host wrote to `queue_name` through an output binding: a listener polls it now."""
        if self.on_enqueued is not None:
            self.on_enqueued(queue_name)

    def _key_ok(self, headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
        given = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None) or params.get("code")
        return given is not None and given in self.function_keys

    # Queues ---------------------------------------------------------------------------------------------------
    def deliver(self, queues: QueueServiceClient, limit: int = 32) -> int:
        """Receive up to `limit` visible messages from every triggered queue and run their functions once each.
        Returns how many messages were handled (successfully or not)."""
        handled = 0
        self.last_handled = {}
        for queue_name, function in self.queue_functions.items():
            client = queues.get_queue_client(
                queue_name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
            )
            if queue_name not in self._created_queues:
                # The Functions host creates a trigger's queue when it is missing; so does this one.
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                self._created_queues.add(queue_name)
            batch = min(limit, 32)
            # One receive call: the paged iterator would otherwise keep receiving, and a message made visible again
            # after a failure would be delivered again within the same round.
            pages = client.receive_messages(messages_per_page=batch, visibility_timeout=300).by_page()
            for message in next(pages, []):
                handled += 1
                self.last_handled[queue_name] = self.last_handled.get(queue_name, 0) + 1
                self._run_queue_function(queues, client, function, message)
        return handled

    def _run_queue_function(self, queues: QueueServiceClient, client: Any, function: QueueFunction, message: Any) -> None:
        body = message.content if isinstance(message.content, bytes) else str(message.content).encode()
        delivered = QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            self.invoke(function.handler, **{function.arg_name: delivered})
        except Exception as error:
            log.exception("%s failed on message %s (delivery %d)", function.name, message.id, message.dequeue_count)
            self.failures.append((function.name, error))
            if message.dequeue_count >= self.max_dequeue_count:
                poison = queues.get_queue_client(f"{function.queue_name}-poison", message_encode_policy=TextBase64EncodePolicy())
                with contextlib.suppress(ResourceExistsError):
                    poison.create_queue()
                poison.send_message(body.decode())
                client.delete_message(message)
            else:
                client.update_message(message, visibility_timeout=self.retry_visibility_seconds)
            return
        client.delete_message(message)

    # Timers ---------------------------------------------------------------------------------------------------
    def fire(self, timer_name: str, *, past_due: bool = False) -> None:
        timer = self.timers[timer_name]
        self.invoke(timer.handler, **{timer.arg_name: TimerRequest(past_due=past_due)})

    def timer_due_after(self, timer_name: str, after: datetime | None = None) -> datetime:
        return self.timers[timer_name].next_run(after or datetime.now(UTC))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


_indexed: dict[int, list[Any]] = {}


def indexed_functions(app: func.FunctionApp) -> list[Any]:
    """The app's functions, indexed once per process as the Functions worker does (indexing twice fails)."""
    if id(app) not in _indexed:
        _indexed[id(app)] = app.get_functions()
    return _indexed[id(app)]


def _route_pattern(route: str) -> re.Pattern[str]:
    pattern = ""
    position = 0
    for match in _ROUTE_PARAMETER.finditer(route):
        pattern += re.escape(route[position : match.start()])
        catch_all, name, optional = match.groups()
        pattern += f"(?P<{name}>{'.+' if catch_all else '[^/]+'}){'?' if optional else ''}"
        position = match.end()
    pattern += re.escape(route[position:])
    return re.compile(f"^{pattern}$", re.IGNORECASE)


def _seconds(timespan: str) -> int:
    hours, minutes, seconds = (int(float(part)) for part in timespan.split(":")[-3:])
    return hours * 3600 + minutes * 60 + seconds
