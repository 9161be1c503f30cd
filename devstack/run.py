"""Run the function app locally: Azurite, the Graph simulator, a local OpenID issuer standing in for Entra ID, and
the functions of `function_app.py` behind a real HTTP port, with the queue trigger fed from Azurite and the timers
firing on their schedules.

    python -m devstack.run [--port 7071] [--host 127.0.0.1]

Settings come from local.settings.json when it exists, else local.settings.sample.json; the storage connection,
the Graph base URL and sign-in are pointed at the emulators this starts. Every setting is checked before anything
is served: a bad one stops the runner with a message naming it.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")


def load_settings() -> dict[str, str]:
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = ROOT / name
        if path.exists():
            values: dict[str, str] = json.loads(path.read_text())["Values"]
            return values
    return {}


def make_handler(host: Any) -> type[BaseHTTPRequestHandler]:
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


def pump_queues(host: Any, queues: Any, stop: threading.Event, wake: threading.Event) -> None:
    """Deliver queue messages; poll every 0.25 s when idle, and at once when a function wrote to a queue through
    an output binding (as the Storage extension's listener does)."""
    while not stop.is_set():
        try:
            handled = host.deliver(queues)
        except Exception:
            log.exception("queue pump")
            handled = 0
        if not handled:
            wake.wait(0.25)
            wake.clear()


def run_timers(host: Any, stop: threading.Event) -> None:
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


def start_graph_simulator(env: dict[str, str]) -> Any:
    """The Graph simulator with its demo tenant, and the settings that point the app at it."""
    from devstack.graph_simulator import GraphSimulator, seed_demo_tenant
    from devstack.graph_simulator.demo import DEMO_MAILBOX_UPN, DEMO_TENANT_ID

    simulator = GraphSimulator(host="127.0.0.1", port=0)
    simulator.start()
    seed_demo_tenant(simulator)
    env["GRAPH_BASE_URL"] = simulator.base_url
    env["GRAPH_AUTH"] = "development"
    # Email goes out through the demo tenant's mailbox (the sink shows what Graph "sent").
    if not env.get("JIT_NOTIFY_MAILBOX"):
        env["JIT_NOTIFY_MAILBOX"] = DEMO_MAILBOX_UPN
        env["JIT_NOTIFY_MAIL_TENANT"] = DEMO_TENANT_ID
    return simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    # The port first: a busy one stops the runner before anything else is started (nothing left running).
    try:
        server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    except OSError as busy:
        print(f"run-local: cannot listen on {args.host}:{args.port} ({busy.strerror}); pick another with --port", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{server.server_address[1]}"

    from azure.storage.queue import QueueServiceClient

    from devstack.azurite import Azurite
    from devstack.function_host import LocalFunctionHost
    from devstack.notification_sink import NotificationSink
    from devstack.oidc_issuer import OidcIssuer

    started: list[Any] = []

    def stop_all() -> None:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception:
                log.exception("stopping %s", type(thing).__name__)

    try:
        azurite = Azurite()
        endpoints = azurite.start()
        started.append(azurite)
        env = load_settings()
        env["AzureWebJobsStorage"] = endpoints.connection_string
        for name in ("JIT_TAP_ENCRYPTION_KEY", "JIT_AUDIT_KEY"):
            if not env.get(name):
                # A key for this run only: what is stored locally dies with Azurite anyway.
                env[name] = base64.b64encode(os.urandom(32)).decode()
        simulator = start_graph_simulator(env)
        started.append(simulator)
        # Webhook deliveries are signed; a secret for this run lets the local sink check them.
        if not env.get("JIT_WEBHOOK_SECRET"):
            env["JIT_WEBHOOK_SECRET"] = secrets.token_urlsafe(32)
        sink = NotificationSink(graph_control_url=simulator.control_url, webhook_secret=env["JIT_WEBHOOK_SECRET"].encode())
        sink.start()
        started.append(sink)
        portal = f"{base}/portal/"
        issuer = OidcIssuer(spa_redirect_uris=(portal, portal.replace("127.0.0.1", "localhost")))
        issuer.start()
        started.append(issuer)
        env.update(issuer.identity_env())
        env["JIT_PORTAL_CLIENT_ID"] = issuer.spa_client_id
        env.setdefault("JIT_PUBLIC_BASE_URL", base)
        os.environ.update(env)

        from jit.settings import ConfigurationError, Settings

        try:
            Settings.from_env(env)
        except ConfigurationError as bad:
            print(f"run-local: {bad}", file=sys.stderr)
            stop_all()
            return 2

        import function_app  # after the settings are in place, as the Functions host does

        machine_key = secrets.token_urlsafe(24)
        host = LocalFunctionHost(function_app.app, env, function_keys=(machine_key,))
    except BaseException:
        stop_all()
        raise
    server.RequestHandlerClass = make_handler(host)
    stop = threading.Event()
    wake = threading.Event()
    host.on_enqueued = lambda queue_name: wake.set()
    queues = QueueServiceClient.from_connection_string(endpoints.connection_string)
    threads = [
        threading.Thread(target=server.serve_forever, name="http", daemon=True),
        threading.Thread(target=pump_queues, args=(host, queues, stop, wake), name="queues", daemon=True),
        threading.Thread(target=run_timers, args=(host, stop), name="timers", daemon=True),
    ]
    for thread in threads:
        thread.start()
    onboard_demo_tenant(host, issuer, sink)

    print(banner(base, env, issuer, simulator, machine_key, sink), flush=True)
    print(f"READY {base}", flush=True)

    def shut_down(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    stop.wait()
    server.shutdown()
    host.close()
    stop_all()
    return 0


def onboard_demo_tenant(host: Any, issuer: Any, sink: Any) -> None:
    """The demo tenant, onboarded by the demo admin as a person would (the queue pump checks it in a moment), and
    notification channels that deliver to the local sink."""
    from devstack.graph_simulator.demo import DEMO_INITIAL_DOMAIN

    admin = next(p for p in issuer.people if "Jit.Admin" in p.roles)
    as_admin = {"Authorization": f"Bearer {issuer.mint(admin)}"}
    answer = host.http("POST", "/api/jit/tenants", {"tenant": DEMO_INITIAL_DOMAIN}, as_admin)
    if answer.status_code not in (200, 202):
        log.error("onboarding the demo tenant failed: %s", answer.get_body().decode(errors="replace"))
    channels: dict[str, dict[str, Any]] = {
        "local-teams": {"kind": "teams", "addresses": [sink.teams_url("local-teams")], "allowPrivateNetwork": True},
        "local-webhook": {"kind": "webhook", "addresses": [sink.webhook_url("local-webhook")], "allowPrivateNetwork": True},
        "local-email": {"kind": "email", "addresses": ["helpdesk@demo.onmicrosoft.com"]},
    }
    for name, channel in channels.items():
        made = host.http("PUT", f"/api/jit/channels/{name}", {**channel, "description": "the local notification sink"}, as_admin)
        if made.status_code not in (200, 201):
            log.error("channel %s: %s", name, made.get_body().decode(errors="replace"))


def banner(base: str, env: dict[str, str], issuer: Any, simulator: Any, machine_key: str, sink: Any) -> str:
    example = json.dumps(
        {
            "tenantId": "demo.onmicrosoft.com",
            "user": {"type": "new", "displayName": "Mailbox admin"},
            "duration": "PT1H",
            "roles": ["Exchange Administrator"],
            "reason": "Mailbox migration, ticket 4711",
            "ticketId": "4711",
            "notifications": {"channels": ["local-teams"]},
        }
    )
    people = "\n".join(f"    {p.name:<16} {', '.join(p.roles)}" for p in issuer.people)
    return f"""
JIT admin access is running at {base}

  Portal:             {base}/portal/   (sign in as one of the demo people; the local issuer stands in for Entra ID)
{people}
  API for people:     {base}/api/jit/...   (an Entra ID bearer token; the portal gets one for you)
  API for machines:   {base}/api/svc/jit/...   with header x-functions-key: {machine_key}
  Storage (Azurite):  {env["AzureWebJobsStorage"].split("TableEndpoint=")[1].rstrip(";")}
  Graph simulator:    {env.get("GRAPH_BASE_URL")}
                      (sent mail, users, roles: GET {simulator.control_url}/tenants)
  Sign-in (issuer):   {issuer.authority}
  Notifications:      {sink.url}   (emails, Teams cards and webhooks sent through channels local-teams,
                      local-webhook and local-email; name them in a request's notifications.channels)

Request access as a machine would, poll the Location until "Active" (a person fetches the TAP in the portal):
  curl -si -X POST {base}/api/svc/jit/requests -H 'x-functions-key: {machine_key}' \\
       -H 'Content-Type: application/json' -d '{example}'
  curl -s {base}/api/svc/jit/requests/<id> -H 'x-functions-key: {machine_key}'
Stop with Ctrl-C.
"""


if __name__ == "__main__":
    sys.exit(main())
