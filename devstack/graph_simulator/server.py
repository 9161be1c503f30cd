"""HTTP plumbing: a keep-alive ThreadingHTTPServer that feeds the dispatcher.

Paths under /v1.0 go to the Graph pipeline, /_simulator to the control API.
Open connections are tracked so stop() can cut keep-alive sockets instead of
leaving daemon threads serving a stopped simulator.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .control import PREFIX as CONTROL_PREFIX
from .dispatcher import error_response
from .errors import GraphError
from .messages import Drop, SimRequest, SimResponse, parse_query

GraphEntry = Callable[[SimRequest], SimResponse | Drop]
ControlEntry = Callable[[str, str, str, bytes], SimResponse]
TokenEntry = Callable[[str, str, bytes], SimResponse]

# Entra's v2 token endpoint path: /{tenant}/oauth2/v2.0/token
_TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$", re.IGNORECASE)


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 resets connections under
    # concurrent load (benchmarks open many connections at once).
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        graph: GraphEntry,
        control: ControlEntry,
        token: TokenEntry,
        *,
        verbose: bool = False,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.graph = graph
        self.control = control
        self.token = token
        self.verbose = verbose
        self.base_url = ""
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Graph clients expect
    server: SimulatorHTTPServer
    timeout = 120  # idle keep-alive connections are closed eventually

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle
        # plus delayed ACKs add ~40 ms to every keep-alive request.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"graph-simulator: {format % args}\n")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        path = url.path
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._write(self.server.control(self.command, path, url.query, body))
            return
        token_path = _TOKEN_PATH.match(path)
        if token_path:
            self._write(self.server.token(self.command, token_path.group("tenant"), body))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = SimRequest(
            method=self.command,
            path=path[len("/v1.0") :] if path.lower().startswith("/v1.0") else path,
            query=parse_query(url.query),
            headers=headers,
            body=body,
            request_id=str(uuid.uuid4()),
            client_request_id=headers.get("client-request-id") or str(uuid.uuid4()),
            base_url=self.server.base_url,
        )
        if not (path.lower() == "/v1.0" or path.lower().startswith("/v1.0/")):
            self._write(error_response(GraphError(400, "BadRequest", "Invalid version."), request))
            return
        response = self.server.graph(request)
        if isinstance(response, Drop):
            self._drop()
            return
        self._write(response)

    def _drop(self) -> None:
        # Fault injection: close the socket without sending a single byte back.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, response: SimResponse) -> None:
        payload, content_type = response.encoded()
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if content_type and not any(k.lower() == "content-type" for k in response.headers):
            self.send_header("Content-Type", content_type)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if payload and response.status not in (204, 304):
            self.wfile.write(payload)
