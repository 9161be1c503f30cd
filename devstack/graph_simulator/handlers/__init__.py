"""Graph v1.0 endpoint handlers, one module per resource area."""

from __future__ import annotations

from ..routing import Router
from . import auth_methods, directory, groups, roles, users


def register_all(router: Router) -> None:
    for module in (users, groups, roles, auth_methods, directory):
        module.register(router)
