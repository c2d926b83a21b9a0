"""The OpenAPI document tells the truth about failures: every status an operation can answer
with is listed, each as an RFC 9457 problem body under ``application/problem+json``.

Which statuses an operation can return follows from what it is, in one place:

- any operation outside ``/health``: 401 (a bad bearer token is refused everywhere), 429 (the
  rate limiter), 503 with ``Retry-After`` (PostgreSQL or Redis unavailable);
- with parameters or a body: 400 (the request does not match the document: the field errors
  name each field); with a body: 413, and 422 (it matches, but breaks a rule no schema can
  state: an unknown category, a common password, a file that is not a PDF);
- with a path parameter: 404; behind the admin guard: 403;
- what a handler declares itself in ``responses`` (for example 409 "Already enrolled"),
  its body replaced by the problem schema when it is an error.

Request bodies are documented with the schemas their validators (msgspec, pydantic) write, so
every limit they enforce is in the document, ``additionalProperties: false`` included.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute
from pydantic import BaseModel

from momentum_api.identity.guards import admin
from momentum_api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

PROBLEM = "Problem"
_REF = "#/components/schemas/{name}"
_FIELD_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["field", "source", "message"],
    properties={
        "field": Schema(type=OpenAPIType.STRING, description="The field, dotted for nesting"),
        "source": Schema(
            type=OpenAPIType.STRING,
            description="Where the field was: body, query, path, header or cookie",
        ),
        "message": Schema(type=OpenAPIType.STRING),
    },
)
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="An RFC 9457 problem; some carry more members (for example checks, errors).",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(
            type=OpenAPIType.STRING, format=None, examples=[f"{PROBLEM_TYPE_BASE}conflict"]
        ),
        "title": Schema(type=OpenAPIType.STRING, examples=["Conflict"]),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING, description="The request's path"),
        "errors": Schema(type=OpenAPIType.ARRAY, items=_FIELD_ERROR),
    },
)
_RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
        description="Seconds to wait before trying again",
        required=True,
    )
}
_GENERIC = {
    400: "The request is invalid; `errors` names each field",
    401: "Not signed in, or the bearer token is not valid",
    403: "Signed in without the right to do this",
    404: "No such resource",
    413: "The body is larger than the limit",
    422: "The request matches the document but breaks a rule it cannot state; see detail",
    429: "Too many requests; Retry-After says when to try again",
    503: "A dependency (PostgreSQL, Redis, a provider) is unavailable; try again after Retry-After",
}


def problem_response(description: str, status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(f"#/components/schemas/{PROBLEM}")
            )
        },
        headers=_RETRY_AFTER if status in (429, 503) else None,
    )


def failure_statuses(route: HTTPRoute, handler: HTTPRouteHandler, operation: Operation) -> set[int]:
    """The error statuses an operation can answer with, from what it is (module docstring)."""
    statuses: set[int] = set()
    if not route.path.startswith("/health"):
        statuses |= {401, 429, 503}
    if operation.parameters or operation.request_body:
        statuses.add(400)
    if operation.request_body:
        statuses |= {413, 422}
    if route.path_parameters:
        statuses.add(404)
    if admin in handler.resolve_guards():
        statuses.add(403)
    return statuses


def _body_types(app: Litestar) -> list[type]:
    """The types handlers decode request bodies into (msgspec structs, pydantic models)."""
    found: dict[str, type] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            body = data.type_ if data else None  # Annotated[...] unwrapped
            if isinstance(body, type) and issubclass(body, msgspec.Struct | BaseModel):
                found[body.__name__] = body
    return list(found.values())


def _validator_schemas(types: list[type]) -> dict[str, dict[str, Any]]:
    """Each body type's schema as its validator (msgspec, pydantic) writes it: every bound,
    pattern and item constraint it enforces, and ``additionalProperties: false`` where it
    refuses unknown fields, which Litestar's generated schemas partly leave out."""
    structs = [t for t in types if issubclass(t, msgspec.Struct)]
    _, schemas = msgspec.json.schema_components(structs, ref_template=_REF)
    for model in (t for t in types if issubclass(t, BaseModel)):
        schema = model.model_json_schema(ref_template=_REF.replace("{name}", "{model}"))
        schemas |= schema.pop("$defs", {})
        schemas[model.__name__] = schema
    return schemas


def document_problems(app: Litestar) -> None:
    """Rewrite the app's OpenAPI document so every failure is a documented problem body."""
    openapi = app.openapi_schema
    components = openapi.components if isinstance(openapi.components, Components) else Components()
    components.schemas = {**(components.schemas or {}), PROBLEM: PROBLEM_SCHEMA}
    # Only where Litestar used the same name: a prefixed name means two types share one.
    for name, schema in _validator_schemas(_body_types(app)).items():
        if name in components.schemas:
            components.schemas[name] = cast("Schema", schema)
    openapi.components = components
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in (openapi.paths or {}):
            continue
        path_item = openapi.paths[route.path_format]  # type: ignore[index]
        for method, (handler, _) in route.route_handler_map.items():
            operation: Operation | None = getattr(path_item, method.lower(), None)
            if operation is None:
                continue
            responses: dict[str, Any] = dict(operation.responses or {})
            for status in failure_statuses(route, handler, operation):
                responses.setdefault(str(status), None)
            for code, response in list(responses.items()):
                status = int(code)
                if status < 400:
                    continue
                described = response.description if isinstance(response, OpenAPIResponse) else None
                if not described or (status == 400 and "Bad request syntax" in described):
                    described = _GENERIC.get(status, "The request failed")
                responses[code] = problem_response(described, status)
            operation.responses = dict(sorted(responses.items()))
