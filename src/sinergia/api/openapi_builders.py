"""The small builders every part of Sinergia's OpenAPI description is written with.

Each API family (entities, subscriptions, temporal, ...) describes its operations in its own
``openapi_*`` module; they all point at reusable components (parameters, responses, headers,
schemas, examples) through these helpers, so an operation reads as a short list of what it
takes and what it answers. This module imports nothing of the description itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

NGSI: Final = "/ngsi-ld/v1"

# Parameters most operations take, and the errors any operation with a body can answer.
COMMON: Final = ("Tenant", "Link")
PAGING: Final = ("limit", "offset", "count")
BODY_ERRORS: Final = (400, 413, 415, 503)

# Schema fragments used all over the description.
URI: Final = {"type": "string", "format": "uri"}
TIME: Final = {"type": "string", "format": "date-time"}
STRINGS: Final = {"type": "array", "items": {"type": "string"}}

NO_CONTENT: Final = {"204": {"description": "Done; nothing to return."}}

# Status → (name of the shared error response, what it means). The responses themselves,
# with their ProblemDetails examples, are built by ``openapi.build_spec``.
ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("BadRequest", "The request is malformed (InvalidRequest) or its data is not valid "
          "(BadRequestData), e.g. it tries to change an attribute's kind in a partial "
          "update or merge: the detail says what and where."),
    403: ("Forbidden", "The query asks for too much at once (TooManyResults, "
          "TooComplexQuery): use a smaller limit and page with offset."),
    404: ("NotFound", "The entity, attribute, subscription, history or @context does not "
          "exist (ResourceNotFound), or the NGSILD-Tenant does not (NonexistentTenant)."),
    406: ("NotAcceptable", "The Accept header names no format this endpoint produces."),
    409: ("Conflict", "An entity or subscription with this id already exists "
          "(AlreadyExists)."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The body is not sent in a media type this endpoint reads: "
          "application/json, application/ld+json, or where the operation lists it "
          "application/merge-patch+json."),
    503: ("Unavailable", "A JSON-LD @context could not be fetched in time "
          "(LdContextNotAvailable) or the database is unreachable; try again later."),
}


# -- references ----------------------------------------------------------------------------

def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def params(names: Iterable[str]) -> list[dict[str, str]]:
    return [param(n) for n in names]


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def example(summary: str, value: Any) -> dict[str, Any]:
    """A ``components.examples`` entry."""
    return {"summary": summary, "value": value}


# -- operations ----------------------------------------------------------------------------

def media(schema: dict[str, Any], *example_names: str) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": schema}
    if example_names:
        out["examples"] = {n: {"$ref": f"#/components/examples/{n}"} for n in example_names}
    return out


def array(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


def response(description: str, content: dict[str, Any] | None = None,
             headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if headers:
        out["headers"] = headers
    if content:
        out["content"] = content
    return out


def errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{ERRORS[s][0]}"}
            for s in sorted(statuses)}


def body(content: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": content}


def operation(op_id: str, tag: str, summary: str, description: str, *,
              params: Iterable[str] = (), body: dict[str, Any] | None = None,
              responses: dict[str, Any],
              callbacks: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary,
                           "description": description,
                           "parameters": [param(n) for n in params]}
    if body is not None:
        out["requestBody"] = body
    out["responses"] = responses
    if callbacks:
        out["callbacks"] = callbacks
    return out


# -- parameter components ------------------------------------------------------------------

def query(name: str, description: str, schema: dict[str, Any] | None = None,
          example: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "description": description,
                           "schema": schema or {"type": "string"}}
    if schema is not None and schema.get("type") == "array":
        out.update(style="form", explode=False)  # comma separated, as NGSI-LD writes lists
    if example is not None:
        out["example"] = example
    return out


def path(name: str, description: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


def options(values: list[str], description: str) -> dict[str, Any]:
    return query("options", description, {"type": "array", "items": {"enum": values}})


def flag(name: str, description: str) -> dict[str, Any]:
    return query(name, description, {"type": "boolean", "default": False})
