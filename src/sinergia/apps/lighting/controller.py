"""The app's state and decisions in memory, without any I/O: the installation (groups of lamps),
the latest traffic counts, each group's decision and each lamp's energy meter.

:class:`Controller` is what :mod:`service` drives with what it reads from the broker, and what
the simulated-week test drives with simulated traffic: both run exactly the same logic. Its
clock is the traffic's: decisions and energy are accounted at the moments the counts were
observed, so a replayed or accelerated week gives the same result as a real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from sinergia.apps.lighting.assignment import AssignmentRule, SensorLink, assign_sensors
from sinergia.apps.lighting.classes import MClass
from sinergia.apps.lighting.energy import EnergyLedger, EnergyTotals, NightClock
from sinergia.apps.lighting.policy import Decision, PolicyLimits, clamp_level, decide


@dataclass(frozen=True, slots=True)
class Lamp:
    id: str
    group_id: str
    rated_w: float
    location: Mapping[str, Any] | None = None  # GeoJSON, WGS84
    override: float | None = None              # a person's level for this lamp alone


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    design: MClass
    geometry: Mapping[str, Any] | None = None  # GeoJSON; else the lamps' points
    cabinet_id: str | None = None
    override: float | None = None              # a person's level for the whole group
    name: str | None = None


@dataclass(frozen=True)
class Installation:
    groups: Mapping[str, Group]
    lamps: Mapping[str, Lamp]
    _by_group: dict[str, list[Lamp]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_group: dict[str, list[Lamp]] = {}
        for lamp in self.lamps.values():
            by_group.setdefault(lamp.group_id, []).append(lamp)
        object.__setattr__(self, "_by_group", by_group)

    def lamps_of(self, group_id: str) -> list[Lamp]:
        return self._by_group.get(group_id, [])

    def geometry_of(self, group_id: str) -> Mapping[str, Any] | None:
        """The group's own geometry, else the MultiPoint of its lamps (None without either)."""
        group = self.groups[group_id]
        if group.geometry is not None:
            return group.geometry
        points = [shape(lamp.location) for lamp in self.lamps_of(group_id) if lamp.location]
        if not points:
            return None
        geometry: Mapping[str, Any] = mapping(shapely.MultiPoint(points))
        return geometry


@dataclass(frozen=True, slots=True)
class Reading:
    vehicles_per_hour: float
    at: datetime


@dataclass(frozen=True, slots=True)
class GroupStatus:
    decision: Decision
    traffic_vph: float | None  # what the decision was based on (None: no recent count)
    at: datetime


@dataclass(frozen=True, slots=True)
class LampSetting:
    lamp_id: str
    level: float
    power_w: float  # rated power * level: what the lamp draws while lit


@dataclass(slots=True)
class ControllerOptions:
    limits: PolicyLimits = field(default_factory=PolicyLimits)
    assignment: AssignmentRule = field(default_factory=AssignmentRule)
    max_age: timedelta = timedelta(minutes=45)  # an older count is no longer "the traffic"


class Controller:
    def __init__(self, installation: Installation,
                 sensors: Mapping[str, Mapping[str, Any]],
                 options: ControllerOptions | None = None,
                 clock: NightClock | None = None) -> None:
        self.options = options or ControllerOptions()
        self.readings: dict[str, Reading] = {}
        self.status: dict[str, GroupStatus] = {}
        self.ledger: EnergyLedger | None = None
        self.latest: datetime | None = None  # the newest observation seen: the app's clock
        self._clock = clock
        self.installation = installation
        self.sensors: dict[str, Mapping[str, Any]] = dict(sensors)
        self.links: dict[str, tuple[SensorLink, ...]] = {}
        self.reconfigure(installation, sensors)

    # -- inputs ------------------------------------------------------------------------------

    def reconfigure(self, installation: Installation,
                    sensors: Mapping[str, Mapping[str, Any]]) -> None:
        """A new view of the installation and the sensors' places; decisions and meters of
        what is still there carry on."""
        self.installation = installation
        self.sensors = dict(sensors)
        geometries = {g: geo for g in installation.groups
                      if (geo := installation.geometry_of(g)) is not None}
        self.links = {g: () for g in installation.groups}
        self.links.update(assign_sensors(geometries, self.sensors, self.options.assignment))
        for group_id in list(self.status):
            if group_id not in installation.groups:
                del self.status[group_id]
        if self.ledger is not None:
            for lamp_id in list(self.ledger.levels()):
                if lamp_id not in installation.lamps:
                    self.ledger.forget(lamp_id)
        if self._clock is None and geometries:
            centre = shapely.GeometryCollection(
                [shape(g) for g in geometries.values()]).envelope.centroid
            self._clock = NightClock(latitude=centre.y, longitude=centre.x)

    @property
    def clock(self) -> NightClock:
        if self._clock is None:
            self._clock = NightClock()
        return self._clock

    def observe(self, sensor_id: str, vehicles_per_hour: float, at: datetime) -> bool:
        """Record a count; False (and ignored) if an equally recent one is already known."""
        known = self.readings.get(sensor_id)
        if known is not None and known.at >= at:
            return False
        self.readings[sensor_id] = Reading(vehicles_per_hour, at)
        if self.latest is None or at > self.latest:
            self.latest = at
        return True

    # -- decisions ---------------------------------------------------------------------------

    def traffic_for(self, group_id: str, at: datetime) -> float | None:
        """The busiest recent count among the group's sensors (the safe choice), or None."""
        oldest = at - self.options.max_age
        counts = [reading.vehicles_per_hour for link in self.links.get(group_id, ())
                  if (reading := self.readings.get(link.sensor_id)) is not None
                  and reading.at >= oldest]
        return max(counts) if counts else None

    def decide(self, at: datetime) -> list[LampSetting]:
        """Decide every group at ``at`` and return the lamps whose level changed (all of them
        the first time)."""
        if self.ledger is None:
            self.ledger = EnergyLedger(self.clock, at)
        ledger = self.ledger
        ledger.advance(at)
        limits = self.options.limits
        changed: list[LampSetting] = []
        for group_id, group in self.installation.groups.items():
            previous = self.status.get(group_id)
            traffic = self.traffic_for(group_id, at)
            decision = decide(traffic, group.design,
                              current=previous.decision.chosen_class if previous else None,
                              override=group.override, limits=limits)
            self.status[group_id] = GroupStatus(decision, traffic, at)
            for lamp in self.installation.lamps_of(group_id):
                level = decision.level if lamp.override is None else clamp_level(lamp.override,
                                                                                 limits)
                if ledger.setting(lamp.id) != (lamp.rated_w, level):  # new, dimmed, relamped
                    ledger.set(lamp.id, lamp.rated_w, level, at)
                    changed.append(LampSetting(lamp.id, level, lamp.rated_w * level))
        return changed

    # -- results -----------------------------------------------------------------------------

    def totals(self, lamp_ids: list[str] | None = None) -> EnergyTotals:
        return EnergyTotals() if self.ledger is None else self.ledger.total(lamp_ids)

    def power_w(self, lamp_ids: list[str], at: datetime) -> float:
        return 0.0 if self.ledger is None else self.ledger.power_w(lamp_ids, at)

    def level_of(self, lamp_id: str) -> float | None:
        return None if self.ledger is None else self.ledger.level(lamp_id)
