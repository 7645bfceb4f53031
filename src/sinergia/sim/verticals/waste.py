"""Waste: fill-level sensors (ultrasonic, over MQTT, hourly) in the city's street containers —
two glass bells in every neighbourhood and a litter bin at every metro station in the Comune.

Containers fill through the day as people use them (from early morning to late evening, more
at weekends) and are emptied by the collection rounds: litter bins every morning (in
Municipio 1 also after lunch), glass bells once a week, each neighbourhood on its own day. A
container nobody empties in time stays full: the level is capped at 1 (overflowing). Each
reading carries ``fillingLevel`` (0-1) and ``dateLastEmptying``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final

from shapely.geometry import LineString

from sinergia.sim.clock import MILAN_TZ, Chance, local
from sinergia.sim.verticals.base import (
    DoorKind,
    Reading,
    StaticVertical,
    date_time,
    entity_id,
    mqtt_device,
    point,
    prop,
)
from sinergia.sim.verticals.places import (
    largest_polygon,
    milan,
    neighbourhood_ref,
    neighbourhoods,
    points_along,
    scope_of,
)
from sinergia.sim.verticals.profiles import clamp, plateau
from sinergia.sim.vocabulary import WASTE_CONTAINER

PERIOD: Final = timedelta(hours=1)
GLASS = "glass"
LITTER = "other"
CAPACITY_M3: Final = {GLASS: 3.0, LITTER: 0.11}
# Share of its capacity a container receives on an ordinary day (uniform between).
DAILY_FILL: Final = {GLASS: (0.08, 0.2), LITTER: (0.45, 1.0)}
WEEKEND_FACTOR: Final = 1.35
ROUND_HOURS: Final = (6.0, 9.0)   # the morning round passes between these (local)
AFTERNOON_ROUND: Final = 14.0     # the extra round of Municipio 1's litter bins
_STEPS: Final = 240               # resolution of the daily deposit curve


@dataclass(frozen=True, slots=True)
class Container:
    device_id: str
    kind: str
    name: str
    position: tuple[float, float]
    nil: int | None
    municipio: int | None


def milan_containers() -> list[Container]:
    containers: list[Container] = []
    for nil in neighbourhoods():
        polygon = largest_polygon(nil.shape.buffer(-60.0)) or largest_polygon(nil.shape)
        if polygon is None:
            continue
        ring = LineString(polygon.exterior.coords)
        spots = list(points_along(ring, ring.length / 2.0, offset=ring.length / 4.0))
        containers += [Container(f"MI-Vetro-{nil.id}-{n + 1}", GLASS,
                                 f"Glass bell {n + 1}, {nil.name}", spot, nil.id,
                                 nil.municipio) for n, spot in enumerate(spots[:2])]
    for stop in sorted(milan()["metro_stops"], key=lambda s: int(s["id"])):
        if stop.get("municipio") is None:  # outside the Comune: another town's bins
            continue
        longitude, latitude = stop["geometry"]["coordinates"]
        containers.append(Container(
            f"MI-Cestino-{stop['id']}", LITTER, f"Litter bin, {str(stop['name']).title()} M",
            (longitude + 0.00012, latitude + 0.00008), stop.get("nil"), stop["municipio"]))
    return containers


@cache
def _deposit_curve() -> tuple[float, ...]:
    """Cumulative share of a day's deposits by local time, in _STEPS steps (people use the
    containers from about 6:30 to 23:30)."""
    weights = [plateau(24.0 * (n + 0.5) / _STEPS, (6.5, 8.5), (21.0, 23.5))
               for n in range(_STEPS)]
    total = sum(weights)
    cumulative, running = [0.0], 0.0
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return tuple(cumulative)


def _deposited_by(hours: float) -> float:
    """Share of the day's deposits made by local time ``hours``."""
    curve = _deposit_curve()
    position = clamp(hours / 24.0) * _STEPS
    index = min(int(position), _STEPS - 1)
    return curve[index] + (curve[index + 1] - curve[index]) * (position - index)


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=MILAN_TZ)


class Waste(StaticVertical):
    name = "waste"
    door = DoorKind.MQTT
    period = PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.containers = milan_containers()

    # -- collection rounds ----------------------------------------------------------------------

    def _rounds_on(self, container: Container, day: date) -> list[datetime]:
        """When the rounds empty ``container`` on ``day`` (local date)."""
        midnight = _local_midnight(day)
        if container.kind == GLASS:
            if day.weekday() != (container.nil or 0) % 6:  # its neighbourhood's day, Mon-Sat
                return []
        elif day.weekday() == 6 and container.municipio != 1:
            return []  # no Sunday round outside the centre
        hour = self.chance.between(*ROUND_HOURS, "round", container.device_id, day)
        rounds = [midnight + timedelta(hours=hour)]
        if container.kind == LITTER and container.municipio == 1:
            rounds.append(midnight + timedelta(hours=AFTERNOON_ROUND + hour - ROUND_HOURS[0]))
        return [moment.astimezone(UTC) for moment in rounds]

    def last_emptying(self, container: Container, at: datetime) -> datetime:
        today = local(at).date()
        for back in range(8):
            day = today - timedelta(days=back)
            passed = [moment for moment in self._rounds_on(container, day) if moment <= at]
            if passed:
                return max(passed)
        return _local_midnight(today - timedelta(days=8)).astimezone(UTC)

    def filling_level(self, container: Container, at: datetime) -> float:
        emptied = self.last_emptying(container, at)
        low, high = DAILY_FILL[container.kind]
        level = 0.0
        start = local(emptied)
        end = local(at)
        day = start.date()
        while day <= end.date():
            first = start.hour + start.minute / 60.0 if day == start.date() else 0.0
            last = end.hour + end.minute / 60.0 if day == end.date() else 24.0
            daily = self.chance.between(low, high, "fill", container.device_id, day)
            if day.weekday() >= 5:
                daily *= WEEKEND_FACTOR
            level += daily * (_deposited_by(last) - _deposited_by(first))
            day += timedelta(days=1)
        level += 0.015 * self.chance.signed("sensor", container.device_id, at)
        return round(clamp(level), 2)

    # -- the vertical -----------------------------------------------------------------------------

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        entities = []
        for c in self.containers:
            entity = {
                "id": entity_id(WASTE_CONTAINER, c.device_id), "type": WASTE_CONTAINER,
                "scope": scope_of(c.municipio),
                "name": prop(c.name),
                "storedWasteKind": prop(c.kind),
                "cargoVolume": prop(CAPACITY_M3[c.kind], "MTQ"),
                "status": prop("ok"),
                "location": point(*c.position),
                "refNeighbourhood": neighbourhood_ref(c.nil),
            }
            entities.append({k: v for k, v in entity.items() if v is not None})
        return entities

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return [mqtt_device(WASTE_CONTAINER, c.device_id, context_url, {})
                for c in self.containers]

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(WASTE_CONTAINER, c.device_id, at,
                        {"fillingLevel": self.filling_level(c, at),
                         "dateLastEmptying": date_time(self.last_emptying(c, at))})
                for c in self.containers]
