"""The dashboard's HTTP routes, all under ``/dashboard``.

* ``GET /dashboard``, ``/dashboard/lighting``, ``/dashboard/status`` — the pages (HTML). The
  pages hold no data: the browser reads everything from the NGSI-LD API (``/ngsi-ld/v1/…``)
  like any other client of the broker.
* ``GET /dashboard/events`` — server-sent events: ``ready`` once the live feed is listening,
  ``change`` with the entities of each notification, ``stats`` every few seconds
  (:mod:`sinergia.web.live`).
* ``POST /dashboard/notify`` — where the broker delivers the dashboard subscription's
  notifications.
* ``/dashboard/static/…`` — our own scripts and styles; ``/dashboard/vendor/leaflet/…`` and
  ``/dashboard/vendor/plotly/…`` — the map and chart libraries, served from the Python packages
  that ship them (``XStatic-Leaflet``, ``plotly``), so the dashboard works without internet.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from xstatic.pkg import leaflet

from sinergia import __version__
from sinergia.api.runtime import runtime
from sinergia.ngsild.errors import AccessDenied, BadRequestData, InvalidRequest
from sinergia.settings import Settings
from sinergia.web.live import (
    NOTIFY_PATH,
    SUBSCRIPTION_ID,
    TOKEN_HEADER,
    Change,
    LiveFeed,
    own_url,
)
from sinergia.web.verticals import BACKDROP_TYPES, page_config

PREFIX: Final = "/dashboard"
STATS_SECONDS: Final = 5.0          # how often a listening page gets the feed's figures
SEND_TIMEOUT_SECONDS: Final = 30.0  # a browser that takes longer to take an event is dropped
RECONNECT_MS: Final = 3000          # how soon a browser's EventSource reconnects
SHUTDOWN_SECONDS: Final = 5.0       # a stream's time to end cleanly when the server stops

_HERE = Path(__file__).resolve().parent
STATIC_DIR: Final = _HERE / "static"
TEMPLATES_DIR: Final = _HERE / "templates"
LEAFLET_DIR: Final = Path(leaflet.BASE_DIR)

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def plotly_dir() -> Path:
    """The folder of ``plotly.min.js`` inside the ``plotly`` package (found without importing
    the package: only its file is served)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is missing: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


# -- the live feed of this server process ----------------------------------------------------


def feed_of(request: Request) -> LiveFeed:
    """The app's live feed, made on first use (the feed needs the app to reach the API)."""
    state = request.app.state
    feed: LiveFeed | None = getattr(state, "dashboard_feed", None)
    if feed is None:
        settings = runtime(request).settings
        feed = LiveFeed(request.app, own_url(settings.host, settings.port) + NOTIFY_PATH,
                        pause_when_idle=settings.workers == 1)
        state.dashboard_feed = feed
    return feed


def _event(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(data).decode(), event=name, retry=RECONNECT_MS)


async def _next_change(changes: MemoryObjectReceiveStream[Change],
                       shutdown: anyio.Event) -> Change | None:
    """The next change for a browser; None when STATS_SECONDS pass without one. Raises
    EndOfStream when the feed dropped this browser (too slow: it reconnects) or the server is
    shutting down (the stream then ends cleanly instead of being cut)."""
    got: list[Change] = []
    ended = False
    with anyio.move_on_after(STATS_SECONDS):
        async with anyio.create_task_group() as race:
            async def stop_at_shutdown() -> None:
                await shutdown.wait()
                race.cancel_scope.cancel()

            race.start_soon(stop_at_shutdown)
            try:
                got.append(await changes.receive())
            except anyio.EndOfStream:
                ended = True
            race.cancel_scope.cancel()
    if ended or shutdown.is_set():
        raise anyio.EndOfStream
    return got[0] if got else None


