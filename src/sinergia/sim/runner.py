"""The simulator's loop: at every tick of real time, each vertical whose period boundary has
passed in simulated time produces its readings for that boundary and its door sends them.

**Pacing.** Ticks come every ``tick_seconds`` of real time, on a fixed grid (a slow tick
delays the next, it does not shift the grid); a vertical reports at most once per tick, for the
latest boundary — at speeds where several of its periods pass in one tick the ones in between
are skipped (the meters' registers still count all the energy), so the load on the platform
stays bounded whatever the speed. Values depend only on the seed, the device and the boundary
(:mod:`sinergia.sim.clock`), never on the pacing.

**Status.** :meth:`Simulator.status` gives the counters for a status page: simulated time,
ticks, readings per vertical, messages accepted and refused per door, the last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from sinergia.sim.clock import SimClock, floor_time, iso
from sinergia.sim.doors import Door, Sent
from sinergia.sim.verticals.base import CityReader, DoorKind, Vertical

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DoorCounters:
    accepted: int = 0
    refused: int = 0
    sends: int = 0
    last_error: str | None = None
    last_error_at: str | None = None

    def add(self, sent: Sent, at: datetime) -> None:
        self.sends += 1
        self.accepted += sent.accepted
        self.refused += sent.refused
        if sent.error is not None:
            self.last_error, self.last_error_at = sent.error, iso(at)


@dataclass(slots=True)
class VerticalCounters:
    door: str
    readings: int = 0
    last_boundary: str | None = None
    failures: int = 0


@dataclass(slots=True)
class Counters:
    ticks: int = 0
    started: float = field(default_factory=time.monotonic)
    # seconds from the simulator's creation to the first readings the platform accepted
    first_readings_at: float | None = None
    verticals: dict[str, VerticalCounters] = field(default_factory=dict)
    doors: dict[str, DoorCounters] = field(default_factory=dict)


class Simulator:
    def __init__(self, clock: SimClock, verticals: Sequence[Vertical],
                 doors: Mapping[DoorKind, Door], city: CityReader, *,
                 seed: int | str = 0, tick_seconds: float = 1.0) -> None:
        missing = {v.door for v in verticals} - set(doors)
        if missing:
            raise ValueError(f"no door for {', '.join(sorted(missing))}")
        self.clock = clock
        self.verticals = list(verticals)
        self.doors = dict(doors)
        self.city = city
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.counters = Counters()
        self.live = anyio.Event()  # set once the platform accepted the first readings
        self._last: dict[str, datetime] = {}
        for vertical in self.verticals:
            self.counters.verticals[vertical.name] = VerticalCounters(vertical.door.value)
            self.counters.doors.setdefault(vertical.door.value, DoorCounters())

    def add(self, vertical: Vertical) -> None:
        """A vertical that joins the running simulation (its inventory loaded meanwhile)."""
        if vertical.door not in self.doors:
            raise ValueError(f"no door for {vertical.door}")
        self.counters.verticals[vertical.name] = VerticalCounters(vertical.door.value)
        self.counters.doors.setdefault(vertical.door.value, DoorCounters())
        self.verticals.append(vertical)

    async def _run_vertical(self, vertical: Vertical, boundary: datetime) -> None:
        counters = self.counters.verticals[vertical.name]
        door = self.counters.doors[vertical.door.value]
        try:
            await vertical.prepare(self.city, boundary)
            # computed in a worker thread: the server shares this event loop
            readings = await anyio.to_thread.run_sync(vertical.readings, boundary)
            sent = await self.doors[vertical.door].send(readings) if readings else Sent(0)
        except Exception as exc:  # one vertical's failure must not stop the city
            log.exception("simulator: %s failed at %s", vertical.name, iso(boundary))
            counters.failures += 1
            door.add(Sent(0, 0, f"{vertical.name}: {exc!r}"), boundary)
            return
        counters.readings += len(readings)
        counters.last_boundary = iso(boundary)
        door.add(sent, boundary)
        if sent.accepted and self.counters.first_readings_at is None:
            self.counters.first_readings_at = time.monotonic() - self.counters.started
            self.live.set()
        if sent.error is not None:
            log.warning("simulator: %s door: %s", vertical.door.value, sent.error)

    async def step(self, now: datetime | None = None) -> int:
        """Run every vertical whose boundary passed since its last run; how many ran."""
        now = now or self.clock.now()
        due = []
        for vertical in self.verticals:
            boundary = floor_time(now, vertical.period)
            if self._last.get(vertical.name) != boundary:
                self._last[vertical.name] = boundary
                due.append((vertical, boundary))
        async with anyio.create_task_group() as group:
            for vertical, boundary in due:
                group.start_soon(self._run_vertical, vertical, boundary)
        self.counters.ticks += 1
        return len(due)

    async def run(self) -> None:
        """Tick until cancelled."""
        start = time.monotonic()
        tick = 0
        while True:
            await self.step()
            tick += 1
            delay = start + tick * self.tick_seconds - time.monotonic()
            if delay < 0:  # behind: skip the ticks missed, keep the grid
                tick += int(-delay // self.tick_seconds) + 1
                delay = start + tick * self.tick_seconds - time.monotonic()
            await anyio.sleep(max(0.0, delay))

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "simulatedTime": iso(self.clock.now()),
            "start": iso(self.clock.start),
            "speed": self.clock.speed,
            "seed": self.seed,
            "doorsUsed": {kind.value: type(door).__name__ for kind, door in self.doors.items()},
            "ticks": c.ticks,
            "liveAfterSeconds": (round(c.first_readings_at, 3)
                                 if c.first_readings_at is not None else None),
            "verticals": {name: {"door": v.door, "readings": v.readings,
                                 "lastBoundary": v.last_boundary, "failures": v.failures}
                          for name, v in c.verticals.items()},
            "doors": {name: {"accepted": d.accepted, "refused": d.refused, "sends": d.sends,
                             "lastError": d.last_error, "lastErrorAt": d.last_error_at}
                      for name, d in c.doors.items()},
        }
