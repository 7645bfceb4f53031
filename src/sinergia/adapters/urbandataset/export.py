"""NGSI-LD → UrbanDataset 2.0: an entity type's history over a period as one document.

The inverse of ``to_ngsild``: each (entity, observedAt) in the period becomes one line; its
attributes go back to the specification's property names (structured per-phase values to
``Phase1Voltage``…), values are written as text by the property's dataType, times in the
document's time zone. For ENEA's specifications the published template supplies the property
definitions and only its properties are written; for any other specification the definitions
are derived from the values. The result validates against ``scps-urbandataset-schema-2.0.json``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sinergia.adapters.urbandataset.mapping import (
    DATE_OBSERVED,
    DESCRIPTION,
    LOCATION,
    PERIOD_FROM,
    PERIOD_TO,
    RESERVED_PREFIX,
    SCPS_ONTOLOGY,
    STRUCTURAL_NAMES,
    mapping_for,
    spec_base_name,
    template,
)
from sinergia.adapters.urbandataset.report import UrbanDatasetError
from sinergia.adapters.urbandataset.timezone import (
    format_time_zone,
    parse_time_zone,
    parse_utc,
    to_local_text,
)
from sinergia.adapters.urbandataset.units import (
    DIMENSIONLESS,
    property_unit_code,
    resolve_unit,
    unit_for_code,
)
from sinergia.adapters.urbandataset.values import format_value, normalize_data_type

__all__ = ["EmptyExport", "export_document"]

_NOT_ATTRIBUTES: Final = frozenset({"id", "type", "scope", "createdAt", "modifiedAt",
                                    "@context"})
_LINE_MEMBERS: Final = frozenset({LOCATION, PERIOD_FROM, PERIOD_TO, DATE_OBSERVED, DESCRIPTION})
_STATIC: Final = ""  # the "observedAt" of instances without one: they hold at every time

# (from unitCode, to unitCode) → factor, for values whose unit differs from the specification's.
_CONVERSIONS: Final[dict[tuple[str, str], float]] = {
    ("WTT", "KWT"): 1e-3, ("KWT", "WTT"): 1e3, ("MAW", "KWT"): 1e3, ("KWT", "MAW"): 1e-3,
    ("WHR", "KWH"): 1e-3, ("KWH", "WHR"): 1e3, ("MWH", "KWH"): 1e3, ("KWH", "MWH"): 1e-3,
    ("D46", "KVA"): 1e-3, ("KVA", "D46"): 1e3, ("D44", "KVR"): 1e-3, ("KVR", "D44"): 1e3,
    ("PAL", "A97"): 1e-2, ("A97", "PAL"): 1e2, ("MBR", "A97"): 1.0, ("A97", "MBR"): 1.0,
    ("KMH", "MTS"): 1 / 3.6, ("MTS", "KMH"): 3.6, ("C62", "P1"): 1e2, ("P1", "C62"): 1e-2,
}
_WORDS: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class EmptyExport(UrbanDatasetError):
    """No instance of the entities falls in the period: an UrbanDataset needs at least a line."""


@dataclass(slots=True)
class _Line:
    entity_id: str
    observed: str
    values: list[tuple[str, Any, str | None]] = field(default_factory=list)  # name, value, unit
    names: set[str] = field(default_factory=set)  # the names in values (first value wins)
    members: dict[str, Any] = field(default_factory=dict)  # the line's period/description/…
    coordinates: dict[str, Any] | None = None

    def add(self, named: list[tuple[str, Any, str | None]]) -> None:
        for item in named:
            if item[0] not in self.names:
                self.names.add(item[0])
                self.values.append(item)


def _instances(attribute: Any) -> list[dict[str, Any]]:
    if isinstance(attribute, dict):
        return [attribute]
    if isinstance(attribute, list):
        return [item for item in attribute if isinstance(item, dict)]
    return []


def _value(instance: dict[str, Any]) -> Any:
    if "value" in instance:
        return instance["value"]
    return instance.get("object", instance.get("vocab", instance.get("json")))


def _datetime_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("@value")
    return value if isinstance(value, str) else None


class _Window:
    """Which observedAt texts fall in [start, end); remembers each distinct text."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self._memo: dict[str, bool] = {}

    def __contains__(self, observed: str) -> bool:
        found = self._memo.get(observed)
        if found is None:
            try:
                found = self.start <= parse_utc(observed) < self.end
            except ValueError:
                found = False
            self._memo[observed] = found
        return found


