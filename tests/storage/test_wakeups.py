"""The wake-up latch every store rings for its waiters: sticky, used up by one wait."""

from __future__ import annotations

import anyio
import pytest

from sinergia.storage.wakeups import Latch, Wakeups

pytestmark = pytest.mark.anyio


async def test_a_ring_before_the_wait_is_kept_then_used_up() -> None:
    latch = Latch()
    assert not await latch.wait(0)
    latch.ring()
    latch.ring()  # two rings before a wait make one wake-up
    assert await latch.wait(0)
    assert not await latch.wait(0)


async def test_a_ring_wakes_a_waiter() -> None:
    latch = Latch()
    woken: list[bool] = []

    async def waiter() -> None:
        woken.append(await latch.wait(3600))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()  # the waiter is inside wait()
        latch.ring()
    assert woken == [True]


async def test_ring_all_wakes_every_latch_in_use() -> None:
    wakeups = Wakeups()
    records = wakeups.records("subscription")
    assert wakeups.records("subscription") is records
    wakeups.ring_all()
    assert await wakeups.outbox.wait(0)
    assert await records.wait(0)
    assert not await wakeups.records("context").wait(0)  # a latch made later starts quiet
