"""What every channel says, rendered from a `Notification` and nothing else.

Each function takes the notification as its only input. That is the no-secret rule made structural: a
`Notification` has no field for a Temporary Access Pass or a password, so no rendering can contain one; an Active
grant's notification says where the requester retrieves its credential (a TAP or a password), once. Links are also
cleaned of query parameters that carry keys (`code=` is an Azure Functions key), since they end up in mailboxes.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jit.domain.notification import Event, Notification

CREDENTIALS_SENTENCE = (
    "The sign-in credential (a Temporary Access Pass, or an on-premises one-time password) is not part of this "
    "message. The requester can retrieve it at the link below exactly once; after that, or once it expires, it is gone."
)

_LABELS: dict[Event, str] = {
    Event.REQUESTED: "Requested",
    Event.AWAITING_APPROVAL: "Awaiting approval",
    Event.APPROVED: "Approved",
    Event.DENIED: "Denied",
    Event.ACTIVE: "Active",
    Event.EXPIRING_SOON: "Expiring soon",
    Event.EXPIRED: "Expired",
    Event.REVOKED: "Revoked",
    Event.FAILED: "Failed",
    Event.DRIFT_FOUND: "Drift found",
}

_SENTENCES: dict[Event, str] = {
    Event.REQUESTED: "Just-in-time admin access was requested.",
    Event.AWAITING_APPROVAL: "This request is waiting for an approver's decision.",
    Event.APPROVED: "The request was approved.",
    Event.DENIED: "The request was denied.",
    Event.ACTIVE: "The access is now active.",
    Event.EXPIRING_SOON: "The access ends soon.",
    Event.EXPIRED: "The access has ended and was taken away.",
    Event.REVOKED: "The access was ended early.",
    Event.FAILED: "The grant failed.",
    Event.DRIFT_FOUND: "The drift check found the directory out of line with this grant.",
}

# Query parameters that carry keys or signatures, by (lower-cased) name or name fragment.
_SECRET_PARAMS = frozenset({"code", "sig", "signature", "key", "apikey", "token", "access_token", "secret", "password"})
_SECRET_FRAGMENTS = ("secret", "token", "password", "passwd", "sig")

# Teams rejects messages over 28 KB and PSA notes have limits too: free text is clipped well below those.
_MAX_TEXT = 2000


def label(event: Event) -> str:
    return _LABELS.get(event, str(event))


def subject(notification: Notification) -> str:
    """The email subject: what happened, to what, and the ticket when there is one."""
    text = f"[JIT access] {label(notification.event)}: {notification.title}"
    if notification.ticket_id:
        text += f" (ticket {notification.ticket_id})"
    return _one_line(text)[:255]


def facts(notification: Notification) -> list[tuple[str, str]]:
    """The notification as (name, value) pairs, in reading order, empty values left out."""
    rows = [
        ("Status", notification.status),
        ("User", notification.user),
        ("Roles", ", ".join(notification.roles)),
        ("Groups", ", ".join(notification.groups)),
        ("Start", _when(notification.start)),
        ("End", _when(notification.end)),
        ("Ticket", notification.ticket_id or ""),
        ("Requested by", notification.requested_by),
        ("Reason", _clip(notification.reason)),
        ("Detail", _clip(notification.detail)),
        ("Tenant", notification.tenant_id),
        ("Grant", notification.grant_id),
        ("When", _when(notification.occurred_at)),
    ]
    return [(name, value) for name, value in rows if value]


def links(notification: Notification) -> dict[str, str]:
    """The notification's links, cleaned; the credentials link only for an Active grant."""
    cleaned = {name: url for name, url in ((n, safe_link(u)) for n, u in notification.links.items()) if url}
    if notification.event is not Event.ACTIVE:
        cleaned.pop("credentials", None)
    return cleaned


