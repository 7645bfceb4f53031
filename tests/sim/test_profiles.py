"""The simulated verticals look like a city: daily and weekly shapes in the right places, values
in the ranges their data models allow, and the same numbers for the same seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import mean

import pytest

from sinergia.sim.clock import MILAN_TZ, Chance
from sinergia.sim.verticals import city_verticals
from sinergia.sim.verticals.air import AirQuality, eaqi
from sinergia.sim.verticals.base import Reading
from sinergia.sim.verticals.bikes import Bikes
from sinergia.sim.verticals.parking import Parking
from sinergia.sim.verticals.traffic import Traffic, average_speed, milan_sensors
from sinergia.sim.verticals.waste import GLASS, LITTER, Waste

CHANCE = Chance(0)


def milan(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local Milan time (the profiles are local), as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=MILAN_TZ).astimezone(UTC)


MONDAY = (2024, 6, 3)     # a June weekday
SUNDAY = (2024, 6, 9)


def values(readings: list[Reading], name: str) -> list[float]:
    return [float(r.values[name]) for r in readings if name in r.values]


# -- determinism --------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    at = milan(*MONDAY, 8, 30)
    def snapshot(seed: int) -> list[list[Reading]]:
        verticals = city_verticals(seed)
        for vertical in verticals:
            vertical.inventory(at - timedelta(hours=1))
        return [v.readings(at) for v in verticals if v.name != "meters"]

    assert snapshot(3) == snapshot(3)
    assert snapshot(3) != snapshot(4)


# -- traffic ---------------------------------------------------------------------------------------


def test_traffic_peaks_at_rush_hour_and_sleeps_at_night() -> None:
    traffic = Traffic(CHANCE)
    rush = mean(values(traffic.readings(milan(*MONDAY, 8, 45)), "intensity"))
    night = mean(values(traffic.readings(milan(*MONDAY, 3, 45)), "intensity"))
    sunday_morning = mean(values(traffic.readings(milan(*SUNDAY, 8, 45)), "intensity"))
    assert rush > 6 * night
    assert sunday_morning < 0.5 * rush


def test_traffic_sensors_are_the_gates_and_the_main_roads() -> None:
    sensors = milan_sensors()
    gates = [s for s in sensors if "-AreaC-" in s.entity_id]
    roads = [s for s in sensors if "-Road-" in s.entity_id]
    assert len(gates) == 42 and len(roads) >= 30
    assert len({s.entity_id for s in sensors}) == len(sensors)


def test_speed_falls_as_the_road_fills() -> None:
    traffic = Traffic(CHANCE)
    reading = traffic.reading(traffic.sensors[0], milan(*MONDAY, 3, 45))
    assert reading.values["averageVehicleSpeed"] > average_speed(traffic.sensors[0].road, 2500)
    assert reading.values["congested"] is False


# -- bikes and car parks ------------------------------------------------------------------------


def test_central_bike_stations_fill_with_commuters_and_outer_ones_empty() -> None:
    bikes = Bikes(CHANCE)
    central = [d for d in bikes.docks if d.character > 0.5]
    outer = [d for d in bikes.docks if d.character < -0.5]
    assert central and outer

    def fullness(docks: list, hour: int) -> float:  # type: ignore[type-arg]
        return mean(bikes.share(d, milan(*MONDAY, hour)) for d in docks)

    assert fullness(central, 11) > fullness(central, 5) + 0.2
    assert fullness(outer, 11) < fullness(outer, 5) - 0.2


def test_bike_counts_add_up_to_the_station_size() -> None:
    bikes = Bikes(CHANCE)
    for reading, dock in zip(bikes.readings(milan(*MONDAY, 9)), bikes.docks, strict=True):
        v = reading.values
        assert v["availableBikeNumber"] >= 0 and v["freeSlotNumber"] >= 0
        total = v["availableBikeNumber"] + v["freeSlotNumber"] + v["outOfServiceSlotNumber"]
        assert total == dock.slots


def test_car_parks_fill_by_day_and_residents_by_night() -> None:
    parking = Parking(CHANCE)
    public = [p for p in parking.car_parks if not p.residents]
    residents = [p for p in parking.car_parks if p.residents]
    assert public and residents

    def occupancy(car_parks: list, hour: int) -> float:  # type: ignore[type-arg]
        return mean(parking.observe(p, milan(*MONDAY, hour))["occupancy"] for p in car_parks)

    assert occupancy(public, 11) > occupancy(public, 3) + 0.4
    assert occupancy(residents, 3) > occupancy(residents, 11) + 0.15
    for reading in parking.readings(milan(*MONDAY, 11)):
        v = reading.values
        assert 0.0 <= v["occupancy"] <= 1.0
        assert v["status"][0] in ("spacesAvailable", "almostFull", "full")


# -- air ----------------------------------------------------------------------------------------


def test_no2_follows_the_traffic_and_ozone_the_summer_sun() -> None:
    air = AirQuality(CHANCE)
    rush = mean(values(air.readings(milan(*MONDAY, 8, 30)), "no2"))
    night = mean(values(air.readings(milan(*MONDAY, 3, 30)), "no2"))
    assert rush > 1.8 * night
    afternoon = mean(values(air.readings(milan(*MONDAY, 15, 30)), "o3"))
    assert afternoon > 3 * mean(values(air.readings(milan(*MONDAY, 3, 30)), "o3"))


def test_particulate_matter_is_a_winter_problem() -> None:
    air = AirQuality(CHANCE)
    winter = mean(mean(values(air.readings(milan(2024, 1, d, 12)), "pm10")) for d in range(8, 15))
    summer = mean(mean(values(air.readings(milan(2024, 7, d, 12)), "pm10")) for d in range(8, 15))
    assert winter > 1.8 * summer


def test_the_air_quality_index_is_the_worst_pollutant_band() -> None:
    assert eaqi({"pm25": 5, "pm10": 10, "no2": 20, "o3": 30}) == 1
    assert eaqi({"pm25": 5, "pm10": 45, "no2": 20, "o3": 30}) == 3
    assert eaqi({"pm25": 80, "pm10": 10, "no2": 20, "o3": 30}) == 6


# -- waste --------------------------------------------------------------------------------------


def test_bins_fill_through_the_day_and_rounds_empty_them() -> None:
    waste = Waste(CHANCE)
    bin_ = next(c for c in waste.containers if c.kind == LITTER and c.municipio != 1)
    before_round = waste.filling_level(bin_, milan(*MONDAY, 5, 0))
    after_round = waste.filling_level(bin_, milan(*MONDAY, 9, 30))
    evening = waste.filling_level(bin_, milan(*MONDAY, 22, 0))
    assert after_round < before_round
    assert evening > after_round + 0.2
    emptied = waste.last_emptying(bin_, milan(*MONDAY, 9, 30))
    assert milan(*MONDAY, 6) <= emptied <= milan(*MONDAY, 9)


def test_glass_bells_are_emptied_once_a_week() -> None:
    waste = Waste(CHANCE)
    bell = next(c for c in waste.containers if c.kind == GLASS)
    levels = [waste.filling_level(bell, milan(2024, 6, 3, 12) + timedelta(hours=h))
              for h in range(0, 14 * 24, 6)]
    drops = sum(1 for a, b in pairwise(levels) if b < a - 0.05)
    assert drops == 2  # two weeks, two rounds
    assert all(0.0 <= level <= 1.0 for level in levels)


@pytest.mark.parametrize("kind", [GLASS, LITTER])
def test_there_are_containers_of_each_kind_across_the_city(kind: str) -> None:
    containers = [c for c in Waste(CHANCE).containers if c.kind == kind]
    assert len(containers) > 80
    assert len({c.municipio for c in containers}) == 9
