"""The OpenAPI document, made true and complete in one place for every route (those added later too):

- **operationIds** are the handlers' names (``create_vps``, ``list_vps_events``): ``operation_id``
  is the application's ``generate_unique_id_function``; a test keeps them unique and snake_case.
- **Errors**: every error status an operation can answer is declared with one ``Problem`` schema
  (RFC 9457, ``application/problem+json``), from the rules below plus what a route declares in its
  own ``responses=`` (``{409: {"description": ...}}``: the content is replaced by the problem):

  ======  ===============================================================================
  401     every route but the public ones (the guard, api/guard.py)
  403     every route but the public ones (a missing scope, a customer on a staff route)
  404     a path parameter, or a body field ``*_id`` (absent, or another customer's: R7-confidential)
  409     every POST (an ``Idempotency-Key`` still being answered); a PUT, PATCH or DELETE that
          can meet a state conflict declares it (``responses={409: ...}``): the guard keys only POSTs
  413     every method but GET (the guard's body limit)
  422     a body, a query or header parameter, or a POST (an ``Idempotency-Key`` reused)
  429     every route but the public ones (the guard's rate limit, with ``Retry-After``)
  ======  ===============================================================================

- **Location**: a ``201``/``202`` answer says where to follow it.  A ``202`` whose body carries a
  ``job`` points at ``/v1/jobs/{job.id}`` by itself; any other route declares its template with
  ``responses={201: located("/v1/incidents/{id}")}`` (fields of the answer's body, dotted, or of
  its path).  ``Locator`` (an ASGI middleware) sends the header; the document declares it.
- **Strict requests**: FastAPI validates the *parsed* JSON in pydantic's lax Python mode (``1``
  is a boolean there, ``0`` the date 1970-01-01).  Every JSON body is first validated as JSON in
  strict mode (``strict_request``): a boolean is ``true``/``false``, an integer a number without
  a fraction (never ``"5"`` nor ``true``), a date or an instant an ISO string; enums as the schema
  says.  A query parameter the route does not declare is refused (422), as an unknown body field.
- **Summaries** are the operationId in words ("List VPS events"), descriptions the docstrings;
  tags are described (``TAGS``).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Iterable
from datetime import date
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import HTTPConnection, Request

from api.guard import PUBLIC, Message, Receive, Scope, Send

PROBLEM_MEDIA = "application/problem+json"

TAGS: list[dict[str, str]] = [
    {"name": "vps", "description": "Order, list, read and delete VPS. Creating and deleting answer `202` with "
                                   "the job doing it."},
    {"name": "operations", "description": "What can be done to a VPS: start, stop, reboot, resize, reinstall, "
                                          "backups, exports, disks, compromise handling. Each answers `202` "
                                          "with a job (`Location: /v1/jobs/{id}`)."},
    {"name": "jobs", "description": "Jobs: the work asked of the system, its progress and events; listed "
                                    "per caller, filtered by VPS, kind and status."},
    {"name": "images", "description": "The operating-system images a VPS can be installed from."},
    {"name": "hosts", "description": "Staff: the hypervisor hosts, their capacity, drain and evacuation."},
    {"name": "maintenance", "description": "Planned maintenance windows (R5.4-notice) and announced "
                                           "interruptions."},
    {"name": "billing", "description": "Subscriptions, invoices, payments, late fees, price index, breach "
                                       "notices and termination."},
    {"name": "change orders", "description": "A client's request to change their VPS (more memory, a disk), "
                                             "priced by staff and accepted by the client."},
    {"name": "incidents", "description": "Malfunctions and their fix deadlines (R5.4-fix-delay), force "
                                         "majeure, and the client's right to terminate."},
    {"name": "contract", "description": "Requests for the Statement of Applicability (R2-dda)."},
    {"name": "evidence", "description": "Staff: evidence collected from a VPS (logs, captures) for an "
                                        "investigation."},
    {"name": "customers", "description": "Staff: customer accounts."},
    {"name": "tokens", "description": "API tokens: create, list, revoke. Never open to automation tokens."},
    {"name": "quotas", "description": "How much a customer may order: their own, or staff setting them."},
    {"name": "audit", "description": "Staff: the append-only log of every change asked through the API."},
    {"name": "metrics", "description": "Prometheus metrics, read from the database at each scrape."},
    {"name": "console", "description": "The serial console of a VPS (a WebSocket)."},
    {"name": "plans", "description": "What may be ordered: sizes, images, sites, terms and prices, published "
                                     "and retired by staff."},
    {"name": "orders", "description": "A customer's order of a plan: one call records the VPS and its create "
                                      "job, the subscription and its first invoice (R8.1-setup-fee)."},
    {"name": "webhooks", "description": "Signed HTTP callbacks for events, retried with backoff, with a "
                                        "delivery log; the signing secret is shown once."},
    {"name": "events", "description": "The event log as a server-sent events stream, resumable with "
                                      "`Last-Event-ID`."},
    {"name": "health", "description": "Liveness and database reachability; no token needed."},
]

# How the words of an operationId are written in a summary.
WORDS = {"vps": "VPS", "dda": "DDA", "nda": "NDA", "ssh": "SSH", "syntec": "Syntec"}


class ProblemError(BaseModel):
    """One reason a request was invalid (422 ``/problems/invalid-request``)."""

    loc: list[str | int] = Field(description="where: `body`, `query`, `path` or `header`, then field names")
    msg: str | None = Field(description="what is wrong there")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "/problems/invalid-state", "title": "Invalid state", "status": 409,
        "detail": "cannot start a VPS that is suspended", "instance": "/v1/vps/0b7e.../start",
        "current_status": "suspended"}]})

    type: str = Field("about:blank", description="A URI reference naming the kind of problem (`/problems/not-found`, "
                                                 "`/problems/invalid-request`, ...); `about:blank`: the status says it")
    title: str = Field(description="A short summary of the kind of problem")
    status: int = Field(ge=400, le=599, description="The HTTP status code")
    detail: str = Field(description="What went wrong with this request, for a person to read")
    instance: str | None = Field(None, description="The path of the request that failed")
    rule: str | None = Field(None, description="The contract rule that refused the request (e.g. `R3-terms`)")
    current_status: str | None = Field(None, description="409 on a VPS: its status, which does not allow it")
    quota: str | None = Field(None, description="403 over a quota: which")
    limit: int | None = Field(None, description="403 over a quota: the customer's limit")
    errors: list[ProblemError] | None = Field(None, description="422 invalid request: each field refused")


DESCRIPTIONS = {
    401: "No valid bearer token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer`",
    403: "The token may not do this: a customer on a staff route, a missing automation scope, a quota",
    404: "Not found, or not yours (another customer's resource is answered exactly as a missing one)",
    409: "The resource's state does not allow it now, or a request with this Idempotency-Key is "
         "still being answered",
    413: "The body is larger than the server accepts",
    422: "The request is invalid: the body, a parameter, or a contract rule refuses it",
    429: "Too many requests from this token in the last minute; `Retry-After` says when to try again",
    500: "An unexpected error; it has been logged",
    502: "A hypervisor host answered with an error",
    503: "A hypervisor host, or the database, cannot be reached now; try again (see Retry-After)",
}
HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}, "required": True}},
}


# The limits the server reads from its settings (VPSCTL_MAX_*), written into the request schemas
# that are checked against them when asked: (schema, property) -> LimitSettings field.
_SIZES = {"vcpus": "max_vcpus", "memory_mib": "max_memory_mib", "disk_gib": "max_disk_gib"}
LIMITED: dict[str, dict[str, str]] = {
    "VpsCreate": {**_SIZES, "ssh_keys": "max_ssh_keys"},
    "ResizeBody": _SIZES,
    "ChangeOrderBody": _SIZES,
    "DiskBody": {"size_gib": "max_disk_gib"},
}


def operation_id(route: APIRoute) -> str:
    """The operationId of a route: its name, i.e. its handler's (``create_vps``)."""
    return route.name


