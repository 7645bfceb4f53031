"""/ngsi-ld/v1/entityOperations: batch create, upsert, update, merge, delete and query.

Each entity of a batch succeeds or fails alone: entities that do not parse are reported with
their error and never reach the store; the rest are applied and committed together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api.entities import BASE, pagination_headers
from sinergia.api.http import (
    CallContext,
    batch_body,
    json_body,
    json_response,
    negotiate,
    plain_json,
)
from sinergia.api.http import tenant_of as tenant_header
from sinergia.api.params import (
    BATCH_QUERY,
    WRITE,
    options_of,
    query_from_body,
    refuse_unknown,
    render_options,
)
from sinergia.api.runtime import runtime
from sinergia.broker.batch import parse_batch_items
from sinergia.broker.entities import BatchOp
from sinergia.ngsild.context import Context
from sinergia.ngsild.errors import NgsiLdError
from sinergia.ngsild.model import Entity
from sinergia.ngsild.render import render_entity


def _error_entry(entity_id: str, error: NgsiLdError) -> dict[str, Any]:
    return {"entityId": entity_id, "error": error.problem()}


def _parse_items(op: BatchOp, body: Any, ctx: Sequence[Context | NgsiLdError]
                 ) -> tuple[list[Entity | str], list[dict[str, Any]]]:
    items, errors = parse_batch_items(op, body, ctx)
    return items, [_error_entry(entity_id, error) for entity_id, error in errors]


def _batch_endpoint(op: BatchOp) -> Any:
    async def endpoint(request: Request) -> Response:
        rt = runtime(request)
        tenant = tenant_header(request)
        refuse_unknown(request.query_params, WRITE)
        body, contexts = await batch_body(request, rt.contexts, rt.settings.max_body_bytes)
        options = options_of(request.query_params)
        items, errors = _parse_items(op, body, contexts)
        outcome = await rt.entities.batch(
            tenant, op, items, replace="update" not in options,
            no_overwrite="noOverwrite" in options)
        errors.extend(_error_entry(i, e) for i, e in outcome.errors)
        if not errors:
            if op == "create":
                return plain_json(outcome.success, status=201)
            if op == "upsert" and outcome.created:
                return plain_json(outcome.created, status=201)
            return Response(status_code=204)
        if not outcome.success:
            # Nothing succeeded: still a 207 per the standard, so clients see every error.
            return plain_json({"success": [], "errors": errors}, status=207)
        return plain_json({"success": outcome.success, "errors": errors}, status=207)

    endpoint.__name__ = f"batch_{op}"
    return endpoint


async def query_post(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_header(request)
    refuse_unknown(request.query_params, BATCH_QUERY)
    accept = negotiate(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    query = query_from_body(body, ctx, params=request.query_params,
                            default_limit=rt.settings.default_limit)
    # The Query body's attrs and lang shape the rendering as their URL forms do.
    params = dict(request.query_params)
    if isinstance(body.get("lang"), str):
        params.setdefault("lang", body["lang"])
    if body.get("attrs"):
        params.setdefault("attrs", ",".join(body["attrs"]))
    opts = render_options(params, ctx)
    result = await rt.entities.query(tenant, query)
    headers = pagination_headers(request, query.limit, query.offset, len(result.entities),
                                 result.count)
    call = CallContext(tenant, ctx, accept)
    return json_response([render_entity(e, ctx, opts) for e in result.entities], call,
                         headers=headers)


routes = [
    Route(f"{BASE}/entityOperations/{op}", _batch_endpoint(op), methods=["POST"])
    for op in ("create", "upsert", "update", "merge", "delete")
] + [Route(f"{BASE}/entityOperations/query", query_post, methods=["POST"])]
