"""Repairs for real producers' defects that have exactly one sensible reading.

- property names in lines that differ from the definitions only in case, spacing or
  punctuation (``total_active_energy`` for ``TotalActiveEnergy``);
- 1.0 names that 2.0 renamed (``ActiveEnergy`` → ``TotalActiveEnergy``,
  ``VoltagePhase1`` → ``Phase1Voltage``), applied only when the 2.0 name is defined and the old
  one is not;
- placeholder producers (``id1`` from ENEA's templates), reported because their entities could
  collide with another placeholder producer's.

Anything with more than one reading is left alone and reported by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["NameResolver", "is_placeholder_producer", "name_key"]

_PHASE_QUANTITIES: Final = ("Voltage", "ActivePower", "ApparentPower", "ReactivePower",
                            "PowerFactor", "Current")


def _renamed_in_2_0() -> dict[str, str]:
    renames = {
        "ActiveEnergy": "TotalActiveEnergy",
        "ReactiveEnergy": "TotalReactiveEnergy",
        "ActivePower": "TotalActivePower",
        "ApparentPower": "TotalApparentPower",
        "ReactivePower": "TotalReactivePower",
        "PM25": "PM2",
        "PM2.5": "PM2",
        "Temperature": "AirTemperature",
        "Humidity": "RelativeHumidity",
        "Pressure": "AtmosphericPressure",
        "POD": "PODID",
        "PodID": "PODID",
    }
    for n in (1, 2, 3):
        for quantity in _PHASE_QUANTITIES:
            renames[f"{quantity}Phase{n}"] = f"Phase{n}{quantity}"
            renames[f"{quantity}L{n}"] = f"Phase{n}{quantity}"
        renames[f"CurrentLine{n}"] = f"Line{n}Current"
        renames[f"CurrentPhase{n}"] = f"Line{n}Current"
    return renames


# Old or informal name → the 2.0 name, compared through name_key().
_SEPARATORS: Final = re.compile(r"[\s_\-.]+")


def name_key(name: str) -> str:
    """What two spellings of one property name have in common."""
    return _SEPARATORS.sub("", name).lower()


_RENAMES: Final[dict[str, str]] = {name_key(old): new for old, new in _renamed_in_2_0().items()}

_PLACEHOLDER_PRODUCERS: Final = frozenset({
    "", "id", "id1", "producer", "produceruid", "producerid", "string", "test", "xxx", "none",
    "null", "n/a", "na", "-", "todo", "example", "esempio",
})


def is_placeholder_producer(producer_id: str) -> bool:
    return name_key(producer_id) in _PLACEHOLDER_PRODUCERS


class NameResolver:
    """Maps a property name as written to a defined name, remembering each answer: every line
    of a document repeats the same names, so each is worked out once."""

    __slots__ = ("_aliases", "_by_key", "_defined", "_memo")

    def __init__(self, defined: Iterable[str], aliases: dict[str, str] | None = None) -> None:
        self._defined = frozenset(defined)
        # Names already reported once (a definition renamed to 2.0): mapped without a note.
        self._aliases = dict(aliases or {})
        by_key: dict[str, list[str]] = {}
        for name in self._defined:
            by_key.setdefault(name_key(name), []).append(name)
        self._by_key = by_key
        self._memo: dict[str, tuple[str | None, str | None]] = {}

    def resolve(self, name: str) -> tuple[str | None, str | None]:
        """(defined name or None, repair note or None). None as name: not a defined property
        (or ambiguous: two definitions match equally well)."""
        found = self._memo.get(name)
        if found is None:
            found = self._memo[name] = self._resolve(name)
        return found

    def _resolve(self, name: str) -> tuple[str | None, str | None]:
        if name in self._defined:
            return name, None
        if name in self._aliases:
            return self._aliases[name], None
        key = name_key(name)
        candidates = self._by_key.get(key, [])
        if len(candidates) == 1:
            return candidates[0], f"property {name!r} read as the defined {candidates[0]!r}"
        if len(candidates) > 1:
            return None, None
        renamed = _RENAMES.get(key)
        if renamed is not None and renamed in self._defined:
            return renamed, f"property {name!r} read as {renamed!r}, its 2.0 name"
        return None, None
