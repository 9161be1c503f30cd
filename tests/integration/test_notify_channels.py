"""The notification channels against real HTTP receivers on loopback: a webhook sink, fake HaloPSA, ConnectWise
and Autotask APIs that check their documented request shapes, and the Graph simulator's sendMail through the
real msgraph-sdk. Each channel makes one attempt per call and says whether a failure is worth retrying."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import inspect
import json
import re
import socket
import time
import typing
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from devstack.fake_receivers import FakeAutotask, FakeConnectWise, FakeHaloPsa, WebhookSink
from devstack.graph_simulator import GraphSimulator
from jit.adapters.graph.clients import GraphGateways
from jit.adapters.graph.mail import GraphMail
from jit.adapters.notify import (
    AutotaskChannel,
    ConnectWiseChannel,
    EmailChannel,
    HaloPsaChannel,
    TeamsChannel,
    WebhookChannel,
    render,
    verify_signature,
)
from jit.adapters.notify.webhook import sign
from jit.domain.notification import ChannelKind, DeliveryFailed, Event, Notification
from jit.services.notify_ports import Channel
from jit.settings import GraphAuth, GraphSettings
from tests.conftest import TENANT, TENANT_GUID

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T = TypeVar("T")
SECRET = b"whsec-test-0123456789abcdef"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
GRANT_URL = "https://jit.example.com/api/jit/requests/01JABCDEF0123456789ABCDEFG"
CREDENTIALS_URL = GRANT_URL + "/credentials"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def notification(event: Event = Event.ACTIVE, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "event": event,
        "tenant_id": TENANT_GUID,
        "grant_id": "01JABCDEF0123456789ABCDEFG",
        "occurred_at": START + timedelta(minutes=1),
        "title": "Exchange Administrator for jit-bob@contoso.onmicrosoft.com",
        "status": "Active" if event is Event.ACTIVE else str(event),
        "user": "jit-bob@contoso.onmicrosoft.com",
        "roles": ("Exchange Administrator", "User Administrator"),
        "groups": ("Helpdesk",),
        "start": START,
        "end": END,
        "reason": "Mailbox migration for ticket 4711",
        "ticket_id": "4711",
        "requested_by": "alice@msp.example",
        "links": {"grant": GRANT_URL, "credentials": CREDENTIALS_URL},
    }
    fields.update(overrides)
    return Notification(**fields)


def closed_port_url(path: str = "/") -> str:
    """A loopback URL nothing listens on: connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def every_rendering(n: Notification) -> list[str]:
    return [
        render.subject(n),
        render.html_body(n),
        render.plain_text(n),
        json.dumps(render.teams_message(n)),
        json.dumps(render.webhook_payload(n)),
    ]


# --- the generic webhook -------------------------------------------------------------------------------------------


