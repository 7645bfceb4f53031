"""The app inside the server: its HTTP endpoints under ``/apps/lighting`` and its start.

* ``GET  /apps/lighting/algorithm`` — the algorithm register entry (HTML, or JSON with
  ``Accept: application/json`` / ``?format=json``; ``?lang=it|en``, else Accept-Language);
* ``POST /apps/lighting/notify`` — where the broker delivers the app's notifications;
* ``GET  /apps/lighting/status`` — a small JSON summary of what the app manages.

The app talks to the broker through the public NGSI-LD API like any client; in the server's
process it does so through ``httpx.ASGITransport`` on the server's own ASGI app (no socket,
same middleware and handlers as any request), and the broker notifies it at the server's own
URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from sinergia.apps.lighting.client import BrokerApi
from sinergia.apps.lighting.register import LANGUAGES, Language, register_html, register_json
from sinergia.apps.lighting.service import (
    TOKEN_HEADER,
    CycleResult,
    LightingConfig,
    LightingService,
)

if TYPE_CHECKING:
    from sinergia.api.runtime import Runtime

log = logging.getLogger(__name__)

MOUNT = "/apps/lighting"
_INTERNAL_BASE = "http://sinergia.internal"  # any host: ASGITransport never resolves it


def _language(request: Request) -> Language:
    asked = request.query_params.get("lang", "")
    for language in LANGUAGES:
        if asked == language:
            return language
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        for language in LANGUAGES:
            if tag == language:
                return language
    return "it"


def _wants_json(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        return fmt == "json"
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


class LightingApp:
    """The lighting app of one server: mount :attr:`mount`, run :meth:`run` in the lifespan."""

    def __init__(self, config: LightingConfig | None = None, *,
                 notify_url: str | None = None) -> None:
        self.config = config or LightingConfig()
        self.notify_url = notify_url
        self.service: LightingService | None = None
        # told of every cycle, the first included (the service is made inside run())
        self.listeners: list[Callable[[CycleResult], None]] = []
        self.mount = Mount(MOUNT, routes=[
            Route("/algorithm", self.algorithm, methods=["GET"]),
            Route("/notify", self.notify, methods=["POST"]),
            Route("/status", self.status, methods=["GET"]),
        ])

    async def algorithm(self, request: Request) -> Response:
        language = _language(request)
        headers = {"Content-Language": language, "Vary": "Accept, Accept-Language"}
        if _wants_json(request):
            return JSONResponse(register_json(language, self.config), headers=headers)
        return HTMLResponse(register_html(language, self.config), headers=headers)

    async def notify(self, request: Request) -> Response:
        service = self.service
        if service is None:
            return Response(status_code=503)  # not started yet: the broker retries
        if not service.accepts(request.headers.get(TOKEN_HEADER)):
            return Response(status_code=403)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return Response(status_code=400)
        if isinstance(body, dict):
            service.notify(body)
        return Response(status_code=204)

    async def status(self, request: Request) -> Response:
        service = self.service
        return JSONResponse(service.describe() if service else {"started": False})

    async def run(self, asgi_app: ASGIApp) -> None:
        """Serve until cancelled, talking to the broker through ``asgi_app``."""
        transport = httpx.ASGITransport(app=asgi_app)
        async with httpx.AsyncClient(transport=transport, base_url=_INTERNAL_BASE,
                                     timeout=60.0) as client:
            self.service = LightingService(BrokerApi(client, tenant=self.config.tenant),
                                           self.config)
            self.service.listeners = self.listeners
            await self.service.run(self.notify_url)


def own_url(host: str, port: int) -> str:
    """The server's URL as seen from the server itself (a wildcard address is loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def start_lighting(runtime: Runtime, config: LightingConfig | None = None) -> LightingApp:
    """The lighting app for the server of ``runtime``: mount ``app.mount`` among the server's
    routes and start ``app.run(starlette_app)`` in its lifespan's task group."""
    settings = runtime.settings
    return LightingApp(config, notify_url=own_url(settings.host, settings.port) + MOUNT
                       + "/notify")
