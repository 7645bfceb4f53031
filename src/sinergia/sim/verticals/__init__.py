"""The demo city's simulated verticals, one module each, on Milan's real geography."""

from __future__ import annotations

from sinergia.sim.clock import Chance
from sinergia.sim.verticals.air import AirQuality
from sinergia.sim.verticals.base import DoorKind, Reading, Vertical
from sinergia.sim.verticals.bikes import Bikes
from sinergia.sim.verticals.lighting import Lighting
from sinergia.sim.verticals.meters import Meters
from sinergia.sim.verticals.parking import Parking
from sinergia.sim.verticals.traffic import Traffic
from sinergia.sim.verticals.waste import Waste
from sinergia.sim.verticals.weather import RainGauges, Weather

__all__ = ["DoorKind", "Reading", "Vertical", "city_verticals"]


def city_verticals(seed: int | str) -> list[Vertical]:
    """Every vertical of the demo city, sharing one seed."""
    chance = Chance(seed)
    lighting = Lighting(chance)
    return [lighting, Traffic(chance), Bikes(chance), Parking(chance), AirQuality(chance),
            Weather(chance), RainGauges(chance), Waste(chance), Meters(chance, lighting)]
