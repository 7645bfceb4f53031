"""The raw baseline for retrieve-by-id: a bare Starlette app that looks the same stored document
up in the same SQLite file and returns it untouched (no JSON-LD, no rendering, no checks)."""

from __future__ import annotations

import os
import sqlite3

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app_factory() -> Starlette:
    conn = sqlite3.connect(os.environ["BASELINE_DB"], check_same_thread=False)

    async def by_id(request: Request) -> Response:
        row = conn.execute("SELECT doc FROM entities WHERE tenant = '' AND id = ?",
                           (request.path_params["entity_id"],)).fetchone()
        if row is None:
            return Response(status_code=404)
        return Response(row[0], media_type="application/json")

    async def health(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/entities/{entity_id:path}", by_id),
                             Route("/health", health)])
