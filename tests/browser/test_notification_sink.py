"""devstack/notification_sink.py: what it records, how it checks webhook signatures, the simulator's sent mail it
reads through the control API, and that its page shows all of it as text (never as markup)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator
from devstack.notification_sink import NotificationSink
from jit.adapters.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

SECRET = b"sink-test-secret"


def card(title: str, facts: dict[str, str]) -> dict[str, object]:
    """An Adaptive Card message as an incoming webhook takes it."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": title},
                        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts.items()]},
                    ],
                },
            }
        ],
    }


@pytest.fixture
def sink() -> Iterator[NotificationSink]:
    with NotificationSink(webhook_secret=SECRET) as started:
        yield started


def test_records_teams_cards_and_shows_them_as_text(sink: NotificationSink) -> None:
    sent = httpx.post(sink.teams_url("ops"), json=card("JIT access requested", {"User": "<script>alert(1)</script>"}))
    assert (sent.status_code, sent.text) == (200, "1")  # what Teams' incoming webhooks answer
    assert [(d.kind, d.channel) for d in sink.deliveries] == [("teams", "ops")]
    page = httpx.get(sink.url)
    assert page.status_code == 200 and "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "JIT access requested" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text


def test_checks_webhook_signatures_but_keeps_every_delivery(sink: NotificationSink) -> None:
    body = json.dumps({"event": "grant.active", "grantId": "01ABC"}).encode()
    stamp = str(int(time.time()))
    good = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body), "Content-Type": "application/json"}
    forged = {**good, SIGNATURE_HEADER: sign(b"another key", stamp, body)}
    assert httpx.post(sink.webhook_url("siem"), content=body, headers=good).status_code == 202
    assert httpx.post(sink.webhook_url("siem"), content=body, headers=forged).status_code == 202
    assert httpx.post(sink.webhook_url("siem"), content=body, headers={"Content-Type": "application/json"}).status_code == 202
    assert httpx.post(sink.webhook_url("siem"), content=b"not json").status_code == 400
    assert httpx.post(f"{sink.base_url}/elsewhere", json={}).status_code == 404
    assert [d.signature for d in sink.deliveries] == ["valid", "invalid", "missing"]
    listed = httpx.get(f"{sink.base_url}/notifications.json").json()
    assert [d["body"]["grantId"] for d in listed["deliveries"]] == ["01ABC"] * 3
    assert listed["mail"] == []  # no simulator to ask


def test_shows_the_mail_the_simulator_sent() -> None:
    simulator = GraphSimulator(host="127.0.0.1", port=0)
    simulator.start()
    try:
        tenant = simulator.add_tenant(initial_domain="contoso.onmicrosoft.com", display_name="Contoso")
        tenant.add_user("jit@contoso.onmicrosoft.com", "JIT notifications", has_mailbox=True)
        message = {
            "subject": "[JIT access] Active: Exchange Administrator",
            "body": {"contentType": "HTML", "content": "<p>The access is now active.</p>"},
            "toRecipients": [{"emailAddress": {"address": "tess@msp.example.com"}}],
        }
        # Sent through Graph as the service sends it (the simulator's development token stands for the app's).
        token = httpx.get(f"{simulator.control_url}/tenants/{tenant.id}/token").json()["accessToken"]
        sent = httpx.post(
            f"{simulator.base_url}/users/jit@contoso.onmicrosoft.com/sendMail",
            json={"message": message, "saveToSentItems": False},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 202, sent.text
        with NotificationSink(graph_control_url=simulator.control_url) as sink:
            mail = sink.sent_mail()
            assert [(m["tenant"], m["from"], m["to"], m["subject"]) for m in mail] == [
                ("contoso.onmicrosoft.com", "jit@contoso.onmicrosoft.com", ["tess@msp.example.com"], message["subject"])
            ]
            page = httpx.get(sink.url).text
            assert "[JIT access] Active: Exchange Administrator" in page
            assert "&lt;p&gt;The access is now active.&lt;/p&gt;" in page  # the HTML mail as escaped source
    finally:
        simulator.stop()


def test_says_so_when_the_simulator_does_not_answer() -> None:
    with NotificationSink(graph_control_url="http://127.0.0.1:9/_simulator") as sink:
        [problem] = sink.sent_mail()
        assert "did not answer" in problem["error"]
        assert "did not answer" in httpx.get(sink.url).text


def test_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        NotificationSink(host="0.0.0.0")
