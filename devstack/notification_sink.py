"""A local notification sink: the place a person running the stack sees what the service announced.

    sink = NotificationSink(graph_control_url=simulator.control_url, webhook_secret=b"...").start()
    sink.teams_url("ops")     # -> http://127.0.0.1:<port>/teams/ops      (a channel's Teams/Workflows address)
    sink.webhook_url("siem")  # -> http://127.0.0.1:<port>/webhooks/siem  (a channel's webhook address)
    print(sink.url)           # the page: Teams cards, webhooks, and the Graph simulator's sent mail
    sink.stop()

It records Teams cards and webhook deliveries POSTed to it (JSON, at most 1 MiB each, the newest 500 kept in
memory) and shows them on a page that refreshes itself, together with the mail the service sent through the Graph
simulator (read from the simulator's control API, `GET {control}/tenants/{id}`: only `sentMessages` is taken from
that dump, which also holds secrets such as Temporary Access Passes). Webhook signatures (X-JIT-Signature) are
checked when the sink knows the secret, and shown as valid or not; the sink accepts deliveries either way, since it
is a viewer, not a gate. Standard library only, loopback only: channels pointing at it need
`allowPrivateNetwork: true` (the service refuses private addresses otherwise).
"""

from __future__ import annotations

import html
import json
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

from devstack.serving import serve_in_thread, stop_serving
from jit.adapters.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

_MAX_BODY = 1 << 20
_KEEP = 500
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


@dataclass(frozen=True)
class Delivery:
    """One POST the sink received: `kind` is "teams" or "webhook", `channel` the name in its path."""

    kind: str
    channel: str
    received_at: datetime
    body: Any
    event: str | None = None
    signature: str = "not checked"  # "valid", "invalid", "missing" or "not checked" (no secret given)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "channel": self.channel,
            "receivedDateTime": self.received_at.isoformat().replace("+00:00", "Z"),
            "event": self.event,
            "signature": self.signature,
            "body": self.body,
        }


