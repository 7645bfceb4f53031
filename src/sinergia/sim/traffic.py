"""Simulated road traffic for the demo city: how many vehicles per hour pass on a Milan road of
a given class at a given moment.

:func:`vehicles_per_hour` is a pure, deterministic function of (road class, timestamp, seed):
the same arguments always give the same count, on any machine, so the lighting app's tests, the
demo simulator and the documentation all see the same week of traffic.

The shape is that of a typical Italian city's urban traffic, in local time (Europe/Rome):

* **weekdays** — a morning peak at 8-9, a long busy day, an evening peak at 17-19, quiet nights
  with the minimum around 3-4 (about 7 % of the peak hour);
* **Friday** — a busier evening that lasts longer into the night;
* **Saturday** — no commuter peak, a busy afternoon and evening, more traffic after midnight
  (going out);
* **Sunday** — the lightest day: a late, low morning, a modest return in the evening.

Each road class has its own peak-hour flow (both directions): an urban arterial carries about a
saturated lane and a half, a district distributor half of that, a local street a sixth. On top of
the shape, seeded noise of at most ±``NOISE`` per 15-minute slot makes each sensor's series
look measured rather than drawn; pass a different ``seed`` per sensor.

The hourly fractions are our own rounded reading of the typical urban daily profiles published
by Italian mobility agencies (e.g. AMAT Milano's traffic counts): they are a simulation input,
not measured data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

MILAN_TZ: Final = ZoneInfo("Europe/Rome")
SLOT: Final = timedelta(minutes=15)  # the noise changes every slot, like a sensor's count
NOISE: Final = 0.12  # at most ±12 % around the profile


class RoadClass(StrEnum):
    """Urban road classes of the Italian highway code (Codice della Strada, art. 2)."""

    ARTERIAL = "arterial"        # D - strada urbana di scorrimento
    DISTRIBUTOR = "distributor"  # E - strada urbana di quartiere
    LOCAL = "local"              # F - strada locale urbana


# Vehicles per hour at the busiest hour of a weekday, both directions.
PEAK_FLOW: Final[dict[RoadClass, float]] = {
    RoadClass.ARTERIAL: 1800.0,
    RoadClass.DISTRIBUTOR: 900.0,
    RoadClass.LOCAL: 300.0,
}

# Share of the weekday peak in each hour of the day, 0:00-0:59 first.
_WEEKDAY: Final = (0.16, 0.10, 0.07, 0.06, 0.08, 0.17, 0.42, 0.80, 1.00, 0.88, 0.74, 0.74,
                   0.76, 0.74, 0.74, 0.78, 0.86, 0.97, 1.00, 0.86, 0.60, 0.45, 0.37, 0.27)
_FRIDAY: Final = (0.16, 0.10, 0.07, 0.06, 0.08, 0.17, 0.40, 0.78, 0.98, 0.88, 0.76, 0.76,
                  0.78, 0.76, 0.76, 0.80, 0.90, 0.98, 1.00, 0.90, 0.68, 0.55, 0.48, 0.38)
_SATURDAY: Final = (0.28, 0.20, 0.14, 0.09, 0.07, 0.09, 0.18, 0.32, 0.48, 0.62, 0.72, 0.78,
                    0.78, 0.70, 0.68, 0.74, 0.80, 0.84, 0.84, 0.76, 0.60, 0.52, 0.48, 0.40)
_SUNDAY: Final = (0.30, 0.22, 0.15, 0.09, 0.06, 0.06, 0.10, 0.16, 0.26, 0.38, 0.50, 0.56,
                  0.56, 0.48, 0.44, 0.50, 0.58, 0.64, 0.66, 0.60, 0.48, 0.38, 0.30, 0.20)
_BY_WEEKDAY: Final = (_WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKDAY, _FRIDAY, _SATURDAY, _SUNDAY)


def profile_share(day: date, hour: int) -> float:
    """Share of the weekday peak in ``hour`` (0-23, local time) of ``day``."""
    return _BY_WEEKDAY[day.weekday()][hour]


def _hour_share(start: datetime) -> float:
    """The profile's share for the local hour starting at ``start`` (naive local time)."""
    return profile_share(start.date(), start.hour)


def _smooth_share(local: datetime) -> float:
    """The profile at a local moment, interpolated between the middles of the hours so the
    series has no steps on the hour."""
    position = local.hour + local.minute / 60.0 + local.second / 3600.0 - 0.5
    base = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    before = base + timedelta(hours=math.floor(position))
    weight = position - math.floor(position)
    return ((1.0 - weight) * _hour_share(before)
            + weight * _hour_share(before + timedelta(hours=1)))


