"""The EN 13201 M lighting classes and the traffic bands that select them.

Sources and assumptions (also shown to citizens by the algorithm register):

* **Luminance of each class** — EN 13201-2:2015 "Road lighting — Part 2: Performance
  requirements", Table 1 (M classes for motorised traffic): the minimum *maintained average
  road-surface luminance* L̄ is 2.00, 1.50, 1.00, 0.75, 0.50 and 0.30 cd/m² for M1 … M6. The
  other criteria of the table (uniformity, threshold increment) depend on the installation's
  geometry, which dimming does not change, so only L̄ is used here.
* **Traffic bands** — CEN/TR 13201-1:2014 selects the M class from weighted parameters, one of
  which is the traffic volume: a busier road gets a brighter class. The Italian UNI 11248:2016
  lets an installation run below its *design* class ("categoria di progetto") at an *operating*
  class ("categoria di esercizio") when the measured traffic is lower ("TAI", traffic-adaptive
  installation). Neither fixes absolute vehicle counts, so the bands below are our documented
  assumption for Milan urban roads: each band is roughly half the traffic of the one above,
  one class per band, the busiest band starting at about the flow of one saturated urban lane.
* **Dimming level** — an installation is designed so that 100 % output gives its design class;
  luminance scales with the light output of the lamps, so a class needs
  ``L̄(class) / L̄(design class)`` of full output. Modern LED drivers draw power nearly in
  proportion to their output above ~20 %, which is why :mod:`energy` counts power as
  ``rated power * level``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final


class MClass(IntEnum):
    """An EN 13201 M class. A *smaller* number is a *brighter* class (M1 is the brightest)."""

    M1 = 1
    M2 = 2
    M3 = 3
    M4 = 4
    M5 = 5
    M6 = 6

    @property
    def luminance(self) -> float:
        """Minimum maintained average luminance L̄ in cd/m² (EN 13201-2:2015, Table 1)."""
        return LUMINANCE[self]

    @classmethod
    def parse(cls, text: str) -> MClass:
        """``"M3"`` (any case, surrounding blanks ignored) → ``MClass.M3``; ValueError else."""
        name = text.strip().upper()
        if name not in cls.__members__:
            raise ValueError(f"not an EN 13201 M class: {text!r} (M1 … M6)")
        return cls[name]


LUMINANCE: Final[dict[MClass, float]] = {
    MClass.M1: 2.00,
    MClass.M2: 1.50,
    MClass.M3: 1.00,
    MClass.M4: 0.75,
    MClass.M5: 0.50,
    MClass.M6: 0.30,
}


@dataclass(frozen=True, slots=True)
class TrafficBand:
    """Traffic of at least ``min_vph`` vehicles per hour (up to the next band) needs ``needs``."""

    min_vph: float
    needs: MClass


# Busiest first. Vehicles per hour on the road, both directions, as counted by the sensors
# that concern a group of lamps (see the module docstring for where the numbers come from).
TRAFFIC_BANDS: Final[tuple[TrafficBand, ...]] = (
    TrafficBand(1500.0, MClass.M1),
    TrafficBand(1000.0, MClass.M2),
    TrafficBand(600.0, MClass.M3),
    TrafficBand(300.0, MClass.M4),
    TrafficBand(120.0, MClass.M5),
    TrafficBand(0.0, MClass.M6),
)


def class_for_traffic(vehicles_per_hour: float) -> MClass:
    """The class a road with this much traffic needs, before the design-class cap."""
    for band in TRAFFIC_BANDS:
        if vehicles_per_hour >= band.min_vph:
            return band.needs
    return MClass.M6  # negative counts are refused by the policy; be safe anyway


def brightest(*classes: MClass) -> MClass:
    return min(classes)


def required_class(vehicles_per_hour: float, design: MClass) -> MClass:
    """The class the traffic requires on a road designed for ``design``: the traffic's class,
    but never brighter than the installation can give at full output."""
    return max(class_for_traffic(vehicles_per_hour), design)


def level_for_class(lighting_class: MClass, design: MClass) -> float:
    """Share of full output (0-1) that gives ``lighting_class`` on an installation designed for
    ``design``; 1.0 for the design class or anything brighter."""
    return min(1.0, lighting_class.luminance / design.luminance)


def class_provided(level: float, design: MClass) -> MClass | None:
    """The brightest class an output ``level`` still satisfies, or None below M6."""
    luminance = level * design.luminance
    for lighting_class in MClass:
        # a hair of tolerance: 0.5/0.75 * 0.75 must still count as 0.5 cd/m²
        if luminance + 1e-9 >= lighting_class.luminance:
            return max(lighting_class, design)
    return None


def band_table() -> list[dict[str, object]]:
    """The bands as rows (for the register and the docs): traffic range, class, luminance."""
    rows: list[dict[str, object]] = []
    upper: float | None = None
    for band in TRAFFIC_BANDS:
        rows.append({"class": band.needs.name, "minVehiclesPerHour": band.min_vph,
                     "maxVehiclesPerHour": upper, "luminance": band.needs.luminance})
        upper = band.min_vph
    return rows
