"""Sending mail through Microsoft Graph: POST /users/{mailbox}/sendMail (Mail.Send), not kept in Sent Items."""

from __future__ import annotations

from jit.adapters.graph.clients import GraphGateways
from jit.adapters.graph.gateway import GraphCall, GraphGateway, segment


class _Sender:
    def __init__(self, gateway: GraphGateway) -> None:
        self._gateway = gateway

    async def send_mail(self, mailbox: str, to: list[str], subject: str, html: str) -> None:
        message = {
            "subject": subject,
            "body": {"contentType": "HTML", "content": html},
            "toRecipients": [{"emailAddress": {"address": address}} for address in to],
        }
        await self._gateway.send(
            GraphCall("POST", f"/users/{segment(mailbox)}/sendMail", body={"message": message, "saveToSentItems": False})
        )


class GraphMail:
    def __init__(self, gateways: GraphGateways) -> None:
        self._gateways = gateways

    def for_tenant(self, tenant: str) -> _Sender:
        return _Sender(self._gateways.for_tenant(tenant))
