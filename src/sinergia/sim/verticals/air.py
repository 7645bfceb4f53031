"""Air quality: half-hourly averages of NO2, PM10, PM2.5, O3 and CO, published over MQTT by
monitoring stations at the ARPA weather-station sites (urban background) and by low-cost
kerbside sensors at some Area C gates.

What drives them, roughly as in Milan: NO2 and CO follow the traffic (the same daily and
weekly profile as :mod:`sinergia.sim.traffic`), much more at the kerb; particulate matter has a
strong season (the Po Valley's winters trap it), drifts over days and is washed out by rain;
ozone is a summer-afternoon pollutant, eaten up by NO2 near traffic. Wind dilutes everything.
The European Air Quality Index (EEA bands) of the worst pollutant gives ``airQualityIndex``
(1-6) and ``airQualityLevel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sinergia.sim.clock import Chance, local, local_hours
from sinergia.sim.traffic import profile_share
from sinergia.sim.verticals.base import (
    DoorKind,
    Reading,
    StaticVertical,
    mqtt_device,
    point,
    prop,
)
from sinergia.sim.verticals.places import milan
from sinergia.sim.verticals.profiles import bell
from sinergia.sim.verticals.weather import arpa_stations, rain_rate, wind
from sinergia.sim.vocabulary import AIR_QUALITY

PERIOD: Final = timedelta(minutes=30)
UNITS: Final = {"no2": "GQ", "pm10": "GQ", "pm25": "GQ", "o3": "GQ", "co": "GP"}
KERBSIDE_EVERY: Final = 7  # one kerbside sensor every this many Area C gates
# Upper bounds of the EEA European Air Quality Index bands (µg/m³); above the last: 6.
EAQI_BANDS: Final[dict[str, tuple[float, ...]]] = {
    "pm25": (10, 20, 25, 50, 75),
    "pm10": (20, 40, 50, 100, 150),
    "no2": (40, 90, 120, 230, 340),
    "o3": (50, 100, 130, 240, 380),
}
EAQI_LEVELS: Final = ("good", "fair", "moderate", "poor", "veryPoor", "extremelyPoor")


@dataclass(frozen=True, slots=True)
class Site:
    device_id: str
    name: str
    position: tuple[float, float]
    kerbside: bool


def air_sites() -> list[Site]:
    sites = [Site(f"MI-AQ-{s.device_id.removeprefix('MI-')}", f"{s.name} (air quality)",
                  s.position, False) for s in arpa_stations()]
    gates = sorted(milan()["areac_gates"], key=lambda g: int(g["id"]))
    sites += [Site(f"MI-AQ-AreaC-{g['id']}", f"{str(g['name']).title()} (kerbside sensor)",
                   tuple(g["geometry"]["coordinates"]), True)
              for g in gates[::KERBSIDE_EVERY]]
    return sites


def traffic_share(at: datetime) -> float:
    """The city's traffic at ``at`` as a share of the weekday peak: the hourly profile,
    interpolated between the middles of the hours."""
    middle = local(at) - timedelta(minutes=30)
    before = middle.replace(minute=0, second=0, microsecond=0)
    after = before + timedelta(hours=1)
    weight = (middle - before).total_seconds() / 3600.0
    return ((1.0 - weight) * profile_share(before.date(), before.hour)
            + weight * profile_share(after.date(), after.hour))


def season(at: datetime) -> float:
    """1 in mid-January, 0 in mid-July."""
    day = local(at).timetuple().tm_yday
    return 0.5 + 0.5 * math.cos(2.0 * math.pi * (day - 15) / 365.25)


def eaqi(values: dict[str, float]) -> int:
    index = 1
    for pollutant, bands in EAQI_BANDS.items():
        value = values[pollutant]
        band = next((n + 1 for n, upper in enumerate(bands) if value <= upper), 6)
        index = max(index, band)
    return index


class AirQuality(StaticVertical):
    name = "air"
    door = DoorKind.MQTT
    period = PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.sites = air_sites()

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return [{"id": f"urn:ngsi-ld:{AIR_QUALITY}:{s.device_id}", "type": AIR_QUALITY,
                 "name": prop(s.name),
                 "description": prop("Kerbside low-cost sensor" if s.kerbside
                                     else "Urban background monitoring station"),
                 "location": point(*s.position)} for s in self.sites]

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return [mqtt_device(AIR_QUALITY, s.device_id, context_url, UNITS) for s in self.sites]

    def observe(self, site: Site, at: datetime) -> dict[str, Any]:
        chance = self.chance
        traffic = traffic_share(at)
        kerb = 1.7 if site.kerbside else 1.0
        speed, _ = wind(chance, at)
        dilution = 1.0 / (1.0 + 0.25 * speed)
        rain = sum(rain_rate(chance, at - timedelta(hours=h), site.position)
                   for h in range(4)) / 4.0
        washout = 1.0 / (1.0 + 0.4 * rain)
        no2 = (14.0 + 55.0 * traffic * kerb) * dilution * (
            1.0 + 0.15 * chance.smooth(at, timedelta(hours=2), "no2", site.device_id))
        episode = 1.0 + 0.5 * chance.smooth(at, timedelta(days=2), "pm-episode")
        pm10 = (12.0 + 40.0 * season(at) * episode + 8.0 * traffic * kerb) * washout \
            * math.sqrt(dilution * 2.0)
        pm25 = 0.68 * pm10 * (1.0 + 0.05 * chance.signed("pm25", site.device_id, at))
        sunny = bell(local_hours(at), 15.5, 3.0)
        o3 = max(2.0, 20.0 + (40.0 + 100.0 * (1.0 - season(at))) * sunny - 0.25 * no2)
        co = 0.3 + 0.9 * traffic * kerb * dilution
        values = {"no2": round(no2, 1), "pm10": round(pm10, 1), "pm25": round(pm25, 1),
                  "o3": round(o3, 1), "co": round(co, 2)}
        index = eaqi(values)
        return {**values, "airQualityIndex": index, "airQualityLevel": EAQI_LEVELS[index - 1]}

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(AIR_QUALITY, s.device_id, at, self.observe(s, at), UNITS)
                for s in self.sites]