def located(template: str, description: str = "Created") -> dict[str, Any]:
    """A route's ``responses=`` entry for a 201/202 whose answer says where it is:
    ``responses={201: located("/v1/incidents/{id}")}``; ``{name}`` is a field of the answer's body
    (dotted for a nested one) or a path parameter."""
    return {"description": description, "x-location": template}


def summary(name: str) -> str:
    words = [WORDS.get(word, word) for word in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _job_field(route: APIRoute) -> bool:
    model = route.response_model
    return isinstance(model, type) and issubclass(model, BaseModel) and "job" in model.model_fields


def _location(route: APIRoute, status: int) -> str | None:
    declared = route.responses.get(status, {}) if route.responses else {}
    if isinstance(declared, dict) and declared.get("x-location"):
        return str(declared["x-location"])
    if status == 202 and route.status_code == 202 and _job_field(route):
        return "/v1/jobs/{job.id}"
    return None


def location_template(route: Any, status: int) -> str | None:
    """Where a ``status`` answer of ``route`` points (a template), None when it does not."""
    if not isinstance(route, APIRoute) or status not in (201, 202):
        return None
    key = (id(route), status)
    if key not in _LOCATIONS:
        _LOCATIONS[key] = _location(route, status)
    return _LOCATIONS[key]


_LOCATIONS: dict[tuple[int, int], str | None] = {}  # routes live as long as the process


def fill(template: str, body: Any, path_params: dict[str, Any]) -> str | None:
    """``template`` with each ``{name}`` read from ``body`` (dotted) or ``path_params``; None if one lacks."""
    def value(match: re.Match[str]) -> str:
        found: Any = body
        for part in match.group(1).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if found is None:
            found = path_params.get(match.group(1))
        if found is None or isinstance(found, dict | list):
            raise LookupError(match.group(1))
        return str(found)

    try:
        return re.sub(r"\{([\w.]+)\}", value, template)
    except LookupError:
        return None


def _route(scope: Scope) -> Any:
    """The route that answered, or (an answer the guard replayed for an Idempotency-Key, which no
    route saw) the one that would have."""
    if scope.get("route") is not None or not isinstance(scope.get("app"), FastAPI):
        return scope.get("route")
    for route in api_routes(scope["app"]):
        if scope["method"] in (route.methods or ()) and route.path_regex.match(scope["path"]):
            return route
    return None


def _path_params(route: Any, path: str) -> dict[str, Any]:
    found = route.path_regex.match(path) if isinstance(route, APIRoute) else None
    return found.groupdict() if found else {}


class Locator:
    """Adds ``Location`` to a 201/202 answer of a route that has a template (``location_template``)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = bytearray()

        async def locate(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                template = location_template(_route(scope), int(message["status"]))
                present = any(k.lower() == b"location" for k, _ in message.get("headers", []))
                if template is not None and not present:
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                start, held = held, None
                route = _route(scope)
                template = location_template(route, int(start["status"]))
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                path_params = scope.get("path_params") or _path_params(route, scope["path"])
                where = fill(template or "", parsed, path_params) if template else None
                if where is not None:
                    start = {**start, "headers": [*start.get("headers", []), (b"location", where.encode())]}
                await send(start)
                await send({"type": "http.response.body", "body": bytes(body)})
                return
            await send(message)

        await self.app(scope, receive, locate)


# --- strict bodies ---------------------------------------------------------------------------

_ADAPTERS: dict[int, TypeAdapter[Any] | None] = {}


def _body_adapter(route: APIRoute) -> TypeAdapter[Any] | None:
    if id(route) not in _ADAPTERS:
        field = route.body_field
        annotation = field.field_info.annotation if field is not None else None
        _ADAPTERS[id(route)] = TypeAdapter(annotation) if annotation is not None else None
    return _ADAPTERS[id(route)]


def _integral(value: Any) -> Any:
    """``value`` with its integral floats as integers: JSON Schema's `integer` is any number without
    a fraction (``2.0`` is one), which pydantic's strict mode reads as a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


_QUERIES: dict[int, dict[str, bool]] = {}
_TEMPORAL: dict[int, set[str]] = {}  # the query parameters of a route that are dates or instants
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _query_names(route: APIRoute) -> dict[str, bool]:
    """The query parameters ``route`` declares, each with whether it may be repeated (a list)."""
    if id(route) not in _QUERIES:
        names: dict[str, bool] = {}
        temporal: set[str] = set()
        dependants = [route.dependant]
        while dependants:
            dependant = dependants.pop()
            for field in dependant.query_params:
                annotation = field.field_info.annotation
                options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
                names[field.alias] = any(get_origin(option) in (list, tuple, set) for option in options)
                if any(isinstance(option, type) and issubclass(option, date) for option in options):
                    temporal.add(field.alias)
            dependants.extend(dependant.dependencies)
        _TEMPORAL[id(route)] = temporal
        _QUERIES[id(route)] = names
    return _QUERIES[id(route)]


async def strict_request(connection: HTTPConnection) -> None:
    """Refuse a query parameter the route does not declare (a misspelt filter would silently list
    everything), and validate a JSON body as JSON in strict mode before FastAPI reads it laxly:
    ``0`` is no date, ``1`` no boolean, ``"5"`` no integer (422, as any invalid request).  A date or
    an instant in the query is an ISO string too: pydantic reads ``?since=-2382804002`` as seconds
    since 1970, which the document (``format: date-time``) does not allow."""
    route = connection.scope.get("route")
    if not isinstance(connection, Request) or not isinstance(route, APIRoute):
        return
    declared = _query_names(route)
    unknown = sorted(set(connection.query_params) - set(declared))
    repeated = sorted(name for name, many in declared.items() if not many
                      and len(connection.query_params.getlist(name)) > 1)
    numbers = sorted(name for name in _TEMPORAL[id(route)]
                     if any(_NUMBER.fullmatch(value) for value in connection.query_params.getlist(name)))
    if unknown or repeated or numbers:
        raise RequestValidationError(
            [{"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter", "input": None}
             for name in unknown] + [{"type": "too_long", "loc": ("query", name), "msg": "given more than once",
                                      "input": None} for name in repeated]
            + [{"type": "datetime_type", "loc": ("query", name), "msg": "an ISO 8601 date or instant, not a number",
                "input": None} for name in numbers])
    if connection.method in ("GET", "HEAD", "OPTIONS"):
        return
    adapter = _body_adapter(route)
    content_type = connection.headers.get("content-type", "")
    if adapter is None or (content_type and "json" not in content_type.split(";")[0].lower()):
        return
    raw = await connection.body()
    if not raw.strip():
        return  # FastAPI decides (a required body is missing)
    try:
        document = json.loads(raw)
    except ValueError:
        return  # FastAPI answers it (422 json_invalid, or not UTF-8)
    try:
        adapter.validate_json(json.dumps(_integral(document)), strict=True)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                                     body=None) from None


