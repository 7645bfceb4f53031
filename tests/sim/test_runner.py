"""The simulator's loop: one report per vertical per boundary, the latest boundary only, through
the vertical's door; a failing vertical or door is counted and never stops the others."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sinergia.sim.clock import SimClock
from sinergia.sim.doors import Sent
from sinergia.sim.runner import Simulator
from sinergia.sim.verticals.base import CityReader, DoorKind, Reading, StaticVertical

pytestmark = pytest.mark.anyio
START = datetime(2024, 6, 3, 6, 0, tzinfo=UTC)


class Counter(StaticVertical):
    def __init__(self, name: str, door: DoorKind, period: timedelta, *,
                 fails: bool = False) -> None:
        self.name = name
        self.door = door
        self.period = period
        self.fails = fails
        self.asked: list[datetime] = []
        self.prepared: list[datetime] = []

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return []

    async def prepare(self, city: CityReader, at: datetime) -> None:
        self.prepared.append(at)

    def readings(self, at: datetime) -> list[Reading]:
        if self.fails:
            raise RuntimeError("sensor network down")
        self.asked.append(at)
        return [Reading("Thing", f"{self.name}-1", at, {"n": len(self.asked)})]


class Recorder:
    def __init__(self, *, refuse: bool = False) -> None:
        self.sent: list[Reading] = []
        self.refuse = refuse

    async def send(self, readings: Sequence[Reading]) -> Sent:
        if self.refuse:
            return Sent(0, len(readings), "refused by the test")
        self.sent += readings
        return Sent(len(readings))


class NoCity:
    async def query(self, entity_type: str, attrs: Sequence[str]) -> list[dict[str, Any]]:
        return []


def simulator(*verticals: Counter, doors: dict[DoorKind, Any] | None = None) -> Simulator:
    return Simulator(SimClock(START, 1.0), verticals,
                     doors or {kind: Recorder() for kind in DoorKind}, NoCity(), seed=5)


async def test_each_vertical_reports_once_per_boundary() -> None:
    fast = Counter("fast", DoorKind.MQTT, timedelta(minutes=5))
    slow = Counter("slow", DoorKind.NGSI_LD, timedelta(minutes=15))
    sim = simulator(fast, slow)
    for minute in range(0, 31):
        await sim.step(START + timedelta(minutes=minute))
    assert fast.asked == [START + timedelta(minutes=5 * n) for n in range(7)]
    assert slow.asked == [START + timedelta(minutes=15 * n) for n in range(3)]
    assert slow.prepared == slow.asked
    doors = sim.doors
    assert len(doors[DoorKind.MQTT].sent) == 7  # type: ignore[attr-defined]
    assert len(doors[DoorKind.NGSI_LD].sent) == 3  # type: ignore[attr-defined]


async def test_at_high_speed_only_the_latest_boundary_is_reported() -> None:
    fast = Counter("fast", DoorKind.MQTT, timedelta(minutes=5))
    sim = simulator(fast)
    assert not sim.live.is_set()
    await sim.step(START)
    await sim.step(START + timedelta(minutes=42))
    assert fast.asked == [START, START + timedelta(minutes=40)]


async def test_a_failing_vertical_or_door_does_not_stop_the_others() -> None:
    broken = Counter("broken", DoorKind.MQTT, timedelta(minutes=5), fails=True)
    refused = Counter("refused", DoorKind.URBANDATASET, timedelta(minutes=5))
    fine = Counter("fine", DoorKind.NGSI_LD, timedelta(minutes=5))
    sim = simulator(broken, refused, fine, doors={
        DoorKind.MQTT: Recorder(), DoorKind.URBANDATASET: Recorder(refuse=True),
        DoorKind.NGSI_LD: Recorder()})
    await sim.step(START)
    await sim.step(START + timedelta(minutes=5))
    status = sim.status()
    assert status["verticals"]["broken"]["failures"] == 2
    assert "sensor network down" in status["doors"]["mqtt"]["lastError"]
    assert status["doors"]["urbandataset"] == {
        "accepted": 0, "refused": 2, "sends": 2, "lastError": "refused by the test",
        "lastErrorAt": "2024-06-03T06:05:00Z"}
    assert status["doors"]["ngsi-ld"]["accepted"] == 2
    assert status["verticals"]["fine"]["lastBoundary"] == "2024-06-03T06:05:00Z"
    assert status["liveAfterSeconds"] is not None and sim.live.is_set()
    assert status["seed"] == 5 and status["ticks"] == 2


async def test_a_vertical_can_join_a_running_simulation() -> None:
    first = Counter("first", DoorKind.NGSI_LD, timedelta(minutes=5))
    late = Counter("late", DoorKind.MQTT, timedelta(minutes=5))
    sim = simulator(first)
    await sim.step(START)
    sim.add(late)
    await sim.step(START + timedelta(minutes=5))
    assert late.asked == [START + timedelta(minutes=5)]
    assert sim.status()["verticals"]["late"]["readings"] == 1


def test_every_door_a_vertical_uses_must_be_given() -> None:
    with pytest.raises(ValueError, match="urbandataset"):
        Simulator(SimClock(START, 1.0),
                  [Counter("m", DoorKind.URBANDATASET, timedelta(minutes=5))],
                  {DoorKind.NGSI_LD: Recorder()}, NoCity())
