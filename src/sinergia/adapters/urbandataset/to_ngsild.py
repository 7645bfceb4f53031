"""UrbanDataset → NGSI-LD: each line becomes one instance in the history of a stable entity.

The entity is named by producer, specification and the line's identifying properties (e.g. the
POD code of an electricity meter), else its coordinates, else its line id. Each property value
becomes an attribute instance observed at the start of the line's period (or its timestamp, or
the document's), with its unit as a UN/CEFACT ``unitCode``; the period's bounds are kept as
``dateObservedFrom``/``dateObservedTo`` and the coordinates as the ``location`` GeoProperty.

Speed: everything that depends only on the document (readers per property name, unit codes,
target attributes, timestamp conversions) is worked out once and remembered; a line costs a
few dict look-ups and one conversion per value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from sinergia.adapters.urbandataset.document import Document, load, read_coordinates, read_header
from sinergia.adapters.urbandataset.mapping import (
    CONTEXT,
    DATE_OBSERVED,
    DESCRIPTION,
    LOCATION,
    PERIOD_FROM,
    PERIOD_TO,
    STRUCTURAL_NAMES,
    SpecMapping,
    mapping_for,
)
from sinergia.adapters.urbandataset.report import ImportReport, ImportResult
from sinergia.adapters.urbandataset.values import Reader, Repaired, read_string, reader_for

__all__ = ["import_document"]

_PROPERTY: Final = "Property"


@dataclass(frozen=True, slots=True)
class _PropertyReader:
    name: str  # the defined (2.0) name
    attribute: str
    component: str | None
    read: Reader
    unit_code: str | None
    note: str | None  # repair to report on each use (a misspelt name), None if none


_Coordinates = tuple[float, float, float | None]


class _Converter:
    def __init__(self, document: Document, mapping: SpecMapping, report: ImportReport) -> None:
        self.document = document
        self.mapping = mapping
        self.report = report
        self.readers: dict[str, _PropertyReader | None] = {}
        self.structural_names: set[str] = set()  # names, as written, of period/coordinates parts
        # entity id → {attribute: [instances]}; entity id → {observedAt: attributes}
        self.attributes: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.seen: dict[str, dict[str, set[str]]] = {}
        self.last_location: dict[str, _Coordinates] = {}
        self.entity_ids: dict[tuple[str, ...], str] = {}
        self.id_prefix = (f"urn:ngsi-ld:{mapping.entity_type}:"
                          f"{quote(document.producer_id, safe='')}:"
                          f"{quote(document.spec_base, safe='')}:")
        identity = mapping.identity
        # Only these properties' texts are kept per line: they name the entity.
        self.identity_names = frozenset(
            name for alternative in identity.alternatives for name in alternative
        ) | frozenset(identity.optional)
        self.keyed_by_line = False
        self.empty = 0
        self.values = 0

    # -- per property name (remembered) ----------------------------------------------------

    def reader(self, name: Any) -> _PropertyReader | None:
        """The reader for a property name as written; None for a missing or non-text name and
        for the parts of a period or coordinates."""
        if type(name) is not str:
            return None
        if name in self.readers:
            return self.readers[name]
        found = self.readers[name] = self._build_reader(name)
        return found

    def _build_reader(self, written: str) -> _PropertyReader | None:
        document = self.document
        defined, note = document.names.resolve(written)
        name = defined or written
        if name in STRUCTURAL_NAMES:
            self.structural_names.add(written)
            return None
        target = self.mapping.target(name)
        definition = document.definitions.get(name) if defined else None
        if definition is None:
            self.report.warn(None, f"property {written!r} is not defined; read as text into "
                                   f"{target.attribute!r}")
            return _PropertyReader(name, target.attribute, target.component, read_string,
                                   None, None)
        read = reader_for(definition.data_type or "string", document.times)
        return _PropertyReader(name, target.attribute, target.component, read,
                               definition.unit_code, note)

    # -- per line ---------------------------------------------------------------------------

    def read_value(self, line_id: Any, reader: _PropertyReader, item: dict[str, Any]) -> Any:
        """The item's value, or None when blank or unreadable (reported)."""
        text = item.get("val")
        if type(text) is not str:
            if "property" in item and isinstance(item["property"], list):
                return self.read_aggregate(line_id, item["property"])
            if text is None:
                self.empty += 1
                return None
            if isinstance(text, bool) or not isinstance(text, int | float):
                self.report.skip(line_id, f"{reader.name}: value {text!r} is not a string")
                return None
            self.report.repair(line_id, f"{reader.name}: value written as a JSON number")
            text = repr(text) if isinstance(text, float) else str(text)
        if not text or text.isspace():
            self.empty += 1
            return None
        try:
            value = reader.read(text)
        except ValueError as exc:
            self.report.skip(line_id, f"{reader.name}: {exc}")
            return None
        if type(value) is Repaired:
            self.report.repair(line_id, f"{reader.name}: {value.note}")
            value = value.value
        self.values += 1
        return value

    def read_aggregate(self, line_id: Any, items: list[Any]) -> dict[str, Any] | None:
        """A nested (aggregated) property → a structured value keyed by sub-property names."""
        result: dict[str, Any] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            child = self.reader(item.get("name"))
            if child is None:
                continue
            value = self.read_value(line_id, child, item)
            if value is not None:
                result[child.name] = value
        return result or None

    def structural(self, line_id: Any, item: dict[str, Any], found: dict[str, Any]) -> None:
        """start_ts/latitude/… written as properties (or nested under period/coordinates)
        instead of as the line's own members: kept for the line's period and coordinates."""
        name = item.get("name")
        nested = item.get("property")
        if isinstance(nested, list):
            for child in nested:
                if isinstance(child, dict):
                    self.structural(line_id, child, found)
        elif isinstance(name, str) and "val" in item:
            found[name] = item["val"]

    def line(self, line: Any) -> bool:
        report = self.report
        if not isinstance(line, dict):
            report.skip(None, "a line that is not an object")
            return False
        line_id = line.get("id")
        items = line.get("property")
        if not isinstance(items, list) or not items:
            report.skip(line_id, "no property list")
            return False
        values: list[tuple[_PropertyReader, Any]] = []
        texts: dict[str, str] = {}  # identifying texts, as written
        structural: dict[str, Any] | None = None
        identity_names = self.identity_names
        for item in items:
            if not isinstance(item, dict):
                report.skip(line_id, "a property that is not an object")
                continue
            name = item.get("name")
            reader = self.reader(name)
            if reader is None:
                if type(name) is str and name in self.structural_names:
                    structural = structural if structural is not None else {}
                    self.structural(line_id, item, structural)
                else:
                    report.skip(line_id, f"a property without a name: {item!r:.80}")
                continue
            if reader.note is not None:
                report.repair(line_id, reader.note)
            value = self.read_value(line_id, reader, item)
            if value is not None:
                values.append((reader, value))
                if reader.name in identity_names:
                    text = item.get("val")
                    texts[reader.name] = text.strip() if type(text) is str else str(value)
        if not values:
            report.skip(line_id, "no readable value")
            return False
        times = self.times(line_id, line, structural)
        if times is None:
            return False
        observed, period_to = times
        coordinates = self.coordinates(line_id, line, structural)
        entity_id = self.entity_id(line_id, texts, coordinates)
        if self.add(entity_id, line, values, observed=observed, period_to=period_to,
                    coordinates=coordinates):
            return True
        report.skip(line_id, "every value repeats an earlier line's for the same entity and time")
        return False

    def times(self, line_id: Any, line: dict[str, Any],
              structural: dict[str, Any] | None) -> tuple[str, str | None] | None:
        """(observedAt, period end or None) in UTC, or None when the line has no usable time."""
        report = self.report
        period = line.get("period")
        if not isinstance(period, dict) and structural and "start_ts" in structural:
            report.repair(line_id, "period written as properties; read as the line's period")
            period = structural
        to_utc = self.document.times.to_utc
        try:
            if isinstance(period, dict) and isinstance(period.get("start_ts"), str):
                observed, note = to_utc(period["start_ts"])
                if note:
                    report.repair(line_id, note)
                end = period.get("end_ts")
                if not isinstance(end, str) or not end.strip():
                    report.repair(line_id, "period without end_ts; read as an instant")
                    return observed, None
                period_to, note = to_utc(end)
                if note:
                    report.repair(line_id, note)
                if period_to < observed:
                    report.skip(line_id, f"period ends ({end}) before it starts "
                                         f"({period['start_ts']})")
                    return None
                return observed, period_to
            timestamp = line.get("timestamp")
            if isinstance(timestamp, str):
                observed, note = to_utc(timestamp)
                if note:
                    report.repair(line_id, note)
                return observed, None
        except ValueError as exc:
            report.skip(line_id, f"unreadable time: {exc}")
            return None
        if self.document.timestamp is not None:
            return self.document.timestamp, None
        report.skip(line_id, "no period, no timestamp, and no context.timestamp")
        return None

    def coordinates(self, line_id: Any, line: dict[str, Any],
                    structural: dict[str, Any] | None) -> _Coordinates | None:
        raw = line.get("coordinates")
        if raw is None and structural and "latitude" in structural:
            self.report.repair(line_id, "coordinates written as properties; read as the line's")
            raw = structural
        try:
            found = read_coordinates(raw)
        except ValueError as exc:
            self.report.repair(line_id, f"{exc}; ignored")
            found = None
        if found is not None and found[0] == 0.0 and found[1] == 0.0:
            self.report.repair(line_id, "coordinates (0, 0) are a placeholder; ignored")
            found = None
        return found if found is not None else self.document.coordinates

    def entity_id(self, line_id: Any, texts: dict[str, str],
                  coordinates: _Coordinates | None) -> str:
        identity = self.mapping.identity
        parts: tuple[str, ...] | None = None
        for alternative in identity.alternatives:
            if all(name in texts for name in alternative):
                parts = tuple(texts[name] for name in alternative)
                break
        if parts is None:
            if coordinates is not None and coordinates is not self.document.coordinates:
                parts = (f"{coordinates[0]!r},{coordinates[1]!r}",)
            else:
                if not self.keyed_by_line:
                    self.keyed_by_line = True
                    self.report.warn(None, "lines without identifying property or coordinates:"
                                           " entities named by line id, stable only while the"
                                           " producer keeps its line order")
                parts = (f"line-{line_id}",)
        if identity.optional:
            parts += tuple(f"{name}={texts[name]}" for name in identity.optional
                           if name in texts)
        found = self.entity_ids.get(parts)
        if found is None:
            found = self.id_prefix + ":".join(quote(part, safe="-._~,=") for part in parts)
            self.entity_ids[parts] = found
        return found

    def add(self, entity_id: str, line: dict[str, Any],
            values: list[tuple[_PropertyReader, Any]], *, observed: str,
            period_to: str | None, coordinates: _Coordinates | None) -> bool:
        line_id = line.get("id")
        attributes = self.attributes.get(entity_id)
        if attributes is None:
            attributes = self.attributes[entity_id] = {}
            self.seen[entity_id] = {}
        seen_at = self.seen[entity_id].get(observed)
        if seen_at is None:
            seen_at = self.seen[entity_id][observed] = set()
        structured: dict[str, tuple[dict[str, Any], str | None]] = {}
        added = 0
        for reader, value in values:
            attribute = reader.attribute
            if reader.component is not None:
                members = structured.get(attribute)
                if members is None:
                    members = structured[attribute] = ({}, reader.unit_code)
                members[0][reader.component] = value
                continue
            if attribute in seen_at:
                self.conflict(line_id, reader.name, attributes[attribute], observed, value)
                continue
            seen_at.add(attribute)
            instance = {"type": _PROPERTY, "value": value, "observedAt": observed}
            if reader.unit_code is not None:
                instance["unitCode"] = reader.unit_code
            attributes.setdefault(attribute, []).append(instance)
            added += 1
        for attribute, (structured_value, code) in structured.items():
            if attribute in seen_at:
                self.conflict(line_id, attribute, attributes[attribute], observed,
                              structured_value)
                continue
            seen_at.add(attribute)
            instance = {"type": _PROPERTY, "value": structured_value, "observedAt": observed}
            if code is not None:
                instance["unitCode"] = code
            attributes.setdefault(attribute, []).append(instance)
            added += 1
        if not added:
            return False
        self.line_attributes(attributes, seen_at, line, observed, period_to)
        if coordinates is not None and self.last_location.get(entity_id) != coordinates:
            self.last_location[entity_id] = coordinates
            latitude, longitude, height = coordinates
            position = [longitude, latitude] if height is None else [longitude, latitude, height]
            attributes.setdefault(LOCATION, []).append({
                "type": "GeoProperty", "value": {"type": "Point", "coordinates": position},
                "observedAt": observed,
            })
        return True

    def conflict(self, line_id: Any, name: str, history: list[dict[str, Any]], observed: str,
                 value: Any) -> None:
        """A value for an attribute the entity already has at this time: the same value again
        (an observation split over lines) is fine; a different one is left out, reported."""
        for instance in reversed(history):
            if instance["observedAt"] == observed:
                if instance["value"] != value:
                    self.report.skip(line_id, f"{name}: a second value for the same entity "
                                              "and time; the first is kept")
                return

    def line_attributes(self, attributes: dict[str, list[dict[str, Any]]], seen_at: set[str],
                        line: dict[str, Any], observed: str, period_to: str | None) -> None:
        """The line's own members as attributes: its period, description and timestamp."""
        extra: list[tuple[str, Any]] = []
        if period_to is not None:
            extra.append((PERIOD_FROM, {"@type": "DateTime", "@value": observed}))
            extra.append((PERIOD_TO, {"@type": "DateTime", "@value": period_to}))
            timestamp = line.get("timestamp")
            if isinstance(timestamp, str):
                try:
                    utc, _ = self.document.times.to_utc(timestamp)
                    extra.append((DATE_OBSERVED, {"@type": "DateTime", "@value": utc}))
                except ValueError:
                    self.report.skip(line.get("id"), f"timestamp {timestamp!r} unreadable")
        description = line.get("description")
        if isinstance(description, str) and description.strip():
            extra.append((DESCRIPTION, description))
        for attribute, value in extra:
            if attribute not in seen_at:
                seen_at.add(attribute)
                attributes.setdefault(attribute, []).append(
                    {"type": _PROPERTY, "value": value, "observedAt": observed})


