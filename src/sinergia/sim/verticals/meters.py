"""Electricity meters: one three-phase meter at every lighting cabinet, read every 15 minutes
and pushed to the platform as ENEA UrbanDataset documents (specification CounterReading-2.0,
one line per meter) through the SCPS gateway — as a distribution operator's meter-data system
would.

The energy is what the lamps really drew: before each reading the meters read back from the
platform the dimming the lighting app set on every lamp (``illuminanceLevel``), then count
``rated power x level`` for each working lamp over the part of the period its cabinet was
switched on, plus the cabinet's own electronics; a meter's accuracy (class 1) adds a little
noise. A failed lamp draws nothing. The register (``TotalActiveEnergy``) starts from a
different reading at every meter and only grows.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Final

from sinergia.sim.clock import Chance
from sinergia.sim.verticals.base import (
    CityReader,
    DoorKind,
    Reading,
    StaticVertical,
    date_time,
)
from sinergia.sim.verticals.lighting import Cabinet, Lighting
from sinergia.sim.vocabulary import METER, STREETLIGHT

PERIOD: Final = timedelta(minutes=15)
SPEC_ID: Final = "CounterReading-2.0"
TOWN_CODE: Final = "015146"  # ISTAT code of the Comune di Milano
CABINET_STANDBY_W: Final = 18.0  # controller, modem, photocell
POWER_FACTOR: Final = 0.95       # LED drivers at full load
NOMINAL_VOLTAGE: Final = 230.0
UNITS: Final = {"totalActivePower": "KWT", "totalReactivePower": "KVR",
                "totalActiveEnergyImport": "KWH", "phaseVoltage": "VLT", "current": "AMP"}
LEVEL: Final = "illuminanceLevel"


def pod_code(chance: Chance, cabinet: Cabinet) -> str:
    """An Italian point-of-delivery code (``IT`` + distributor ``001`` + ``E`` + 8 digits)."""
    digits = int(chance.uniform("pod", cabinet.id) * 1e8)
    return f"IT001E{digits:08d}"


class Meters(StaticVertical):
    name = "meters"
    door = DoorKind.URBANDATASET
    period = PERIOD

    def __init__(self, chance: Chance, lighting: Lighting) -> None:
        self.chance = chance
        self.lighting = lighting
        self.levels: dict[str, float] = {}
        self.registers = {c.id: round(chance.between(20_000.0, 250_000.0, "register", c.id), 1)
                          for c in lighting.layout.cabinets}
        self._lamps_of: dict[str, list[tuple[str, float]]] = {}
        for lamp in lighting.layout.lamps:
            self._lamps_of.setdefault(lamp.cabinet_id, []).append((lamp.id, lamp.kind.rated_w))
        self.pods = {c.id: pod_code(chance, c) for c in lighting.layout.cabinets}
        self._since: datetime | None = None  # the end of the last readings

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return []  # the gateway creates the meters' entities from the documents

    async def prepare(self, city: CityReader, at: datetime) -> None:
        """Read the lamps' dimming levels as the lighting app left them."""
        lamps = await city.query(STREETLIGHT, [LEVEL])
        self.set_levels(lamps)

    def set_levels(self, lamps: list[dict[str, Any]]) -> None:
        for lamp in lamps:
            level = _value(lamp.get(LEVEL))
            if isinstance(level, int | float) and not isinstance(level, bool):
                self.levels[str(lamp.get("id"))] = min(1.0, max(0.0, float(level)))

    def lit_load_w(self, cabinet: Cabinet, at: datetime) -> float:
        """Watts the cabinet's working lamps draw while switched on."""
        return sum(rated * self.levels.get(lamp_id, 1.0)
                   for lamp_id, rated in self._lamps_of.get(cabinet.id, [])
                   if self.lighting.status_of(lamp_id, at) == "ok")

    def reading(self, cabinet: Cabinet, start: datetime, at: datetime) -> Reading:
        """The meter's reading for ``[start, at)``."""
        hours = (at - start).total_seconds() / 3600.0
        lit = self.lighting.twilight.lit_seconds(cabinet.id, start, at) / 3600.0
        energy_wh = self.lit_load_w(cabinet, start + (at - start) / 2) * lit \
            + CABINET_STANDBY_W * hours
        energy_wh *= 1.0 + 0.005 * self.chance.signed("meter", cabinet.id, at)
        energy = energy_wh / 1000.0
        self.registers[cabinet.id] = round(self.registers[cabinet.id] + energy, 3)
        power = energy / hours
        voltages = {f"L{n}": round(NOMINAL_VOLTAGE + 3.0 * self.chance.smooth(
            at, timedelta(hours=1), "voltage", cabinet.id, n), 1) for n in (1, 2, 3)}
        currents = {phase: round(power * 1000.0 / 3.0 / (volts * POWER_FACTOR), 2)
                    for phase, volts in voltages.items()}
        return Reading(METER, self.pods[cabinet.id], at, {
            "podId": self.pods[cabinet.id],
            "electricPanelId": cabinet.code,
            "townCode": TOWN_CODE,
            "totalActivePower": round(power, 3),
            "totalReactivePower": round(power * math.tan(math.acos(POWER_FACTOR)), 3),
            "totalActiveEnergyImport": self.registers[cabinet.id],
            "phaseVoltage": voltages,
            "current": currents,
            "dateObservedFrom": date_time(start),
            "dateObservedTo": date_time(at),
        }, UNITS, cabinet.position)

    def readings(self, at: datetime) -> list[Reading]:
        """Every meter's reading since the previous readings (one period at first: at high
        speeds the simulator may skip boundaries, the registers still count everything)."""
        start = self._since if self._since is not None and self._since < at \
            else at - self.period
        self._since = at
        return [self.reading(cabinet, start, at) for cabinet in self.lighting.layout.cabinets]


def _value(attribute: Any) -> Any:
    if isinstance(attribute, dict):
        return attribute.get("value")
    return attribute
