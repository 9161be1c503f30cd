"""Loopback receivers for the notification channels' tests and the local stack: a webhook sink and fake
HaloPSA, ConnectWise Manage and Autotask APIs that check the request shapes and authentication their public
documentation describes, and record what they accept.

    with WebhookSink(secret=b"k") as sink:
        sink.fail_next(2, 503)          # the next two requests fail, then deliveries go through
        ... deliver to sink.url ...
        sink.payloads()
"""

from __future__ import annotations

from devstack.fake_receivers._server import LoopbackReceiver, RecordedRequest, Reply
from devstack.fake_receivers.autotask import FakeAutotask
from devstack.fake_receivers.connectwise import FakeConnectWise
from devstack.fake_receivers.halopsa import FakeHaloPsa
from devstack.fake_receivers.webhook_sink import WebhookSink

__all__ = ["FakeAutotask", "FakeConnectWise", "FakeHaloPsa", "LoopbackReceiver", "RecordedRequest", "Reply", "WebhookSink"]
