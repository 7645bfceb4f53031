"""Public lighting: about three thousand street lights along Milan's streets, in groups (one
street each) fed by one control cabinet per neighbourhood (NIL).

**Layout** (deterministic, from the packaged data). In every NIL the longest streets that have
a bike lane are lit first: lamps every few metres along the lane (the spacing about 3.5 times
the lantern's height, as road-lighting designs do), until the NIL has :data:`LAMPS_PER_NIL`;
a NIL whose lanes give fewer gets the rest along its boundary (NIL borders mostly follow
streets). The street's name gives its class: *viale*, *corso*, *bastioni*, *piazzale*… are
arterial roads (EN 13201 design class M2, 150 W LED at 10 m), other streets with a long lane
district roads (M3, 100 W, 8 m), the rest local streets (M4, 60 W, 7 m), and paths through
parks M5 (30 W, 5 m).

**What it reports**, as the lighting management system does through NGSI-LD: the twilight
switch of each cabinet (a little after sunset, a little before sunrise; each photocell a few
minutes apart) turning its groups and lamps on and off, and lamp faults — now and then a lamp
fails (a defective LED module, a broken lantern, a damaged column) and is repaired a few
days later. Dimming is not simulated: the lighting app decides it and writes
``illuminanceLevel``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Final

from astral import Observer
from astral.sun import sunrise, sunset
from shapely.geometry import LineString

from sinergia.sim.clock import Chance
from sinergia.sim.traffic import RoadClass
from sinergia.sim.verticals.base import (
    DoorKind,
    Reading,
    StaticVertical,
    date_time,
    entity_id,
    point,
    prop,
    rel,
)
from sinergia.sim.verticals.places import (
    longest_line,
    metric,
    milan,
    neighbourhood_ref,
    neighbourhoods,
    points_along,
    scope_of,
    to_degrees,
    to_metres,
)
from sinergia.sim.vocabulary import CABINET, STREETLIGHT, STREETLIGHT_GROUP

LAMPS_PER_NIL: Final = 36
MIN_LANE_M: Final = 60.0
PERIOD: Final = timedelta(minutes=15)
OBSERVER: Final = Observer(latitude=45.4642, longitude=9.1900)
# Photocells switch at roughly 50 lux: about a quarter of an hour after sunset and before
# sunrise, each cabinet a few minutes off the others.
TWILIGHT: Final = timedelta(minutes=15)
CABINET_SPREAD_MIN: Final = 6.0
FAULTS_PER_LAMP_DAY: Final = 1 / 500  # a few new faults a day across the city
FAULT_KINDS: Final = (("defectiveLamp", 0.7), ("brokenLantern", 0.9), ("columnIssue", 1.0))

PATH = "path"  # not a road: a path through a park, lit for pedestrians


@dataclass(frozen=True, slots=True)
class LuminaireKind:
    design: str         # EN 13201 class at full output
    rated_w: float
    height_m: float
    spacing_m: float
    category: str       # Smart Data Models locationCategory


LUMINAIRES: Final[dict[str, LuminaireKind]] = {
    RoadClass.ARTERIAL: LuminaireKind("M2", 150.0, 10.0, 35.0, "road"),
    RoadClass.DISTRIBUTOR: LuminaireKind("M3", 100.0, 8.0, 30.0, "road"),
    RoadClass.LOCAL: LuminaireKind("M4", 60.0, 7.0, 25.0, "road"),
    PATH: LuminaireKind("M5", 30.0, 5.0, 20.0, "park"),
}
_ARTERIAL_WORDS: Final = frozenset({"VIALE", "CORSO", "BASTIONI", "PIAZZALE", "CAVALCAVIA",
                                    "CIRCONVALLAZIONE", "RIPA"})
_PATH_WORDS: Final = frozenset({"PARCO", "GIARDINO", "GIARDINI", "AREA", "BOSCOINCITTA'",
                                "ALZAIA", "PASSERELLA", "PISTA"})
DISTRIBUTOR_MIN_M: Final = 400.0


def road_kind(street: str | None, length_m: float) -> str:
    """The class of road a lane runs along, from its street name (and length)."""
    first = re.split(r"\s+", (street or "").strip().upper(), maxsplit=1)[0]
    if first in _ARTERIAL_WORDS:
        return RoadClass.ARTERIAL
    if first in _PATH_WORDS or not first:
        return PATH
    return RoadClass.DISTRIBUTOR if length_m >= DISTRIBUTOR_MIN_M else RoadClass.LOCAL


@dataclass(frozen=True, slots=True)
class Lamp:
    id: str
    group_id: str
    cabinet_id: str
    position: tuple[float, float]  # longitude, latitude
    kind: LuminaireKind


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    road: str
    cabinet_id: str
    lamp_ids: tuple[str, ...]
    line: tuple[tuple[float, float], ...]  # the lamps, in order along the street


@dataclass(frozen=True, slots=True)
class Cabinet:
    id: str
    code: str
    nil: int
    nil_name: str
    municipio: int
    position: tuple[float, float]
    group_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    cabinets: tuple[Cabinet, ...]
    groups: tuple[Group, ...]
    lamps: tuple[Lamp, ...]


def _title(street: str) -> str:
    return " ".join(word.capitalize() if not word.isdigit() else word
                    for word in street.split())


@cache
def milan_lighting() -> Layout:
    """The demo city's lighting installation (same every call)."""
    lanes_by_nil: dict[int, list[dict[str, Any]]] = {}
    for lane in milan()["bike_lanes"]:
        if lane.get("nil") is not None and (lane.get("length") or 0) >= MIN_LANE_M:
            lanes_by_nil.setdefault(int(lane["nil"]), []).append(lane)
    cabinets: list[Cabinet] = []
    groups: list[Group] = []
    lamps: list[Lamp] = []
    for nil in neighbourhoods():
        cabinet_id = entity_id(CABINET, f"MI-Q{nil.id:03d}")
        planned: list[tuple[str, str, str, list[tuple[float, float]], LuminaireKind]] = []
        budget = LAMPS_PER_NIL
        lanes = sorted(lanes_by_nil.get(nil.id, []), key=lambda r: (-r["length"], r["id"]))
        for lane in lanes:
            if budget <= 0:
                break
            line = longest_line(metric(lane["geometry"]))
            if line is None:
                continue
            road = road_kind(lane["street"], float(lane["length"]))
            kind = LUMINAIRES[road]
            spots = list(points_along(line, kind.spacing_m, limit=budget))
            if not spots:
                continue
            name = _title(lane["street"]) if lane["street"] else f"Path in {nil.name}"
            planned.append((f"MI-L{lane['id']}", name, road, spots, kind))
            budget -= len(spots)
        if budget > 0:  # the rest along the neighbourhood's border streets, inside it
            border = nil.shape.buffer(-12.0)
            ring = getattr(border, "exterior", None)
            if ring is None and hasattr(border, "geoms") and border.geoms:
                ring = max(border.geoms, key=lambda g: g.area).exterior
            if ring is not None:
                kind = LUMINAIRES[RoadClass.LOCAL]
                spots = list(points_along(LineString(ring.coords), kind.spacing_m,
                                          limit=budget))
                planned.append((f"MI-N{nil.id}", f"Streets around {nil.name}",
                                RoadClass.LOCAL, spots, kind))
        group_ids = []
        for suffix, name, road, spots, kind in planned:
            group_id = entity_id(STREETLIGHT_GROUP, suffix)
            lamp_ids = tuple(entity_id(STREETLIGHT, f"{suffix}-{n + 1:02d}")
                             for n in range(len(spots)))
            lamps += [Lamp(lamp_id, group_id, cabinet_id, spot, kind)
                      for lamp_id, spot in zip(lamp_ids, spots, strict=True)]
            groups.append(Group(group_id, name, road, cabinet_id, lamp_ids, tuple(spots)))
            group_ids.append(group_id)
        if group_ids:
            first = groups[-len(group_ids)].line[0]
            x, y = to_metres(*first)
            cabinets.append(Cabinet(cabinet_id, f"Q{nil.id:03d}", nil.id, nil.name,
                                    nil.municipio, to_degrees(x + 4.0, y + 4.0),
                                    tuple(group_ids)))
    return Layout(tuple(cabinets), tuple(groups), tuple(lamps))


