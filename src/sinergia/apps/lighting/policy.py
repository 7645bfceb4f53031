"""The decision rule, as one pure function: how bright a group of lamps should be now.

Inputs: the traffic that concerns the group (vehicles/hour, or None when no sensor has
reported recently), the group's design class, the class it runs at now (for hysteresis), an
optional manual override, and the limits. Output: a :class:`Decision`.

The rule, in order:

1. **A person decides first.** A manual override level wins over everything the traffic says;
   it is only held within ``[safe_minimum, 1]``: this app never takes a road below its safety
   floor, whoever asks (switching lamps off is the cabinet's job, not the dimming app's).
2. **No data, full light.** Without a recent traffic count the group runs at its design class.
3. **Brighten at once.** When the traffic requires a brighter class than the current one, the
   group switches immediately: a group is never below the class its traffic requires.
4. **Dim with hysteresis.** The group dims only when the traffic would still allow the dimmer
   class if it were ``hysteresis`` (e.g. 15 %) higher, so traffic hovering at a band boundary
   does not make the lamps flicker between two levels.
5. **Never below the floor.** The output is at least ``safe_minimum`` of full power, even if the
   class alone would allow less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from sinergia.apps.lighting.classes import (
    MClass,
    class_for_traffic,
    class_provided,
    level_for_class,
    required_class,
)


class Reason(StrEnum):
    TRAFFIC = "traffic"          # the traffic rule chose the class
    OVERRIDE = "override"        # a person set the level
    NO_TRAFFIC_DATA = "noTrafficData"  # no recent count: design class, full output


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    safe_minimum: float = 0.3  # share of full output the lamps never go below
    hysteresis: float = 0.15   # dim only if the traffic is this share below the band boundary

    def __post_init__(self) -> None:
        if not 0.0 <= self.safe_minimum <= 1.0:
            raise ValueError("safe_minimum is a share of full output, between 0 and 1")
        if not 0.0 <= self.hysteresis <= 1.0:
            raise ValueError("hysteresis is a share of the traffic, between 0 and 1")


@dataclass(frozen=True, slots=True)
class Decision:
    level: float                   # share of full output, in [safe_minimum, 1]
    chosen_class: MClass | None    # the class the rule chose (None under an override)
    provided_class: MClass | None  # the brightest class the level gives (None below M6)
    required_class: MClass         # what the traffic requires (the design class without data)
    reason: Reason


def clamp_level(level: float, limits: PolicyLimits) -> float:
    return min(1.0, max(limits.safe_minimum, level))


def decide(traffic_vph: float | None, design: MClass, *, current: MClass | None = None,
           override: float | None = None, limits: PolicyLimits | None = None) -> Decision:
    """The level a group should run at. ``current`` is the class it runs at now (the
    ``chosen_class`` of its previous decision), None after a start or an override."""
    limits = limits or PolicyLimits()
    if traffic_vph is not None and (math.isnan(traffic_vph) or traffic_vph < 0):
        traffic_vph = None  # a broken count is no count
    required = design if traffic_vph is None else required_class(traffic_vph, design)
    if override is not None and not math.isnan(override):
        level = clamp_level(override, limits)
        return Decision(level, None, class_provided(level, design), required, Reason.OVERRIDE)
    if traffic_vph is None:
        return Decision(1.0, design, design, design, Reason.NO_TRAFFIC_DATA)
    chosen = required
    if current is not None and current < required:
        # Running brighter than required: keep it unless the traffic is clearly lower.
        relaxed = max(class_for_traffic(traffic_vph * (1.0 + limits.hysteresis)), design)
        chosen = relaxed if relaxed > current else current
    level = clamp_level(level_for_class(chosen, design), limits)
    return Decision(level, chosen, class_provided(level, design), required, Reason.TRAFFIC)
