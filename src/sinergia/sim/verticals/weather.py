"""Weather: the ARPA Lombardia stations of the packaged data (each reporting only the
quantities its real sensors measure) every 10 minutes, and a network of rain gauges, one in
every fourth neighbourhood, every 5 minutes.

**The climate** is Milan's (monthly normals of daily minimum and maximum temperature, Milano
Brera 1991-2020, rounded): the day's low just before sunrise, its high mid-afternoon, a few
degrees of day-to-day drift, a little more warmth in the centre (the urban heat island).
Relative humidity mirrors temperature; the wind is Milan's, mostly calm; solar radiation is the
clear-sky value for the sun's elevation, dimmed by clouds.

**Rain** comes as light rain on some days, uniform over the city, and as **storms**: every ISO
week has one or two (seeded), mostly in the afternoon or evening, each a rain cell a few
kilometres wide crossing the city from the south-west at 25-45 km/h, raining up to 45 mm/h at
its centre. A storm also gusts the wind, cools the air and darkens the sky. The other verticals
ask :func:`rain_rate` what falls where (bikes stay docked, rain washes the air).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from astral import Observer
from astral.sun import elevation

from sinergia.sim.clock import MILAN_TZ, Chance, local, local_hours
from sinergia.sim.verticals.base import (
    DoorKind,
    Reading,
    StaticVertical,
    entity_id,
    mqtt_device,
    point,
    prop,
    rel,
)
from sinergia.sim.verticals.places import (
    milan,
    neighbourhood_ref,
    neighbourhoods,
    scope_of,
    to_metres,
)
from sinergia.sim.verticals.profiles import bell, clamp
from sinergia.sim.vocabulary import WEATHER

# Mean daily minimum and maximum, °C, January to December (Milano Brera, rounded).
NORMALS: Final = ((0.5, 7.5), (1.5, 10.5), (5.0, 15.5), (8.5, 19.0), (13.0, 24.0),
                  (17.0, 28.0), (19.5, 30.5), (19.5, 30.0), (15.5, 25.5), (11.0, 19.0),
                  (5.5, 12.0), (1.5, 7.5))
STATION_PERIOD: Final = timedelta(minutes=10)
GAUGE_PERIOD: Final = timedelta(minutes=5)
STATION_UNITS: Final = {"temperature": "CEL", "precipitation": "MMT", "windSpeed": "MTS",
                        "windDirection": "DD", "solarRadiation": "D54"}
GAUGE_UNITS: Final = {"precipitation": "MMT"}
# The ARPA sensor quantities → the WeatherObserved attributes they report.
QUANTITIES: Final = {"temperature": "temperature", "humidity": "relativeHumidity",
                     "precipitation": "precipitation", "solarRadiation": "solarRadiation",
                     "windSpeed": "windSpeed", "windDirection": "windDirection"}
_OBSERVER: Final = Observer(latitude=45.4642, longitude=9.1900)
_SAMPLES: Final = 5  # points per period when adding up rain


@dataclass(frozen=True, slots=True)
class Storm:
    start: datetime
    duration: timedelta
    peak_mm_h: float
    radius_m: float
    heading_deg: float     # where it moves to, clockwise from north
    speed_m_s: float
    offset_m: float        # how far from the Duomo its centre passes, sideways

    @property
    def middle(self) -> datetime:
        return self.start + self.duration / 2

    def centre(self, at: datetime) -> tuple[float, float]:
        """Where the cell's centre is at ``at``, in metres from the Duomo: it passes closest
        at the storm's middle."""
        travelled = (at - self.middle).total_seconds() * self.speed_m_s
        heading = math.radians(self.heading_deg)
        dx, dy = math.sin(heading), math.cos(heading)
        return (dx * travelled - dy * self.offset_m, dy * travelled + dx * self.offset_m)

    def strength(self, at: datetime) -> float:
        """0-1: how far through its life the storm is (0 before and after)."""
        if not self.start <= at < self.start + self.duration:
            return 0.0
        half = self.duration.total_seconds() / 2
        return bell((at - self.middle).total_seconds(), 0.0, half / 1.6)

    def rate(self, at: datetime, position_m: tuple[float, float]) -> float:
        strength = self.strength(at)
        if strength <= 0.0:
            return 0.0
        cx, cy = self.centre(at)
        distance = math.hypot(position_m[0] - cx, position_m[1] - cy)
        return self.peak_mm_h * strength * bell(distance, 0.0, self.radius_m)


