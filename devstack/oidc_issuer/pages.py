"""The one page a person sees: "Sign in as", a list of the configured people, and Cancel."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .issuer import OidcIssuer

_AUTHORIZE_FIELDS = (
    "client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method",
)  # fmt: skip


def sign_in_form(issuer: OidcIssuer, tenant: str, client_name: str, params: Mapping[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">' for name in _AUTHORIZE_FIELDS if name in params
    )
    people = [p for p in issuer.people if p.tenant_id == tenant]
    choices = "".join(
        f'<li><button type="submit" name="person" value="{p.object_id}">'
        f'<span class="name">{html.escape(p.name)}</span> <span class="upn">{html.escape(p.preferred_username)}</span> '
        f'<span class="roles">{html.escape(", ".join(p.roles) or "no app roles")}</span></button></li>'
        for p in people
    )
    return (
        f"<p>Local test issuer: choose who signs in to <strong>{html.escape(client_name)}</strong>. No password is asked; "
        "this page exists only on this machine.</p>"
        f'<form method="post">{hidden}'
        f'<ul aria-label="People">{choices or "<li>No people are configured for this tenant.</li>"}</ul>'
        '<button type="submit" name="cancel" value="1" class="cancel">Cancel</button></form>'
    )


def html_page(title: str, content: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · local issuer</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }}
ul {{ list-style: none; padding: 0; }} li {{ margin: .5rem 0; }}
button {{ width: 100%; text-align: left; padding: .75rem 1rem; font: inherit; border: 1px solid #605e5c; border-radius: 4px;
  background: #fff; color: inherit; cursor: pointer; }}
button:hover {{ background: #f3f2f1; }} button:focus-visible {{ outline: 3px solid #0f6cbd; outline-offset: 2px; }}
.name {{ font-weight: 600; }} .upn, .roles {{ display: block; color: #484644; }} .cancel {{ text-align: center; }}
</style></head>
<body><main><h1>{html.escape(title)}</h1>{content}</main></body></html>
"""
