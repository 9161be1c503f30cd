"""Serving a loopback HTTP server (the simulators, the issuer, the receivers) on a thread of its own, and stopping
it again: one way for all of them."""

from __future__ import annotations

import threading
from socketserver import BaseServer


def serve_in_thread(server: BaseServer, name: str, poll_interval: float = 0.1) -> threading.Thread:
    """Start serving; a short poll interval lets `stop_serving` return quickly (tests start and stop many)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server: BaseServer | None, thread: threading.Thread | None) -> None:
    """Stop the serving loop, close the socket (and any open connections the server knows), join the thread."""
    if server is not None:
        server.shutdown()
        close_connections = getattr(server, "close_connections", None)
        if close_connections is not None:
            close_connections()
        server.server_close()
    if thread is not None:
        thread.join(timeout=5)