def test_the_webhook_posts_signed_json_the_receiver_can_verify() -> None:
    with WebhookSink(secret=SECRET) as sink:
        run(WebhookChannel(SECRET).deliver(notification(), sink.url, allow_private=True))
        [request] = sink.deliveries
    assert (request.header("Content-Type") or "").startswith("application/json")
    timestamp, signature = request.header("X-JIT-Timestamp"), request.header("X-JIT-Signature")
    assert timestamp is not None and abs(int(timestamp) - time.time()) < 30
    expected = hmac.new(SECRET, timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert request.header("X-JIT-Event") == "Active" and re.fullmatch(r"[0-9a-f]{32}", request.header("X-JIT-Delivery") or "")
    payload = request.json()
    assert {k: payload[k] for k in ("event", "tenantId", "grantId", "occurredAt", "title", "status")} == {
        "event": "Active",
        "tenantId": TENANT_GUID,
        "grantId": "01JABCDEF0123456789ABCDEFG",
        "occurredAt": "2026-03-02T09:01:00Z",
        "title": "Exchange Administrator for jit-bob@contoso.onmicrosoft.com",
        "status": "Active",
    }
    assert payload["roles"] == ["Exchange Administrator", "User Administrator"] and payload["end"] == "2026-03-02T11:00:00Z"
    assert payload["ticketId"] == "4711" and payload["links"]["grant"] == GRANT_URL
    assert payload["credentials"] == {"url": CREDENTIALS_URL, "note": render.CREDENTIALS_SENTENCE}


def test_retries_of_one_notification_carry_the_same_delivery_id() -> None:
    with WebhookSink() as sink:
        channel = WebhookChannel(SECRET)
        run(channel.deliver(notification(), sink.url, allow_private=True))
        run(channel.deliver(notification(), sink.url, allow_private=True))
        run(channel.deliver(notification(Event.REVOKED), sink.url, allow_private=True))
        ids = [r.header("X-JIT-Delivery") for r in sink.deliveries]
    assert ids[0] == ids[1] != ids[2]


def test_signature_verification_refuses_wrong_secret_tampering_and_stale_or_odd_timestamps() -> None:
    body = b'{"event":"Active"}'
    now = 1_760_000_000
    ts = str(now)
    good = sign(SECRET, ts, body)
    assert verify_signature(SECRET, ts, body, good, now=now)
    assert verify_signature(SECRET, ts, body, good.upper().replace("SHA256=", "sha256="), now=now)  # hex case is not meaning
    assert not verify_signature(b"another-secret", ts, body, good, now=now)
    assert not verify_signature(SECRET, ts, b'{"event":"Revoked"}', good, now=now)
    assert not verify_signature(SECRET, str(now + 1), body, good, now=now)  # the timestamp is signed too
    assert not verify_signature(SECRET, ts, body, good, now=now + 301)  # stale: a replay
    assert not verify_signature(SECRET, ts, body, good, now=now - 301)  # from the future
    assert verify_signature(SECRET, ts, body, good, now=now + 3000, tolerance_s=3600)
    assert not verify_signature(SECRET, "+" + ts, body, good, now=now)
    for header in (None, "", good.removeprefix("sha256="), "sha1=" + good[7:], good[:-1]):
        assert not verify_signature(SECRET, ts, body, header, now=now)
    assert not verify_signature(SECRET, None, body, good, now=now)
    assert not verify_signature(b"", ts, body, good, now=now)


def test_a_receiver_checking_signatures_refuses_a_channel_with_the_wrong_secret_permanently() -> None:
    with WebhookSink(secret=SECRET) as sink:
        with pytest.raises(DeliveryFailed) as failure:
            run(WebhookChannel(b"not-the-shared-secret").deliver(notification(), sink.url, allow_private=True))
        assert sink.deliveries == [] and len(sink.requests) == 1
    assert failure.value.status == 401 and failure.value.transient is False


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (410, False),
    ],
)
def test_webhook_failures_are_classified_by_status(status: int, transient: bool) -> None:
    with WebhookSink() as sink:
        sink.fail_next(1, status, headers={"Retry-After": "7"} if status == 429 else None)
        channel = WebhookChannel(SECRET)
        with pytest.raises(DeliveryFailed) as failure:
            run(channel.deliver(notification(), sink.url, allow_private=True))
        run(channel.deliver(notification(), sink.url, allow_private=True))  # one attempt per call: the next call goes through
        assert len(sink.requests) == 2 and len(sink.deliveries) == 1
    assert failure.value.status == status and failure.value.transient is transient


def test_connection_refused_dropped_and_timed_out_are_transient_and_name_no_url() -> None:
    secret_url = closed_port_url("/hooks/jit?code=function-key-must-not-leak")
    with pytest.raises(DeliveryFailed) as refused:
        run(WebhookChannel(SECRET).deliver(notification(), secret_url, allow_private=True))
    assert refused.value.transient is True and refused.value.status == 0
    assert "function-key" not in str(refused.value) and "/hooks" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__

    with WebhookSink() as sink:
        sink.drop_next(1)
        with pytest.raises(DeliveryFailed) as dropped:
            run(WebhookChannel(SECRET).deliver(notification(), sink.url, allow_private=True))
        sink.delay_next(1, 1.0)

        async def impatient() -> None:
            async with httpx.AsyncClient(timeout=0.2) as client:
                await WebhookChannel(SECRET, client).deliver(notification(), sink.url, allow_private=True)

        with pytest.raises(DeliveryFailed) as timed_out:
            run(impatient())
    assert dropped.value.transient is True and timed_out.value.transient is True
    assert "timed out" in str(timed_out.value)


