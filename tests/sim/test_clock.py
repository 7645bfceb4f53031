"""Simulated time runs at the asked speed; chance is a pure function of seed, name and moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.sim.clock import Chance, SimClock, floor_time, iso, parse_start

START = datetime(2024, 6, 3, 6, 0, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_is_simulated_minutes_per_real_second() -> None:
    real = FakeMonotonic()
    clock = SimClock(START, 15.0, monotonic=real)
    assert clock.now() == START
    real.now += 4.0
    assert clock.now() == START + timedelta(hours=1)
    assert clock.real_seconds(timedelta(hours=1)) == pytest.approx(4.0)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan"), float("inf")])
def test_a_speed_must_be_positive_and_finite(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(START, speed)


def test_the_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimClock(datetime(2024, 6, 3), 1.0)


def test_a_start_without_offset_is_milan_time() -> None:
    assert parse_start("2024-06-03T21:00") == datetime(2024, 6, 3, 19, 0, tzinfo=UTC)  # CEST
    assert parse_start("2024-01-10T21:00") == datetime(2024, 1, 10, 20, 0, tzinfo=UTC)  # CET
    assert parse_start("2024-06-03T21:00Z") == datetime(2024, 6, 3, 21, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_start("tomorrow")


def test_boundaries_fall_on_the_quarter_hours() -> None:
    at = datetime(2024, 6, 3, 6, 44, 59, tzinfo=UTC)
    assert floor_time(at, timedelta(minutes=15)) == datetime(2024, 6, 3, 6, 30, tzinfo=UTC)
    assert floor_time(at, timedelta(hours=1)) == datetime(2024, 6, 3, 6, 0, tzinfo=UTC)
    assert iso(datetime(2024, 6, 3, 6, 30, 0, 123, tzinfo=UTC)) == "2024-06-03T06:30:00Z"


names = st.text(max_size=20)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))


@given(st.integers(), names, moments)
def test_chance_is_a_pure_function_of_its_names(seed: int, name: str, at: datetime) -> None:
    first, second = Chance(seed), Chance(seed)
    value = first.uniform(name, at)
    assert 0.0 <= value < 1.0
    assert second.uniform(name, at) == value
    assert -1.0 <= first.signed(name) < 1.0
    assert first.rng(name).random() == second.rng(name).random()


def test_different_seeds_and_names_give_different_numbers() -> None:
    draws = {Chance(seed).uniform("bike", n) for seed in range(5) for n in range(20)}
    assert len(draws) == 100


@given(st.integers(0, 10), moments, st.integers(1, 600))
def test_smooth_noise_stays_in_range_and_moves_gently(seed: int, at: datetime,
                                                      seconds: int) -> None:
    chance = Chance(seed)
    knot = timedelta(hours=1)
    now = chance.smooth(at, knot, "x")
    later = chance.smooth(at + timedelta(seconds=seconds), knot, "x")
    assert -1.0 <= now <= 1.0
    # the slope of a cosine blend between two values at most 2 apart, over one knot
    assert abs(later - now) <= 2.0 * 3.1416 / 2.0 * seconds / 3600.0 + 1e-9


def test_smooth_noise_passes_through_its_knots() -> None:
    chance = Chance(7)
    knot = timedelta(hours=1)
    at = datetime(2024, 6, 3, 5, 0, tzinfo=UTC)
    index = int(at.timestamp() // 3600)
    assert chance.smooth(at, knot, "x") == pytest.approx(chance.signed("x", index))
