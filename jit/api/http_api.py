"""The HTTP functions (blueprint), registered from the one route table (jit/api/routes.py).

A route for people is served at anonymous level (the app validates the bearer token itself); a route machines may
call is served a second time under `api/svc/` at function level, where the Functions host checks the key. Public
routes need neither.
"""

from __future__ import annotations

import azure.functions as func

from jit.api.http import serve
from jit.api.routes import ROUTES, Audience

bp = func.Blueprint()

for _route in ROUTES:
    _anonymous = func.AuthLevel.ANONYMOUS
    if _route.audience & (Audience.PEOPLE | Audience.PUBLIC):
        bp.function_name(name=_route.name)(
            bp.route(route=_route.full_path, methods=[_route.method], auth_level=_anonymous)(serve(_route, by_key=False))
        )
    if _route.audience & Audience.MACHINES:
        bp.function_name(name=f"{_route.name}_by_key")(
            bp.route(route=_route.machine_path, methods=[_route.method], auth_level=func.AuthLevel.FUNCTION)(
                serve(_route, by_key=True)
            )
        )
