"""The ASGI application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from sinergia.adapters.broker_client import InProcessBroker
from sinergia.adapters.mqtt.service import mqtt_service
from sinergia.api import (
    batch,
    contexts,
    discovery,
    docs,
    entities,
    scps,
    subscriptions,
    temporal,
)
from sinergia.api import devices as devices_api
from sinergia.api.conventions import NgsiLdConventions
from sinergia.api.entity_shortcut import EntityByIdShortcut
from sinergia.api.problems import http_error, ngsi_error, unexpected_error
from sinergia.api.runtime import Runtime
from sinergia.api.security import Authenticator, SecurityMiddleware
from sinergia.apps.lighting import start_lighting
from sinergia.broker.contexts import ContextService, current_tenant
from sinergia.broker.delivery import Deliverer, RetryPolicy
from sinergia.broker.devices import DeviceService
from sinergia.broker.entities import EntityService, Limits
from sinergia.broker.subscriptions import Notifier, NotifierSettings, SubscriptionService
from sinergia.broker.temporal import TemporalService
from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.errors import NgsiLdError
from sinergia.settings import Settings
from sinergia.storage.base import Store, open_store
from sinergia.web import routes as dashboard

log = logging.getLogger(__name__)


def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    store = store or open_store(settings.database_url, synchronous=settings.sqlite_synchronous,
                                readers=settings.sqlite_readers,
                                write_batch_max=settings.write_batch_max,
                                history=settings.history,
                                pool_size=settings.postgres_pool_size,
                                statement_timeout=settings.postgres_statement_timeout,
                                connect_timeout=settings.postgres_connect_timeout)
    services: list[ContextService] = []

    async def hosted(url: str) -> dict[str, object] | None:
        return await services[0].load_hosted(url)

    resolver = ContextResolver(
        context_map=settings.context_map, fetch_timeout=settings.context_fetch_timeout,
        cache_ttl=settings.context_cache_ttl, failure_ttl=settings.context_failure_ttl,
        allow_remote=settings.allow_remote_contexts, hosted_loader=hosted,
        hosted_scope=current_tenant.get)
    services.append(ContextService(store, resolver))
    subscriptions = SubscriptionService(store, resolver)
    notifier = Notifier(subscriptions, Deliverer.from_settings(settings),
                        NotifierSettings(
                            retry=RetryPolicy.from_settings(settings),
                            # a claimed notification may wait for a slot, then try: twice the
                            # timeout; a crashed server's claims are retried after the lease
                            lease_seconds=2 * settings.notification_timeout + 5.0))
    entity_service = EntityService(store, Limits(settings.max_limit, settings.max_batch_size))
    temporal_service = TemporalService(store, entity_service,
                                       max_instances=settings.max_history_instances,
                                       max_limit=settings.max_limit)
    devices = DeviceService(store, resolver)
    mqtt = mqtt_service(settings, InProcessBroker(entity_service, resolver,
                                                  temporal=temporal_service), devices)
    return Runtime(settings=settings, store=store, contexts=resolver, entities=entity_service,
                   context_service=services[0], subscriptions=subscriptions,
                   notifier=notifier, temporal=temporal_service, devices=devices, mqtt=mqtt,
                   background=[mqtt] if mqtt is not None else [])


def create_app(settings: Settings, *, store: Store | None = None,
               authenticator: Authenticator | None = None) -> Starlette:
    runtime = build_runtime(settings, store)
    # Apps are clients of the broker that happen to run in its process (the demo's choice).
    lighting = start_lighting(runtime) if settings.lighting_app else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.store.open()
        try:
            await runtime.subscriptions.load()
            async with anyio.create_task_group() as background:
                background.start_soon(runtime.notifier.run)
                if settings.history and settings.history_retention_days > 0:
                    background.start_soon(purge_history, runtime.store,
                                          settings.history_retention_days)
                for service in runtime.background:
                    await background.start(service.run)
                if lighting is not None:
                    background.start_soon(lighting.run, app)
                log.info("Sinergia serving %s", runtime.store.url)
                try:
                    yield
                finally:
                    background.cancel_scope.cancel()
        finally:
            await runtime.notifier.deliverer.aclose()
            await runtime.store.close()

    routes: list[BaseRoute] = [*entities.routes, *batch.routes, *discovery.routes,
                               *contexts.routes, *subscriptions.routes, *temporal.routes,
                               *scps.routes, *devices_api.routes,
                               *docs.routes, *dashboard.routes]
    if lighting is not None:
        routes.append(lighting.mount)
    app = Starlette(
        routes=routes,
        # conventions outermost: a bare 411 and the tenant echo apply to refusals as well;
        # the retrieve shortcut innermost, so that it answers only what security let through
        middleware=[Middleware(NgsiLdConventions),
                    Middleware(SecurityMiddleware, authenticator=authenticator),
                    Middleware(EntityByIdShortcut, runtime=runtime)],
        exception_handlers={NgsiLdError: ngsi_error, HTTPException: http_error,
                            Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


async def purge_history(store: Store, retention_days: float, pause: float = 60.0) -> None:
    """Delete history older than the retention in small slices, so writers never wait long."""
    while True:
        cutoff_ms = int((time.time() - retention_days * 86_400) * 1000)
        try:
            while await store.purge_history(cutoff_ms, limit=5_000) == 5_000:
                await anyio.sleep(0)  # let queued writes in between slices
        except Exception:
            log.exception("history purge failed; retrying later")
        await anyio.sleep(pause)
