"""The objects a running server shares between requests, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskStatus
from starlette.requests import Request

from sinergia.adapters.mqtt.service import MqttService
from sinergia.broker.contexts import ContextService
from sinergia.broker.devices import DeviceService
from sinergia.broker.entities import EntityService
from sinergia.broker.subscriptions import Notifier, SubscriptionService
from sinergia.broker.temporal import TemporalService
from sinergia.ngsild.context import ContextResolver
from sinergia.settings import Settings
from sinergia.storage.base import Store


class BackgroundService(Protocol):
    """Work the server does beside answering requests (MQTT ingestion, ...). The lifespan
    starts it with ``task_group.start``: it calls ``task_status.started()`` once ready (if it
    raises before, the server does not start), then runs until cancelled."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                  ) -> None: ...


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    contexts: ContextResolver
    entities: EntityService
    context_service: ContextService
    subscriptions: SubscriptionService
    notifier: Notifier
    temporal: TemporalService
    devices: DeviceService
    mqtt: MqttService | None = None
    background: list[BackgroundService] = field(default_factory=list)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
