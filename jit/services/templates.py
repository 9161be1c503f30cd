"""Templates fill most of a request: the tenant's own template of that name, else the global one. The request's own
fields override the template's; the merged request is then validated and checked against policy like any other."""

from __future__ import annotations

from typing import Any, Protocol

from jit.domain.errors import FieldError, ValidationFailed

GLOBAL = "global"
# Template fields that are not request fields.
_META = ("name", "scope", "description", "reasonPrefix")


class TemplateDocuments(Protocol):
    def get(self, scope: str, name: str) -> dict[str, Any] | None: ...


def find(documents: TemplateDocuments, tenant: str | None, name: str) -> dict[str, Any] | None:
    return (documents.get(tenant, name) if tenant else None) or documents.get(GLOBAL, name)


def merge(template: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The request a template and a caller's body make together."""
    merged = {k: v for k, v in template.items() if k not in _META}
    # A request giving its own end replaces the template's duration (a request has exactly one of the two).
    if "endDateTime" in body:
        merged.pop("duration", None)
    merged.update(body)
    prefix = template.get("reasonPrefix")
    if prefix:
        reason = body.get("reason")
        merged["reason"] = f"{prefix} {reason}" if isinstance(reason, str) and reason else prefix
    return merged


def expand(documents: TemplateDocuments, body: Any, tenant: str | None) -> Any:
    """The body with its template applied; ValidationFailed when the named template does not exist."""
    if not isinstance(body, dict) or not isinstance(body.get("templateName"), str):
        return body
    template = find(documents, tenant, body["templateName"])
    if template is None:
        where = f"tenant {tenant} or global" if tenant else "global"
        raise ValidationFailed([FieldError("templateName", f"no template named {body['templateName']} ({where})")])
    return merge(template, body)