def _location_at(history: list[tuple[str, Any]], observed: str) -> Any:
    """The location in effect at ``observed``: the latest one before it, else the first."""
    chosen = history[0][1] if history else None
    for when, value in history:
        if when <= observed or when == _STATIC:
            chosen = value
        else:
            break
    return chosen


def _coordinates(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("type") != "Point":
        return None
    position = value.get("coordinates")
    if not isinstance(position, list) or len(position) < 2:
        return None
    try:
        result: dict[str, Any] = {"format": "WGS84-DD", "latitude": float(position[1]),
                                  "longitude": float(position[0])}
        if len(position) > 2:
            result["height"] = float(position[2])
    except (TypeError, ValueError):
        return None
    return result


def _lines(entities: Iterable[dict[str, Any]], window: _Window,
           reverse: dict[tuple[str, str | None], str], strict: bool) -> list[_Line]:
    """One _Line per (entity, observedAt in the window) with at least one property value."""
    lines: list[_Line] = []
    for entity in entities:
        entity_id = str(entity.get("id", ""))
        by_time: dict[str, _Line] = {}
        static: list[tuple[str, Any, str | None]] = []
        locations: list[tuple[str, Any]] = []
        for attribute, raw in entity.items():
            if attribute in _NOT_ATTRIBUTES:
                continue
            for instance in _instances(raw):
                observed = instance.get("observedAt")
                observed = observed if isinstance(observed, str) else _STATIC
                value = _value(instance)
                if attribute == LOCATION:
                    locations.append((observed, value))
                    continue
                if observed != _STATIC and observed not in window:
                    continue
                if attribute in _LINE_MEMBERS:
                    if observed != _STATIC:
                        line = by_time.setdefault(observed, _Line(entity_id, observed))
                        line.members.setdefault(attribute, value)
                    continue
                named = _named_values(attribute, value, instance.get("unitCode"), reverse,
                                      strict)
                if observed == _STATIC:
                    static.extend(named)
                elif named:
                    line = by_time.setdefault(observed, _Line(entity_id, observed))
                    line.add(named)
        locations.sort(key=lambda item: item[0])
        for observed, line in by_time.items():
            if not line.values:
                continue
            line.add(static)
            line.coordinates = _coordinates(_location_at(locations, observed))
            lines.append(line)
    lines.sort(key=lambda line: (line.observed, line.entity_id))
    return lines


def _named_values(attribute: str, value: Any, unit: Any,
                  reverse: dict[tuple[str, str | None], str],
                  strict: bool) -> list[tuple[str, Any, str | None]]:
    """An attribute's value → (UrbanDataset property name, value, unitCode) items: one, or one
    per member of a structured per-phase value."""
    code = unit if isinstance(unit, str) else None
    if isinstance(value, dict) and "@value" not in value and "@type" not in value:
        members = [(reverse.get((attribute, key)), member) for key, member in value.items()]
        found = [(name, member, code) for name, member in members if name is not None]
        if found:
            return found
    name = reverse.get((attribute, None))
    if name is None:
        if strict:
            return []
        name = attribute[len(RESERVED_PREFIX):] if attribute.startswith(RESERVED_PREFIX) \
            else attribute
    return [(name, value, code)]


def _inferred_type(values: list[Any]) -> str:
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("double")
        elif isinstance(value, dict) and value.get("@type") in ("DateTime", "Time", "Date"):
            kinds.add({"DateTime": "dateTime", "Time": "Time", "Date": "date"}[value["@type"]])
        else:
            kinds.add("string")
    if kinds <= {"integer", "double"} and "double" in kinds:
        return "double"
    return kinds.pop() if len(kinds) == 1 else "string"


def _derived_definitions(lines: list[_Line]) -> dict[str, dict[str, Any]]:
    """Property definitions for a specification without a template, from the values."""
    values: dict[str, list[Any]] = {}
    units: dict[str, str | None] = {}
    children: dict[str, list[str]] = {}
    for line in lines:
        for name, value, unit in line.values:
            if isinstance(value, dict) and "@type" not in value:
                children.setdefault(name, [])
                for child, member in value.items():
                    if child not in children[name]:
                        children[name].append(child)
                    values.setdefault(child, []).append(member)
                    units.setdefault(child, unit)
                continue
            values.setdefault(name, []).append(value)
            units.setdefault(name, unit)
    definitions: dict[str, dict[str, Any]] = {}
    for name, subs in children.items():
        definitions[name] = {"propertyName": name, "subProperties": {"propertyName": subs}}
    for name, found in values.items():
        code = units.get(name)
        unit = (unit_for_code(code) if code else None) or DIMENSIONLESS
        definitions.setdefault(name, {"propertyName": name, "dataType": _inferred_type(found),
                                      "unitOfMeasure": unit})
    return definitions


def _structure_definitions(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    if any("period" in line for line in lines):
        result.append({"propertyName": "period",
                       "subProperties": {"propertyName": ["start_ts", "end_ts"]}})
        result.extend({"propertyName": name, "dataType": "dateTime",
                       "unitOfMeasure": DIMENSIONLESS} for name in ("start_ts", "end_ts"))
    if any("coordinates" in line for line in lines):
        parts = ["format", "latitude", "longitude", "height"]
        result.append({"propertyName": "coordinates", "subProperties": {"propertyName": parts}})
        result.append({"propertyName": "format", "dataType": "string",
                       "unitOfMeasure": DIMENSIONLESS})
        result.extend({"propertyName": name, "dataType": "double",
                       "unitOfMeasure": DIMENSIONLESS} for name in parts[1:])
    return result


class _Writer:
    """Formats values by their definitions, converting units where the entity's differ."""

    def __init__(self, definitions: dict[str, dict[str, Any]], zone: Any) -> None:
        self.definitions = definitions
        self.zone = zone
        self.types: dict[str, str] = {}
        self.codes: dict[str, str | None] = {}
        for name, definition in definitions.items():
            written = definition.get("dataType")
            if isinstance(written, str):
                self.types[name] = normalize_data_type(written) or "string"
                unit = definition.get("unitOfMeasure")
                self.codes[name] = property_unit_code(
                    name, resolve_unit(unit if isinstance(unit, str) else None))

    def text(self, name: str, value: Any, unit: str | None) -> str | None:
        data_type = self.types.get(name)
        if data_type is None:
            return None
        wanted = self.codes.get(name)
        if unit is not None and wanted is not None and unit != wanted:
            factor = _CONVERSIONS.get((unit, wanted))
            if factor is None or isinstance(value, bool) or not isinstance(value, int | float):
                return None  # a value in another unit we cannot convert: better left out
            value = value * factor
        try:
            return format_value(value, data_type, self.zone)
        except (TypeError, ValueError):
            return None

    def properties(self, line: _Line) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for name, value, unit in line.values:
            definition = self.definitions.get(name)
            if definition is None:
                continue
            subs = definition.get("subProperties")
            if isinstance(subs, dict) and isinstance(value, dict):
                nested = [{"name": child, "val": text} for child, member in value.items()
                          if (text := self.text(child, member, unit)) is not None]
                if len(nested) >= 2:  # the schema's minimum for an aggregated property
                    result.append({"name": name, "property": nested})
                continue
            text = self.text(name, value, unit)
            if text is not None:
                result.append({"name": name, "val": text})
        return result

    def line(self, number: int, line: _Line, properties: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {"id": number}
        members = line.members
        description = members.get(DESCRIPTION)
        if isinstance(description, str) and description:
            result["description"] = description
        start = _datetime_text(members.get(PERIOD_FROM)) or line.observed
        end = _datetime_text(members.get(PERIOD_TO))
        stamp = _datetime_text(members.get(DATE_OBSERVED))
        try:
            if end is None:
                stamp = stamp or line.observed
            if stamp is not None:
                result["timestamp"] = to_local_text(parse_utc(stamp), self.zone)
            if line.coordinates is not None:
                result["coordinates"] = line.coordinates
            if end is not None:
                result["period"] = {"start_ts": to_local_text(parse_utc(start), self.zone),
                                    "end_ts": to_local_text(parse_utc(end), self.zone)}
        except ValueError:
            result.pop("period", None)
            result["timestamp"] = to_local_text(parse_utc(line.observed), self.zone)
        result["property"] = properties
        return result


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime (with a UTC offset)")
    return moment.astimezone(UTC)


def _spec_name(base: str) -> str:
    return _WORDS.sub(" ", base)


def export_document(
    entities: list[dict[str, Any]],
    *,
    spec_id: str,
    producer_id: str,
    period: tuple[datetime, datetime],
    time_zone: str = "UTC+1",
    producer_scheme: str | None = None,
    timestamp: datetime | None = None,
    coordinates: tuple[float, float] | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Entities (NGSI-LD temporal, normalized, compacted with the Sinergia UrbanDataset
    @context) → an UrbanDataset 2.0 document of their instances observed in
    ``period = (start, end)`` (start included, end excluded).

    ``time_zone`` must be a fixed offset (``UTC+1``, ``+05:30``); ``timestamp`` (default: now)
    is the document's production time; ``coordinates`` (lat, lon) its place (default: the mean
    of the lines'). Raises EmptyExport when no value falls in the period, ValueError for a
    naive period or a time zone without a fixed offset."""
    zone = parse_time_zone(time_zone)
    zone_text = format_time_zone(zone)  # raises for zones without a fixed offset
    start, end = _aware(period[0], "period start"), _aware(period[1], "period end")
    base = spec_base_name(spec_id)
    published = template(base)
    template_definitions: list[dict[str, Any]] = []
    if published is not None:
        spec = published["specification"]
        template_definitions = copy.deepcopy(
            spec.get("properties", {}).get("propertyDefinition", []))
    strict = bool(template_definitions)
    mapping = mapping_for(base)
    reverse = mapping.reverse()
    lines = _lines(entities, _Window(start, end), reverse, strict)
    if strict:
        by_name = {item["propertyName"]: item for item in template_definitions}
    else:
        by_name = _derived_definitions(lines)
    writer = _Writer(by_name, zone)
    written: list[dict[str, Any]] = []
    for line in lines:
        properties = writer.properties(line)
        if properties:
            written.append(writer.line(len(written) + 1, line, properties))
    if not written:
        raise EmptyExport(f"no {base} values between {start.isoformat()} and {end.isoformat()}")
    if strict:
        definitions = template_definitions
    else:
        definitions = [item for name, item in by_name.items() if name not in STRUCTURAL_NAMES]
        definitions += _structure_definitions(written)
    specification: dict[str, Any] = {
        "version": "2.0",
        "id": {"value": f"{base}-2.0", "schemeID": "SCPS"},
        "name": published["specification"]["name"] if published else _spec_name(base),
        "uri": published["specification"]["uri"] if published else SCPS_ONTOLOGY + base,
    }
    if definitions:
        specification["properties"] = {"propertyDefinition": definitions}
    produced = timestamp if timestamp is not None else datetime.now(UTC).replace(microsecond=0)
    context: dict[str, Any] = {
        "producer": {"id": producer_id, **({"schemeID": producer_scheme}
                                            if producer_scheme else {})},
        "timeZone": zone_text,
        "timestamp": to_local_text(_aware(produced, "timestamp"), zone),
        "coordinates": _context_coordinates(coordinates, written),
    }
    if language:
        context["language"] = language
    return {"UrbanDataset": {"specification": specification, "context": context,
                             "values": {"line": written}}}


def _context_coordinates(given: tuple[float, float] | None,
                         lines: list[dict[str, Any]]) -> dict[str, Any]:
    if given is not None:
        latitude, longitude = given
    else:
        points = [line["coordinates"] for line in lines if "coordinates" in line]
        if points:
            latitude = sum(point["latitude"] for point in points) / len(points)
            longitude = sum(point["longitude"] for point in points) / len(points)
        else:
            latitude = longitude = 0.0
    return {"format": "WGS84-DD", "latitude": latitude, "longitude": longitude}
