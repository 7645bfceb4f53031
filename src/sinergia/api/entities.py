"""/ngsi-ld/v1/entities and its attribute sub-resources: parse, call the broker, render."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api import render_cache
from sinergia.api.http import (
    GEO_JSON,
    CallContext,
    geojson_response,
    json_body,
    json_response,
    negotiate,
    no_content,
    plain_json,
    request_context,
    serialized_response,
    tenant_of,
    uri_param,
)
from sinergia.api.params import (
    QUERY_ENTITIES,
    RETRIEVE_ENTITY,
    WRITE,
    entity_query,
    options_of,
    refuse_unknown,
    render_options,
)
from sinergia.api.runtime import Runtime, runtime
from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import parse_attribute, parse_attributes, parse_entity
from sinergia.ngsild.errors import BadRequestData, ResourceNotFound
from sinergia.ngsild.model import Entity
from sinergia.ngsild.render import (
    RenderOptions,
    render_entity,
    render_feature,
    render_feature_collection,
)
from sinergia.ngsild.updates import NotUpdated

BASE = "/ngsi-ld/v1"


def _entity_id(request: Request) -> str:
    return uri_param(request, "entity_id", "Entity")


async def _read_call(request: Request, *, geojson: bool = True) -> CallContext:
    rt = runtime(request)
    accept = negotiate(request, geojson=geojson)
    return CallContext(tenant_of(request), await request_context(request, rt.contexts), accept)


def _render_options(request: Request, call: CallContext) -> RenderOptions:
    if "geometryProperty" in request.query_params and call.accept != GEO_JSON:
        # ETSI GS CIM 009 5.7.1.4 / 5.7.2.4: it only means something for GeoJSON answers
        raise BadRequestData("geometryProperty needs Accept: application/geo+json")
    return render_options(request.query_params, call.ctx)


def _check_type(entity: Entity, request: Request, ctx: Context) -> None:
    """The optional ``type`` selector of single-entity operations (ETSI GS CIM 009 4.17,
    5.6.4.4, 5.7.1.4): an entity whose type differs is, for this request, not found."""
    raw = request.query_params.get("type")
    if raw is None:
        return
    wanted = {ctx.expand(t.strip()) for t in raw.split(",") if t.strip()}
    if wanted.isdisjoint(entity["type"]):
        raise ResourceNotFound(f"Entity {entity['id']!r} has none of the types {raw[:200]!r}")


async def create_entity(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    refuse_unknown(request.query_params, WRITE)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    entity = parse_entity(body, ctx)
    await rt.entities.create(tenant, entity)
    return Response(status_code=201,
                    headers={"Location": f"{BASE}/entities/{quote(entity['id'], safe=':')}"})


async def query_entities(request: Request) -> Response:
    rt = runtime(request)
    params = request.query_params
    refuse_unknown(params, QUERY_ENTITIES)
    call = await _read_call(request)
    query = entity_query(params, call.ctx, default_limit=rt.settings.default_limit)
    opts = _render_options(request, call)
    result = await rt.entities.query(call.tenant, query)
    headers = pagination_headers(request, query.limit, query.offset, result.size,
                                 result.count)
    if call.accept == GEO_JSON:
        return geojson_response(render_feature_collection(result.entities, call.ctx, opts),
                                call, request, headers=headers)
    if result.documents is not None:
        payload = b"[" + b",".join(render_cache.rendered(result.documents, call, opts,
                                                         result.parsed)) + b"]"
        return serialized_response(payload, call, headers=headers)
    rendered = [render_entity(e, call.ctx, opts) for e in result.entities]
    return json_response(rendered, call, headers=headers)


def pagination_headers(request: Request, limit: int, offset: int, returned: int,
                       count: int | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if count is not None:
        headers["NGSILD-Results-Count"] = str(count)
    links = []
    base = dict(request.query_params)
    more = returned == limit and limit > 0 and (count is None or offset + limit < count)
    if more:
        links.append(f'<{request.url.path}?{urlencode({**base, "offset": offset + limit})}>;'
                     ' rel="next"')
    if offset > 0 and limit > 0:
        prev = max(0, offset - limit)
        links.append(f'<{request.url.path}?{urlencode({**base, "offset": prev})}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return headers


async def retrieve_entity(request: Request) -> Response:
    rt = runtime(request)
    refuse_unknown(request.query_params, RETRIEVE_ENTITY)
    call = await _read_call(request)
    entity_id = _entity_id(request)
    opts = _render_options(request, call)
    # the stored text, rendered through the cache, unless the type selector needs the entity
    if call.accept != GEO_JSON and "type" not in request.query_params:
        payload = await rendered_entity(rt, call, entity_id, opts)
        if payload is not None:
            return serialized_response(payload, call)
    entity = await rt.entities.retrieve(call.tenant, entity_id)
    _check_type(entity, request, call.ctx)
    if call.accept == GEO_JSON:
        return geojson_response(render_feature(entity, call.ctx, opts), call, request)
    return json_response(render_entity(entity, call.ctx, opts), call)


async def rendered_entity(rt: Runtime, call: CallContext, entity_id: str,
                          opts: RenderOptions) -> bytes | None:
    """The entity's JSON from its stored text, through the cache of rendered entities; None
    when the store gives no text or there is no such entity (the caller then takes the
    general path, which also raises the right error)."""
    doc = await rt.entities.retrieve_document(call.tenant, entity_id)
    return None if doc is None else render_cache.rendered((doc,), call, opts)[0]


async def replace_entity(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    if isinstance(body, dict):
        body.setdefault("id", entity_id)
    entity = parse_entity(body, ctx)
    if entity["id"] != entity_id:
        raise BadRequestData("The id in the body differs from the id in the URL")
    await rt.entities.replace(tenant, entity_id, entity)
    return no_content()


async def merge_entity(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    if isinstance(body, dict):
        if body.get("id", entity_id) != entity_id:
            raise BadRequestData("The id in the body differs from the id in the URL")
        body["id"] = entity_id
    patch = parse_entity(body, ctx, require_type=False)
    await rt.entities.merge(tenant, entity_id, patch)
    return no_content()


async def delete_entity(request: Request) -> Response:
    rt = runtime(request)
    await rt.entities.delete(tenant_of(request), _entity_id(request))
    return no_content()


def _partial(not_updated: list[NotUpdated], updated: list[str], call_ctx: Any) -> Response:
    if not not_updated:
        return no_content()
    body = {"updated": [call_ctx.compact(a) for a in updated],
            "notUpdated": [{"attributeName": call_ctx.compact(n.attribute), "reason": n.reason}
                           for n in not_updated]}
    return plain_json(body, status=207)


async def append_attrs(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    attrs = parse_attributes(body, ctx, allow_entity_members=True)
    no_overwrite = "noOverwrite" in options_of(request.query_params)
    report = await rt.entities.append_attrs(tenant, entity_id, attrs, no_overwrite=no_overwrite)
    failed = {n.attribute for n in report}
    return _partial(report, [a for a in attrs if a not in failed], ctx)


async def update_attrs(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    attrs = parse_attributes(body, ctx, allow_entity_members=True)
    report = await rt.entities.update_attrs(tenant, entity_id, attrs)
    failed = {n.attribute for n in report}
    return _partial(report, [a for a in attrs if a not in failed], ctx)


async def patch_attr(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    refuse_unknown(request.query_params, WRITE)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    name = request.path_params["attr"]
    if not isinstance(body, dict):
        raise BadRequestData("The body must be a JSON object (an attribute fragment)")
    if "type" in request.query_params:
        _check_type(await rt.entities.retrieve(tenant, entity_id), request, ctx)
    body = {k: v for k, v in body.items() if k != "@context"}
    instances = parse_attribute(name, body, ctx)
    if len(instances) != 1:
        raise BadRequestData("A partial attribute update takes one attribute instance")
    await rt.entities.patch_attr(tenant, entity_id, ctx.expand(name), instances[0])
    return no_content()


async def replace_attr(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    name = request.path_params["attr"]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    instances = parse_attribute(name, body, ctx)
    await rt.entities.replace_attr(tenant, entity_id, ctx.expand(name), instances)
    return no_content()


async def delete_attr(request: Request) -> Response:
    rt = runtime(request)
    tenant = tenant_of(request)
    entity_id = _entity_id(request)
    ctx = await request_context(request, rt.contexts)
    params = request.query_params
    await rt.entities.delete_attr(
        tenant, entity_id, ctx.expand(request.path_params["attr"]),
        dataset_id=params.get("datasetId"),
        delete_all=params.get("deleteAll", "false").lower() == "true")
    return no_content()


routes = [
    Route(f"{BASE}/entities", query_entities, methods=["GET"]),
    Route(f"{BASE}/entities", create_entity, methods=["POST"]),
    Route(f"{BASE}/entities/{{entity_id:path}}/attrs/{{attr}}", patch_attr, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:path}}/attrs/{{attr}}", replace_attr, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id:path}}/attrs/{{attr}}", delete_attr,
          methods=["DELETE"]),
    Route(f"{BASE}/entities/{{entity_id:path}}/attrs", append_attrs, methods=["POST"]),
    Route(f"{BASE}/entities/{{entity_id:path}}/attrs", update_attrs, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:path}}", retrieve_entity, methods=["GET"]),
    Route(f"{BASE}/entities/{{entity_id:path}}", replace_entity, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id:path}}", merge_entity, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:path}}", delete_entity, methods=["DELETE"]),
]
