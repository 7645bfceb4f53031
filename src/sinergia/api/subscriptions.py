"""/ngsi-ld/v1/subscriptions: create, list, retrieve, update and delete subscriptions."""

from __future__ import annotations

from urllib.parse import quote

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
from sinergia.api.params import LIST_SUBSCRIPTIONS, WRITE, int_param, refuse_unknown
from sinergia.api.runtime import runtime
from sinergia.broker.subscriptions import StoredSubscription
from sinergia.ngsild.context import Context
from sinergia.ngsild.errors import TooManyResults
from sinergia.ngsild.model import now_iso
from sinergia.ngsild.subscription import SubscriptionStatus, render_subscription


def _sub_id(request: Request) -> str:
    return uri_param(request, "sub_id", "Subscription")


def _render(stored: StoredSubscription, ctx: Context) -> dict[str, object]:
    s = stored.status
    status = SubscriptionStatus(
        times_sent=s.times_sent, times_failed=s.times_failed,
        last_notification=s.last_notification, last_success=s.last_success,
        last_failure=s.last_failure, notification_status="ok" if s.ok else "failed")
    return render_subscription(stored.subscription, status, ctx, now=now_iso())


async def create_subscription(request: Request) -> Response:
    rt = runtime(request)
    refuse_unknown(request.query_params, WRITE)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    sub_id = await rt.subscriptions.create(tenant_of(request), body, ctx)
    return Response(status_code=201,
                    headers={"Location": f"{BASE}/subscriptions/{quote(sub_id, safe=':')}"})


async def list_subscriptions(request: Request) -> Response:
    rt = runtime(request)
    refuse_unknown(request.query_params, LIST_SUBSCRIPTIONS)
    call = CallContext(tenant_of(request), await request_context(request, rt.contexts),
                       negotiate(request))
    params = request.query_params
    limit = int_param(params, "limit", rt.settings.default_limit)
    offset = int_param(params, "offset", 0)
    if limit > rt.settings.max_limit:
        raise TooManyResults(f"limit={limit} is above the maximum of {rt.settings.max_limit}")
    page, total = await rt.subscriptions.list(call.tenant, limit, offset)
    count = total if params.get("count") == "true" else None
    headers = pagination_headers(request, limit, offset, len(page), count)
    return json_response([_render(s, call.ctx) for s in page], call, headers=headers)


async def retrieve_subscription(request: Request) -> Response:
    rt = runtime(request)
    call = CallContext(tenant_of(request), await request_context(request, rt.contexts),
                       negotiate(request))
    stored = await rt.subscriptions.get(call.tenant, _sub_id(request))
    return json_response(_render(stored, call.ctx), call)


async def update_subscription(request: Request) -> Response:
    rt = runtime(request)
    sub_id = _sub_id(request)
    body, ctx = await json_body(request, rt.contexts, rt.settings.max_body_bytes)
    await rt.subscriptions.update(tenant_of(request), sub_id, body, ctx)
    return no_content()


async def delete_subscription(request: Request) -> Response:
    rt = runtime(request)
    await rt.subscriptions.delete(tenant_of(request), _sub_id(request))
    return no_content()


routes = [
    Route(f"{BASE}/subscriptions", create_subscription, methods=["POST"]),
    Route(f"{BASE}/subscriptions", list_subscriptions, methods=["GET"]),
    Route(f"{BASE}/subscriptions/{{sub_id:path}}", retrieve_subscription, methods=["GET"]),
    Route(f"{BASE}/subscriptions/{{sub_id:path}}", update_subscription, methods=["PATCH"]),
    Route(f"{BASE}/subscriptions/{{sub_id:path}}", delete_subscription, methods=["DELETE"]),
]
