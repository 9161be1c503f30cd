"""Graph v1.0 endpoint handlers, one module per resource area."""

from __future__ import annotations

from ..routing import Router
from . import auth_methods, directory, groups, pim, roles, users


def register_all(router: Router) -> None:
    for module in (users, groups, roles, auth_methods, directory, pim):
        module.register(router)
