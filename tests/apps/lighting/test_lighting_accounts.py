"""Sensors to groups in metres, lit hours, the energy ledger, and reading entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod

from sinergia.apps.lighting.assignment import AssignmentRule, assign_sensors
from sinergia.apps.lighting.classes import MClass
from sinergia.apps.lighting.controller import Controller, Group, Installation, Lamp
from sinergia.apps.lighting.energy import EnergyLedger, EnergyTotals, NightClock
from sinergia.apps.lighting.inputs import parse_installation, parse_traffic
from sinergia.apps.lighting.policy import Reason

GEOD = Geod(ellps="WGS84")


def point(lon: float, lat: float) -> dict[str, object]:
    return {"type": "Point", "coordinates": [lon, lat]}


def test_nearest_sensors_within_the_distance_nearest_first() -> None:
    groups = {"g": {"type": "LineString", "coordinates": [[9.19, 45.46], [9.19, 45.462]]},
              "far": point(9.30, 45.50)}
    sensors = {"east": point(9.191, 45.461), "north": point(9.19, 45.463),
               "next-street": point(9.194, 45.461)}
    links = assign_sensors(groups, sensors, AssignmentRule(k=2, max_distance_m=150))
    assert [link.sensor_id for link in links["g"]] == ["east", "north"]
    # distances are geodesic metres (east: ~78 m; north: ~111 m past the line's end)
    east = GEOD.inv(9.19, 45.461, 9.191, 45.461)[2]
    assert links["g"][0].distance_m == pytest.approx(east, rel=1e-3)
    assert links["far"] == ()
    only_one = assign_sensors(groups, sensors, AssignmentRule(k=1, max_distance_m=1000))
    assert [link.sensor_id for link in only_one["g"]] == ["east"]


def test_no_sensors_no_links() -> None:
    assert assign_sensors({"g": point(9.19, 45.46)}, {}) == {"g": ()}
    with pytest.raises(ValueError, match="k must"):
        AssignmentRule(k=0)


def test_lamps_are_lit_from_sunset_to_sunrise() -> None:
    clock = NightClock()  # Milan
    noon = datetime(2025, 11, 17, 11, 0, tzinfo=UTC)
    assert clock.lit_hours(noon, noon + timedelta(hours=2)) == 0.0
    assert not clock.is_lit(noon)
    assert clock.is_lit(datetime(2025, 11, 17, 23, 0, tzinfo=UTC))
    day = clock.lit_hours(noon, noon + timedelta(days=1))
    assert 14.0 < day < 15.0  # mid-November in Milan: ~14.6 h of darkness
    june = datetime(2025, 6, 21, 11, 0, tzinfo=UTC)
    assert 8.0 < clock.lit_hours(june, june + timedelta(days=1)) < 9.0
    # the same interval, written in another time zone, is the same number of hours
    rome = noon.astimezone(datetime(2025, 1, 1, tzinfo=UTC).astimezone().tzinfo)
    assert clock.lit_hours(rome, rome + timedelta(days=1)) == pytest.approx(day)


def test_the_ledger_counts_rated_power_times_level_times_lit_hours() -> None:
    clock = NightClock()
    start = datetime(2025, 11, 17, 22, 0, tzinfo=UTC)  # night
    ledger = EnergyLedger(clock, start)
    ledger.set("a", 100.0, 1.0, start)
    ledger.set("b", 50.0, 0.5, start)
    ledger.set("a", 100.0, 0.25, start + timedelta(hours=2))
    ledger.advance(start + timedelta(hours=4))
    assert ledger.lamp("a").energy_kwh == pytest.approx(0.1 * 2 + 0.025 * 2)
    assert ledger.lamp("a").baseline_kwh == pytest.approx(0.4)
    assert ledger.lamp("b").energy_kwh == pytest.approx(0.1)
    total = ledger.total()
    assert total.baseline_kwh == pytest.approx(0.6)
    assert total.saved_share == pytest.approx(1 - 0.35 / 0.6)
    assert total.co2_avoided_kg(0.25) == pytest.approx(0.25 * 0.25)
    assert ledger.power_w(["a", "b"], start + timedelta(hours=4)) == pytest.approx(25 + 25)
    ledger.forget("b")
    assert ledger.total().baseline_kwh == pytest.approx(0.4)


def test_daylight_counts_for_nothing() -> None:
    clock = NightClock()
    noon = datetime(2025, 11, 17, 10, 0, tzinfo=UTC)
    ledger = EnergyLedger(clock, noon)
    ledger.set("a", 100.0, 1.0, noon)
    ledger.advance(noon + timedelta(hours=3))
    assert ledger.total() == EnergyTotals(0.0, 0.0)
    assert ledger.total().saved_share == 0.0
    assert ledger.power_w(["a"], noon) == 0.0


def group(group_id: str, **attrs: object) -> dict[str, object]:
    return {"id": group_id, "type": "StreetlightGroup",
            **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


def lamp(lamp_id: str, group_id: str | None, watts: object, **attrs: object) -> dict[str, object]:
    entity: dict[str, object] = {
        "id": lamp_id, "type": "Streetlight",
        "powerRating": {"type": "Property", "value": watts},
        **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}
    if group_id:
        entity["refStreetlightGroup"] = {"type": "Relationship", "object": group_id}
    return entity


def test_installation_is_read_leniently() -> None:
    installation = parse_installation(
        [group("g1", designLightingClass="M2", manualIlluminanceLevel=0.8),
         group("g2", designLightingClass="bright"), {"type": "StreetlightGroup"}],
        [lamp("l1", "g1", 120, manualIlluminanceLevel=2.0), lamp("l2", "g2", 60),
         lamp("orphan", "nowhere", 60), lamp("no-power", "g1", "lots"), lamp("free", None, 10)])
    assert installation.groups["g1"].design is MClass.M2
    assert installation.groups["g1"].override == 0.8
    assert installation.groups["g2"].design is MClass.M3  # unreadable: the default
    assert set(installation.lamps) == {"l1", "l2"}
    assert installation.lamps["l1"].override is None  # 2.0 is not a level
    assert [lamp.id for lamp in installation.lamps_of("g1")] == ["l1"]


def test_traffic_counts_become_vehicles_per_hour() -> None:
    def flow(**attrs: object) -> dict[str, object]:
        return {"id": "t", "type": "TrafficFlowObserved", **attrs}

    period = flow(intensity={"type": "Property", "value": 50},
                  dateObservedFrom={"type": "Property", "value": {
                      "@type": "DateTime", "@value": "2025-11-17T21:45:00Z"}},
                  dateObservedTo={"type": "Property", "value": {
                      "@type": "DateTime", "@value": "2025-11-17T22:00:00Z"}})
    count = parse_traffic(period)
    assert count is not None and count.vehicles_per_hour == 200.0
    assert count.at == datetime(2025, 11, 17, 22, tzinfo=UTC)
    interval = parse_traffic(flow(intensity=30, dateObserved="2025-11-17T21:50:00Z/"
                                                            "2025-11-17T22:00:00Z"))
    assert interval is not None and interval.vehicles_per_hour == 180.0
    hourly = parse_traffic(flow(intensity={"type": "Property", "value": 400,
                                           "observedAt": "2025-11-17T22:00:00Z"}))
    assert hourly is not None and hourly.vehicles_per_hour == 400.0
    assert parse_traffic(flow(intensity=10)) is None           # no time: cannot be placed
    assert parse_traffic(flow(intensity=-1, dateObserved="x/y")) is None
    assert parse_traffic(flow(intensity="many")) is None


def test_controller_is_safe_without_fresh_nearby_counts() -> None:
    groups = {"near": Group("near", MClass.M3, point(9.19, 45.46)),
              "alone": Group("alone", MClass.M3, point(9.25, 45.50))}
    lamps = {"n1": Lamp("n1", "near", 100.0), "a1": Lamp("a1", "alone", 100.0),
             "n2": Lamp("n2", "near", 100.0, override=0.95)}
    controller = Controller(Installation(groups, lamps), {"s": point(9.1901, 45.46)})
    night = datetime(2025, 11, 17, 23, 0, tzinfo=UTC)
    controller.observe("s", 50.0, night)
    assert not controller.observe("s", 60.0, night)  # not newer: ignored
    changed = {s.lamp_id: s.level for s in controller.decide(night)}
    assert changed == {"n1": 0.3, "a1": 1.0, "n2": 0.95}
    assert controller.status["alone"].decision.reason is Reason.NO_TRAFFIC_DATA
    # an hour later the sensor has said nothing since: the group goes back to full light
    later = night + timedelta(hours=1)
    assert {s.lamp_id: s.level for s in controller.decide(later)} == {"n1": 1.0}
    assert controller.status["near"].traffic_vph is None
    used = controller.totals(["n1"])
    assert used.energy_kwh == pytest.approx(0.1 * 0.3) and used.baseline_kwh == pytest.approx(0.1)