# -- the sun and the twilight switches --------------------------------------------------------


@lru_cache(maxsize=128)
def _night(evening: date) -> tuple[datetime, datetime]:
    """Sunset of ``evening`` (a UTC date: Milan's sunsets and sunrises fall on the same UTC
    date as the local one) and the next sunrise."""
    return sunset(OBSERVER, evening), sunrise(OBSERVER, evening + timedelta(days=1))


class Twilight:
    """When a cabinet's photocell switches its lamps on and off."""

    def __init__(self, chance: Chance) -> None:
        self.chance = chance

    def _offset(self, cabinet_id: str) -> timedelta:
        return timedelta(minutes=CABINET_SPREAD_MIN * self.chance.signed("photocell",
                                                                         cabinet_id))

    def nights(self, cabinet_id: str, start: datetime,
               end: datetime | None = None) -> list[tuple[datetime, datetime]]:
        """(switched on, switched off) of every night that may overlap ``[start, end]``
        (``end`` defaults to ``start``), oldest first."""
        offset = self._offset(cabinet_id)
        evening = start.astimezone(UTC).date() - timedelta(days=1)
        last = (end or start).astimezone(UTC).date() + timedelta(days=1)
        result = []
        while evening <= last:
            dusk, dawn = _night(evening)
            result.append((dusk + TWILIGHT + offset, dawn - TWILIGHT + offset))
            evening += timedelta(days=1)
        return result

    def is_on(self, cabinet_id: str, at: datetime) -> bool:
        return any(on <= at < off for on, off in self.nights(cabinet_id, at))

    def last_switch(self, cabinet_id: str, at: datetime) -> datetime:
        """The latest switching (on or off) not after ``at``."""
        moments = [m for night in self.nights(cabinet_id, at) for m in night if m <= at]
        return max(moments)

    def lit_seconds(self, cabinet_id: str, start: datetime, end: datetime) -> float:
        """Seconds of ``[start, end)`` the cabinet's lamps were switched on."""
        total = 0.0
        for on, off in self.nights(cabinet_id, start, end):
            total += max(0.0, (min(end, off) - max(start, on)).total_seconds())
        return total


