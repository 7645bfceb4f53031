"""HTTP binding rules of ETSI GS CIM 009 clause 6.3 that hold for every NGSI-LD resource
before any handler runs, applied once as an ASGI middleware:

- the standard names collections with a trailing slash (``/ngsi-ld/v1/entities/``,
  ``…/attrs/``, ``/types/``); both spellings reach the same handler;
- a POST, PATCH or PUT without ``Content-Length`` is answered with a bare 411 (6.3.4);
- the ``NGSILD-Tenant`` of a request is echoed on its response, errors included (6.3.14).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX: Final = "/ngsi-ld/v1/"
_BODY_METHODS: Final = frozenset({"POST", "PATCH", "PUT"})


class NgsiLdConventions:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        names = {name for name, _ in headers}
        if scope["method"] in _BODY_METHODS and b"content-length" not in names:
            await send({"type": "http.response.start", "status": 411, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        scope = _without_trailing_slash(scope)
        tenant = next((value for name, value in headers if name == b"ngsild-tenant"), None)
        if tenant is None:
            await self.app(scope, receive, send)
            return

        async def echo_tenant(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message,
                           "headers": [*message.get("headers", []), (b"ngsild-tenant", tenant)]}
            await send(message)

        await self.app(scope, receive, echo_tenant)


def _without_trailing_slash(scope: Scope) -> Scope:
    """The scope with one literal trailing ``/`` removed from the path. Only a literal slash
    counts: an entity id that ends in ``/`` arrives percent-encoded (``%2F``) and is kept."""
    path: str = scope["path"]
    raw: bytes | None = scope.get("raw_path")
    literal = raw.endswith(b"/") if raw is not None else path.endswith("/")
    if not literal or len(path) <= len(API_PREFIX):
        return scope
    trimmed = dict(scope)
    trimmed["path"] = path[:-1]
    if raw is not None:
        trimmed["raw_path"] = raw[:-1]
    return trimmed
