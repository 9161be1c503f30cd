"""One HTTP attempt for a channel, and how its outcome becomes a `DeliveryFailed`.

Channel addresses are often secrets in themselves (a Teams or Workflows URL carries its signature in the path or
query; a webhook URL may carry a key), so nothing here ever puts a URL, a header or a request body into a message:
failures name the host and the status only, and exceptions are raised without their cause (httpx's own errors
keep the request, and with it the URL, on them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from jit.domain.notification import DeliveryFailed

# Short on purpose: the dispatcher retries with back-off, so a slow receiver should fail fast, not hold a worker.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# 408 and 425 are "try again" by definition; 429 is throttling; every 5xx is the receiver's own trouble.
_TRANSIENT_4XX = frozenset({408, 425, 429})


def host_of(url: str) -> str:
    """The host (and port) of a URL: all a log line or an error message may say about an address."""
    try:
        parts = urlsplit(url)
        return parts.netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


def check_url(url: str, what: str, *, allow_private: bool = False) -> None:
    """Refuse anything but https (plain http only where an admin allowed private networks, for local receivers): a
    notification carries names and links that should not cross a network in clear text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise DeliveryFailed(f"{what}: the address is not a URL", transient=False) from None
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and allow_private:
        return
    raise DeliveryFailed(f"{what}: the address must be an https URL", transient=False)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address on the public internet: not loopback, private, link-local (cloud metadata, 169.254.169.254),
    shared (100.64/10), reserved, multicast or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def pinned(url: str, what: str, *, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Resolve the URL's host once, refuse it unless every address is public (or an admin allowed private networks
    for this destination), and answer the URL to connect to — the resolved address, so a second lookup (DNS
    rebinding) cannot send the request elsewhere — with the Host header and TLS name of the original."""
    import asyncio
    import socket

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise DeliveryFailed(f"{what}: {host_of(url)} does not resolve", transient=True) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    refused = [a for a in addresses if not is_public(a)]
    if refused and not allow_private:
        raise DeliveryFailed(
            f"{what}: {host_of(url)} resolves to a private, loopback, link-local or metadata address; "
            "an admin must allow private networks for this channel",
            transient=False,
        )
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = parts._replace(netloc=netloc).geturl()
    return target, {"Host": parts.netloc.rpartition("@")[2]}, {"sni_hostname": host}


async def send(
    client: httpx.AsyncClient | None,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str],
    content: bytes | None = None,
    data: Mapping[str, str] | None = None,
    allow_private: bool = False,
) -> httpx.Response:
    """Make exactly one request; answer the response when it is 2xx, raise `DeliveryFailed` otherwise.

    Without a shared client, one is made for this request alone: it cannot outlive an event loop that way.
    """
    check_url(url, what, allow_private=allow_private)
    target, host_header, extensions = await pinned(url, what, allow_private=allow_private)
    options: dict[str, Any] = {"headers": {**dict(headers), **host_header}, "extensions": extensions}
    if content is not None:
        options["content"] = content
    if data is not None:
        options["data"] = dict(data)
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False) as own:
                response = await own.request(method, target, **options)
        else:
            response = await client.request(method, target, **options)
    except httpx.TimeoutException as error:
        raise DeliveryFailed(f"{what}: {host_of(url)} timed out ({type(error).__name__})", transient=True) from None
    except httpx.TransportError as error:
        raise DeliveryFailed(f"{what}: connection to {host_of(url)} failed ({type(error).__name__})", transient=True) from None
    raise_for_status(response, what)
    return response


def raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    # A redirect is not followed (it would carry our headers elsewhere); it means the address is wrong.
    transient = status >= 500 or status in _TRANSIENT_4XX
    reason = response.reason_phrase or ""
    raise DeliveryFailed(
        f"{what}: {host_of(str(response.url))} answered {status} {reason}".rstrip(), transient=transient, status=status
    )
