"""Writing the description and the connector files (scripts/generate-connector)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jit.api.openapi.connector import CONNECTOR_HOST, ConnectorSignIn, connector_definition, connector_properties
from jit.api.openapi.document import openapi_document

CONNECTOR_FILES = ("apiDefinition.swagger.json", "apiProperties.json")


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def connector_files(host: str = CONNECTOR_HOST, sign_in: ConnectorSignIn | None = None) -> dict[str, str]:
    return {
        "apiDefinition.swagger.json": render(connector_definition(host, sign_in)),
        "apiProperties.json": render(connector_properties(sign_in)),
    }


def main(argv: list[str] | None = None) -> int:
    defaults = ConnectorSignIn()
    parser = argparse.ArgumentParser(description="Write the API description and the Power Platform connector files.")
    parser.add_argument("--connector", type=Path, help="write apiDefinition.swagger.json and apiProperties.json here")
    parser.add_argument("--host", default=CONNECTOR_HOST, help="the function app's host name, for the connector")
    parser.add_argument("--client-id", default=defaults.client_id, help="the connector's own app registration (client id)")
    parser.add_argument("--tenant", default=defaults.tenant, help="the Entra ID tenant id people sign in to (the MSP's)")
    parser.add_argument("--resource", default=defaults.resource, help="the JIT API's Application ID URI (default %(default)s)")
    parser.add_argument("--redirect-url", help="the connector's redirect URL, once Power Platform assigned it")
    parser.add_argument("--openapi", type=Path, help="write the OpenAPI 3.1 document to this file ('-' for stdout)")
    args = parser.parse_args(argv)
    if args.connector is None and args.openapi is None:
        parser.error("say what to write: --connector DIR and/or --openapi FILE")
    if args.connector is not None:
        sign_in = ConnectorSignIn(args.client_id, args.tenant, args.resource, redirect_url=args.redirect_url)
        args.connector.mkdir(parents=True, exist_ok=True)
        for name, text in connector_files(args.host, sign_in).items():
            (args.connector / name).write_text(text)
            print(f"wrote {args.connector / name}")
    if args.openapi is not None:
        text = render(openapi_document())
        if str(args.openapi) == "-":
            sys.stdout.write(text)
        else:
            args.openapi.write_text(text)
            print(f"wrote {args.openapi}")
    return 0
