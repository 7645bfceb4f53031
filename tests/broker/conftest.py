"""What the notifier tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import pytest

from sinergia.broker.subscriptions import Notifier

RunNotifier = Callable[[Notifier], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _running(notifier: Notifier) -> AsyncIterator[None]:
    """The notifier runs in the background for the body, and stops after it."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(notifier.run)
        await anyio.wait_all_tasks_blocked()
        yield
        tg.cancel_scope.cancel()


@pytest.fixture
def run_notifier() -> RunNotifier:
    return _running
