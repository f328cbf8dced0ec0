"""Which routes an automation token may call.

Each router declares its family of scopes once, ``APIRouter(..., dependencies=[scoped("billing")])``:
a request to it needs ``<family>:read`` when it is a GET and ``<family>:write`` otherwise (the
scopes and what they cover: ``SCOPES`` in orchestrator/core/auth.py).  A router automation may
never call declares ``no_automation(why)`` instead.  The check only concerns principals limited to
scopes (automation tokens): support has every staff right, and customers are limited to what they
own by the lookups, as before.  It runs as the route's first dependency, so the 403 names the
missing scope before anything is looked up.

``check_declared`` refuses to build an application with an HTTP route that declares neither: an
undeclared route would be open to every automation token.  The serial console is a WebSocket and
checks ``vps:write`` itself (api/routers/console.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.deps import CurrentPrincipal
from orchestrator.core.auth import SCOPES, require_scope
from orchestrator.core.errors import Forbidden

READS = frozenset({"GET", "HEAD"})
# Every scope check made here, with the family it checks (None: automation refused): how
# check_declared recognises a route's declaration.
DECLARED: dict[Callable[..., None], str | None] = {}


def scope_for(family: str, method: str) -> str:
    """The scope a request of ``method`` to a route of ``family`` needs."""
    return f"{family}:{'read' if method.upper() in READS else 'write'}"


def scoped(family: str) -> Any:
    """The dependency that declares a router's family: an automation token needs
    ``<family>:read`` for a GET, ``<family>:write`` for anything else."""

    def check_scope(request: Request, principal: CurrentPrincipal) -> None:
        if principal.limited:
            require_scope(principal, scope_for(family, request.method))

    DECLARED[check_scope] = family
    return Depends(check_scope)


def no_automation(why: str) -> Any:
    """The dependency that declares a router closed to automation tokens, whatever their scopes:
    403 saying ``why``."""

    def refuse_automation(principal: CurrentPrincipal) -> None:
        if principal.limited:
            raise Forbidden(why)

    DECLARED[refuse_automation] = None
    return Depends(refuse_automation)


def undeclared(routes: Iterable[BaseRoute], public: Iterable[str]) -> list[str]:
    """The HTTP routes (but the public paths) whose scope is not declared, or whose declared
    family lacks the scope one of their methods needs; each as ``METHOD path``."""
    public = set(public)
    missing = []
    for route in routes:
        if not isinstance(route, APIRoute) or route.path in public:
            continue
        families = [DECLARED[d.dependency] for d in route.dependencies if d.dependency in DECLARED]
        for method in sorted(route.methods or ()):
            if len(families) != 1 or (families[0] is not None and scope_for(families[0], method) not in SCOPES):
                missing.append(f"{method} {route.path}")
    return missing


def check_declared(routes: Iterable[BaseRoute], public: Iterable[str]) -> None:
    """Refuse (RuntimeError) an application with a route no scope declaration covers."""
    missing = undeclared(routes, public)
    if missing:
        raise RuntimeError("routes without a scope declaration (api/scopes.py): " + ", ".join(missing))
