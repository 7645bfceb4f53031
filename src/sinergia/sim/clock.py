"""Simulated time and seeded chance for the demo city.

**Time.** :class:`SimClock` runs ``speed`` simulated minutes per real second from a simulated
``start``; everything the simulator produces is stamped with simulated time, so a week of
the city can be watched in minutes and the apps (whose clock is their data's) follow along.

**Chance.** Every random number of the simulation is a pure function of the seed, a name
(which sensor, which quantity) and a moment (:class:`Chance`): the value a sensor reports at a
given simulated moment is the same on every run with the same seed, whatever the speed, the
pacing or the order in which things were computed. Numbers come from a keyed hash (BLAKE2b),
which is fast, and the same on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

MILAN_TZ: Final = ZoneInfo("Europe/Rome")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SCALE: Final = float(1 << 64)


class SimClock:
    """Simulated time: ``start`` when created, then ``speed`` simulated minutes per real
    second. ``monotonic`` is the real clock (injectable for tests)."""

    def __init__(self, start: datetime, speed: float, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated start must be an aware datetime")
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a positive number of simulated minutes per real "
                             f"second, not {speed!r}")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        elapsed = self._monotonic() - self._origin
        return self.start + timedelta(minutes=elapsed * self.speed)

    def real_seconds(self, simulated: timedelta) -> float:
        """How many real seconds ``simulated`` time takes at this speed."""
        return simulated.total_seconds() / 60.0 / self.speed


def default_start(now: datetime | None = None) -> datetime:
    """The simulation's default start: the current time, to the minute (UTC)."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def parse_start(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is Milan's local time.
    ValueError if it does not read as one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=MILAN_TZ)
    return moment.astimezone(UTC)


def floor_time(at: datetime, period: timedelta) -> datetime:
    """The latest multiple of ``period`` (counted from the Unix epoch) not after ``at``. Periods
    that divide an hour therefore fall on the same marks in UTC and in Milan's local time."""
    step = period.total_seconds()
    if step <= 0:
        raise ValueError("period must be positive")
    seconds = (at - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(seconds / step) * step)


def local(at: datetime) -> datetime:
    """``at`` in Milan's local time."""
    return at.astimezone(MILAN_TZ)


def local_hours(at: datetime) -> float:
    """The local time of day of ``at`` in hours, 0 ≤ h < 24."""
    moment = local(at)
    return moment.hour + moment.minute / 60.0 + moment.second / 3600.0


def iso(at: datetime) -> str:
    """An NGSI-LD time: UTC, whole seconds, ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Chance:
    """The simulation's source of randomness for one seed; see the module docstring."""

    def __init__(self, seed: int | str) -> None:
        self.seed = str(seed)

    def _key(self, parts: tuple[object, ...]) -> bytes:
        return "|".join((self.seed, *map(str, parts))).encode()

    def uniform(self, *parts: object) -> float:
        """A number in [0, 1) named by ``parts``."""
        digest = hashlib.blake2b(self._key(parts), digest_size=8).digest()
        return int.from_bytes(digest, "big") / _SCALE

    def signed(self, *parts: object) -> float:
        """A number in [-1, 1) named by ``parts``."""
        return 2.0 * self.uniform(*parts) - 1.0

    def between(self, low: float, high: float, *parts: object) -> float:
        return low + (high - low) * self.uniform(*parts)

    def rng(self, *parts: object) -> random.Random:
        """A generator of its own for several draws named by ``parts`` (str seeds are hashed by
        ``random`` with SHA-512: the same everywhere)."""
        return random.Random(self._key(parts).decode())

    def smooth(self, at: datetime, knot: timedelta, *parts: object) -> float:
        """Noise in [-1, 1] that drifts smoothly in time: independent values at every
        ``knot`` (from the epoch), cosine-interpolated between them."""
        position = (at - _EPOCH).total_seconds() / knot.total_seconds()
        index = math.floor(position)
        weight = (1.0 - math.cos(math.pi * (position - index))) / 2.0
        before = self.signed(*parts, index)
        after = self.signed(*parts, index + 1)
        return before + (after - before) * weight