@lru_cache(maxsize=256)
def storms_of_week(seed: str, year: int, week: int) -> tuple[Storm, ...]:
    """The storms of ISO week ``week`` of ``year``: one, sometimes two."""
    chance = Chance(seed)
    monday = date.fromisocalendar(year, week, 1)
    count = 1 if chance.uniform("storms", year, week) < 0.6 else 2
    storms = []
    for n in range(count):
        draw = chance.rng("storm", year, week, n)
        day = monday + timedelta(days=draw.randrange(7))
        # thunderstorms build in the afternoon and evening
        hour = draw.uniform(13.0, 22.0) if draw.random() < 0.75 else draw.uniform(0.0, 24.0)
        start = datetime(day.year, day.month, day.day, tzinfo=MILAN_TZ) + timedelta(hours=hour)
        storms.append(Storm(
            start=start.astimezone(UTC),
            duration=timedelta(hours=draw.uniform(1.0, 3.0)),
            peak_mm_h=draw.uniform(12.0, 45.0), radius_m=draw.uniform(5_000.0, 9_000.0),
            heading_deg=draw.uniform(20.0, 70.0), speed_m_s=draw.uniform(7.0, 12.5),
            offset_m=draw.uniform(-4_000.0, 4_000.0)))
    return tuple(storms)


def storms_near(seed: str, at: datetime) -> tuple[Storm, ...]:
    """The storms of ``at``'s ISO week and the one before (a storm may run past Sunday)."""
    year, week, _ = local(at).isocalendar()
    earlier_year, earlier_week, _ = (local(at) - timedelta(days=7)).isocalendar()
    return storms_of_week(seed, year, week) + storms_of_week(seed, earlier_year, earlier_week)


@lru_cache(maxsize=64)
def _drizzle(seed: str, day: date) -> tuple[datetime, datetime, float] | None:
    """(start, end, mm/h) of the light rain starting on ``day``, if any (one day in five)."""
    chance = Chance(seed)
    if chance.uniform("drizzle", day) >= 0.2:
        return None
    draw = chance.rng("drizzle-shape", day)
    start = datetime(day.year, day.month, day.day, tzinfo=MILAN_TZ) + timedelta(
        hours=draw.uniform(0.0, 24.0))
    end = start + timedelta(hours=draw.uniform(2.0, 8.0))
    return start.astimezone(UTC), end.astimezone(UTC), draw.uniform(0.4, 2.5)


def light_rain(chance: Chance, at: datetime) -> float:
    """mm/h of light rain at ``at``, uniform over the city (drifting a little)."""
    day = local(at).date()
    for candidate in (day - timedelta(days=1), day):
        drizzle = _drizzle(chance.seed, candidate)
        if drizzle is not None and drizzle[0] <= at < drizzle[1]:
            return drizzle[2] * (1.0 + 0.4 * chance.smooth(at, timedelta(minutes=40),
                                                           "drizzle"))
    return 0.0


def rain_rate(chance: Chance, at: datetime, position: tuple[float, float]) -> float:
    """mm/h falling at ``at`` on (longitude, latitude)."""
    where = to_metres(*position)
    storms = sum(storm.rate(at, where) for storm in storms_near(chance.seed, at))
    return storms + light_rain(chance, at)


def storm_strength(chance: Chance, at: datetime) -> float:
    """0-1: how stormy the weather over the city is."""
    return max((storm.strength(at) for storm in storms_near(chance.seed, at)), default=0.0)


def precipitation(chance: Chance, end: datetime, period: timedelta,
                  position: tuple[float, float]) -> float:
    """mm fallen on ``position`` in the ``period`` ending at ``end`` (midpoint sums)."""
    step = period / _SAMPLES
    rates = [rain_rate(chance, end - period + step * (n + 0.5), position)
             for n in range(_SAMPLES)]
    return round(sum(rates) * step.total_seconds() / 3600.0, 1)


# -- temperature, humidity, wind, sun ---------------------------------------------------------


def _normal(at: datetime) -> tuple[float, float]:
    """The day's normal (minimum, maximum), interpolated between mid-months."""
    moment = local(at)
    position = moment.month - 1 + (moment.day - 15.5) / 30.5
    before = math.floor(position)
    weight = position - before
    low1, high1 = NORMALS[before % 12]
    low2, high2 = NORMALS[(before + 1) % 12]
    return (low1 + (low2 - low1) * weight, high1 + (high2 - high1) * weight)


def _daily_shape(hours: float) -> float:
    """0 at 6:00, 1 at 15:00, cosine in between and back down overnight."""
    if 6.0 <= hours < 15.0:
        return 0.5 - 0.5 * math.cos(math.pi * (hours - 6.0) / 9.0)
    since = (hours - 15.0) % 24.0
    return 0.5 + 0.5 * math.cos(math.pi * since / 15.0)


def temperature(chance: Chance, at: datetime, position: tuple[float, float]) -> float:
    low, high = _normal(at)
    value = low + (high - low) * _daily_shape(local_hours(at))
    value += 3.0 * chance.smooth(at, timedelta(days=1), "temperature-days")
    value += 0.6 * chance.smooth(at, timedelta(hours=5), "temperature-hours", position)
    x, y = to_metres(*position)
    value += 1.2 * math.exp(-math.hypot(x, y) / 4_000.0)  # heat island
    value -= 6.0 * storm_strength(chance, at)
    return round(value, 1)


