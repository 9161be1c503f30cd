"""The HTTP functions (blueprint), registered from the one route table (jit/api/routes.py).

A route for people is served at anonymous level (the app validates the bearer token itself); a route machines may
call is served a second time under `api/svc/` at function level, where the Functions host checks the key. Public
routes need neither.
"""

from __future__ import annotations

import azure.functions as func

from jit.api.http import serve
from jit.api.routes import ROUTES, Audience, Route

bp = func.Blueprint()


def _register(name: str, path: str, level: func.AuthLevel, route: Route, *, by_key: bool) -> None:
    function = serve(route, by_key=by_key)
    if route.enqueues:
        # Work asked for at once leaves through the binding: the host tells this instance's queue listener at once.
        function = bp.queue_output(arg_name="work", queue_name="%JIT_WORK_QUEUE%", connection="AzureWebJobsStorage")(function)
    bp.function_name(name=name)(bp.route(route=path, methods=[route.method], auth_level=level)(function))


for _route in ROUTES:
    if _route.audience & (Audience.PEOPLE | Audience.PUBLIC):
        _register(_route.name, _route.full_path, func.AuthLevel.ANONYMOUS, _route, by_key=False)
    if _route.audience & Audience.MACHINES:
        _register(f"{_route.name}_by_key", _route.machine_path, func.AuthLevel.FUNCTION, _route, by_key=True)
