"""/sinergia/v1/devices: provisioning of the devices that send measurements over MQTT, and
/sinergia/v1/mqtt/status: what the MQTT ingester has done since the server started.

Plain JSON in and out (a device record is Sinergia's own, not an NGSI-LD document); the tenant
is the ``NGSILD-Tenant`` header, as everywhere else; errors are ProblemDetails."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.api.entities import pagination_headers
from sinergia.api.http import JSON, no_content, parse_json, plain_json, read_body, tenant_of
from sinergia.api.params import int_param
from sinergia.api.runtime import runtime
from sinergia.broker.devices import check_device_id
from sinergia.ngsild.errors import TooManyResults, UnsupportedMediaType

BASE: Final = "/sinergia/v1"
DEVICES: Final = f"{BASE}/devices"


async def _body(request: Request) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != JSON:
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'!r} is not supported; "
                                   f"a device is sent as {JSON}")
    return parse_json(await read_body(request, runtime(request).settings.max_body_bytes))


def _device_id(request: Request) -> str:
    return check_device_id(request.path_params["device_id"], "URL")


def _location(device_id: str) -> str:
    return f"{DEVICES}/{quote(device_id, safe=':@~')}"


async def create_device(request: Request) -> Response:
    device = await runtime(request).devices.create(tenant_of(request), await _body(request))
    return Response(status_code=201, headers={"Location": _location(device.device_id)})


async def list_devices(request: Request) -> Response:
    rt = runtime(request)
    params = request.query_params
    limit = int_param(params, "limit", rt.settings.default_limit)
    offset = int_param(params, "offset", 0)
    if limit > rt.settings.max_limit:
        raise TooManyResults(f"limit={limit} is above the maximum of {rt.settings.max_limit}")
    page, total = await rt.devices.list(tenant_of(request), limit, offset)
    count = total if params.get("count") == "true" else None
    return plain_json([d.render() for d in page],
                      headers=pagination_headers(request, limit, offset, len(page), count))


async def retrieve_device(request: Request) -> Response:
    device = await runtime(request).devices.get(tenant_of(request), _device_id(request))
    return plain_json(device.render())


async def replace_device(request: Request) -> Response:
    device_id = _device_id(request)
    created = await runtime(request).devices.put(tenant_of(request), device_id,
                                                 await _body(request))
    if created:
        return Response(status_code=201, headers={"Location": _location(device_id)})
    return no_content()


async def delete_device(request: Request) -> Response:
    await runtime(request).devices.delete(tenant_of(request), _device_id(request))
    return no_content()


async def mqtt_status(request: Request) -> Response:
    service = runtime(request).mqtt
    if service is None:
        return plain_json({"enabled": False})
    return plain_json(service.ingester.status.render())


routes = [
    Route(DEVICES, create_device, methods=["POST"]),
    Route(DEVICES, list_devices, methods=["GET"]),
    Route(f"{DEVICES}/{{device_id}}", retrieve_device, methods=["GET"]),
    Route(f"{DEVICES}/{{device_id}}", replace_device, methods=["PUT"]),
    Route(f"{DEVICES}/{{device_id}}", delete_device, methods=["DELETE"]),
    Route(f"{BASE}/mqtt/status", mqtt_status, methods=["GET"]),
]