def test_only_https_addresses_are_accepted_unless_an_admin_allowed_private_networks() -> None:
    for address in ("http://hooks.example.com/x", "ftp://hooks.example.com/x", "not a url", "https:///nohost"):
        with pytest.raises(DeliveryFailed) as failure:
            run(WebhookChannel(SECRET).deliver(notification(), address))
        assert failure.value.transient is False, address


def test_a_webhook_channel_needs_a_secret_and_hides_it() -> None:
    with pytest.raises(ValueError):
        WebhookChannel(b"")
    assert SECRET.decode() not in repr(WebhookChannel(SECRET))


# --- Teams / Workflows -----------------------------------------------------------------------------------------------


def test_teams_gets_the_documented_adaptive_card_message() -> None:
    with WebhookSink(reply_body=b"1") as sink:
        run(TeamsChannel().deliver(notification(), sink.url, allow_private=True))
        [message] = sink.payloads()
    assert message["type"] == "message" and len(message["attachments"]) == 1
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0] == {
        "type": "TextBlock",
        "text": "Exchange Administrator for jit-bob@contoso.onmicrosoft.com",  # nothing here Teams would render as Markdown
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
    }
    [fact_set] = [element for element in card["body"] if element["type"] == "FactSet"]
    facts = {fact["title"]: fact["value"] for fact in fact_set["facts"]}
    assert facts["User"] == render.inert("jit-bob@contoso.onmicrosoft.com")
    assert facts["Roles"] == "Exchange Administrator, User Administrator"
    assert facts["End"] == render.inert("2026-03-02 11:00 UTC") and facts["Ticket"] == "4711"
    assert all(isinstance(fact["value"], str) and fact["value"] for fact in fact_set["facts"])
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl", "Action.OpenUrl"]
    assert [a["url"] for a in card["actions"]] == [GRANT_URL, CREDENTIALS_URL]
    assert any(e.get("text") == render.CREDENTIALS_SENTENCE for e in card["body"])
    # Only the element types Teams webhooks support (no Action.Submit).
    assert {e["type"] for e in card["body"]} <= {"TextBlock", "FactSet"}


def test_teams_throttling_reported_inside_a_200_is_transient() -> None:
    throttled = b"Microsoft Teams endpoint returned HTTP error 429 with ContextId abc"
    with WebhookSink(reply_body=throttled) as sink, pytest.raises(DeliveryFailed) as failure:
        run(TeamsChannel().deliver(notification(), sink.url, allow_private=True))
    assert failure.value.transient is True and failure.value.status == 429
    with WebhookSink() as sink:
        sink.fail_next(1, 400, b"Summary or Text is required.")
        with pytest.raises(DeliveryFailed) as bad:
            run(TeamsChannel().deliver(notification(), sink.url, allow_private=True))
    assert bad.value.transient is False and bad.value.status == 400


# --- email through Graph sendMail ------------------------------------------------------------------------------------


def graph_directories(base_url: str) -> GraphMail:
    return GraphMail(GraphGateways(GraphSettings(base_url=base_url, auth=GraphAuth.DEVELOPMENT)))


