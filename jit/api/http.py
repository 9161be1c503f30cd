"""What every HTTP handler shares: the call (request, caller, services), parsing, answers, and the one wrapper
that authenticates, runs the handler and turns errors into problem details."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import azure.functions as func

from jit.api import problems
from jit.api.routes import Audience, Route
from jit.domain.caller import AppRole, Caller
from jit.domain.errors import FieldError, Forbidden, ValidationFailed

JSON = "application/json"
# Deeper JSON than any request of this API needs; deeper still would exhaust the parser's recursion.
MAX_JSON_DEPTH = 32
T = TypeVar("T")
Handler = Callable[["Call"], func.HttpResponse | Awaitable[func.HttpResponse]]


@dataclass
class Call:
    """One HTTP call to the API: the request, who makes it (resolved once), and the process's services."""

    req: func.HttpRequest
    route: Route
    by_key: bool  # arrived on a function-key route
    _caller: Caller | None = field(default=None, repr=False)

    @property
    def services(self) -> Any:
        from jit import bootstrap

        return bootstrap.services()

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            from jit.api.identity import caller_of

            self._caller = caller_of(self.req, by_key=self.by_key, settings=self.services.settings)
        return self._caller

    def require(self, *roles: AppRole) -> Caller:
        caller = self.caller
        if not caller.has(*roles):
            raise Forbidden(f"this needs one of the app roles {', '.join(r.value for r in roles)}")
        return caller

    @property
    def params(self) -> Any:
        return self.req.params

    def path(self, name: str) -> str:
        return str(self.req.route_params[name])

    def tenant_param(self, errors: list[FieldError]) -> str | None:
        """The GUID of the onboarded tenant the `tenantId` query names (by GUID or domain), None when it names none;
        a name no onboarded tenant has is an error on `tenantId`."""
        given = self.params.get("tenantId")
        if not given:
            return None
        registration = self.services.tenants.find(given)
        if registration is None:
            errors.append(FieldError("tenantId", "is not an onboarded tenant"))
            return None
        return str(registration.id)

    def absolute(self, path: str) -> str:
        """The URL of `path` on this host; for a caller with a key, under /api/svc/ (where a key is accepted)."""
        if self.by_key and path.startswith("/api/jit/"):
            path = "/api/svc/jit/" + path[len("/api/jit/") :]
        parts = urlsplit(self.req.url)
        return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else path

    def body(self, limit: int | None = None) -> bytes:
        raw = self.req.get_body() or b""
        content_type = (self.req.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()
        if raw and content_type != JSON and not content_type.endswith("+json"):
            raise ValidationFailed([FieldError("body", f"must be sent as {JSON}, not {content_type}")])
        maximum = limit or self.services.settings.max_body_bytes
        if len(raw) > maximum:
            raise problems.TooLarge(f"the body must not exceed {maximum} bytes")
        if raw and json_depth(raw) > MAX_JSON_DEPTH:
            raise ValidationFailed([FieldError("body", f"is nested deeper than {MAX_JSON_DEPTH} levels")])
        return raw


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests (counted on its brackets, outside strings), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse(model: type[T], raw: bytes) -> T:
    """A pydantic model from a JSON body; ValidationFailed naming each bad field otherwise."""
    from pydantic import ValidationError

    try:
        return model.model_validate_json(raw or b"{}")  # type: ignore[attr-defined, no-any-return]
    except ValidationError as invalid:
        raise ValidationFailed([_field_error(e) for e in invalid.errors()]) from None


def _field_error(error: Any) -> FieldError:
    if error["type"] == "json_invalid":
        return FieldError("body", "is not valid JSON")
    path = ".".join(str(p) for p in error["loc"]) or "body"
    message = (
        "is not a known field" if error["type"] == "extra_forbidden" else str(error["msg"])[:1].lower() + str(error["msg"])[1:]
    )
    return FieldError(path, message)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON, headers=headers)


def serve(route: Route, *, by_key: bool) -> Callable[..., Awaitable[func.HttpResponse]]:
    """The function that serves `route`: authenticate (unless public), run the handler (off the event loop when it is
    plain, blocking code), and answer every error as problem details. A route that may ask for work at once gets the
    work queue's output binding (`work`): what the handler asks for leaves through it (see jit/adapters/work_queue)."""

    async def answer_call(req: func.HttpRequest) -> func.HttpResponse:
        try:
            call = Call(req, route, by_key)
            if route.audience is not Audience.PUBLIC:
                await asyncio.to_thread(lambda: call.caller)
            handler = _handler(route.handler)
            if inspect.iscoroutinefunction(handler):
                return await handler(call)  # type: ignore[no-any-return]
            return await asyncio.to_thread(handler, call)  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - every error becomes a problem-details answer
            return problems.from_error(error)

    async def plain(req: func.HttpRequest) -> func.HttpResponse:
        return await answer_call(req)

    # typing.List: the Python worker checks an output's annotation with typing_inspect, which takes no list[str].
    async def enqueuing(req: func.HttpRequest, work: func.Out[typing.List[str]]) -> func.HttpResponse:  # noqa: UP006
        from jit.adapters.work_queue import collecting_work

        with collecting_work() as collected:
            response = await answer_call(req)
        if collected:
            work.set(collected)
        return response

    function: Callable[..., Awaitable[func.HttpResponse]] = enqueuing if route.enqueues else plain
    function.__name__ = route.name + ("_by_key" if by_key else "")
    return function


_handlers: dict[str, Handler] = {}


def _handler(reference: str) -> Handler:
    if reference not in _handlers:
        module, name = reference.split(":")
        _handlers[reference] = getattr(importlib.import_module(f"jit.api.{module}"), name)
    return _handlers[reference]