async def events(request: Request) -> Response:
    feed = feed_of(request)
    shutdown = anyio.Event()   # set by the response when the server is stopping

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async with feed.listen() as changes:
            yield _event("ready", feed.describe())
            while True:
                try:
                    change = await _next_change(changes, shutdown)
                except anyio.EndOfStream:
                    return
                if change is None:
                    await feed.refresh_if_due()
                    yield _event("stats", feed.describe())
                else:
                    yield _event("change", change)

    return EventSourceResponse(stream(), send_timeout=SEND_TIMEOUT_SECONDS,
                               shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_SECONDS,
                               headers={"Cache-Control": "no-store"})


async def notify(request: Request) -> Response:
    feed = feed_of(request)
    if feed.listeners == 0:
        return Response(status_code=204)   # nobody is watching: nothing to pass on
    if not feed.accepts(request.headers.get(TOKEN_HEADER)):
        raise AccessDenied(f"only the broker, with the {TOKEN_HEADER} header of the "
                           "dashboard's subscription, may notify the dashboard")
    try:
        notification = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the notification is not JSON: {exc}") from None
    if not isinstance(notification, dict):
        raise BadRequestData("a notification must be a JSON object")
    feed.publish(notification)
    return Response(status_code=204)


# -- pages ---------------------------------------------------------------------------------------


def content_security_policy(tile_url: str) -> str:
    """Scripts, data and images from this server only (plus the tile server when one is
    set): the pages can neither load nor leak anything else, and stay usable offline.
    Styles allow inline ones because the chart library adds its own."""
    images = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "x"))
        host = (parts.hostname or "")
        if host.startswith("x.") and "{s}" in tile_url:
            host = "*." + host[2:]
        port = f":{parts.port}" if parts.port else ""
        images += f" {parts.scheme}://{host}{port}"
    return (f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'self'")


def _page_config(settings: Settings, page: str) -> dict[str, Any]:
    return {"page": page, "api": "/ngsi-ld/v1", "events": f"{PREFIX}/events",
            "plotly": f"{PREFIX}/vendor/plotly/plotly.min.js",
            "tiles": {"url": settings.dashboard_tile_url,
                      "attribution": settings.dashboard_tile_attribution},
            "verticals": page_config(), "backdropTypes": list(BACKDROP_TYPES),
            "subscriptionId": SUBSCRIPTION_ID}


def _render(request: Request, template: str, page: str, title: str) -> Response:
    settings = runtime(request).settings
    response = templates.TemplateResponse(request, template, {
        "page": page, "title": title, "version": __version__,
        "config": _page_config(settings, page)})
    response.headers["Content-Security-Policy"] = content_security_policy(
        settings.dashboard_tile_url)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def map_page(request: Request) -> Response:
    return _render(request, "map.html", "map", "City map")


async def lighting_page(request: Request) -> Response:
    return _render(request, "lighting.html", "lighting", "Public lighting: energy")


async def status_page(request: Request) -> Response:
    return _render(request, "status.html", "status", "Platform status")


def _vendor(directory: Path) -> GZipMiddleware:
    # The libraries are large (plotly.min.js is several MB): compressed, they load fast on a
    # phone too. Browsers keep them (ETag / Last-Modified from StaticFiles).
    return GZipMiddleware(StaticFiles(directory=directory), minimum_size=1024)


routes: list[BaseRoute] = [
    Route(PREFIX, map_page, methods=["GET"]),
    Route(f"{PREFIX}/lighting", lighting_page, methods=["GET"]),
    Route(f"{PREFIX}/status", status_page, methods=["GET"]),
    Route(f"{PREFIX}/events", events, methods=["GET"]),
    Route(NOTIFY_PATH, notify, methods=["POST"]),
    Mount(f"{PREFIX}/static", app=StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    Mount(f"{PREFIX}/vendor/leaflet", app=_vendor(LEAFLET_DIR), name="dashboard-leaflet"),
    Mount(f"{PREFIX}/vendor/plotly", app=_vendor(plotly_dir()), name="dashboard-plotly"),
]
