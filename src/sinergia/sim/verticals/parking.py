"""Car parks: occupancy of the public car parks of the packaged data, as the operators'
systems report it through NGSI-LD every 5 minutes.

Interchange and public car parks fill with commuters on weekday mornings and empty in the
evening, and see shoppers on Saturday afternoons; car parks shared with residents are fullest
at night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sinergia.sim.clock import Chance, local_hours
from sinergia.sim.verticals.base import DoorKind, Reading, StaticVertical
from sinergia.sim.verticals.places import milan
from sinergia.sim.verticals.profiles import bell, clamp, day_kind, plateau
from sinergia.sim.vocabulary import CAR_PARK

PERIOD: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CarPark:
    device_id: str
    spots: int
    residents: bool  # shared with residents: full at night


def occupancy_profile(car_park: CarPark, at: datetime) -> float:
    hours = local_hours(at)
    kind = day_kind(at)
    if car_park.residents:
        away = plateau(hours, (7.0, 9.0), (18.0, 21.0)) * (1.0 if kind == "weekday" else 0.5)
        return 0.86 - 0.3 * away
    if kind == "weekday":
        return 0.12 + 0.78 * plateau(hours, (6.5, 9.0), (17.0, 20.0))
    shoppers = bell(hours, 16.0, 2.5) * (0.55 if kind == "saturday" else 0.3)
    return 0.1 + shoppers


class Parking(StaticVertical):
    name = "parking"
    door = DoorKind.NGSI_LD
    period = PERIOD

    def __init__(self, chance: Chance) -> None:
        self.chance = chance
        self.car_parks = [
            CarPark(f"MI-{r['id']}", int(r["spots"]), "RESIDENTI" in (r["kind"] or ""))
            for r in sorted(milan()["car_parks"], key=lambda r: int(r["id"])) if r["spots"]]

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        return []  # the car parks are Milan's own (sim.milano)

    def observe(self, car_park: CarPark, at: datetime) -> dict[str, Any]:
        share = occupancy_profile(car_park, at)
        share += 0.05 * self.chance.smooth(at, timedelta(hours=1), "parking",
                                           car_park.device_id)
        occupied = round(clamp(share) * car_park.spots)
        free = car_park.spots - occupied
        status = "full" if free == 0 else "almostFull" if free < 0.05 * car_park.spots \
            else "spacesAvailable"
        return {"occupiedSpotNumber": occupied, "availableSpotNumber": free,
                "occupancy": round(occupied / car_park.spots, 3), "status": [status]}

    def readings(self, at: datetime) -> list[Reading]:
        return [Reading(CAR_PARK, p.device_id, at, self.observe(p, at)) for p in self.car_parks]