def _noise(road: RoadClass, at: datetime, seed: int | str) -> float:
    slot = int(at.timestamp() // SLOT.total_seconds())
    # str seeds are hashed with SHA-512 by random: the same on every run and machine
    rng = random.Random(f"{seed}|{road.value}|{slot}")
    return 1.0 + NOISE * rng.uniform(-1.0, 1.0)


def vehicles_per_hour(road: RoadClass, at: datetime, seed: int | str = 0) -> float:
    """Vehicles per hour on a road of class ``road`` at the aware moment ``at``, with the noise
    of ``seed``; rounded to 0.1."""
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    local = at.astimezone(MILAN_TZ)
    flow = PEAK_FLOW[road] * _smooth_share(local) * _noise(road, at, seed)
    return round(max(0.0, flow), 1)


# --- the demo's traffic sensors --------------------------------------------------------------

# Where the NGSI-LD terms of the entities below come from (Smart Data Models, Transportation).
_TRANSPORTATION = "https://smartdatamodels.org/dataModel.Transportation/"
TRAFFIC_CONTEXT: Final[dict[str, str]] = {
    "TrafficFlowObserved": _TRANSPORTATION + "TrafficFlowObserved",
    "intensity": _TRANSPORTATION + "intensity",
    "dateObservedFrom": _TRANSPORTATION + "dateObservedFrom",
    "dateObservedTo": _TRANSPORTATION + "dateObservedTo",
    "dateObserved": "https://smartdatamodels.org/dateObserved",
    "name": "https://smartdatamodels.org/name",
    "dataProvider": "https://smartdatamodels.org/dataProvider",
}


@dataclass(frozen=True, slots=True)
class TrafficSensor:
    """A counting point of the demo city: an Area C gate (a real place), its road's class, and
    the id of the TrafficFlowObserved entity that carries its counts."""

    entity_id: str
    name: str
    longitude: float
    latitude: float
    road: RoadClass
    seed: str


# Area C gates are the entries through the Cerchia dei Bastioni; their roads are a mix. The
# class of each is assigned by a fixed pattern (the open data do not say), 2:2:1.
_ROAD_PATTERN: Final = (RoadClass.ARTERIAL, RoadClass.DISTRIBUTOR, RoadClass.LOCAL,
                        RoadClass.ARTERIAL, RoadClass.DISTRIBUTOR)


def milan_traffic_sensors() -> list[TrafficSensor]:
    """One sensor per Area C gate of the packaged Milan open data, in gate-id order."""
    from sinergia.sim.milano import load_data

    gates = sorted(load_data()["areac_gates"], key=lambda g: int(g["id"]))
    sensors = []
    for position, gate in enumerate(gates):
        longitude, latitude = gate["geometry"]["coordinates"]
        sensors.append(TrafficSensor(
            entity_id=f"urn:ngsi-ld:TrafficFlowObserved:MI-AreaC-{gate['id']}",
            name=str(gate["name"]).title(), longitude=longitude, latitude=latitude,
            road=_ROAD_PATTERN[position % len(_ROAD_PATTERN)], seed=f"areac-{gate['id']}"))
    return sensors


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def traffic_flow_entity(sensor: TrafficSensor, end: datetime, *, period: timedelta = SLOT,
                        seed: int | str = 0) -> dict[str, Any]:
    """The sensor's count for the period ending at ``end`` as a normalized TrafficFlowObserved
    (Smart Data Models): ``intensity`` is the number of vehicles in the period, its
    ``observedAt`` the period's end; use :data:`TRAFFIC_CONTEXT`."""
    start = end - period
    middle = start + period / 2
    rate = vehicles_per_hour(sensor.road, middle, f"{seed}|{sensor.seed}")
    vehicles = round(rate * period.total_seconds() / 3600.0)
    observed = _iso(end)
    return {
        "id": sensor.entity_id,
        "type": "TrafficFlowObserved",
        "name": {"type": "Property", "value": sensor.name},
        "location": {"type": "GeoProperty", "value": {
            "type": "Point", "coordinates": [sensor.longitude, sensor.latitude]}},
        "intensity": {"type": "Property", "value": vehicles, "observedAt": observed},
        "dateObservedFrom": {"type": "Property", "value": {
            "@type": "DateTime", "@value": _iso(start)}},
        "dateObservedTo": {"type": "Property", "value": {"@type": "DateTime", "@value": observed}},
        "dateObserved": {"type": "Property", "value": f"{_iso(start)}/{observed}"},
    }