class NotificationSink:
    """Receives Teams cards and webhooks on loopback and shows them, with the Graph simulator's sent mail."""

    def __init__(
        self,
        *,
        graph_control_url: str | None = None,
        webhook_secret: bytes | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"the notification sink listens on loopback only, not {host!r}")
        self._address = (host, port)
        self._control = graph_control_url.rstrip("/") if graph_control_url else None
        self._secret = webhook_secret
        self._lock = threading.Lock()
        self._deliveries: deque[Delivery] = deque(maxlen=_KEEP)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = serve_in_thread(server, "notification-sink")
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        stop_serving(server, thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the notification sink is not running; call start() first")
        host = self._address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The page that shows everything received."""
        return f"{self.base_url}/"

    def teams_url(self, channel: str = "teams") -> str:
        return f"{self.base_url}/teams/{quote(channel, safe='')}"

    def webhook_url(self, channel: str = "webhook") -> str:
        return f"{self.base_url}/webhooks/{quote(channel, safe='')}"

    # --- what arrived -------------------------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        """Oldest first."""
        with self._lock:
            return list(self._deliveries)

    def sent_mail(self) -> list[dict[str, Any]]:
        """The mail the service sent through the Graph simulator, newest first: sender, recipients, subject, body,
        time. Empty without a simulator; its error as one pseudo-message when the simulator does not answer."""
        if self._control is None:
            return []
        try:
            tenants = _get_json(f"{self._control}/tenants")["value"]
            mail: list[dict[str, Any]] = []
            for tenant in tenants:
                dump = _get_json(f"{self._control}/tenants/{quote(str(tenant['id']), safe='')}")
                for sent in dump.get("sentMessages", []):
                    message = sent.get("message") or {}
                    mail.append(
                        {
                            "tenant": tenant.get("initialDomain") or tenant["id"],
                            "from": sent.get("sender_upn") or sent.get("sender_id"),
                            "to": [r.get("emailAddress", {}).get("address", "") for r in message.get("toRecipients", [])],
                            "subject": message.get("subject", ""),
                            "body": (message.get("body") or {}).get("content", ""),
                            "contentType": (message.get("body") or {}).get("contentType", "text"),
                            "sentDateTime": sent.get("sent_at", ""),
                        }
                    )
        except (OSError, ValueError, KeyError) as error:
            return [{"error": f"the Graph simulator's control API did not answer: {type(error).__name__}: {error}"}]
        return sorted(mail, key=lambda m: str(m["sentDateTime"]), reverse=True)

    # --- HTTP ---------------------------------------------------------------------------------------------------

    def _receive(self, kind: str, channel: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        try:
            parsed = json.loads(body)
        except ValueError:
            return 400, b'{"error": "the body is not JSON"}'
        signature = "not checked"
        if kind == "webhook" and self._secret is not None:
            given = headers.get(SIGNATURE_HEADER.lower())
            if given is None:
                signature = "missing"
            else:
                ok = verify_signature(self._secret, headers.get(TIMESTAMP_HEADER.lower()), body, given, now=time.time())
                signature = "valid" if ok else "invalid"
        delivery = Delivery(kind, channel, datetime.now(UTC), parsed, headers.get("x-jit-event"), signature)
        with self._lock:
            self._deliveries.append(delivery)
        # Teams' incoming webhooks answer "1"; Workflows 202. Either is success to the service.
        return (200, b"1") if kind == "teams" else (202, b"")

    def _page(self) -> bytes:
        deliveries = list(reversed(self.deliveries))
        mail = self.sent_mail()
        sections = [
            _section("Teams cards", [_teams_item(d) for d in deliveries if d.kind == "teams"], "Nothing posted to /teams/… yet."),
            _section(
                "Webhooks", [_webhook_item(d) for d in deliveries if d.kind == "webhook"], "Nothing posted to /webhooks/… yet."
            ),
            _section(
                "Mail sent through the Graph simulator",
                [_mail_item(m) for m in mail],
                "No mail sent." if self._control else "Not connected to a Graph simulator.",
            ),
        ]
        addresses = (
            f"<p>Point channels here (with <code>allowPrivateNetwork: true</code>): Teams "
            f"<code>{html.escape(self.teams_url('NAME'))}</code>, webhooks <code>{html.escape(self.webhook_url('NAME'))}</code>. "
            f'This page refreshes every 5 seconds; <a href="/notifications.json">as JSON</a>.</p>'
        )
        return _PAGE.format(addresses=addresses, sections="".join(sections)).encode()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the simulator's loopback control URL
        return json.loads(answer.read())


def _handler_for(sink: NotificationSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/":
                self._answer(200, sink._page(), "text/html; charset=utf-8", {"Content-Security-Policy": _PAGE_CSP})
            elif path == "/notifications.json":
                body = {"deliveries": [d.to_json() for d in sink.deliveries], "mail": sink.sent_mail()}
                self._answer(200, json.dumps(body).encode(), "application/json")
            else:
                self._answer(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self.close_connection = True
                self._answer(413, b"too large", "text/plain")
                return
            body = self.rfile.read(length) if length else b""
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if len(parts) != 2 or parts[0] not in ("teams", "webhooks") or not parts[1]:
                self._answer(404, b"post to /teams/<name> or /webhooks/<name>", "text/plain")
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, reply = sink._receive("teams" if parts[0] == "teams" else "webhook", parts[1], headers, body)
            self._answer(status, reply, "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # webhook queries may carry signatures: nothing is logged

    return Handler


# --- the page ---------------------------------------------------------------------------------------------------


def _section(title: str, items: list[str], empty: str) -> str:
    inner = "".join(items) if items else f"<p class=empty>{html.escape(empty)}</p>"
    return f"<section><h2>{html.escape(title)} ({len(items)})</h2>{inner}</section>"


def _when(moment: datetime) -> str:
    return html.escape(moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _teams_item(delivery: Delivery) -> str:
    """An Adaptive Card's text blocks and fact sets as text; anything else as JSON."""
    texts: list[str] = []
    facts: list[tuple[str, str]] = []
    for attachment in (delivery.body or {}).get("attachments", []) if isinstance(delivery.body, dict) else []:
        _walk_card((attachment or {}).get("content") or {}, texts, facts)
    if not texts and not facts:
        return _item(delivery, f"<pre>{html.escape(json.dumps(delivery.body, indent=2))}</pre>")
    text = "".join(f"<p>{html.escape(t)}</p>" for t in texts)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return _item(delivery, text + (f"<table>{rows}</table>" if rows else ""))


def _walk_card(element: Any, texts: list[str], facts: list[tuple[str, str]]) -> None:
    if isinstance(element, list):
        for child in element:
            _walk_card(child, texts, facts)
        return
    if not isinstance(element, dict):
        return
    if element.get("type") == "TextBlock" and isinstance(element.get("text"), str):
        texts.append(element["text"])
    if element.get("type") == "FactSet":
        facts.extend((str(f.get("title", "")), str(f.get("value", ""))) for f in element.get("facts", []) if isinstance(f, dict))
    for key in ("body", "items", "columns", "actions"):
        _walk_card(element.get(key), texts, facts)
    if element.get("type", "").startswith("Action.") and element.get("url"):
        texts.append(f"{element.get('title', 'Link')}: {element['url']}")


def _webhook_item(delivery: Delivery) -> str:
    return _item(delivery, f"<pre>{html.escape(json.dumps(delivery.body, indent=2))}</pre>")


def _item(delivery: Delivery, content: str) -> str:
    meta = f"{_when(delivery.received_at)} · channel <b>{html.escape(delivery.channel)}</b>"
    if delivery.event:
        meta += f" · event {html.escape(delivery.event)}"
    if delivery.kind == "webhook":
        state = html.escape(delivery.signature)
        meta += f" · signature <span class=sig-{state.split()[0]}>{state}</span>"
    return f"<article><p class=meta>{meta}</p>{content}</article>"


def _mail_item(mail: dict[str, Any]) -> str:
    if "error" in mail:
        return f"<article><p class=error>{html.escape(mail['error'])}</p></article>"
    body = str(mail["body"])
    # HTML mail is shown as its source, escaped: this page runs nothing a message contains.
    shown = f"<pre>{html.escape(body)}</pre>"
    return (
        f"<article><p class=meta>{html.escape(str(mail['sentDateTime']))} · {html.escape(str(mail['tenant']))} · from "
        f"{html.escape(str(mail['from']))} to {html.escape(', '.join(mail['to']))}</p>"
        f"<p><b>{html.escape(str(mail['subject']))}</b></p>{shown}</article>"
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>Notifications · local stack</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #1b1b1b; }}
article {{ border: 1px solid #d1d1d1; border-radius: 6px; padding: .5rem 1rem; margin: .75rem 0; background: #fff; }}
.meta {{ color: #4a4a4a; font-size: .9rem; margin: 0 0 .25rem; }} .empty {{ color: #4a4a4a; }}
pre {{ background: #f3f3f3; padding: .5rem; overflow: auto; max-height: 20rem; white-space: pre-wrap; }}
th {{ text-align: left; padding-right: 1rem; vertical-align: top; }} .error, .sig-invalid, .sig-missing {{ color: #b10e1c; }}
.sig-valid {{ color: #0e700e; }} code {{ overflow-wrap: anywhere; }}
</style></head>
<body><main><h1>Notifications</h1>{addresses}{sections}</main></body></html>
"""
