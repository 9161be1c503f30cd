"""Who is calling. Behind App Service Authentication the platform sets the principal headers (clients cannot
forge them there); with only a function key, the caller is the key holder."""

from __future__ import annotations

import azure.functions as func

FUNCTION_KEY_CALLER = "function-key"


def actor(req: func.HttpRequest) -> str:
    name = (req.headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or "").strip()
    return name[:256] or FUNCTION_KEY_CALLER