def _sorted_instances(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(instances, key=lambda instance: instance["observedAt"])


def import_document(doc: dict[str, Any] | bytes | str, *,
                    producer_id: str | None = None) -> ImportResult:
    """Convert an UrbanDataset (1.0 or 2.0; dict, JSON or XML) to NGSI-LD temporal entities.

    ``producer_id`` overrides the document's producer (e.g. the solution named by the gateway's
    resource id, for documents with a placeholder producer). Raises UrbanDatasetError only when
    the input is not an UrbanDataset at all; every repair and skipped line is in the report."""
    report = ImportReport()
    document = read_header(load(doc, report), report, producer_id)
    mapping = mapping_for(document.spec_base, document.declared or list(document.definitions))
    converter = _Converter(document, mapping, report)
    imported = 0
    for line in document.lines:
        if converter.line(line):
            imported += 1
    entities: list[dict[str, Any]] = []
    latest: list[dict[str, Any]] = []
    instances = 0
    for entity_id, attributes in converter.attributes.items():
        if not attributes:
            continue
        temporal: dict[str, Any] = {"id": entity_id, "type": mapping.entity_type}
        current: dict[str, Any] = {"id": entity_id, "type": mapping.entity_type}
        for attribute, history in attributes.items():
            ordered = _sorted_instances(history)
            temporal[attribute] = ordered
            current[attribute] = dict(ordered[-1])
            instances += len(ordered)
        temporal["@context"] = list(CONTEXT)
        current["@context"] = list(CONTEXT)
        entities.append(temporal)
        latest.append(current)
    lines = len(document.lines)
    report.counts.update({
        "lines": lines,
        "imported": imported,
        "skipped": lines - imported,
        "values": converter.values,
        "empty": converter.empty,
        "entities": len(entities),
        "instances": instances,
    })
    return ImportResult(
        entities=entities,
        latest=latest,
        report=report,
        spec_id=document.spec_id,
        version=document.version,
        entity_type=mapping.entity_type,
        producer_id=document.producer_id,
    )