def test_email_goes_through_graph_sendmail_as_readable_html(graph: GraphSimulator) -> None:
    tenant = graph.tenant(TENANT_GUID)
    mailbox = f"jit-notifications@{TENANT}"
    sender_id = tenant.add_user(mailbox, "JIT notifications", has_mailbox=True)
    channel = EmailChannel(graph_directories(graph.base_url), mailbox=mailbox, mailbox_tenant=TENANT_GUID)
    run(channel.deliver(notification(), "alice@msp.example; ops@msp.example"))
    [sent] = tenant.sent_messages
    assert sent["sender_id"] == sender_id
    message = sent["message"]
    assert message["subject"] == ("[JIT access] Active: Exchange Administrator for jit-bob@contoso.onmicrosoft.com (ticket 4711)")
    assert [r["emailAddress"]["address"] for r in message["toRecipients"]] == ["alice@msp.example", "ops@msp.example"]
    assert message["body"]["contentType"].lower() == "html"
    content = message["body"]["content"]
    assert content.startswith("<!DOCTYPE html>") and "</html>" in content
    for text in ("jit-bob@contoso.onmicrosoft.com", "Exchange Administrator, User Administrator", "2026-03-02 11:00 UTC", "4711"):
        assert text in content, text
    assert f'href="{CREDENTIALS_URL}"' in content and render.CREDENTIALS_SENTENCE in content
    assert graph.counters["POST /users/{id}/sendMail"] == 1


def test_email_failures_map_graph_errors(graph: GraphSimulator) -> None:
    unknown = EmailChannel(graph_directories(graph.base_url), mailbox=f"nobody@{TENANT}", mailbox_tenant=TENANT_GUID)
    with pytest.raises(DeliveryFailed) as missing:
        run(unknown.deliver(notification(), "alice@msp.example"))
    assert missing.value.status == 404 and missing.value.transient is False

    unreachable = EmailChannel(graph_directories(closed_port_url("/v1.0")), mailbox=f"x@{TENANT}", mailbox_tenant=TENANT_GUID)
    with pytest.raises(DeliveryFailed) as down:
        run(unreachable.deliver(notification(), "alice@msp.example"))
    assert down.value.transient is True

    with pytest.raises(DeliveryFailed) as not_a_mailbox:
        run(unknown.deliver(notification(), "https://hooks.example.com/x"))
    assert not_a_mailbox.value.transient is False
    assert graph.tenant(TENANT_GUID).sent_messages == []


# --- PSA ticket notes ------------------------------------------------------------------------------------------------


def test_halopsa_gets_a_private_action_on_grant_and_on_revoke() -> None:
    with FakeHaloPsa("halo-client", "halo-secret", tickets={4711}) as halo:
        channel = HaloPsaChannel(halo.base_url, "halo-client", "halo-secret")
        run(channel.deliver(notification(), "4711"))
        run(channel.deliver(notification(Event.REVOKED, status="Revoked", links={"grant": GRANT_URL}), "4711"))
        [granted, revoked] = halo.notes[4711]
        assert halo.token_requests == 1  # the token is reused
        [token_request] = [r for r in halo.requests if r.path == "/auth/token"]
    assert granted["ticket_id"] == 4711 and granted["hiddenfromuser"] is True and granted["sendemail"] is False
    assert granted["outcome"] == "Private Note"
    assert "jit-bob@contoso.onmicrosoft.com" in granted["note_html"] and CREDENTIALS_URL in granted["note_html"]
    assert "Revoked" in revoked["note_html"] and CREDENTIALS_URL not in revoked["note_html"]
    assert "halo-secret" not in repr(channel)
    assert b"grant_type=client_credentials" in token_request.body and b"scope=all" in token_request.body


def test_halopsa_renews_a_revoked_token_once_and_refuses_wrong_credentials() -> None:
    with FakeHaloPsa("halo-client", "halo-secret", tenant="contoso") as halo:
        channel = HaloPsaChannel(halo.base_url, "halo-client", "halo-secret", tenant="contoso")
        run(channel.deliver(notification(), "4711"))
        halo.revoke_tokens()
        run(channel.deliver(notification(), "4711"))
        assert len(halo.notes[4711]) == 2 and halo.token_requests == 2

        wrong = HaloPsaChannel(halo.base_url, "halo-client", "wrong-secret", tenant="contoso")
        with pytest.raises(DeliveryFailed) as refused:
            run(wrong.deliver(notification(), "4711"))
        assert refused.value.status == 400 and refused.value.transient is False
        assert "wrong-secret" not in str(refused.value)

        halo.fail_next(1, 503)
        with pytest.raises(DeliveryFailed) as unavailable:
            run(HaloPsaChannel(halo.base_url, "halo-client", "halo-secret", tenant="contoso").deliver(notification(), "4711"))
        assert unavailable.value.transient is True


