"""Shapes the verticals share: smooth daily curves, in Milan's local time."""

from __future__ import annotations

import math
from datetime import datetime

from sinergia.sim.clock import local


def smoothstep(x: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, a smooth S between."""
    if x <= start:
        return 0.0
    if x >= end:
        return 1.0
    t = (x - start) / (end - start)
    return t * t * (3.0 - 2.0 * t)


def bell(x: float, centre: float, width: float) -> float:
    """A Gaussian bump of height 1 at ``centre``, ``width`` its standard deviation."""
    return math.exp(-0.5 * ((x - centre) / width) ** 2)


def plateau(hours: float, rise: tuple[float, float], fall: tuple[float, float]) -> float:
    """1 between a smooth rise and a smooth fall (local hours), 0 outside."""
    return smoothstep(hours, *rise) * (1.0 - smoothstep(hours, *fall))


def is_weekend(at: datetime) -> bool:
    return local(at).weekday() >= 5


def day_kind(at: datetime) -> str:
    """``weekday``, ``saturday`` or ``sunday`` (local)."""
    weekday = local(at).weekday()
    return "sunday" if weekday == 6 else "saturday" if weekday == 5 else "weekday"


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))
