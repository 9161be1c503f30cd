"""The API's own description (blueprint): GET /api/jit/openapi.json, built from jit/api/openapi.py's route table.

It needs a function key like every route but /api/health: the description holds no secret, but it is a map of
the admin API, and whoever may call the API already has a key (the connector ships in connector/, so importing it
needs no call here).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import azure.functions as func

from jit.api import openapi, problems

bp = func.Blueprint()


@bp.route(route="jit/openapi.json", methods=["GET"])
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    try:
        parts = urlsplit(req.url)
        server = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
        body = json.dumps(openapi.openapi_document(server))
    except Exception as error:  # noqa: BLE001 - every error becomes a problem-details answer
        return problems.from_error(error)
    return func.HttpResponse(body, status_code=200, mimetype="application/json")
