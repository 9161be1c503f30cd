"""Email through Microsoft Graph `sendMail`, from one configured mailbox in one (the operator's) tenant.

The Graph call itself is `GraphMail.send_mail` (POST /users/{mailbox}/sendMail through msgraph-sdk's transport, with
the app's Mail.Send application permission); this channel renders the message and turns Graph's errors
(already `DirectoryError`s, with `transient` set for 429, 5xx and dropped connections) into `DeliveryFailed`.
"""

from __future__ import annotations

import re
from typing import Protocol

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from jit.adapters.notify.render import html_body, subject
from jit.domain.notification import ChannelKind, DeliveryFailed, Notification
from jit.services.access_backend import DirectoryError

_SEPARATORS = re.compile(r"[;,\s]+")


class MailSender(Protocol):
    async def send_mail(self, mailbox: str, to: list[str], subject: str, html: str) -> None: ...


class MailSenders(Protocol):
    """What `jit.adapters.graph.mail.GraphMail` offers: a tenant's mail sender."""

    def for_tenant(self, tenant: str) -> MailSender: ...


class EmailChannel:
    """Sends the HTML notification from `mailbox` (a UPN or object id in `mailbox_tenant`) to the address.

    The address is one mailbox, or several separated by `;` or `,`. One Graph call per delivery; the SDK's
    retry middleware may repeat a 429/503/504 a few times inside it, with short delays, as for every Graph call.
    """

    kind = ChannelKind.EMAIL

    def __init__(self, directories: MailSenders, mailbox: str, mailbox_tenant: str) -> None:
        if not mailbox or not mailbox_tenant:
            raise ValueError("the sending mailbox and its tenant are required")
        self._directories = directories
        self._mailbox = mailbox
        self._tenant = mailbox_tenant

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        recipients = [part for part in _SEPARATORS.split(address.strip()) if part]
        if not recipients or not all(_looks_like_mailbox(r) for r in recipients):
            raise DeliveryFailed("email: the address is not a mailbox", transient=False)
        try:
            await self._directories.for_tenant(self._tenant).send_mail(
                self._mailbox, recipients, subject(notification), html_body(notification)
            )
        except DirectoryError as error:
            code = error.code or type(error).__name__
            message = f"email: Graph sendMail failed: {code} ({error.status}) {error.message[:200]}".rstrip()
            raise DeliveryFailed(message, transient=error.transient, status=error.status) from None
        except ClientAuthenticationError:
            # No token for the mailbox's tenant: configuration (consent, credentials), not a passing fault.
            raise DeliveryFailed("email: could not get a Graph token for the mailbox's tenant", transient=False) from None
        except ServiceRequestError:
            raise DeliveryFailed("email: the token endpoint could not be reached", transient=True) from None


def _looks_like_mailbox(address: str) -> bool:
    local, _, domain = address.partition("@")
    return bool(local) and "." in domain and not domain.startswith(".")
