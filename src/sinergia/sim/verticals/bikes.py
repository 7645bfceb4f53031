"""Bike sharing: the BikeMi stations of the packaged data, as the operator's system reports
them through NGSI-LD every 5 minutes.

Each station has a character between a *destination* (the centre, offices: it fills up as
commuters arrive in the morning and empties in the evening) and an *origin* (the outer
districts: the opposite), set by its distance from the Duomo and a little chance. On weekends
the swing is smaller and later (leisure trips). A few docks are out of service some days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sinergia.sim.clock import Chance, local, local_hours
from sinergia.sim.verticals.base import DoorKind, Reading, StaticVertical
from sinergia.sim.verticals.places import DUOMO, distance_m, milan
from sinergia.sim.verticals.profiles import clamp, day_kind, plateau
from sinergia.sim.vocabulary import BIKE_STATION

PERIOD: Final = timedelta(minutes=5)
CENTRE_RADIUS_M: Final = 2_500.0  # destination stations within about this of the Duomo


@dataclass(frozen=True, slots=True)
class Dock:
    device_id: str
    slots: int
    character: float  # +1 destination … -1 origin
    bias: float       # this station's usual fullness


def commute(at: datetime) -> float:
    """0-1: how far into the working day the commuters are (weekday shape; weekends a
    smaller, later swing)."""
    hours = local_hours(at)
    kind = day_kind(at)
    if kind == "weekday":
        return plateau(hours, (7.0, 9.5), (16.5, 19.5))
    return 0.45 * plateau(hours, (10.0, 13.0), (17.0, 20.0))


class Bikes(StaticVertical):
    name = "bikes"
    door = DoorKind.NGSI_LD
    period = PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.docks = []
        for record in sorted(milan()["bike_stations"], key=lambda r: int(r["id"])):
            position = tuple(record["geometry"]["coordinates"])
            away = distance_m(DUOMO, (position[0], position[1]))
            character = clamp(1.0 - away / CENTRE_RADIUS_M + 0.3 * chance.signed(
                "bike-character", record["id"]), -1.0, 1.0)
            self.docks.append(Dock(f"MI-{record['id']}", int(record["slots"]), character,
                                   0.5 + 0.12 * chance.signed("bike-bias", record["id"])))

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return []  # the stations are Milan's own (sim.milano)

    def share(self, dock: Dock, at: datetime) -> float:
        """0-1: how full the station is."""
        value = dock.bias + 0.4 * dock.character * commute(at)
        value += 0.08 * self.chance.smooth(at, timedelta(minutes=45), "bikes", dock.device_id)
        return clamp(value)

    def observe(self, dock: Dock, at: datetime) -> dict[str, Any]:
        day = local(at).date()
        broken = int(3 * self.chance.uniform("docks-broken", dock.device_id, day) ** 4)
        usable = max(0, dock.slots - broken)
        available = round(self.share(dock, at) * usable)
        return {"availableBikeNumber": available, "freeSlotNumber": usable - available,
                "outOfServiceSlotNumber": dock.slots - usable}

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(BIKE_STATION, d.device_id, at, self.observe(d, at)) for d in self.docks]
