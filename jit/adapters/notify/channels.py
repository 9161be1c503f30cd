"""The notification channels the settings configure. A channel without its settings is simply absent: a target for
it becomes a dead letter that says so, and the grant is unaffected."""

from __future__ import annotations

from typing import Any

from jit.adapters.notify.email import EmailChannel
from jit.adapters.notify.psa import AutotaskChannel, ConnectWiseChannel, HaloPsaChannel
from jit.adapters.notify.teams import TeamsChannel
from jit.adapters.notify.webhook import WebhookChannel
from jit.domain.notification import ChannelKind
from jit.services.notify_ports import Channel
from jit.settings import ConfigurationError, Settings


def notification_channels(settings: Settings, graph: Any) -> dict[ChannelKind, Channel]:
    notify = settings.notify
    channels: dict[ChannelKind, Channel] = {ChannelKind.TEAMS: TeamsChannel()}
    if notify.webhook_secret:
        channels[ChannelKind.WEBHOOK] = WebhookChannel(notify.webhook_secret.encode())
    if notify.mailbox and notify.mail_tenant:
        from jit.adapters.graph.mail import GraphMail

        channels[ChannelKind.EMAIL] = EmailChannel(GraphMail(graph), notify.mailbox, notify.mail_tenant)
    psa = psa_channel(notify.psa)
    if psa is not None:
        channels[ChannelKind.PSA] = psa
    return channels


def psa_channel(values: dict[str, str]) -> Channel | None:
    """The PSA channel `JIT_PSA_KIND` names, built from its JIT_PSA_* settings (a clear error naming what is missing)."""
    kind = values.get("JIT_PSA_KIND", "none").lower()
    if kind == "none":
        return None
    needs = {
        "halopsa": ["JIT_PSA_BASE_URL", "JIT_PSA_CLIENT_ID", "JIT_PSA_CLIENT_SECRET"],
        "connectwise": ["JIT_PSA_BASE_URL", "JIT_PSA_COMPANY", "JIT_PSA_PUBLIC_KEY", "JIT_PSA_PRIVATE_KEY", "JIT_PSA_CLIENT_ID"],
        "autotask": ["JIT_PSA_BASE_URL", "JIT_PSA_INTEGRATION_CODE", "JIT_PSA_USERNAME", "JIT_PSA_SECRET"],
    }[kind]
    missing = [name for name in needs if not values.get(name)]
    if missing:
        raise ConfigurationError(f"JIT_PSA_KIND={kind} needs {', '.join(missing)}")
    get = values.get
    if kind == "halopsa":
        return HaloPsaChannel(
            values["JIT_PSA_BASE_URL"],
            values["JIT_PSA_CLIENT_ID"],
            values["JIT_PSA_CLIENT_SECRET"],
            auth_url=get("JIT_PSA_AUTH_URL"),
            tenant=get("JIT_PSA_TENANT"),
        )
    if kind == "connectwise":
        return ConnectWiseChannel(
            values["JIT_PSA_BASE_URL"],
            values["JIT_PSA_COMPANY"],
            values["JIT_PSA_PUBLIC_KEY"],
            values["JIT_PSA_PRIVATE_KEY"],
            values["JIT_PSA_CLIENT_ID"],
        )
    return AutotaskChannel(
        values["JIT_PSA_BASE_URL"], values["JIT_PSA_INTEGRATION_CODE"], values["JIT_PSA_USERNAME"], values["JIT_PSA_SECRET"]
    )
