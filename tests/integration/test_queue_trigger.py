"""The queue trigger as the Functions host runs it: malformed messages are dropped, failures retried then poisoned."""

from __future__ import annotations

import base64
from typing import Any

from azure.storage.queue import TextBase64EncodePolicy

from jit import bootstrap
from tests.conftest import Stack, body_of, valid_request


def send_raw(stack: Stack, text: str) -> None:
    stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"], message_encode_policy=TextBase64EncodePolicy()).send_message(text)


def test_a_message_this_product_did_not_write_is_dropped(stack: Stack, caplog: Any) -> None:
    stack.services.storage.queue(stack.env["JIT_WORK_QUEUE"])
    send_raw(stack, '{"hello": "world"}')
    assert stack.drain() == 1
    assert stack.host.failures == []
    assert stack.queued() == 0
    assert "malformed work message" in caplog.text


def test_a_message_for_an_unknown_grant_changes_nothing(stack: Stack) -> None:
    stack.services.storage.queue(stack.env["JIT_WORK_QUEUE"])
    send_raw(stack, '{"tenantId": "contoso.onmicrosoft.com", "grantId": "01JD0000000000000000000000", "step": "provision"}')
    assert stack.drain() == 1
    assert stack.host.failures == []


def test_a_redelivered_message_is_harmless(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    queue = stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"])
    copy = queue.peek_messages()[0].content
    stack.drain()
    queue.send_message(copy)  # the same message, delivered a second time
    stack.drain()
    history = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["history"]
    assert [h["to"] for h in history] == ["Scheduled", "Provisioning", "Active"]
    assert len([u for u in stack.tenant.users if u["displayName"] == "JIT Admin for ticket 4711"]) == 1


def test_a_failing_message_is_retried_then_poisoned(make_stack: Any) -> None:
    stack = make_stack()
    stack.host.retry_visibility_seconds = 0
    grant = body_of(stack.post_request(valid_request()))

    def broken(item: Any) -> None:
        raise RuntimeError("storage is on fire")

    # The service object is frozen; break it for this test only (the stack is thrown away afterwards).
    object.__setattr__(bootstrap.services().lifecycle, "handle", broken)
    for _ in range(stack.host.max_dequeue_count + 1):
        stack.drain(rounds=1)
    assert len(stack.host.failures) == stack.host.max_dequeue_count
    assert stack.queued() == 0
    poison = stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"] + "-poison").peek_messages()
    assert len(poison) == 1
    assert grant["id"] in base64.b64decode(poison[0].content).decode()