def test_connectwise_gets_an_internal_note_with_basic_auth_and_client_id() -> None:
    with FakeConnectWise("contoso", "pub", "priv", "client-guid", tickets={4711}) as cw:
        channel = ConnectWiseChannel(cw.site_url, "contoso", "pub", "priv", "client-guid")
        run(channel.deliver(notification(), "4711"))
        run(channel.deliver(notification(Event.EXPIRED, status="Expired", links={}), "4711"))
        [granted, expired] = cw.notes[4711]
        [first, _] = cw.requests
    assert first.path == "/v4_6_release/apis/3.0/service/tickets/4711/notes"
    assert first.header("clientId") == "client-guid" and (first.header("Authorization") or "").startswith("Basic ")
    assert granted["internalAnalysisFlag"] is True and granted["detailDescriptionFlag"] is False
    assert granted["processNotifications"] is False
    assert "User: jit-bob@contoso.onmicrosoft.com" in granted["text"] and "End: 2026-03-02 11:00 UTC" in granted["text"]
    assert CREDENTIALS_URL in granted["text"] and "Expired" in expired["text"]
    assert "priv" not in repr(channel)


def test_connectwise_answers_like_the_vendor_when_auth_or_shape_is_wrong() -> None:
    with FakeConnectWise("contoso", "pub", "priv", "client-guid", tickets={4711}) as cw:
        with pytest.raises(DeliveryFailed) as bad_key:
            run(ConnectWiseChannel(cw.site_url, "contoso", "pub", "wrong", "client-guid").deliver(notification(), "4711"))
        with pytest.raises(DeliveryFailed) as unknown_ticket:
            run(ConnectWiseChannel(cw.site_url, "contoso", "pub", "priv", "client-guid").deliver(notification(), "999"))
        auth = {"Authorization": "Basic " + base64.b64encode(b"contoso+pub:priv").decode(), "clientId": "client-guid"}
        url = f"{cw.site_url}/v4_6_release/apis/3.0/service/tickets/4711/notes"
        no_flag = httpx.post(url, json={"text": "hello"}, headers=auth)
        no_text = httpx.post(url, json={"text": "", "internalAnalysisFlag": True}, headers=auth)
        no_client_id = httpx.post(
            url, json={"text": "x", "internalAnalysisFlag": True}, headers={"Authorization": auth["Authorization"]}
        )
        assert cw.notes == {}
    assert bad_key.value.status == 401 and bad_key.value.transient is False
    assert unknown_ticket.value.status == 404 and unknown_ticket.value.transient is False
    assert no_flag.status_code == 400 and no_flag.json()["code"] == "InvalidObject"
    assert no_text.status_code == 400 and no_text.json()["errors"][0]["field"] == "text"
    assert no_client_id.status_code == 401


def test_autotask_gets_a_ticket_note_with_its_header_auth() -> None:
    with FakeAutotask("INTEGRATIONCODE27CHARACTERS", "api@msp.example", "at-secret", tickets={4711}) as at:
        channel = AutotaskChannel(at.zone_url, "INTEGRATIONCODE27CHARACTERS", "api@msp.example", "at-secret")
        run(channel.deliver(notification(), "4711"))
        run(channel.deliver(notification(Event.REVOKED, status="Revoked", links={}), "#4711"))
        [granted, revoked] = at.notes[4711]
        [first, _] = at.requests
    assert first.path == "/ATServicesRest/V1.0/Tickets/4711/Notes"
    assert first.header("ApiIntegrationCode") == "INTEGRATIONCODE27CHARACTERS" and first.header("UserName") == "api@msp.example"
    assert granted["ticketID"] == 4711 and granted["noteType"] == 1 and granted["publish"] == 1
    assert granted["title"].startswith("[JIT access] Active:") and len(granted["title"]) <= 250
    assert "Roles: Exchange Administrator, User Administrator" in granted["description"]
    assert CREDENTIALS_URL in granted["description"] and revoked["title"].startswith("[JIT access] Revoked:")
    assert "at-secret" not in repr(channel)


