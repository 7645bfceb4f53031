"""The demo city's street lighting: about 200 lamps in groups along the roads of Milan's Area C
gates, each gate a traffic sensor (:mod:`sinergia.sim.traffic`).

Every group lights the road its gate counts, running outward from the centre (the gates stand
where radial roads cross the Cerchia dei Bastioni): ten lamps 30 m apart, alternately on either
side. Gates closer than ``MIN_SPACING_M`` to a chosen one are skipped so that neighbouring groups
light different roads. The design class follows the road's class as UNI 11248:2016 suggests for
urban roads (D arterial → M2, E district road → M3, F local street → M4); the LED power is a
typical one for such roads. Five groups share one control cabinet.

Lamps, groups and cabinets are Smart Data Models Streetlighting entities (normalized, short
names of :data:`~sinergia.apps.lighting.vocabulary.LIGHTING_CONTEXT`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from pyproj import CRS, Transformer

from sinergia.apps.lighting.classes import MClass
from sinergia.apps.lighting.vocabulary import (
    CABINET,
    DESIGN_CLASS,
    LEVEL,
    RATED_POWER,
    REF_CABINET,
    REF_GROUP,
    STREETLIGHT,
    STREETLIGHT_GROUP,
)
from sinergia.sim.traffic import RoadClass, TrafficSensor, milan_traffic_sensors

DUOMO: Final = (9.1916, 45.4641)  # longitude, latitude
LAMPS_PER_GROUP: Final = 10
LAMP_SPACING_M: Final = 30.0
MIN_SPACING_M: Final = 300.0
GROUPS_PER_CABINET: Final = 5
MAX_GROUPS: Final = 20

DESIGN_CLASS_OF_ROAD: Final[dict[RoadClass, MClass]] = {
    RoadClass.ARTERIAL: MClass.M2,
    RoadClass.DISTRIBUTOR: MClass.M3,
    RoadClass.LOCAL: MClass.M4,
}
# (rated LED power in W, lantern height in m) of a typical luminaire for each road class
LUMINAIRE_OF_ROAD: Final[dict[RoadClass, tuple[float, float]]] = {
    RoadClass.ARTERIAL: (150.0, 10.0),
    RoadClass.DISTRIBUTOR: (100.0, 8.0),
    RoadClass.LOCAL: (50.0, 6.0),
}


@dataclass(frozen=True, slots=True)
class DemoGroup:
    entity_id: str
    sensor: TrafficSensor
    cabinet_id: str
    lamp_points: tuple[tuple[float, float], ...]  # longitude, latitude

    @property
    def design(self) -> MClass:
        return DESIGN_CLASS_OF_ROAD[self.sensor.road]

    @property
    def rated_w(self) -> float:
        return LUMINAIRE_OF_ROAD[self.sensor.road][0]

    def lamp_id(self, index: int) -> str:
        return f"urn:ngsi-ld:{STREETLIGHT}:{self.entity_id.rsplit(':', 1)[1]}-{index + 1:02d}"


def _spread(sensors: list[TrafficSensor], to_metres: Transformer) -> list[TrafficSensor]:
    chosen: list[tuple[TrafficSensor, float, float]] = []
    for sensor in sensors:
        x, y = to_metres.transform(sensor.longitude, sensor.latitude)
        if all(math.hypot(x - cx, y - cy) >= MIN_SPACING_M for _, cx, cy in chosen):
            chosen.append((sensor, x, y))
    return [sensor for sensor, _, _ in chosen][:MAX_GROUPS]


def demo_groups(sensors: list[TrafficSensor] | None = None) -> list[DemoGroup]:
    """The demo's groups, deterministic: same list every call."""
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={DUOMO[1]} +lon_0={DUOMO[0]} +datum=WGS84 "
                           "+units=m +no_defs")
    to_metres = Transformer.from_crs(CRS.from_epsg(4326), local, always_xy=True)
    to_degrees = Transformer.from_crs(local, CRS.from_epsg(4326), always_xy=True)
    groups = []
    for position, sensor in enumerate(_spread(sensors or milan_traffic_sensors(), to_metres)):
        x, y = to_metres.transform(sensor.longitude, sensor.latitude)
        norm = math.hypot(x, y) or 1.0
        out_x, out_y = x / norm, y / norm           # along the road, away from the centre
        side_x, side_y = -out_y, out_x              # across the road
        points = []
        for index in range(LAMPS_PER_GROUP):
            along = LAMP_SPACING_M * (index + 0.5)
            across = 8.0 if index % 2 == 0 else -8.0
            lon, lat = to_degrees.transform(x + out_x * along + side_x * across,
                                            y + out_y * along + side_y * across)
            points.append((round(lon, 6), round(lat, 6)))
        suffix = sensor.entity_id.rsplit(":", 1)[1]
        cabinet = f"urn:ngsi-ld:{CABINET}:MI-Q{position // GROUPS_PER_CABINET + 1:02d}"
        groups.append(DemoGroup(f"urn:ngsi-ld:{STREETLIGHT_GROUP}:{suffix}", sensor, cabinet,
                                tuple(points)))
    return groups


def _prop(value: Any, unit: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if unit:
        attribute["unitCode"] = unit
    return attribute


def _rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def demo_lighting_entities(groups: list[DemoGroup] | None = None) -> list[dict[str, Any]]:
    """Cabinets, groups and lamps of the demo (cabinets first, so references resolve in
    order), normalized with the short names of LIGHTING_CONTEXT."""
    groups = groups if groups is not None else demo_groups()
    entities: list[dict[str, Any]] = []
    cabinets: dict[str, list[DemoGroup]] = {}
    for group in groups:
        cabinets.setdefault(group.cabinet_id, []).append(group)
    for cabinet_id, members in cabinets.items():
        lon = sum(g.lamp_points[0][0] for g in members) / len(members)
        lat = sum(g.lamp_points[0][1] for g in members) / len(members)
        entities.append({
            "id": cabinet_id, "type": CABINET,
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [round(lon, 6),
                                                                    round(lat, 6)]}},
            REF_GROUP: _rel(members[0].entity_id) if len(members) == 1 else
            {"type": "Relationship", "object": [g.entity_id for g in members]},
            "workingMode": _prop("automatic"),
        })
    for group in groups:
        watts, height = LUMINAIRE_OF_ROAD[group.sensor.road]
        entities.append({
            "id": group.entity_id, "type": STREETLIGHT_GROUP,
            "name": _prop(f"{group.sensor.name} ({group.sensor.road.value} road)"),
            "location": {"type": "GeoProperty", "value": {
                "type": "LineString", "coordinates": [list(p) for p in group.lamp_points]}},
            "areaServed": _prop(group.sensor.name),
            "powerState": _prop("on"),
            DESIGN_CLASS: _prop(group.design.name),
            REF_CABINET: _rel(group.cabinet_id),
        })
        for index, (lon, lat) in enumerate(group.lamp_points):
            entities.append({
                "id": group.lamp_id(index), "type": STREETLIGHT,
                "location": {"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [lon, lat]}},
                "status": _prop("ok"),
                "powerState": _prop("on"),
                "controllingMethod": _prop("group"),
                "locationCategory": _prop("road"),
                "lanternHeight": _prop(height, "MTR"),
                RATED_POWER: _prop(watts, "WTT"),
                LEVEL: _prop(1.0),
                REF_GROUP: _rel(group.entity_id),
                REF_CABINET: _rel(group.cabinet_id),
            })
    return entities
