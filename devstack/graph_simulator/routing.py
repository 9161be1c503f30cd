"""Path templates -> handlers, plus the normalised endpoint names used by counters/faults.

Whether Graph knows a path is the contract's business (validation.py); the router only finds the handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from .messages import SimRequest, SimResponse
from .state import Tenant

Handler = Callable[[Tenant, SimRequest, dict[str, str]], SimResponse]

_ID_LIKE = re.compile(r"^[0-9a-fA-F-]{32,36}$")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    segments: tuple[str, ...]
    handler: Handler

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{"):
                params[segment[1:-1]] = part
            elif segment.lower() != part.lower():
                return None
        return params

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))


@dataclass
class Resolution:
    template: str
    handler: Handler | None  # None: Graph may know the path (the contract decides), the simulator has no handler
    params: dict[str, str]


def split_path(path: str) -> list[str]:
    return [unquote(p) for p in path.strip("/").split("/") if p != ""]


def normalise_unknown(parts: list[str]) -> str:
    """Template for paths no route knows: ids collapse to {id} so counters stay small."""
    norm = ["{id}" if _ID_LIKE.match(p) or "@" in p else p for p in parts]
    return "/" + "/".join(norm)


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        segments = tuple(s for s in template.strip("/").split("/") if s)
        self._routes.append(Route(method.upper(), template, segments, handler))

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler

        return decorator

    def resolve(self, method: str, path: str) -> Resolution:
        parts = split_path(path)
        matches = [(r, p) for r in self._routes if (p := r.match(parts)) is not None]
        same_method = [(r, p) for r, p in matches if r.method == method.upper()]
        if same_method:
            route, params = max(same_method, key=lambda rp: rp[0].literal_count)
            return Resolution(route.template, route.handler, params)
        if matches:
            return Resolution(max(matches, key=lambda rp: rp[0].literal_count)[0].template, None, {})
        return Resolution(normalise_unknown(parts), None, {})

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)
