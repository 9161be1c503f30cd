"""Notifications end to end: grant events through the notification queue to real receivers on loopback."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from devstack.fake_receivers import FakeHaloPsa, WebhookSink
from jit.adapters.notify.webhook import verify_signature
from tests.conftest import TENANT, TENANT_GUID, Stack, audit_entries, body_of, valid_request

SECRET = b"test-webhook-secret"


def channel(stack: Stack, name: str, kind: str, *addresses: str, private: bool = True) -> str:
    """An admin configures a named destination (loopback receivers need private networks allowed)."""
    body = {"kind": kind, "addresses": list(addresses), "allowPrivateNetwork": private}
    response = stack.call("PUT", f"/api/jit/channels/{name}", body)
    assert response.status_code in (200, 201), response.get_body()
    return name


def lifecycle(stack: Stack, notifications: dict[str, Any], **extra: Any) -> dict[str, Any]:
    grant = body_of(stack.post_request(valid_request(notifications=notifications, **extra)))
    stack.drain()
    stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "done"})
    stack.drain()
    return grant


def test_a_signed_webhook_hears_every_event_of_a_grant_without_any_secret(stack: Stack) -> None:
    with WebhookSink(secret=SECRET) as sink:
        grant = lifecycle(stack, {"channels": [channel(stack, "hooks", "webhook", sink.url)]})
        payloads = sink.payloads()
    assert [p["event"] for p in payloads] == ["Requested", "Active", "Revoked"]
    assert all(p["grantId"] == grant["id"] for p in payloads)
    for request in sink.deliveries:
        assert verify_signature(SECRET, request.header("X-JIT-Timestamp"), request.body, request.header("X-JIT-Signature"))
        assert not verify_signature(b"other", request.header("X-JIT-Timestamp"), request.body, request.header("X-JIT-Signature"))
    active = payloads[1]
    assert active["credentials"]["url"].endswith(f"/api/jit/requests/{grant['id']}/credentials")
    assert "credentials" not in payloads[2]  # only the Active notification says where the TAP is fetched
    user_id = stack.services.grants.get(grant["id"]).progress.account_id
    passes = [t["temporaryAccessPass"] for t in stack.tenant.taps(user_id)] or []
    password = stack.tenant.password_of(user_id)
    for request in sink.deliveries:
        for secret in [*passes, password]:
            assert secret is None or secret.encode() not in request.body
    audit = [e.action for e in audit_entries(stack, grant_id=grant["id"]) if e.action.startswith("notification.")]
    assert audit.count("notification.delivered") == 3


def test_events_can_be_chosen_per_request(stack: Stack) -> None:
    with WebhookSink(secret=SECRET) as sink:
        lifecycle(stack, {"channels": [channel(stack, "hooks", "webhook", sink.url)], "events": ["Active"]})
        assert [p["event"] for p in sink.payloads()] == ["Active"]


def test_teams_gets_an_adaptive_card(stack: Stack) -> None:
    with WebhookSink() as teams:
        lifecycle(stack, {"channels": [channel(stack, "teams", "teams", teams.url)], "events": ["Active"]})
        [message] = teams.payloads()
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"


def test_email_goes_through_graph_send_mail(make_stack: Any, graph: Any) -> None:
    tenant = graph.tenant("11111111-2222-4333-8444-555555555555")
    tenant.add_user("jit-notify@contoso.onmicrosoft.com", "JIT notifications", has_mailbox=True)
    stack = make_stack(JIT_NOTIFY_MAILBOX="jit-notify@contoso.onmicrosoft.com", JIT_NOTIFY_MAIL_TENANT=TENANT)
    lifecycle(stack, {"channels": [channel(stack, "helpdesk", "email", "helpdesk@msp.example")], "events": ["Active"]})
    [sent] = tenant.sent_messages
    message = sent["message"]["message"] if "message" in sent["message"] else sent["message"]
    assert message["toRecipients"][0]["emailAddress"]["address"] == "helpdesk@msp.example"
    assert "active" in message["subject"].lower()
    assert message["body"]["contentType"].lower() == "html"


def test_psa_ticket_gets_a_note_on_grant_and_on_revoke(make_stack: Any) -> None:
    with FakeHaloPsa("jit-app", "halo-secret") as halo:
        stack = make_stack(
            JIT_PSA_KIND="halopsa",
            JIT_PSA_BASE_URL=halo.base_url,
            JIT_PSA_CLIENT_ID="jit-app",
            JIT_PSA_CLIENT_SECRET="halo-secret",
        )
        lifecycle(stack, {}, ticketId="4711")
        notes = halo.notes
    assert list(notes) == [4711]
    assert len(notes[4711]) == 2  # access granted, access ended
    assert all("halo-secret" not in str(note) for note in notes[4711])


def test_a_failing_receiver_is_retried_with_back_off(make_stack: Any) -> None:
    stack = make_stack(JIT_NOTIFY_RETRY_BASE="PT1S")
    with WebhookSink(secret=SECRET) as sink:
        sink.fail_next(2, 503)
        grant = body_of(
            stack.post_request(valid_request(notifications={"channels": [channel(stack, "hooks", "webhook", sink.url)], "events": ["Requested"]}))
        )
        deadline = time.monotonic() + 15
        while not sink.payloads() and time.monotonic() < deadline:
            stack.drain()
            time.sleep(0.3)
        assert [p["event"] for p in sink.payloads()] == ["Requested"]
        assert len(sink.requests) == 3  # two refusals, then the delivery
    outcomes = [e.outcome for e in audit_entries(stack, grant_id=grant["id"]) if e.action.startswith("notification.")]
    assert outcomes == ["retry", "retry", "success"]


def test_a_permanent_refusal_and_a_missing_channel_end_in_dead_letters_and_the_grant_goes_on(stack: Stack) -> None:
    with WebhookSink(secret=b"not the secret") as wrong_key:  # every signature fails: 401
        names = [channel(stack, "hooks", "webhook", wrong_key.url), channel(stack, "mail", "email", "a@b.example")]
        grant = lifecycle(stack, {"channels": names, "events": ["Active"]})
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Revoked"
    dead = stack.services.deliveries.dead_letters(TENANT_GUID)
    assert sorted(d["channel"] for d in dead) == ["email", "webhook"]
    assert any("not configured" in d["error"] for d in dead)
    assert all("?" not in d["address"] for d in dead)


def test_an_unreachable_receiver_never_blocks_the_grant(make_stack: Any) -> None:
    stack = make_stack(JIT_NOTIFY_RETRY_BASE="PT1S")
    sink = WebhookSink(secret=SECRET).start()
    url = sink.url
    sink.stop()  # nothing listens there any more
    grant = lifecycle(stack, {"channels": [channel(stack, "gone", "webhook", url)]})
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Revoked"


def test_expiring_soon_is_announced_before_the_end(make_stack: Any) -> None:
    stack = make_stack(JIT_NOTIFY_EXPIRING_LEAD="PT15M")
    with WebhookSink(secret=SECRET) as sink:
        hooks = channel(stack, "hooks", "webhook", sink.url)
        grant = body_of(stack.post_request(valid_request(notifications={"channels": [hooks], "events": ["ExpiringSoon"]})))
        stack.drain()
        end = stack.services.grants.get(grant["id"]).request.end
        stack.clock.current = end - timedelta(minutes=14)
        stack.host.fire("schedule_sweep")
        stack.drain()
        stack.host.fire("schedule_sweep")
        stack.drain()
        assert [p["event"] for p in sink.payloads()] == ["ExpiringSoon"]


def test_drift_findings_go_to_the_default_targets(make_stack: Any) -> None:
    with WebhookSink(secret=SECRET) as sink:
        stack = make_stack(JIT_NOTIFY_WEBHOOK_URLS=sink.url)
        stack.post_request(valid_request(startDateTime=(stack.clock.now() + timedelta(days=1)).isoformat()))
        stack.tenant.add_user("jit-ghost@contoso.onmicrosoft.com", "Ghost", employee_type="JIT:01JD0000000000000000000777")
        stack.host.fire("drift_check")
        stack.drain()
        events = [p["event"] for p in sink.payloads()]
    assert events == ["Requested", "DriftFound"]


def test_every_transition_maps_to_its_event() -> None:
    from datetime import UTC, datetime

    from jit.domain.grant import Status, Transition
    from jit.domain.notification import Event
    from jit.services.notify import event_of

    now = datetime.now(UTC)
    cases = {
        (None, Status.SCHEDULED): Event.REQUESTED,
        (None, Status.AWAITING_APPROVAL): Event.AWAITING_APPROVAL,
        (Status.AWAITING_APPROVAL, Status.SCHEDULED): Event.APPROVED,
        (Status.AWAITING_APPROVAL, Status.DENIED): Event.DENIED,
        (Status.PROVISIONING, Status.ACTIVE): Event.ACTIVE,
        (Status.EXPIRING, Status.EXPIRED): Event.EXPIRED,
        (Status.EXPIRING, Status.REVOKED): Event.REVOKED,
        (Status.SCHEDULED, Status.CANCELLED): Event.REVOKED,
        (Status.PROVISIONING, Status.FAILED): Event.FAILED,
        (Status.PROVISIONING, Status.AWAITING_APPROVAL): Event.AWAITING_APPROVAL,
        (Status.SCHEDULED, Status.PROVISIONING): None,
        (Status.ACTIVE, Status.EXPIRING): None,
    }
    for (came_from, to), expected in cases.items():
        assert event_of(Transition(came_from, to, now, "x")) is expected, (came_from, to)


def test_email_is_not_saved_to_sent_items(make_stack: Any, graph: Any) -> None:
    tenant = graph.tenant("11111111-2222-4333-8444-555555555555")
    tenant.add_user("jit-notify@contoso.onmicrosoft.com", "JIT notifications", has_mailbox=True)
    stack = make_stack(JIT_NOTIFY_MAILBOX="jit-notify@contoso.onmicrosoft.com", JIT_NOTIFY_MAIL_TENANT=TENANT)
    lifecycle(stack, {"channels": [channel(stack, "helpdesk", "email", "helpdesk@msp.example")], "events": ["Revoked"]})
    [sent] = tenant.sent_messages
    assert sent["save_to_sent_items"] is False


# Notifications can't be aimed inward --------------------------------------------------------------------------


def test_a_request_can_not_name_addresses_only_channels(stack: Stack) -> None:
    for field, value in (("webhookUrls", ["http://127.0.0.1:9/x"]), ("teamsWebhookUrls", ["https://x.example"]), ("emails", ["ceo@x.example"])):
        response = stack.post_request(valid_request(notifications={field: value}))
        assert response.status_code == 400
        assert [e["field"] for e in body_of(response)["errors"]] == [f"notifications.{field}"]
        assert "channel" in body_of(response)["errors"][0]["detail"]


def test_a_channel_to_a_private_address_is_refused_unless_an_admin_allowed_it(stack: Stack) -> None:
    with WebhookSink(secret=SECRET) as sink:
        # "localhost" resolves to loopback: refused after resolution, with no request made.
        inward = sink.url.replace("127.0.0.1", "localhost").replace("http://", "https://")
        grant = lifecycle(stack, {"channels": [channel(stack, "inward", "webhook", inward, private=False)], "events": ["Active"]})
        assert sink.requests == []
    dead = stack.services.deliveries.dead_letters(TENANT_GUID)
    assert [d["channel"] for d in dead] == ["webhook"]
    assert "private, loopback, link-local or metadata" in dead[0]["error"]
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Revoked"


def test_metadata_and_private_addresses_are_not_public() -> None:
    import ipaddress

    from jit.adapters.notify._http import is_public

    for address in ("169.254.169.254", "10.1.2.3", "192.168.0.1", "172.16.0.1", "127.0.0.1", "100.64.0.1", "0.0.0.0",
                    "::1", "fd00:ec2::254", "fe80::1", "::ffff:169.254.169.254", "224.0.0.1"):
        assert not is_public(ipaddress.ip_address(address)), address
    for address in ("20.190.151.68", "2603:1030::1"):
        assert is_public(ipaddress.ip_address(address)), address


def test_requesters_see_channel_names_never_their_addresses(stack: Stack) -> None:
    from tests.conftest import principal

    channel(stack, "secops", "teams", "https://prod-00.westeurope.logic.azure.com/workflows/x?sig=SECRET")
    listed = body_of(stack.call("GET", "/api/jit/channels", headers=principal("req@msp.com", "Jit.Requester")))["value"]
    assert listed == [{"name": "secops", "kind": "teams", "description": ""}]
    assert "SECRET" not in json_dump(listed)


def json_dump(value: Any) -> str:
    import json

    return json.dumps(value)


def test_teams_card_text_is_escaped(stack: Stack) -> None:
    with WebhookSink() as teams:
        lifecycle(
            stack,
            {"channels": [channel(stack, "teams", "teams", teams.url)], "events": ["Active"]},
            reason="Fix [this](https://evil.example) **now** please",
        )
        [message] = teams.payloads()
    text = json_dump(message)
    assert "[this](https://evil.example)" not in text
    assert "**now**" not in text
