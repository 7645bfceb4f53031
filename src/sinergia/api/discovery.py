"""/ngsi-ld/v1/types and /ngsi-ld/v1/attributes: what kinds of data a tenant holds."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api.entities import BASE
from sinergia.api.http import CallContext, json_response, negotiate, request_context, tenant_of
from sinergia.api.params import DISCOVERY, refuse_unknown
from sinergia.api.runtime import runtime
from sinergia.ngsild.errors import ResourceNotFound


async def _call(request: Request) -> CallContext:
    rt = runtime(request)
    call = CallContext(tenant_of(request), await request_context(request, rt.contexts),
                       negotiate(request))
    await rt.entities.require_tenant(call.tenant)
    return call


def _details(request: Request) -> bool:
    return request.query_params.get("details", "false").lower() == "true"


async def list_types(request: Request) -> Response:
    refuse_unknown(request.query_params, DISCOVERY)
    call = await _call(request)
    infos = await runtime(request).store.entity_types(call.tenant)
    c = call.ctx.compact
    if _details(request):
        body: object = [{"id": i.type, "type": "EntityType", "typeName": c(i.type),
                         "attributeNames": [c(a) for a in i.attributes]} for i in infos]
    else:
        body = {"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList",
                "typeList": [c(i.type) for i in infos]}
    return json_response(body, call)


async def type_info(request: Request) -> Response:
    call = await _call(request)
    wanted = call.ctx.expand(request.path_params["type"])
    c = call.ctx.compact
    rt = runtime(request)
    for info in await rt.store.entity_types(call.tenant):
        if info.type == wanted:
            kinds = {a.attribute: a.kinds for a in await rt.store.attributes(call.tenant)}
            body = {"id": info.type, "type": "EntityTypeInfo", "typeName": c(info.type),
                    "entityCount": info.count,
                    "attributeDetails": [
                        {"id": a, "type": "Attribute", "attributeName": c(a),
                         "attributeTypes": list(kinds.get(a, ()))} for a in info.attributes]}
            return json_response(body, call)
    raise ResourceNotFound(f"No entity of type {request.path_params['type']!r}")


async def list_attributes(request: Request) -> Response:
    call = await _call(request)
    infos = await runtime(request).store.attributes(call.tenant)
    c = call.ctx.compact
    if _details(request):
        body: object = [{"id": i.attribute, "type": "Attribute", "attributeName": c(i.attribute),
                         "typeNames": [c(t) for t in i.types]} for i in infos]
    else:
        body = {"id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}", "type": "AttributeList",
                "attributeList": [c(i.attribute) for i in infos]}
    return json_response(body, call)


async def attribute_info(request: Request) -> Response:
    call = await _call(request)
    wanted = call.ctx.expand(request.path_params["attr"])
    c = call.ctx.compact
    for info in await runtime(request).store.attributes(call.tenant):
        if info.attribute == wanted:
            body = {"id": info.attribute, "type": "Attribute",
                    "attributeName": c(info.attribute), "attributeCount": info.count,
                    "attributeTypes": list(info.kinds), "typeNames": [c(t) for t in info.types]}
            return json_response(body, call)
    raise ResourceNotFound(f"No attribute {request.path_params['attr']!r}")


routes = [
    Route(f"{BASE}/types", list_types, methods=["GET"]),
    Route(f"{BASE}/types/{{type:path}}", type_info, methods=["GET"]),
    Route(f"{BASE}/attributes", list_attributes, methods=["GET"]),
    Route(f"{BASE}/attributes/{{attr:path}}", attribute_info, methods=["GET"]),
]
