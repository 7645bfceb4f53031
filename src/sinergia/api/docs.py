"""The OpenAPI description and interactive docs (Swagger UI from the swagger-ui-bundle
package: no CDN, works offline)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sinergia import __version__
from sinergia.api.http import plain_json
from sinergia.api.openapi import build_spec

_UI_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sinergia API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true});</script>
</body></html>"""


async def openapi_json(request: Request) -> Response:
    return plain_json(build_spec(__version__))


async def docs_page(request: Request) -> Response:
    return HTMLResponse(_UI_PAGE)


async def root(request: Request) -> Response:
    return RedirectResponse("/docs")


async def version(request: Request) -> Response:
    return plain_json({"name": "Sinergia", "version": __version__,
                       "ngsiLd": "ETSI GS CIM 009 V1.8", "docs": "/docs"})


routes: list[BaseRoute] = [
    Route("/", root, methods=["GET"]),
    Route("/version", version, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Mount("/docs/static", StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)),
          name="swagger"),
]
