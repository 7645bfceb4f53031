"""/ngsi-ld/v1/temporal/...: query and write the history of entities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api.entities import BASE, pagination_headers
from sinergia.api.http import (
    CallContext,
    json_body,
    json_response,
    negotiate,
    no_content,
    request_context,
    tenant_of,
    uri_param,
)
from sinergia.api.params import (
    TEMPORAL_QUERY,
    WRITE,
    entity_query,
    query_from_body,
    refuse_unknown,
)
from sinergia.api.runtime import runtime
from sinergia.broker.temporal import Selection, TemporalResult
from sinergia.ngsild.aggregation import Aggregation, parse_aggr_methods, parse_period
from sinergia.ngsild.context import Context
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.query import EntityQuery
from sinergia.ngsild.temporal import (
    TemporalFormat,
    TimeFilter,
    content_range,
    next_page_filter,
    parse_temporal_attrs,
    parse_temporal_entity,
    parse_temporal_instance,
    parse_temporal_q,
    parse_time_filter,
    render_temporal,
    temporal_format,
)


def _entity_id(request: Request) -> str:
    return uri_param(request, "entity_id", "Entity")


def _selection(query: EntityQuery) -> Selection:
    # Selectors with different members (POST …/query) are matched on the current state too:
    # the history tables select by flat ids, id pattern and type only.
    current = query if (query.q is not None or query.geo is not None
                        or query.scope is not None or query.selectors) else None
    return Selection(ids=query.ids, id_pattern=query.id_pattern, type=query.type,
                     attrs=query.attrs, current=current)


def _aggregation(params: Mapping[str, str], fmt: TemporalFormat) -> Aggregation | None:
    if fmt != "aggregatedValues":
        return None
    return Aggregation(parse_aggr_methods(params.get("aggrMethods")),
                       parse_period(params.get("aggrPeriodDuration")))


async def _call(request: Request) -> CallContext:
    rt = runtime(request)
    return CallContext(tenant_of(request), await request_context(request, rt.contexts),
                       negotiate(request))


def _render(request: Request, call: CallContext, result: TemporalResult, tf: TimeFilter, *,
            fmt: TemporalFormat, sys_attrs: bool, attrs: tuple[str, ...] | None,
            headers: dict[str, str], single: bool) -> Response:
    params = request.query_params
    lang = params.get("lang")
    wanted = frozenset(attrs) if attrs else None
    rendered = []
    for n, te in enumerate(result.entities):
        aggregated = result.aggregated[n] if result.aggregated is not None else None
        rendered.append(render_temporal(te, call.ctx, format=fmt, attrs=wanted,
                                        sys_attrs=sys_attrs, timeproperty=tf.timeproperty,
                                        lang=lang, aggregated=aggregated))
    status = 200
    if result.page is not None and result.window is not None:
        header = content_range(result.page, tf)
        if header is not None:
            status = 206
            headers["Content-Range"] = header
            following = next_page_filter(result.page, tf, result.window)
            if following is not None:
                base = {k: v for k, v in params.items()
                        if k not in ("timerel", "timeAt", "endTimeAt", "lastN")}
                link = f'<{request.url.path}?{urlencode({**base, **following.to_params()})}>'
                headers["Link"] = ", ".join(filter(None, [headers.get("Link"),
                                                          f'{link}; rel="next"']))
    body: Any = rendered[0] if single else rendered
    return json_response(body, call, headers=headers, status=status)


async def query_temporal(request: Request) -> Response:
    rt = runtime(request)
    refuse_unknown(request.query_params, TEMPORAL_QUERY)
    call = await _call(request)
    params = request.query_params
    query = entity_query(params, call.ctx, default_limit=rt.settings.default_limit)
    tf = parse_time_filter(params, require_timerel=True)
    fmt, sys_attrs = temporal_format(params)
    result = await rt.temporal.query(call.tenant, _selection(query), tf, limit=query.limit,
                                     offset=query.offset, count=query.count,
                                     aggregation=_aggregation(params, fmt))
    headers = pagination_headers(request, query.limit, query.offset, len(result.entities),
                                 result.count)
    return _render(request, call, result, tf, fmt=fmt, sys_attrs=sys_attrs, attrs=query.attrs,
                   headers=headers, single=False)


async def query_temporal_post(request: Request) -> Response:
    rt = runtime(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    query = query_from_body(body, ctx, params=request.query_params,
                            default_limit=rt.settings.default_limit)
    tf = parse_temporal_q(body.get("temporalQ") if isinstance(body, dict) else None,
                          request.query_params)
    fmt, sys_attrs = temporal_format(request.query_params)
    call = CallContext(tenant_of(request), ctx, negotiate(request))
    result = await rt.temporal.query(call.tenant, _selection(query), tf, limit=query.limit,
                                     offset=query.offset, count=query.count,
                                     aggregation=_aggregation(request.query_params, fmt))
    headers = pagination_headers(request, query.limit, query.offset, len(result.entities),
                                 result.count)
    return _render(request, call, result, tf, fmt=fmt, sys_attrs=sys_attrs, attrs=query.attrs,
                   headers=headers, single=False)


async def retrieve_temporal(request: Request) -> Response:
    rt = runtime(request)
    call = await _call(request)
    params = request.query_params
    query = entity_query(params, call.ctx, default_limit=1, require_selector=False)
    tf = parse_time_filter(params)
    fmt, sys_attrs = temporal_format(params)
    result = await rt.temporal.retrieve(call.tenant, _entity_id(request), tf,
                                        attrs=query.attrs,
                                        aggregation=_aggregation(params, fmt))
    return _render(request, call, result, tf, fmt=fmt, sys_attrs=sys_attrs, attrs=query.attrs,
                   headers={}, single=True)


async def create_temporal(request: Request) -> Response:
    rt = runtime(request)
    refuse_unknown(request.query_params, WRITE)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    te = parse_temporal_entity(body, ctx)
    created = await rt.temporal.add(tenant_of(request), te)
    if not created:
        return no_content()
    return Response(status_code=201, headers={
        "Location": f"{BASE}/temporal/entities/{quote(te.id, safe=':')}"})


async def add_temporal_attrs(request: Request) -> Response:
    rt = runtime(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    await rt.temporal.add_attrs(tenant_of(request), entity_id, parse_temporal_attrs(body, ctx))
    return no_content()


async def delete_temporal(request: Request) -> Response:
    rt = runtime(request)
    await rt.temporal.delete_entity(tenant_of(request), _entity_id(request))
    return no_content()


async def _attr(request: Request) -> tuple[str, Context]:
    rt = runtime(request)
    ctx = await request_context(request, rt.contexts)
    return ctx.expand(request.path_params["attr"]), ctx


async def delete_temporal_attr(request: Request) -> Response:
    rt = runtime(request)
    attr, _ = await _attr(request)
    await rt.temporal.delete_attr(tenant_of(request), _entity_id(request), attr)
    return no_content()


async def delete_temporal_instance(request: Request) -> Response:
    rt = runtime(request)
    attr, _ = await _attr(request)
    await rt.temporal.delete_instance(tenant_of(request), _entity_id(request), attr,
                                      request.path_params["instance_id"])
    return no_content()


async def patch_temporal_instance(request: Request) -> Response:
    rt = runtime(request)
    entity_id = _entity_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    name = request.path_params["attr"]
    attr = ctx.expand(name)
    if not isinstance(body, dict):
        raise BadRequestData("The body must be an object: the attribute with one instance")
    fragment = body.get(name, body)
    new = parse_temporal_instance(name, fragment, ctx, require_observed_at=False)
    await rt.temporal.patch_instance(tenant_of(request), entity_id, attr,
                                     request.path_params["instance_id"], new)
    return no_content()


T = f"{BASE}/temporal/entities"
routes = [
    Route(T, query_temporal, methods=["GET"]),
    Route(T, create_temporal, methods=["POST"]),
    Route(f"{BASE}/temporal/entityOperations/query", query_temporal_post, methods=["POST"]),
    Route(f"{T}/{{entity_id}}", retrieve_temporal, methods=["GET"]),
    Route(f"{T}/{{entity_id}}", delete_temporal, methods=["DELETE"]),
    Route(f"{T}/{{entity_id}}/attrs", add_temporal_attrs, methods=["POST"]),
    Route(f"{T}/{{entity_id}}/attrs/{{attr}}", delete_temporal_attr, methods=["DELETE"]),
    Route(f"{T}/{{entity_id}}/attrs/{{attr}}/{{instance_id}}", patch_temporal_instance,
          methods=["PATCH"]),
    Route(f"{T}/{{entity_id}}/attrs/{{attr}}/{{instance_id}}", delete_temporal_instance,
          methods=["DELETE"]),
]
