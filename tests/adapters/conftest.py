"""Adapter fixtures: a broker on a fresh database, reachable both in-process (the
InProcessBroker adapters write through) and over its HTTP API (an httpx client on the ASGI
app, no server), so tests write one way and read back the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from sinergia.adapters.broker_client import HttpBroker, InProcessBroker
from sinergia.api.app import create_app
from sinergia.api.runtime import Runtime
from sinergia.settings import Settings


@dataclass
class LiveBroker:
    app: Starlette
    runtime: Runtime
    http: httpx.AsyncClient
    in_process: InProcessBroker

    def over_http(self, **options: int) -> HttpBroker:
        return HttpBroker(client=self.http, **options)


@pytest.fixture
async def live_broker(settings: Settings) -> AsyncIterator[LiveBroker]:
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    await runtime.store.open()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as http:
            yield LiveBroker(app, runtime, http,
                             InProcessBroker(runtime.entities, runtime.contexts))
    finally:
        await runtime.store.close()
