"""The API's description, built from the ONE route table (jit/api/routes.py) and what it does not say.

    routes.ROUTES ─┐                         method, path, who may call: the paths and their security
    operations.DOCS ─┼─▶ openapi_document()     OpenAPI 3.1, served at GET /api/jit/openapi.json
    models (answers)┘ └▶ connector_definition()  Swagger 2.0 + x-ms-*: the Power Platform custom connector
                         connector_properties()  (connector/apiDefinition.swagger.json, connector/apiProperties.json)

`operations.DOCS` holds, per route name, what the route table does not: summary, description, tag, answers,
parameters, body model, examples, connector visibility, side effects. Request schemas are the request models' own
`model_json_schema()`, so the document says what the code accepts; `models` describes, field for field, what the
views answer. tests/unit/test_openapi.py keeps the two tables and the app's functions in step; the fuzz test
(tests/e2e/test_fuzz_api.py) checks live answers against the document.

Run `python -m jit.api.openapi --connector connector` (scripts/generate-connector) to regenerate the connector files.
"""

from __future__ import annotations

from jit.api.openapi.connector import (
    ConnectorSignIn,
    connector_definition,
    connector_properties,
    connector_registrations,
)
from jit.api.openapi.document import (
    SignIn,
    api_routes,
    component_schemas,
    openapi_document,
    registrations,
)
from jit.api.openapi.files import CONNECTOR_FILES, connector_files, render
from jit.api.openapi.operations import DOCS, PROBLEM_MEDIA_TYPE, SCHEMA_REF

__all__ = [
    "CONNECTOR_FILES",
    "DOCS",
    "PROBLEM_MEDIA_TYPE",
    "SCHEMA_REF",
    "ConnectorSignIn",
    "SignIn",
    "api_routes",
    "component_schemas",
    "connector_definition",
    "connector_files",
    "connector_properties",
    "connector_registrations",
    "openapi_document",
    "registrations",
    "render",
]
