"""A loopback HTTP server that records what it receives and answers through `handle`; the fakes build on it.

Standard library only: `ThreadingHTTPServer` on 127.0.0.1 and a free port, started and stopped by hand or as a
context manager. Scripted faults (`fail_next`, `delay_next`, `drop_next`) come before `handle`, so every fake
can play an unavailable or throttling vendor for the dispatcher's retry tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from devstack.serving import serve_in_thread, stop_serving

_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def json(status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, json.dumps(value).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


@dataclass
class _Fault:
    kind: str  # "fail", "delay" or "drop"
    reply: Reply | None = None
    seconds: float = 0.0


class LoopbackReceiver:
    """Base of the fakes: `handle(request) -> Reply` is the vendor; everything received is in `requests`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = serve_in_thread(server, type(self).__name__, poll_interval=0.05)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_serving(server, thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- scripted faults --------------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` requests with `status` (e.g. 500, 503, 429 with Retry-After) instead."""
        with self._lock:
            self._faults.extend(_Fault("fail", Reply(status, body, dict(headers or {}))) for _ in range(count))

    def delay_next(self, count: int, seconds: float) -> None:
        """Hold the next `count` requests for `seconds` before handling them (client timeouts)."""
        with self._lock:
            self._faults.extend(_Fault("delay", seconds=seconds) for _ in range(count))

    def drop_next(self, count: int) -> None:
        """Close the connection without any answer on the next `count` requests."""
        with self._lock:
            self._faults.extend(_Fault("drop") for _ in range(count))

    # --- assertions -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, including those answered by a scripted fault."""
        with self._lock:
            return list(self._requests)

    # --- the vendor -------------------------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def _receive(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self._requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "fail" and fault.reply is not None:
            return fault.reply
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        try:
            return self.handle(request)
        except Exception as error:  # noqa: BLE001 - a fake's own bug answers 500, like a real server would
            return Reply.json(500, {"error": f"fake receiver failed: {type(error).__name__}: {error}"})


def _handler_for(receiver: LoopbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(Reply(413))
                return
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            reply = receiver._receive(request)
            if reply is None:  # the server closes the socket after this request without having written a byte
                self.close_connection = True
                return
            self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`, not stderr
            return

    return Handler
