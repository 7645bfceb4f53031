"""Milan's weather: warm afternoons, dark nights, and a storm crossing the city every week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import mean

from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.sim.clock import MILAN_TZ, Chance
from sinergia.sim.verticals.weather import (
    RainGauges,
    Weather,
    arpa_stations,
    precipitation,
    rain_rate,
    storms_of_week,
)

CHANCE = Chance(0)
DUOMO = (9.1916, 45.4641)


def milan(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MILAN_TZ).astimezone(UTC)


def test_a_storm_crosses_the_city_within_a_simulated_week() -> None:
    gauges = RainGauges(CHANCE)
    start = milan(2024, 6, 3, 0)
    heaviest = 0.0
    for step in range(7 * 24 * 4):  # a gauge's 5-minute reading every quarter of an hour
        at = start + timedelta(minutes=15 * (step + 1))
        rain = max(r.values["precipitation"] for r in gauges.readings(at))
        heaviest = max(heaviest, rain)
    assert heaviest >= 1.0  # ≥ 12 mm/h in some gauge's 5 minutes: a downpour, not drizzle


@settings(max_examples=30, deadline=None)
@given(st.integers(), st.integers(2000, 2090), st.integers(1, 52))
def test_every_week_has_one_or_two_storms_with_any_seed(seed: int, year: int,
                                                         week: int) -> None:
    storms = storms_of_week(str(seed), year, week)
    assert 1 <= len(storms) <= 2
    monday = datetime.fromisocalendar(year, week, 1).replace(tzinfo=MILAN_TZ)
    for storm in storms:
        assert monday <= storm.start < monday + timedelta(days=7)
        assert timedelta(hours=1) <= storm.duration <= timedelta(hours=3)


def test_it_rains_harder_under_the_cell_than_far_from_it() -> None:
    (storm, *_) = storms_of_week("0", 2024, 23)
    centre = storm.middle
    near = rain_rate(CHANCE, centre, DUOMO)
    far = rain_rate(CHANCE, centre, (DUOMO[0] + 0.5, DUOMO[1] + 0.3))  # ~45 km away
    assert near > 5 * max(far, 0.1)


def test_days_are_warmer_than_nights_and_summer_than_winter() -> None:
    weather = Weather(CHANCE)
    station = weather.stations[0]
    afternoons = [weather.observe(station, milan(2024, 7, d, 15))["temperature"]
                  for d in range(8, 15)]
    dawns = [weather.observe(station, milan(2024, 7, d, 5))["temperature"] for d in range(8, 15)]
    winter = [weather.observe(station, milan(2024, 1, d, 15))["temperature"]
              for d in range(8, 15)]
    assert mean(afternoons) > mean(dawns) + 6
    assert 24 < mean(afternoons) < 36
    assert mean(winter) < mean(afternoons) - 15


def test_the_sun_shines_by_day_only() -> None:
    weather = Weather(CHANCE)
    station = next(s for s in weather.stations if "solarRadiation" in s.attributes)
    assert weather.observe(station, milan(2024, 6, 3, 1))["solarRadiation"] == 0
    assert weather.observe(station, milan(2024, 6, 3, 13))["solarRadiation"] > 150


def test_stations_report_what_their_sensors_measure() -> None:
    stations = arpa_stations()
    assert len(stations) == 7  # nine in the data: one decommissioned, one without sensors left
    weather = Weather(CHANCE)
    for reading, station in zip(weather.readings(milan(2024, 6, 3, 12)), stations,
                                strict=True):
        assert set(reading.values) == set(station.attributes)
        if "relativeHumidity" in reading.values:
            assert 0.0 <= reading.values["relativeHumidity"] <= 1.0


def test_rain_adds_up_over_a_period() -> None:
    (storm, *_) = storms_of_week("0", 2024, 23)
    hour = precipitation(CHANCE, storm.middle + timedelta(minutes=30), timedelta(hours=1), DUOMO)
    quarters = sum(precipitation(CHANCE, storm.middle + timedelta(minutes=30 - 15 * n),
                                 timedelta(minutes=15), DUOMO) for n in range(4))
    assert hour > 1.0
    assert abs(hour - quarters) < 0.15 * hour + 0.3
