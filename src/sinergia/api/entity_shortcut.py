"""``GET /ngsi-ld/v1/entities/{id}`` without query parameters — the commonest read there is —
answered straight from the ASGI scope: no routing through every entity route, no Request or
Response objects, no query-string parsing. It renders through the same cache and helpers as
the endpoint (:func:`sinergia.api.entities.rendered_entity`), so the bytes and headers are the
endpoint's.

Anything it does not handle exactly as the endpoint would — parameters, GeoJSON, an id with a
``/``, no such entity, any error — goes on to the application unchanged, and the endpoint
answers it (errors included). It sits inside the security middleware, so every request is still
authenticated first.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from sinergia.api.entities import BASE, rendered_entity
from sinergia.api.http import (
    GEO_JSON,
    CallContext,
    checked_tenant,
    context_url_of_link,
    negotiate_accept,
    raw_json_headers,
)
from sinergia.api.params import render_options
from sinergia.api.runtime import Runtime
from sinergia.ngsild.entity import is_uri
from sinergia.ngsild.errors import NgsiLdError

PREFIX: Final = f"{BASE}/entities/"
_NO_PARAMS: Final[dict[str, str]] = {}


class EntityByIdShortcut:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]
                and not scope.get("root_path")):
            path: str = scope["path"]
            if path.startswith(PREFIX) and "/" not in path[len(PREFIX):]:
                answer = await self._answer(scope, path[len(PREFIX):])
                if answer is not None:
                    payload, headers = answer
                    await send({"type": "http.response.start", "status": 200,
                                "headers": headers})
                    await send({"type": "http.response.body", "body": payload})
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, entity_id: str
                      ) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        accept = link = tenant = None
        for name, value in scope["headers"]:
            # the first of repeated headers, as Starlette's Headers.get gives
            if name == b"accept" and accept is None:
                accept = value.decode("latin-1")
            elif name == b"link" and link is None:
                link = value.decode("latin-1")
            elif name == b"ngsild-tenant" and tenant is None:
                tenant = value.decode("latin-1")
        if not is_uri(entity_id):
            return None
        rt = self.runtime
        try:
            media = negotiate_accept(accept, geojson=True)
            if media == GEO_JSON:
                return None
            ctx = await rt.contexts.resolve(context_url_of_link(link))
            call = CallContext(checked_tenant(tenant or ""), ctx, media)
            payload = await rendered_entity(rt, call, entity_id, render_options(_NO_PARAMS, ctx))
        except NgsiLdError:
            return None  # the endpoint raises it again, and renders it as a problem
        if payload is None:
            return None
        return payload, raw_json_headers(payload, call)
