"""The objects a running server shares between requests, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from sinergia.broker.contexts import ContextService
from sinergia.broker.entities import EntityService
from sinergia.ngsild.context import ContextResolver
from sinergia.settings import Settings
from sinergia.storage.base import Store


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    contexts: ContextResolver
    entities: EntityService
    context_service: ContextService


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
