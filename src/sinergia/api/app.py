"""The ASGI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from sinergia.api import batch, contexts, discovery, docs, entities
from sinergia.api.problems import http_error, ngsi_error, unexpected_error
from sinergia.api.runtime import Runtime
from sinergia.api.security import Authenticator, SecurityMiddleware
from sinergia.broker.contexts import ContextService
from sinergia.broker.entities import EntityService, Limits
from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.errors import NgsiLdError
from sinergia.settings import Settings
from sinergia.storage.base import Store, open_store

log = logging.getLogger(__name__)


def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    store = store or open_store(settings.database_url, synchronous=settings.sqlite_synchronous,
                                readers=settings.sqlite_readers,
                                write_batch_max=settings.write_batch_max)
    services: list[ContextService] = []

    async def hosted(url: str) -> dict[str, object] | None:
        return await services[0].load_hosted(url)

    resolver = ContextResolver(
        context_map=settings.context_map, fetch_timeout=settings.context_fetch_timeout,
        cache_ttl=settings.context_cache_ttl, failure_ttl=settings.context_failure_ttl,
        allow_remote=settings.allow_remote_contexts, hosted_loader=hosted)
    services.append(ContextService(store, resolver))
    return Runtime(settings=settings, store=store, contexts=resolver,
                   entities=EntityService(store, Limits(settings.max_limit,
                                                        settings.max_batch_size)),
                   context_service=services[0])


def create_app(settings: Settings, *, store: Store | None = None,
               authenticator: Authenticator | None = None) -> Starlette:
    runtime = build_runtime(settings, store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.store.open()
        log.info("Sinergia serving %s", runtime.store.url)
        try:
            yield
        finally:
            await runtime.store.close()

    routes: list[BaseRoute] = [*entities.routes, *batch.routes, *discovery.routes,
                               *contexts.routes, *docs.routes]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, authenticator=authenticator)],
        exception_handlers={NgsiLdError: ngsi_error, HTTPException: http_error,
                            Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
