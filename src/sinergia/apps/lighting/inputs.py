"""Reading what the broker says into the controller's terms: the installation (groups and lamps)
and traffic counts. Lenient by design: an entity the app cannot use is skipped with a log line,
never a reason to stop lighting the others.

Entities arrive normalized (``{"type": "Property", "value": …}``) from queries and
notifications; concise or key-value attributes are understood too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sinergia.apps.lighting.classes import MClass
from sinergia.apps.lighting.controller import Group, Installation, Lamp
from sinergia.apps.lighting.vocabulary import (
    DESIGN_CLASS,
    INTENSITY,
    OBSERVED_FROM,
    OBSERVED_TO,
    OVERRIDE,
    RATED_POWER,
    REF_CABINET,
    REF_GROUP,
)

log = logging.getLogger(__name__)

DEFAULT_DESIGN = MClass.M3  # a group that does not say: a typical urban district road


def _attribute(entity: Mapping[str, Any], name: str) -> Any:
    raw = entity.get(name)
    if isinstance(raw, list):  # several instances (datasetIds): the first is the default one
        raw = raw[0] if raw else None
    return raw


def value(entity: Mapping[str, Any], name: str) -> Any:
    """The value of a Property (or the object of a Relationship) in any representation."""
    raw = _attribute(entity, name)
    if isinstance(raw, dict):
        if "value" in raw:
            inner = raw["value"]
        elif "object" in raw:
            inner = raw["object"]
        else:
            inner = raw
        if isinstance(inner, dict) and "@value" in inner:
            return inner["@value"]
        return inner
    return raw


def observed_at(entity: Mapping[str, Any], name: str) -> str | None:
    raw = _attribute(entity, name)
    if isinstance(raw, dict) and isinstance(raw.get("observedAt"), str):
        return str(raw["observedAt"])
    return None


def parse_time(text: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text (UTC assumed without an offset), else None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def _level(raw: Any) -> float | None:
    """A manual level: a number in [0, 1] (anything else means no override)."""
    number = _number(raw)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def _geometry(entity: Mapping[str, Any]) -> Mapping[str, Any] | None:
    geometry = value(entity, "location")
    if isinstance(geometry, dict) and "type" in geometry and "coordinates" in geometry:
        return geometry
    return None


def _target(entity: Mapping[str, Any], name: str) -> str | None:
    target = value(entity, name)
    if isinstance(target, list):
        target = target[0] if target else None
    return target if isinstance(target, str) else None


def parse_installation(groups: Iterable[Mapping[str, Any]],
                       lamps: Iterable[Mapping[str, Any]]) -> Installation:
    """Groups and the lamps that belong to one. A lamp without a rated power or whose group
    does not exist is not managed (logged): the app cannot account or decide for it."""
    parsed_groups: dict[str, Group] = {}
    for entity in groups:
        group_id = entity.get("id")
        if not isinstance(group_id, str):
            continue
        design = DEFAULT_DESIGN
        declared = value(entity, DESIGN_CLASS)
        if isinstance(declared, str):
            try:
                design = MClass.parse(declared)
            except ValueError:
                log.warning("lighting: %s has %s %r; using %s", group_id, DESIGN_CLASS,
                            declared, design.name)
        name = value(entity, "name")
        parsed_groups[group_id] = Group(
            id=group_id, design=design, geometry=_geometry(entity),
            cabinet_id=_target(entity, REF_CABINET), override=_level(value(entity, OVERRIDE)),
            name=name if isinstance(name, str) else None)
    parsed_lamps: dict[str, Lamp] = {}
    for entity in lamps:
        lamp_id = entity.get("id")
        group_id = _target(entity, REF_GROUP)
        rated = _number(value(entity, RATED_POWER))
        if not isinstance(lamp_id, str):
            continue
        if group_id not in parsed_groups or rated is None or rated < 0:
            log.debug("lighting: %s is not managed (group %s, %s %s)", lamp_id, group_id,
                      RATED_POWER, rated)
            continue
        parsed_lamps[lamp_id] = Lamp(lamp_id, group_id, rated, _geometry(entity),
                                     _level(value(entity, OVERRIDE)))
    return Installation(parsed_groups, parsed_lamps)


@dataclass(frozen=True, slots=True)
class TrafficCount:
    sensor_id: str
    location: Mapping[str, Any] | None
    vehicles_per_hour: float
    at: datetime


def parse_traffic(entity: Mapping[str, Any]) -> TrafficCount | None:
    """A TrafficFlowObserved as vehicles per hour at the end of its observation period.

    ``intensity`` counts the vehicles of the period ``dateObservedFrom``-``dateObservedTo``
    (Smart Data Models); without a period the count is read as vehicles per hour. The moment
    is ``dateObservedTo``, else the count's ``observedAt``, else the end of ``dateObserved``
    ("start/end"). Without any moment the count cannot be placed in time and is skipped.
    """
    sensor_id = entity.get("id")
    count = _number(value(entity, INTENSITY))
    if not isinstance(sensor_id, str) or count is None or count < 0:
        return None
    start = parse_time(value(entity, OBSERVED_FROM))
    end = parse_time(value(entity, OBSERVED_TO))
    interval = value(entity, "dateObserved")
    if isinstance(interval, str) and "/" in interval:
        first, _, last = interval.partition("/")
        start = start or parse_time(first)
        end = end or parse_time(last)
    end = end or parse_time(observed_at(entity, INTENSITY))
    if end is None:
        return None
    rate = count
    if start is not None and end > start:
        rate = count * 3600.0 / (end - start).total_seconds()
    return TrafficCount(sensor_id, _geometry(entity), rate, end)
