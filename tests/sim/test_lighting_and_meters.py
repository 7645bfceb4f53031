"""The lighting installation: thousands of lamps along Milan's streets, switched by twilight,
failing now and then; and the cabinets' meters counting what the lamps draw."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from sinergia.sim.clock import MILAN_TZ, Chance
from sinergia.sim.verticals.lighting import Lighting, lamp_status, milan_lighting
from sinergia.sim.verticals.meters import Meters
from sinergia.sim.verticals.places import distance_m, neighbourhoods

CHANCE = Chance(0)


def milan(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MILAN_TZ).astimezone(UTC)


def test_a_few_thousand_lamps_in_groups_under_one_cabinet_per_neighbourhood() -> None:
    layout = milan_lighting()
    assert 2_500 <= len(layout.lamps) <= 4_000
    assert len(layout.cabinets) == len(neighbourhoods())
    groups = {g.id: g for g in layout.groups}
    for lamp in layout.lamps:
        assert groups[lamp.group_id].cabinet_id == lamp.cabinet_id
    assert sum(len(g.lamp_ids) for g in layout.groups) == len(layout.lamps)
    assert len({lamp.id for lamp in layout.lamps}) == len(layout.lamps)
    designs = Counter(lamp.kind.design for lamp in layout.lamps)
    assert set(designs) == {"M2", "M3", "M4", "M5"}


def test_lamps_stand_a_lamp_spacing_apart_along_their_street() -> None:
    layout = milan_lighting()
    for group in layout.groups[:50]:
        for a, b in pairwise(group.line):
            assert 10.0 < distance_m(a, b) < 40.0


def test_cabinets_switch_on_after_sunset_and_off_before_sunrise() -> None:
    lighting = Lighting(CHANCE)
    lighting.inventory(milan(2024, 6, 3, 12))
    cabinet = lighting.layout.cabinets[0].id
    twilight = lighting.twilight
    assert not twilight.is_on(cabinet, milan(2024, 6, 3, 12))
    assert twilight.is_on(cabinet, milan(2024, 6, 3, 23))
    assert twilight.is_on(cabinet, milan(2024, 6, 4, 4))
    assert not twilight.is_on(cabinet, milan(2024, 6, 4, 7))
    # a June night in Milan: about 8 hours lit
    lit = twilight.lit_seconds(cabinet, milan(2024, 6, 3, 12), milan(2024, 6, 4, 12)) / 3600
    assert 7.5 < lit < 9.0
    week = twilight.lit_seconds(cabinet, milan(2024, 6, 3, 12), milan(2024, 6, 10, 12)) / 3600
    assert 7 * 7.5 < week < 7 * 9.0


def test_the_evening_switch_is_reported_once_with_every_lamp() -> None:
    lighting = Lighting(CHANCE)
    lighting.inventory(milan(2024, 6, 3, 20, 0))
    quiet = lighting.readings(milan(2024, 6, 3, 20, 15))
    assert all("powerState" not in r.values for r in quiet)
    evening = [r for t in range(21, 23) for r in lighting.readings(milan(2024, 6, 3, t, 45))]
    switched = {r.entity_id for r in evening if r.values.get("powerState") == "on"}
    layout = lighting.layout
    assert {lamp.id for lamp in layout.lamps} <= switched
    assert {c.id for c in layout.cabinets} <= switched
    cabinet = next(r for r in evening if r.entity_type == "StreetlightControlCabinet")
    assert "dateLastSwitchingOn" in cabinet.values


def test_lamps_fail_now_and_then_and_are_repaired() -> None:
    layout = milan_lighting()
    days = [milan(2024, 6, 3, 12) + timedelta(days=d) for d in range(10)]
    failed = [sum(lamp_status(CHANCE, lamp.id, day) != "ok" for lamp in layout.lamps)
              for day in days]
    assert all(1 <= count <= 60 for count in failed)
    ever = {lamp.id for lamp in layout.lamps for day in days
            if lamp_status(CHANCE, lamp.id, day) != "ok"}
    still = {lamp_id for lamp_id in ever if lamp_status(CHANCE, lamp_id, days[-1]) != "ok"}
    assert len(still) < len(ever)  # repaired meanwhile


def test_fault_changes_are_reported_as_status() -> None:
    lighting = Lighting(CHANCE)
    lighting.inventory(milan(2024, 6, 3, 12))
    reported = [r for d in range(1, 4) for r in lighting.readings(milan(2024, 6, 3 + d, 12))]
    statuses = [r for r in reported if "status" in r.values]
    assert statuses
    for reading in statuses:
        assert reading.values["status"] == lamp_status(CHANCE, reading.entity_id,
                                                       reading.observed_at)


def meters_at(levels: float | None = None) -> Meters:
    lighting = Lighting(CHANCE)
    meters = Meters(CHANCE, lighting)
    if levels is not None:
        meters.set_levels([{"id": lamp.id, "illuminanceLevel": {"value": levels}}
                           for lamp in lighting.layout.lamps])
    return meters


def test_meters_count_the_lamps_at_night_and_only_the_cabinet_by_day() -> None:
    meters = meters_at()
    night = meters.readings(milan(2024, 6, 3, 23, 15))
    day = meters_at().readings(milan(2024, 6, 4, 12, 15))
    night_power = sum(r.values["totalActivePower"] for r in night)
    day_power = sum(r.values["totalActivePower"] for r in day)
    rated = sum(lamp.kind.rated_w for lamp in meters.lighting.layout.lamps) / 1000
    assert 0.95 * rated < night_power < rated + 0.1 * len(night)
    assert day_power == pytest.approx(0.018 * len(day), rel=0.02)  # the cabinets' electronics


def test_dimmed_lamps_draw_less_and_registers_only_grow() -> None:
    full, dimmed = meters_at(1.0), meters_at(0.5)
    at = milan(2024, 6, 3, 23, 15)
    full_power = sum(r.values["totalActivePower"] for r in full.readings(at))
    dimmed_power = sum(r.values["totalActivePower"] for r in dimmed.readings(at))
    assert dimmed_power == pytest.approx(full_power / 2, rel=0.05)
    registers = [r.values["totalActiveEnergyImport"] for r in dimmed.readings(at)]
    later = [r.values["totalActiveEnergyImport"]
             for r in dimmed.readings(at + timedelta(hours=1))]
    assert all(b > a for a, b in zip(registers, later, strict=True))


def test_a_meter_reading_covers_the_time_since_the_last_one() -> None:
    meters = meters_at(1.0)
    at = milan(2024, 6, 3, 23, 15)
    meters.readings(at)
    first, *_ = meters.readings(at + timedelta(hours=1))  # boundaries skipped meanwhile
    assert first.values["dateObservedFrom"]["@value"] == "2024-06-03T21:15:00Z"
    assert first.values["dateObservedTo"]["@value"] == "2024-06-03T22:15:00Z"
    assert first.position is not None