def test_autotask_answers_like_the_vendor_when_auth_or_shape_is_wrong() -> None:
    with FakeAutotask("CODE", "api@msp.example", "at-secret", note_types=frozenset({1})) as at:
        with pytest.raises(DeliveryFailed) as bad_secret:
            run(AutotaskChannel(at.zone_url, "CODE", "api@msp.example", "wrong").deliver(notification(), "4711"))
        with pytest.raises(DeliveryFailed) as bad_picklist:
            run(AutotaskChannel(at.zone_url, "CODE", "api@msp.example", "at-secret", note_type=9).deliver(notification(), "4711"))
        at.fail_next(1, 500)
        with pytest.raises(DeliveryFailed) as outage:
            run(AutotaskChannel(at.zone_url, "CODE", "api@msp.example", "at-secret").deliver(notification(), "4711"))
        headers = {"ApiIntegrationCode": "CODE", "UserName": "api@msp.example", "Secret": "at-secret"}
        untitled = httpx.post(
            f"{at.zone_url}/ATServicesRest/V1.0/Tickets/4711/Notes",
            json={"description": "x", "noteType": 1, "publish": 1},
            headers=headers,
        )
        assert at.notes == {}
    assert bad_secret.value.status == 401 and bad_secret.value.transient is False
    assert bad_picklist.value.status == 400 and bad_picklist.value.transient is False
    assert outage.value.transient is True
    assert untitled.status_code == 400 and "title is required by this ticket category." in untitled.json()["errors"]


def test_a_ticket_id_that_is_not_a_psa_number_fails_permanently_without_a_request() -> None:
    with FakeHaloPsa("c", "s") as halo, FakeConnectWise("co", "p", "k", "id") as cw, FakeAutotask("I", "u", "s") as at:
        channels: list[Channel] = [
            HaloPsaChannel(halo.base_url, "c", "s"),
            ConnectWiseChannel(cw.site_url, "co", "p", "k", "id"),
            AutotaskChannel(at.zone_url, "I", "u", "s"),
        ]
        for channel in channels:
            for address in ("INC000123", "", "12a", "-5", "0", "99999999999"):
                with pytest.raises(DeliveryFailed) as failure:
                    run(channel.deliver(notification(), address, allow_private=True))
                assert failure.value.transient is False
        assert halo.requests == cw.requests == at.requests == []


def test_every_channel_satisfies_the_channel_port() -> None:
    channels: list[tuple[Channel, ChannelKind]] = [
        (WebhookChannel(SECRET), ChannelKind.WEBHOOK),
        (TeamsChannel(), ChannelKind.TEAMS),
        (EmailChannel(graph_directories("http://127.0.0.1:1/v1.0"), "m@x.example", TENANT_GUID), ChannelKind.EMAIL),
        (HaloPsaChannel("https://halo.example", "c", "s"), ChannelKind.PSA),
        (ConnectWiseChannel("https://cw.example", "co", "p", "k", "id"), ChannelKind.PSA),
        (AutotaskChannel("https://webservices5.autotask.net", "I", "u", "s"), ChannelKind.PSA),
    ]
    for channel, kind in channels:
        assert channel.kind is kind
        assert inspect.iscoroutinefunction(channel.deliver)


# --- what a notification may say -------------------------------------------------------------------------------------


