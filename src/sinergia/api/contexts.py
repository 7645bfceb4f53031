"""/ngsi-ld/v1/jsonldContexts: host, list, serve and delete @contexts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api.entities import BASE
from sinergia.api.http import (
    JSON_LD,
    negotiate,
    no_content,
    parse_json,
    plain_json,
    read_body,
    tenant_of,
)
from sinergia.api.runtime import runtime
from sinergia.ngsild.errors import BadRequestData, ResourceNotFound, UnsupportedMediaType

_KINDS = {"hosted", "cached", "implicitlycreated"}


def _info(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "document"}


async def add_context(request: Request) -> Response:
    rt = runtime(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", JSON_LD):
        raise UnsupportedMediaType("A hosted @context is sent as application/json or "
                                   "application/ld+json")
    document = parse_json(await read_body(request, rt.settings.max_body_bytes))
    base = str(request.base_url)
    record = await rt.context_service.add(tenant_of(request), document, base)
    return Response(status_code=201, headers={"Location": record["URL"]})


async def list_contexts(request: Request) -> Response:
    rt = runtime(request)
    negotiate(request)  # 406 unless JSON or JSON-LD is acceptable
    kind = request.query_params.get("kind")
    if kind is not None and kind not in _KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(sorted(_KINDS))}")
    records = await rt.context_service.list(tenant_of(request), kind)
    if request.query_params.get("details", "false").lower() == "true":
        return plain_json([_info(r) for r in records])
    return plain_json([r["URL"] for r in records])


async def get_context(request: Request) -> Response:
    rt = runtime(request)
    negotiate(request)  # 406 unless JSON or JSON-LD is acceptable
    record = await rt.context_service.get(tenant_of(request), request.path_params["id"])
    if request.query_params.get("details", "false").lower() == "true":
        return plain_json(_info(record))
    return plain_json(record["document"], media_type=JSON_LD)


async def delete_context(request: Request) -> Response:
    rt = runtime(request)
    local_id = request.path_params["id"]
    if request.query_params.get("reload", "false").lower() == "true":
        for entry in rt.contexts.cached_entries():
            if local_id in (entry.get("localId"), entry.get("URL")):
                rt.contexts.forget(entry["URL"])
                await rt.contexts.resolve(entry["URL"])
                return no_content()
        raise ResourceNotFound(f"No cached @context {local_id!r} to reload")
    await rt.context_service.delete(tenant_of(request), local_id)
    return no_content()


routes = [
    Route(f"{BASE}/jsonldContexts", add_context, methods=["POST"]),
    Route(f"{BASE}/jsonldContexts", list_contexts, methods=["GET"]),
    Route(f"{BASE}/jsonldContexts/{{id:path}}", get_context, methods=["GET"]),
    Route(f"{BASE}/jsonldContexts/{{id:path}}", delete_context, methods=["DELETE"]),
]
