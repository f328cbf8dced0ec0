"""Who may call each route, read from the code: the table of docs/security.md ("Routes and
roles") is generated from here (``python -m api``) and a test keeps the two equal.

A route's audience is, in this order:
- what it declares in ``openapi_extra["x-audience"]``: an operation's own ``audience``
  (``api.operations.expose``), or ``STAFF`` / ``CLIENT`` on the few routes that decide inside
  the handler (evidence answers 404 for another customer's VPS before refusing the client);
- ``staff`` when it depends on ``StaffPrincipal``;
- ``owner`` otherwise: any token, a customer only on what is theirs (404 for anything else).

An automation token also needs the scope its router declares (api/scopes.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.deps import staff_principal
from api.scopes import DECLARED, scope_for

STAFF: dict[str, Any] = {"x-audience": "staff"}
CLIENT: dict[str, Any] = {"x-audience": "client"}  # the client themself, never staff on their behalf

CUSTOMER = {"owner": "own", "client": "own", "staff": "—", "system": "—"}
SUPPORT = {"owner": "all", "client": "—", "staff": "all", "system": "—"}


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def audience(route: APIRoute) -> str:
    declared = (route.openapi_extra or {}).get("x-audience")
    if declared:
        return str(declared)
    return "staff" if _depends_on(route.dependant, staff_principal) else "owner"


def automation(route: APIRoute, method: str) -> str:
    """The scope an automation token needs, or — when none lets it through."""
    if audience(route) in ("client", "system"):
        return "—"
    families = [DECLARED[d.dependency] for d in route.dependencies if d.dependency in DECLARED]
    return scope_for(families[0], method) if families and families[0] is not None else "—"


def rows(routes: Iterable[BaseRoute], public: Iterable[str]) -> list[tuple[str, str, str, str, str]]:
    """(method, path, customer, support, automation) for every HTTP route but the public ones."""
    public = set(public)
    found = []
    for route in routes:
        if not isinstance(route, APIRoute) or route.path in public:
            continue
        who = audience(route)
        for method in sorted(route.methods or ()):
            found.append((method, route.path, CUSTOMER[who], SUPPORT[who], automation(route, method)))
    return sorted(found, key=lambda row: (row[1], row[0]))


def markdown(routes: Iterable[BaseRoute], public: Iterable[str]) -> str:
    lines = ["| Method | Path | Customer | Support | Automation |", "|---|---|---|---|---|"]
    lines += [f"| {m} | `{p}` | {c} | {s} | {a} |" for m, p, c, s, a in rows(routes, public)]
    return "\n".join(lines) + "\n"

