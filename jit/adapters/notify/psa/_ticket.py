"""What the PSA channels share: the ticket number from the address."""

from __future__ import annotations

from jit.domain.notification import DeliveryFailed

_MAX_TICKET = 2**31 - 1  # all three APIs type ticket ids as 32-bit integers


def ticket_number(address: str, what: str) -> int:
    """The ticket id a note goes to; a request's free-form `ticketId` (such as "INC000123") cannot be one."""
    text = address.strip().lstrip("#")
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= _MAX_TICKET:
        raise DeliveryFailed(f"{what}: the ticket id is not a {what} ticket number", transient=False)
    return int(text)