def relative_humidity(chance: Chance, at: datetime, rain: float) -> float:
    month = local(at).month
    base = 0.62 if 5 <= month <= 8 else 0.78
    value = base + 0.2 * (0.5 - _daily_shape(local_hours(at)))
    value += 0.06 * chance.smooth(at, timedelta(hours=8), "humidity")
    if rain > 0.0:
        value = max(value, 0.9 + min(0.08, rain / 100.0))
    return round(clamp(value, 0.2, 1.0), 2)


def wind(chance: Chance, at: datetime) -> tuple[float, float]:
    """(speed m/s, direction it blows from, degrees)."""
    storm = storm_strength(chance, at)
    speed = 1.0 + 1.2 * bell(local_hours(at), 15.0, 3.5)
    speed += 0.6 * chance.smooth(at, timedelta(hours=3), "wind")
    speed += 9.0 * storm
    direction = 240.0 + 60.0 * chance.smooth(at, timedelta(hours=6), "wind-direction")
    if storm > 0.1:
        direction = 225.0  # the gust front, from the south-west
    return round(max(0.0, speed), 1), round(direction % 360.0)


def solar_radiation(chance: Chance, at: datetime, rain: float) -> float:
    sun = float(elevation(_OBSERVER, at.astimezone(UTC)))
    if sun <= 0.0:
        return 0.0
    clear = 1000.0 * math.pow(math.sin(math.radians(sun)), 1.2)
    clouds = clamp(0.35 + 0.35 * chance.smooth(at, timedelta(hours=10), "clouds"))
    clouds = max(clouds, 0.9 * storm_strength(chance, at), 0.8 if rain > 0 else 0.0)
    return round(clear * (1.0 - 0.75 * clouds))


# -- the verticals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Station:
    device_id: str
    name: str
    position: tuple[float, float]
    municipio: int | None
    nil: int | None
    attributes: tuple[str, ...]  # what it measures
    device_ref: str | None       # the station's Device entity (ARPA stations)


def arpa_stations() -> list[Station]:
    """The ARPA stations still reporting, with what their sensors measure."""
    stations = []
    for record in milan()["weather_stations"]:
        if record["last_value"] is not None:  # decommissioned
            continue
        measured = tuple(dict.fromkeys(QUANTITIES[s["quantity"]] for s in record["sensors"]
                                       if s["quantity"] in QUANTITIES and s["until"] is None))
        if not measured:  # every sensor retired
            continue
        stations.append(Station(
            f"MI-ARPA-{record['id']}", str(record["name"]),
            tuple(record["geometry"]["coordinates"]), record.get("municipio"),
            record.get("nil"), measured, entity_id("Device", f"MI-ARPA-{record['id']}")))
    return stations


def rain_gauges() -> list[Station]:
    """One rain gauge inside every fourth neighbourhood."""
    return [Station(f"MI-Pluvio-{nil.id}", f"Rain gauge {nil.name}", nil.centre, nil.municipio,
                    nil.id, ("precipitation",), None)
            for nil in neighbourhoods()[::4]]


def _station_entity(station: Station, description: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": entity_id(WEATHER, station.device_id), "type": WEATHER,
        "scope": scope_of(station.municipio),
        "name": prop(station.name),
        "description": prop(description),
        "location": point(*station.position),
        "refNeighbourhood": neighbourhood_ref(station.nil),
        "refDevice": rel(station.device_ref) if station.device_ref else None,
    }
    return {k: v for k, v in entity.items() if v is not None}


class Weather(StaticVertical):
    name = "weather"
    door = DoorKind.MQTT
    period = STATION_PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.stations = arpa_stations()

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return [_station_entity(s, "ARPA Lombardia weather station") for s in self.stations]

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return [mqtt_device(WEATHER, s.device_id, context_url,
                            {k: v for k, v in STATION_UNITS.items() if k in s.attributes})
                for s in self.stations]

    def observe(self, station: Station, at: datetime) -> dict[str, Any]:
        rain = precipitation(self.chance, at, self.period, station.position)
        speed, direction = wind(self.chance, at)
        values: dict[str, Any] = {
            "temperature": temperature(self.chance, at, station.position),
            "relativeHumidity": relative_humidity(self.chance, at, rain),
            "precipitation": rain,
            "windSpeed": speed,
            "windDirection": direction,
            "solarRadiation": solar_radiation(self.chance, at, rain),
        }
        return {name: values[name] for name in station.attributes}

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(WEATHER, s.device_id, at, self.observe(s, at), STATION_UNITS)
                for s in self.stations]


class RainGauges(StaticVertical):
    name = "rain"
    door = DoorKind.MQTT
    period = GAUGE_PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.gauges = rain_gauges()

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return [_station_entity(g, "Tipping-bucket rain gauge") for g in self.gauges]

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return [mqtt_device(WEATHER, g.device_id, context_url, GAUGE_UNITS)
                for g in self.gauges]

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(WEATHER, g.device_id, at,
                        {"precipitation": precipitation(self.chance, at, self.period,
                                                        g.position)}, GAUGE_UNITS)
                for g in self.gauges]
