"""A simulated week of the demo city: the app's own controller (the same code the service runs)
fed every 15 minutes with the simulated counts of Milan's Area C gates, for the demo's ~200
lamps. Done means: 30-40 % of the lighting energy saved against full power, while no group is
ever below the class its traffic requires."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from sinergia.apps.lighting.classes import MClass, required_class
from sinergia.apps.lighting.controller import Controller, Group, Installation, Lamp
from sinergia.apps.lighting.demo import DemoGroup, demo_groups
from sinergia.apps.lighting.inputs import parse_traffic
from sinergia.sim.traffic import MILAN_TZ, milan_traffic_sensors, traffic_flow_entity

STEP = timedelta(minutes=15)
WEEK_START = datetime(2025, 11, 17, tzinfo=MILAN_TZ)  # a Monday, 00:00 in Milan


def installation_of(groups: list[DemoGroup]) -> Installation:
    return Installation(
        {g.entity_id: Group(g.entity_id, g.design, {"type": "LineString", "coordinates": [
            list(p) for p in g.lamp_points]}, g.cabinet_id) for g in groups},
        {g.lamp_id(i): Lamp(g.lamp_id(i), g.entity_id, g.rated_w,
                            {"type": "Point", "coordinates": list(p)})
         for g in groups for i, p in enumerate(g.lamp_points)})


@dataclass
class Week:
    controller: Controller
    steps: int = 0
    lit_steps: int = 0
    violations: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)  # level changes per group


def simulate_week(start: datetime) -> Week:
    sensors = milan_traffic_sensors()
    groups = demo_groups(sensors)
    controller = Controller(installation_of(groups), {
        s.entity_id: {"type": "Point", "coordinates": [s.longitude, s.latitude]}
        for s in sensors})
    week = Week(controller)
    previous: dict[str, float] = {}
    at = start
    while at < start + timedelta(days=7):
        at += STEP
        counts = {}
        for sensor in sensors:
            count = parse_traffic(traffic_flow_entity(sensor, at))
            assert count is not None
            counts[sensor.entity_id] = count.vehicles_per_hour
            controller.observe(sensor.entity_id, count.vehicles_per_hour, count.at)
        controller.decide(at)
        week.steps += 1
        week.lit_steps += controller.clock.is_lit(at)
        for group in groups:
            # "its traffic": the count of the gate on the group's own road
            needed = required_class(counts[group.sensor.entity_id], group.design)
            decision = controller.status[group.entity_id].decision
            provided = decision.provided_class
            lamp_levels = {controller.level_of(group.lamp_id(i))
                           for i in range(len(group.lamp_points))}
            if (provided is None or provided > needed or lamp_levels != {decision.level}
                    or decision.level * group.design.luminance < needed.luminance - 1e-9):
                week.violations.append(f"{at} {group.entity_id}: needs {needed.name}, "
                                       f"gives {provided} at {decision.level}")
            if previous.get(group.entity_id, decision.level) != decision.level:
                week.changes[group.entity_id] = week.changes.get(group.entity_id, 0) + 1
            previous[group.entity_id] = decision.level
    return week


@pytest.fixture(scope="module")
def november_week() -> Week:
    return simulate_week(WEEK_START)


def test_the_week_saves_30_to_40_percent(november_week: Week) -> None:
    totals = november_week.controller.totals()
    assert november_week.steps == 7 * 24 * 4
    # ~14.5 lit hours a night in November: the baseline is real night-time consumption
    assert 0.55 < november_week.lit_steps / november_week.steps < 0.65
    lamps = november_week.controller.installation.lamps.values()
    full_power_kw = sum(lamp.rated_w for lamp in lamps) / 1000
    assert totals.baseline_kwh == pytest.approx(full_power_kw * 7 * 14.6, rel=0.03)
    assert 0.30 <= totals.saved_share <= 0.40, f"saved {totals.saved_share:.1%}"
    assert totals.co2_avoided_kg() > 0


def test_no_group_is_ever_below_the_class_its_traffic_requires(november_week: Week) -> None:
    assert not november_week.violations, "\n".join(november_week.violations[:10])


def test_every_group_is_dimmed_at_night_but_not_flickering(november_week: Week) -> None:
    controller = november_week.controller
    classes_used = {s.decision.chosen_class for s in controller.status.values()}
    assert classes_used <= set(MClass)
    for group_id in controller.installation.groups:
        changes = november_week.changes.get(group_id, 0)
        # dimmed and restored every night, a few steps each way; never every quarter-hour
        assert 7 <= changes <= 7 * 16, (group_id, changes)