# -- faults -------------------------------------------------------------------------------------


def lamp_status(chance: Chance, lamp_id: str, at: datetime) -> str:
    """``ok``, or the fault the lamp has at ``at``: each day a lamp may fail (at a random
    hour) and stays failed one to four days, until the maintenance crew comes."""
    today = at.astimezone(UTC).date()
    for back in range(4, -1, -1):
        day = today - timedelta(days=back)
        if chance.uniform("fault", lamp_id, day) >= FAULTS_PER_LAMP_DAY:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            hours=24 * chance.uniform("fault-hour", lamp_id, day))
        repaired = start + timedelta(days=1 + 3 * chance.uniform("repair", lamp_id, day))
        if start <= at < repaired:
            draw = chance.uniform("fault-kind", lamp_id, day)
            return next(kind for kind, upper in FAULT_KINDS if draw < upper)
    return "ok"


# -- the vertical ---------------------------------------------------------------------------------


class Lighting(StaticVertical):
    name = "lighting"
    door = DoorKind.NGSI_LD
    period = PERIOD

    def __init__(self, chance: Chance, layout: Layout | None = None) -> None:
        self.chance = chance
        self.layout = layout or milan_lighting()
        self.twilight = Twilight(chance)
        self._cabinet_on: dict[str, bool] = {}
        self._lamp_status: dict[str, str] = {}
        self._cabinet_groups = {c.id: c.group_ids for c in self.layout.cabinets}
        self._group_lamps = {g.id: g.lamp_ids for g in self.layout.groups}

    def status_of(self, lamp_id: str, at: datetime) -> str:
        return lamp_status(self.chance, lamp_id, at)

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        entities: list[dict[str, Any]] = []
        for cabinet in self.layout.cabinets:
            on = self.twilight.is_on(cabinet.id, start)
            self._cabinet_on[cabinet.id] = on
            entity = {
                "id": cabinet.id, "type": CABINET,
                "scope": scope_of(cabinet.municipio),
                "name": prop(f"Cabinet {cabinet.code} ({cabinet.nil_name})"),
                "location": point(*cabinet.position),
                "refStreetlightGroup": rel(list(cabinet.group_ids)),
                "refNeighbourhood": neighbourhood_ref(cabinet.nil),
                "workingMode": prop("automatic"),
                "powerState": prop("on" if on else "off"),
            }
            entities.append(entity)
        for group in self.layout.groups:
            kind = LUMINAIRES[group.road]
            on = self._cabinet_on[group.cabinet_id]
            entities.append({
                "id": group.id, "type": STREETLIGHT_GROUP,
                "name": prop(group.name),
                "location": {"type": "GeoProperty", "value": (
                    {"type": "LineString", "coordinates": [list(p) for p in group.line]}
                    if len(group.line) > 1 else {"type": "Point",
                                                 "coordinates": list(group.line[0])})},
                "areaServed": prop(group.name),
                "designLightingClass": prop(kind.design),
                "refStreetlightControlCabinet": rel(group.cabinet_id),
                "powerState": prop("on" if on else "off"),
            })
        for lamp in self.layout.lamps:
            status = self.status_of(lamp.id, start)
            self._lamp_status[lamp.id] = status
            entities.append({
                "id": lamp.id, "type": STREETLIGHT,
                "location": point(*lamp.position),
                "status": prop(status),
                "powerState": prop("on" if self._cabinet_on[lamp.cabinet_id] else "off"),
                "controllingMethod": prop("group"),
                "locationCategory": prop(lamp.kind.category),
                "lanternHeight": prop(lamp.kind.height_m, "MTR"),
                "powerRating": prop(lamp.kind.rated_w, "WTT"),
                "illuminanceLevel": prop(1.0),
                "refStreetlightGroup": rel(lamp.group_id),
                "refStreetlightControlCabinet": rel(lamp.cabinet_id),
            })
        return [{k: v for k, v in e.items() if v is not None} for e in entities]

    def readings(self, at: datetime) -> list[Reading]:
        out: list[Reading] = []
        for cabinet in self.layout.cabinets:
            on = self.twilight.is_on(cabinet.id, at)
            if self._cabinet_on.get(cabinet.id) == on:
                continue
            self._cabinet_on[cabinet.id] = on
            state = "on" if on else "off"
            switched = self.twilight.last_switch(cabinet.id, at)
            stamp = "dateLastSwitchingOn" if on else "dateLastSwitchingOff"
            out.append(Reading(CABINET, _local_id(cabinet.id), at,
                               {"powerState": state, stamp: date_time(switched)}))
            for group_id in cabinet.group_ids:
                out.append(Reading(STREETLIGHT_GROUP, _local_id(group_id), at,
                                   {"powerState": state}))
                out += [Reading(STREETLIGHT, _local_id(lamp_id), at, {"powerState": state})
                        for lamp_id in self._group_lamps[group_id]]
        for lamp in self.layout.lamps:
            status = self.status_of(lamp.id, at)
            if self._lamp_status.get(lamp.id, "ok") != status:
                self._lamp_status[lamp.id] = status
                out.append(Reading(STREETLIGHT, _local_id(lamp.id), at, {"status": status}))
        return out


def _local_id(urn: str) -> str:
    """``urn:ngsi-ld:Type:MI-X`` → ``MI-X`` (the device id of a reading)."""
    return urn.split(":", 3)[3]