def html_body(notification: Notification) -> str:
    """A complete, plain HTML email: a heading, one sentence, a two-column table, the links."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1b1b1b;line-height:1.4">'
        f"{html_fragment(notification)}"
        '<p style="color:#6b6b6b;font-size:12px">Sent by JIT admin access. Do not reply to this message.</p>'
        "</body></html>"
    )


def html_fragment(notification: Notification) -> str:
    """The body of the email without the document around it (HaloPSA's `note_html` takes this)."""
    esc = html.escape
    parts = [
        f'<h2 style="font-size:18px;margin:0 0 8px">{esc(notification.title)}</h2>',
        f"<p>{esc(_SENTENCES.get(notification.event, ''))}</p>",
        '<table style="border-collapse:collapse" cellpadding="4">',
    ]
    for name, value in facts(notification):
        parts.append(
            f'<tr><th style="text-align:left;vertical-align:top;padding-right:16px">{esc(name)}</th><td>{esc(value)}</td></tr>'
        )
    parts.append("</table>")
    link = links(notification)
    if "grant" in link:
        parts.append(f'<p><a href="{esc(link["grant"])}">Open the grant</a></p>')
    if "credentials" in link:
        parts.append(f"<p><strong>{esc(CREDENTIALS_SENTENCE)}</strong></p>")
        parts.append(f'<p><a href="{esc(link["credentials"])}">{esc(link["credentials"])}</a></p>')
    return "".join(parts)


def plain_text(notification: Notification) -> str:
    """The same content as plain text, for ticket notes that do not render HTML (ConnectWise, Autotask)."""
    lines = [f"JIT admin access: {notification.title}", _SENTENCES.get(notification.event, ""), ""]
    lines += [f"{name}: {value}" for name, value in facts(notification)]
    link = links(notification)
    if "grant" in link:
        lines += ["", f"Grant: {link['grant']}"]
    if "credentials" in link:
        lines += ["", CREDENTIALS_SENTENCE, link["credentials"]]
    return "\n".join(lines).strip()


# Teams renders a subset of Markdown in TextBlocks and FactSets: emphasis, links and lists (Adaptive Cards "Text
# features"). Characters that start emphasis or links are escaped anywhere; list markers only where a list can
# start, at the beginning of a line, so names like "jit-ada" stay readable.
_INLINE = re.compile(r"([\\`*_\[\]()<>~])")
_LIST_START = re.compile(r"^(\s*|\s*\d+(?=[.)]))([-+#.)])", re.MULTILINE)


def inert(text: str) -> str:
    """Text for an Adaptive Card TextBlock or FactSet: a reason or a name a requester wrote shows as written and
    can't turn into a link, emphasis or a list."""
    escaped = _INLINE.sub(r"\\\1", text)
    return _LIST_START.sub(r"\1\\\2", escaped)


def adaptive_card(notification: Notification) -> dict[str, Any]:
    """An Adaptive Card 1.4: title, sentence, a FactSet, the credentials sentence, and OpenUrl actions."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": inert(notification.title), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": _SENTENCES.get(notification.event, ""), "wrap": True, "isSubtle": True, "spacing": "None"},
        {"type": "FactSet", "facts": [{"title": name, "value": inert(value)} for name, value in facts(notification)]},
    ]
    link = links(notification)
    actions: list[dict[str, Any]] = []
    if "grant" in link:
        actions.append({"type": "Action.OpenUrl", "title": "Open the grant", "url": link["grant"]})
    if "credentials" in link:
        body.append({"type": "TextBlock", "text": CREDENTIALS_SENTENCE, "wrap": True, "weight": "Bolder"})
        actions.append(
            {"type": "Action.OpenUrl", "title": "Retrieve the sign-in credential (once)", "url": link["credentials"]}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def teams_message(notification: Notification) -> dict[str, Any]:
    """The message Teams incoming webhooks and Workflows' "webhook request is received" trigger take."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": adaptive_card(notification)}
        ],
    }


def webhook_payload(notification: Notification) -> dict[str, Any]:
    """The generic webhook's JSON: every field of the notification, camelCase, times in UTC ISO 8601."""
    link = links(notification)
    payload: dict[str, Any] = {
        "event": str(notification.event),
        "tenantId": notification.tenant_id,
        "grantId": notification.grant_id,
        "occurredAt": _iso(notification.occurred_at),
        "title": notification.title,
        "status": notification.status,
        "user": notification.user,
        "roles": list(notification.roles),
        "groups": list(notification.groups),
        "start": _iso(notification.start),
        "end": _iso(notification.end),
        "reason": notification.reason,
        "ticketId": notification.ticket_id,
        "requestedBy": notification.requested_by,
        "detail": notification.detail,
        "links": link,
    }
    if "credentials" in link:
        payload["credentials"] = {"url": link["credentials"], "note": CREDENTIALS_SENTENCE}
    return payload


def safe_link(url: str) -> str:
    """The URL without query parameters that carry keys; "" for anything but an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return ""
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _secret_param(k)]
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, urlencode(query), ""))


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or any(fragment in lowered for fragment in _SECRET_FRAGMENTS)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())