def test_rendering_takes_nothing_but_a_notification_and_a_notification_has_no_place_for_a_secret() -> None:
    renderers = [render.subject, render.html_body, render.html_fragment, render.plain_text, render.adaptive_card]
    renderers += [render.teams_message, render.webhook_payload, render.facts, render.links]
    for function in renderers:
        parameters = list(inspect.signature(function).parameters.values())
        hints = typing.get_type_hints(function)
        assert [p.name for p in parameters] == ["notification"], function.__name__
        assert hints["notification"] is Notification, function.__name__
    names = {f.name.lower() for f in dataclasses.fields(Notification)}
    assert not {n for n in names if any(word in n for word in ("tap", "pass", "secret", "token", "credential", "key"))}


def test_an_active_grant_points_to_the_credentials_link_and_never_carries_a_pass() -> None:
    active = notification()
    for text in every_rendering(active)[1:]:  # all but the subject line
        assert CREDENTIALS_URL in text
        assert not re.search(r"temporaryAccessPass\"?\s*[:=]|password\s*[:=]", text, re.IGNORECASE)
    assert render.CREDENTIALS_SENTENCE in render.html_body(active) and render.CREDENTIALS_SENTENCE in render.plain_text(active)
    assert "exactly once" in render.CREDENTIALS_SENTENCE
    # Other events never invite anyone to fetch a TAP, even when the link was passed along.
    for text in every_rendering(notification(Event.EXPIRING_SOON)):
        assert CREDENTIALS_URL not in text and render.CREDENTIALS_SENTENCE not in text


def test_a_notification_without_secrets_stays_without_secrets_on_every_wire(graph: GraphSimulator) -> None:
    # Every string the notification holds is known; nothing a receiver gets may look like a credential.
    active = notification(
        links={"grant": GRANT_URL + "?code=FUNCTIONKEY123&view=full", "credentials": CREDENTIALS_URL + "?sig=abc"}
    )
    with (
        WebhookSink() as sink,
        FakeHaloPsa("c", "halo-secret") as halo,
        FakeConnectWise("co", "p", "k", "id") as cw,
        FakeAutotask("I", "u", "at-secret") as at,
    ):
        run(WebhookChannel(SECRET).deliver(active, sink.url, allow_private=True))
        run(TeamsChannel().deliver(active, sink.url, allow_private=True))
        run(HaloPsaChannel(halo.base_url, "c", "halo-secret").deliver(active, "1"))
        run(ConnectWiseChannel(cw.site_url, "co", "p", "k", "id").deliver(active, "1"))
        run(AutotaskChannel(at.zone_url, "I", "u", "at-secret").deliver(active, "1"))
        bodies = [r.body.decode() for r in sink.requests + cw.requests + at.requests]
        bodies += [r.body.decode() for r in halo.requests if r.path.lower() == "/api/actions"]
    tenant = graph.tenant(TENANT_GUID)
    tenant.add_user(f"jit-notifications@{TENANT}", "JIT notifications", has_mailbox=True)
    email = EmailChannel(graph_directories(graph.base_url), f"jit-notifications@{TENANT}", TENANT_GUID)
    run(email.deliver(active, "alice@msp.example"))
    bodies += [json.dumps(m["message"]) for m in tenant.sent_messages]
    assert len(bodies) == 6
    for body in bodies:
        assert "FUNCTIONKEY123" not in body and "sig=" not in body and "code=" not in body
        assert SECRET.decode() not in body and "halo-secret" not in body and "at-secret" not in body
        assert "view=full" in body  # harmless parameters stay


def test_the_html_is_escaped_and_readable() -> None:
    n = notification(
        user="<script>alert(1)</script>", reason='Fix "quotes" & <tags>', ticket_id=None, links={"grant": "javascript:alert(1)"}
    )
    html = render.html_body(n)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&quot;quotes&quot; &amp; &lt;tags&gt;" in html
    assert "javascript:" not in html and "(ticket" not in render.subject(n)
    assert "<h2" in html and "<table" in html and "Exchange Administrator, User Administrator" in html