STRICT_REQUESTS = Depends(strict_request)  # the application's first dependency (api/app.py)


_ROUTES: weakref.WeakKeyDictionary[FastAPI, tuple[int, list[APIRoute]]] = weakref.WeakKeyDictionary()


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The application's HTTP routes as declared (FastAPI keeps included routers apart).  Walking
    them builds each route's context anew (its dependencies, its fields): kept per application,
    walked again only when routes were added (it was most of a request's CPU: docs/benchmarks.md,
    Load)."""
    kept = _ROUTES.get(app)
    if kept is not None and kept[0] == len(app.routes):
        return kept[1]
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            found.append(route)
    _ROUTES[app] = (len(app.routes), found)
    return found


# --- the document ----------------------------------------------------------------------------

def _problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status, "An error"),
        "content": {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def _names_a_record(name: str) -> bool:
    """Whether a body field names a record that may be missing (a 404)."""
    return name.endswith("_id") or name.endswith("_ids")


def error_statuses(path: str, method: str, operation: dict[str, Any],
                   body_properties: Iterable[str] = ()) -> set[int]:
    """The error statuses the central rules (module docstring) give an operation."""
    if path in PUBLIC:  # the guard lets these through without a token (api/guard.py)
        return set()
    method = method.upper()
    statuses = {401, 403, 429}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters) or any(_names_a_record(name) for name in body_properties):
        statuses.add(404)  # a list whose filter is looked up declares its 404 itself (responses=)
    if method != "GET":
        statuses.add(413)
    if method == "POST":
        statuses.add(409)
    if "requestBody" in operation or method == "POST" or any(p.get("in") in ("query", "header") for p in parameters):
        statuses.add(422)
    if any((p.get("in") == "path" and set(p.get("schema", {})) - {"title", "description"} != {"type"})
           or (p.get("in") == "path" and p.get("schema", {}).get("type") != "string") for p in parameters):
        statuses.add(422)  # a path parameter that is not just any string: an integer, a bounded one
    return statuses


def _body_schema(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON body's schema of ``operation`` (its component resolved), or {}."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:
            return dict(schemas.get(option["$ref"].rsplit("/", 1)[-1], {}))
    return dict(schema)


def _declared_by(route: APIRoute, status: int) -> bool:
    return any(str(code) == str(status) for code in (route.responses or {}))


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's) with the problems, Location headers, summaries and tags declared."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update({name: schema for name, schema in TypeAdapter(Problem).json_schema(
        ref_template="#/components/schemas/{model}").pop("$defs", {}).items()})
    schemas["Problem"] = {k: v for k, v in TypeAdapter(Problem).json_schema(
        ref_template="#/components/schemas/{model}").items() if k != "$defs"}
    routes = {(route.path_format, method.lower()): route for route in api_routes(app)
              for method in route.methods or ()}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            responses = operation.setdefault("responses", {})
            for code in [c for c in responses if c.isdigit() and int(c) >= 400]:
                if route is None or not _declared_by(route, int(code)):
                    del responses[code]  # FastAPI's own 422, given to any route with a parameter
            declared = {int(code) for code in responses if int(code) >= 400}
            body = _body_schema(operation, schemas)
            for code in sorted(declared | error_statuses(path, method, operation, body.get("properties", {}))):
                described = responses.get(str(code), {}).get("description")
                if code == 422 or described in (None, "Validation Error", "Unprocessable Content"):
                    described = None
                responses[str(code)] = _problem_response(code, described)
            for created in ("201", "202"):
                if created in responses and route is not None:
                    responses[created].pop("x-location", None)
                    template = location_template(route, int(created))
                    if template is not None:
                        responses[created].setdefault("headers", {})["Location"] = {
                            "description": f"Where to follow it: `{template}`", "required": True,
                            "schema": {"type": "string"}}
            if route is not None and route.summary is None:
                operation["summary"] = summary(operation["operationId"])
            if not operation.get("description"):
                operation["description"] = operation["summary"] + "."
    describe_schemas(document)
    limits = getattr(getattr(app.state, "settings", None), "limits", None)
    for schema_name, properties in LIMITED.items():
        for name, setting in properties.items():
            found = schemas.get(schema_name, {}).get("properties", {}).get(name)
            if found is not None and limits is not None:
                _bound(found, int(getattr(limits, setting)))
    used = {tag for operations in document.get("paths", {}).values() for op in operations.values()
            for tag in op.get("tags", [])}
    document["tags"] = [tag for tag in TAGS if tag["name"] in used] + [
        {"name": name, "description": name} for name in sorted(used - {t["name"] for t in TAGS})]
    return document


def _refs(node: Any) -> set[str]:
    """The component schemas ``node`` refers to directly (through arrays and unions, not through
    other components)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return {str(node["$ref"]).rsplit("/", 1)[-1]}
        return set().union(*(_refs(value) for value in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def describe_schemas(document: dict[str, Any]) -> None:
    """A description for every component schema that has none, from where the document uses it:
    the operations it is the body or the answer of, the schemas it is part of, an enum's values."""
    schemas = document.get("components", {}).get("schemas", {})
    bodies: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for name in _refs(operation.get("requestBody", {})):
                bodies.setdefault(name, []).append(operation["operationId"])
            for code, response in operation.get("responses", {}).items():
                if code.startswith("2"):
                    for name in _refs(response):
                        answers.setdefault(name, []).append(operation["operationId"])
    parts: dict[str, list[str]] = {}
    for owner, schema in schemas.items():
        for name in _refs(schema.get("properties", {})) | _refs(schema.get("items", {})):
            parts.setdefault(name, []).append(owner)
    for name, schema in schemas.items():
        if schema.get("description"):
            continue
        said = []
        if "enum" in schema:
            said.append("One of " + ", ".join(f"`{value}`" for value in schema["enum"]) + ".")
        if name.startswith("Page_"):
            said.append(f"A page of `{name[5:].rstrip('_')}`, newest first: `items`, and `next` to give as "
                        "`?cursor=` for the page after (null on the last).")
        if name in bodies:
            said.append("The body of " + ", ".join(f"`{op}`" for op in sorted(bodies[name])) + ".")
        if name in answers:
            said.append("The answer of " + ", ".join(f"`{op}`" for op in sorted(answers[name])) + ".")
        if name in parts:
            said.append("Part of " + ", ".join(f"`{owner}`" for owner in sorted(parts[name])) + ".")
        schema["description"] = " ".join(said) or name


def _bound(schema: dict[str, Any], ceiling: int) -> None:
    """``schema`` (an integer or an array, maybe nullable) at most ``ceiling``."""
    for branch in [schema, *schema.get("anyOf", [])]:
        key = {"integer": "maximum", "array": "maxItems"}.get(branch.get("type", ""))
        if key is not None:
            branch[key] = min(branch.get(key, ceiling), ceiling)


def install(app: FastAPI) -> None:
    """The application's OpenAPI document is ``complete``; its 201/202 answers carry ``Location``
    (its requests are checked strictly: ``STRICT_REQUESTS``, given when it is made)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                                   summary=app.summary, description=app.description, routes=app.routes,
                                   tags=app.openapi_tags, servers=app.servers)
            app.openapi_schema = complete(app, document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Locator)
