"""Run the function app locally: Azurite, the Graph simulator, and the functions of `function_app.py` behind a
real HTTP port, with the queue trigger fed from Azurite and the timer firing on its schedule.

    python -m devstack.run [--port 7071] [--host 127.0.0.1]

Settings come from local.settings.json when it exists, else local.settings.sample.json; the storage connection
and the Graph base URL are pointed at the emulators this starts.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueServiceClient

from devstack.azurite import Azurite
from devstack.function_host import LocalFunctionHost
from devstack.graph_simulator import GraphSimulator, seed_demo_tenant

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")


def load_settings() -> dict[str, str]:
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = ROOT / name
        if path.exists():
            values: dict[str, str] = json.loads(path.read_text())["Values"]
            return values
    return {}


def make_handler(host: LocalFunctionHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = f"http://{self.headers.get('Host', 'localhost')}{self.path}"
            try:
                response = host.http(self.command, url, body, dict(self.headers.items()))
                status, payload = response.status_code, response.get_body() or b""
                headers = dict(response.headers.items())
                headers.setdefault("Content-Type", response.mimetype or "text/plain")
            except Exception:
                log.exception("function raised")
                status, payload, headers = 500, b"", {}
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler


def pump_queues(host: LocalFunctionHost, queues: QueueServiceClient, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            handled = host.deliver(queues)
        except Exception:
            log.exception("queue pump")
            handled = 0
        if not handled:
            stop.wait(0.25)


def run_timers(host: LocalFunctionHost, stop: threading.Event) -> None:
    upcoming = {name: host.timer_due_after(name) for name in host.timers}
    while not stop.is_set():
        name, due = min(upcoming.items(), key=lambda item: item[1])
        if stop.wait(max((due - datetime.now(UTC)).total_seconds(), 0)):
            return
        try:
            host.fire(name)
        except Exception:
            log.exception("timer %s", name)
        upcoming[name] = host.timer_due_after(name)


def start_graph_simulator(env: dict[str, str]) -> GraphSimulator:
    """The Graph simulator with its demo tenant, and the settings that point the app at it."""
    simulator = GraphSimulator(host="127.0.0.1", port=0)
    simulator.start()
    seed_demo_tenant(simulator)
    env["GRAPH_BASE_URL"] = simulator.base_url
    env["GRAPH_AUTH"] = "development"
    return simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    azurite = Azurite()
    endpoints = azurite.start()
    env = load_settings()
    env["AzureWebJobsStorage"] = endpoints.connection_string
    if not env.get("JIT_TAP_ENCRYPTION_KEY"):
        # A key for this run only: TAPs issued locally die with it, which is what a local run wants.
        env["JIT_TAP_ENCRYPTION_KEY"] = base64.b64encode(os.urandom(32)).decode()
    simulator = start_graph_simulator(env)
    os.environ.update(env)

    import function_app  # after the settings are in place, as the Functions host does

    server = ThreadingHTTPServer((args.host, args.port), None)  # type: ignore[arg-type]
    base = f"http://{args.host}:{server.server_address[1]}"
    # Links in notifications point at this runner unless the settings say otherwise.
    if not env.get("JIT_PUBLIC_BASE_URL"):
        env["JIT_PUBLIC_BASE_URL"] = base
    os.environ.update(env)
    host = LocalFunctionHost(function_app.app, env)
    server.RequestHandlerClass = make_handler(host)
    stop = threading.Event()
    queues = QueueServiceClient.from_connection_string(endpoints.connection_string)
    threads = [
        threading.Thread(target=server.serve_forever, name="http", daemon=True),
        threading.Thread(target=pump_queues, args=(host, queues, stop), name="queues", daemon=True),
        threading.Thread(target=run_timers, args=(host, stop), name="timers", daemon=True),
    ]
    for thread in threads:
        thread.start()

    print(banner(base, env), flush=True)
    print(f"READY {base}", flush=True)

    def shut_down(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    stop.wait()
    server.shutdown()
    simulator.stop()
    azurite.stop()
    return 0


def banner(base: str, env: dict[str, str]) -> str:
    example = json.dumps(
        {
            "tenantId": "demo.onmicrosoft.com",
            "user": {"type": "new", "displayName": "JIT admin for ticket 4711"},
            "duration": "PT1H",
            "roles": ["Exchange Administrator"],
            "reason": "Mailbox migration, ticket 4711",
            "ticketId": "4711",
        }
    )
    return f"""
JIT admin functions are running at {base}/api
  storage (Azurite):  {env["AzureWebJobsStorage"].split("TableEndpoint=")[1].rstrip(";")}
  Graph:              {env.get("GRAPH_BASE_URL")}

Request access, poll the Location it answers with until "Active", then fetch the TAP (once):
  curl -si -X POST {base}/api/jit/requests -H 'Content-Type: application/json' -d '{example}'
  curl -s {base}/api/jit/requests/<id>
  curl -s {base}/api/jit/requests/<id>/credentials
Roles of the demo tenant: curl -s {base}/api/jit/tenants/demo.onmicrosoft.com/roles
Stop with Ctrl-C.
"""


if __name__ == "__main__":
    sys.exit(main())
