"""The simulated traffic profile (sim/traffic.py): deterministic, shaped like a city's week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.apps.lighting.inputs import parse_traffic
from sinergia.apps.lighting.vocabulary import LIGHTING_CONTEXT
from sinergia.sim.traffic import (
    MILAN_TZ,
    NOISE,
    PEAK_FLOW,
    TRAFFIC_CONTEXT,
    RoadClass,
    milan_traffic_sensors,
    traffic_flow_entity,
    vehicles_per_hour,
)

MONDAY = datetime(2025, 11, 17, tzinfo=MILAN_TZ)


def local(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour)


def daily_mean(road: RoadClass, day: int) -> float:
    return mean(vehicles_per_hour(road, local(day, h / 4), "s") for h in range(96))


@given(st.sampled_from(list(RoadClass)),
       st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                    timezones=st.just(UTC)),
       st.integers())
def test_deterministic_and_within_the_road_capacity(road: RoadClass, at: datetime,
                                                    seed: int) -> None:
    flow = vehicles_per_hour(road, at, seed)
    assert flow == vehicles_per_hour(road, at, seed)
    assert 0 <= flow <= PEAK_FLOW[road] * (1 + NOISE) + 0.1


def test_the_seed_changes_the_noise_not_the_shape() -> None:
    at = local(0, 8.5)
    flows = {vehicles_per_hour(RoadClass.ARTERIAL, at, seed) for seed in range(20)}
    assert len(flows) > 10
    assert all(abs(f / PEAK_FLOW[RoadClass.ARTERIAL] - 1.0) <= NOISE + 0.01 for f in flows)


def test_weekday_peaks_and_quiet_nights() -> None:
    road = RoadClass.DISTRIBUTOR
    morning = vehicles_per_hour(road, local(1, 8.5), "x")
    evening = vehicles_per_hour(road, local(1, 18.5), "x")
    night = vehicles_per_hour(road, local(1, 3.5), "x")
    noon = vehicles_per_hour(road, local(1, 12.5), "x")
    assert night < 0.1 * evening and night < 0.1 * morning
    assert noon < morning and noon < evening


def test_weekends_are_lighter_and_later() -> None:
    road = RoadClass.ARTERIAL
    assert daily_mean(road, 6) < daily_mean(road, 5) < daily_mean(road, 1)  # Sun < Sat < Tue
    # Saturday after midnight (Friday night out) is busier than Tuesday's
    assert vehicles_per_hour(road, local(5, 1.5), "x") > vehicles_per_hour(road, local(1, 1.5),
                                                                           "x")
    assert (vehicles_per_hour(road, local(6, 8.5), "x")
            < 0.4 * vehicles_per_hour(road, local(0, 8.5), "x"))


def test_the_road_classes_are_ordered() -> None:
    at = local(2, 18)
    assert (vehicles_per_hour(RoadClass.LOCAL, at, 1) < vehicles_per_hour(RoadClass.DISTRIBUTOR,
            at, 1) < vehicles_per_hour(RoadClass.ARTERIAL, at, 1))


def test_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        vehicles_per_hour(RoadClass.LOCAL, datetime(2025, 1, 1))


def test_sensors_are_the_area_c_gates() -> None:
    sensors = milan_traffic_sensors()
    assert len(sensors) == 42
    assert len({s.entity_id for s in sensors}) == 42
    assert {s.road for s in sensors} == set(RoadClass)
    assert all(9.1 < s.longitude < 9.3 and 45.4 < s.latitude < 45.55 for s in sensors)


def test_flow_entities_read_back_as_vehicles_per_hour() -> None:
    sensor = milan_traffic_sensors()[0]
    end = datetime(2025, 11, 17, 21, 0, tzinfo=UTC)
    entity = traffic_flow_entity(sensor, end, seed=3)
    assert entity["type"] == "TrafficFlowObserved"
    assert entity["intensity"]["observedAt"] == "2025-11-17T21:00:00Z"
    count = parse_traffic(entity)
    assert count is not None and count.at == end and count.sensor_id == sensor.entity_id
    expected = vehicles_per_hour(sensor.road, end - timedelta(minutes=7.5), f"3|{sensor.seed}")
    assert count.vehicles_per_hour == pytest.approx(expected, abs=4.0)  # whole vehicles / 15'


def test_the_contexts_agree_on_the_traffic_terms() -> None:
    for term, iri in TRAFFIC_CONTEXT.items():
        assert LIGHTING_CONTEXT.get(term, iri) == iri, term
