"""Reading an UrbanDataset document (1.0 or 2.0; JSON or XML) into its parts.

``load`` turns bytes, text or a dict into the ``UrbanDataset`` object (unwrapping a gateway push
envelope); ``read_header`` reads the specification and context once per document: the property
definitions (data types, units, 1.0 names brought to 2.0), the producer, the time zone, the
coordinates. The lines themselves are converted by ``to_ngsild``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Final
from xml.etree import ElementTree

import orjson

from sinergia.adapters.urbandataset.mapping import spec_base_name, template
from sinergia.adapters.urbandataset.repair import NameResolver, is_placeholder_producer
from sinergia.adapters.urbandataset.report import ImportReport, UrbanDatasetError
from sinergia.adapters.urbandataset.timezone import LocalTimes, parse_time_zone
from sinergia.adapters.urbandataset.units import property_unit_code, resolve_unit
from sinergia.adapters.urbandataset.values import normalize_data_type

__all__ = ["Document", "PropertyDefinition", "load", "read_coordinates", "read_header"]

XML_NAMESPACE: Final = "smartcityplatform:enea:information:xml:schemas:main:urbandataset"
DEFAULT_TIME_ZONE: Final = "UTC+1"  # what every ENEA template and Italian producer uses


@dataclass(frozen=True, slots=True)
class PropertyDefinition:
    name: str  # the 2.0 name
    data_type: str | None  # normalized (values.DATA_TYPES); None for an aggregated property
    unit: str | None  # canonical UrbanDataset unit name; None when unknown
    unit_code: str | None  # UN/CEFACT code; None for dimensionless or unknown units
    sub_properties: tuple[str, ...] = ()


@dataclass(slots=True)
class Document:
    version: str
    spec_id: str
    spec_base: str
    definitions: dict[str, PropertyDefinition]
    names: NameResolver
    producer_id: str
    zone: tzinfo
    times: LocalTimes
    timestamp: str | None  # context.timestamp in UTC, NGSI-LD form
    coordinates: tuple[float, float, float | None] | None
    lines: list[Any]
    declared: list[str] = field(default_factory=list)  # property names the document defines


# ---------------------------------------------------------------------------------------------
# Loading


def load(source: dict[str, Any] | bytes | str, report: ImportReport) -> dict[str, Any]:
    """The ``UrbanDataset`` object of a document given as a dict, JSON or XML."""
    root: Any
    if isinstance(source, dict):
        root = source
    elif isinstance(source, bytes):
        data = source.lstrip(b"\xef\xbb\xbf \t\r\n")  # a UTF-8 byte-order mark, blanks
        root = _parse_xml(data) if data[:1] == b"<" else _parse_json(data)
    elif isinstance(source, str):
        text = source.lstrip("\ufeff \t\r\n")
        root = _parse_xml(text) if text[:1] == "<" else _parse_json(text)
    else:
        raise UrbanDatasetError(f"an UrbanDataset is a dict, JSON or XML, not {type(source)}")
    if not isinstance(root, dict):
        raise UrbanDatasetError("an UrbanDataset document is a JSON object")
    if isinstance(root.get("dataset"), dict) and "UrbanDataset" not in root:
        root = root["dataset"]  # a gateway push body: {"resource_id", "dataset": {...}}
    ud = root.get("UrbanDataset")
    if ud is None and ("values" in root or "specification" in root):
        report.repair(None, "document without its UrbanDataset root object read as one")
        ud = root
    if not isinstance(ud, dict):
        raise UrbanDatasetError("no UrbanDataset object in the document")
    return ud


def _parse_json(text: bytes | str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UrbanDatasetError(f"not valid JSON: {exc}") from None


# Elements that repeat, and those holding numbers, in the XML encoding.
_XML_LISTS: Final = frozenset({"propertyDefinition", "line", "property"})
_XML_NUMBERS: Final = frozenset({"latitude", "longitude", "height"})


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_element(element: ElementTree.Element, parent: str) -> Any:
    tag = _local(element.tag)
    children = list(element)
    attributes = {_local(key): value for key, value in element.attrib.items()
                  if not key.startswith("{http://www.w3.org/2001/XMLSchema-instance}")}
    text = (element.text or "").strip()
    if not children and not attributes:
        if tag in _XML_NUMBERS or (tag == "id" and parent == "line"):
            try:
                number = float(text)
            except ValueError:
                return text
            return int(number) if tag == "id" and number.is_integer() else number
        return element.text or "" if tag == "val" else text
    result: dict[str, Any] = dict(attributes)
    if text and not children:
        result["value"] = text  # <id schemeID="SCPS">CounterReading-2.0</id>
    for child in children:
        name = _local(child.tag)
        value = _xml_element(child, tag)
        if name in _XML_LISTS or (name == "propertyName" and tag == "subProperties"):
            result.setdefault(name, []).append(value)
        else:
            result[name] = value
    if tag == "line" and isinstance(result.get("id"), str):
        with contextlib.suppress(ValueError):
            result["id"] = int(result["id"])
    return result


def _parse_xml(text: bytes | str) -> Any:
    head = text[:4096].upper()
    if (b"<!DOCTYPE" in head or b"<!ENTITY" in head) if isinstance(head, bytes) else (
        "<!DOCTYPE" in head or "<!ENTITY" in head
    ):
        # No UrbanDataset needs a DTD; refusing them rules out entity-expansion attacks.
        raise UrbanDatasetError("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise UrbanDatasetError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "UrbanDataset":
        raise UrbanDatasetError(f"XML root is <{_local(root.tag)}>, not <UrbanDataset>")
    return {"UrbanDataset": _xml_element(root, "")}


# ---------------------------------------------------------------------------------------------
# The header: specification and context


def _spec_id(spec: dict[str, Any], report: ImportReport) -> str:
    raw = spec.get("id")
    if isinstance(raw, dict) and isinstance(raw.get("value"), str) and raw["value"].strip():
        return str(raw["value"]).strip()
    if isinstance(raw, str) and raw.strip():
        report.repair(None, "specification.id written as a string, not {value, schemeID}")
        return raw.strip()
    uri = spec.get("uri")
    if isinstance(uri, str) and "#" in uri and uri.rpartition("#")[2]:
        name = uri.rpartition("#")[2]
        report.repair(None, f"specification.id missing; taken from the uri: {name!r}")
        return name
    title = spec.get("name")
    if isinstance(title, str) and title.strip():
        spec_id = "".join(title.split())
        report.repair(None, f"specification.id missing; taken from the name: {spec_id!r}")
        return spec_id
    raise UrbanDatasetError("the specification has no id, uri or name")


def _version(spec: dict[str, Any], spec_id: str) -> str:
    version = spec.get("version")
    if isinstance(version, str | int | float) and str(version).strip():
        text = str(version).strip()
        return text if "." in text else text + ".0"
    suffix = spec_id[len(spec_base_name(spec_id)):].lstrip("-")
    return suffix or "2.0"


def _definition(raw: dict[str, Any], name: str, report: ImportReport) -> PropertyDefinition:
    subs = raw.get("subProperties")
    if isinstance(subs, dict) and isinstance(subs.get("propertyName"), list):
        return PropertyDefinition(name, None, None, None,
                                  tuple(str(sub) for sub in subs["propertyName"]))
    written_type = raw.get("dataType")
    data_type = normalize_data_type(written_type) if isinstance(written_type, str) else None
    if data_type is None:
        report.warn(None, f"property {name!r}: unknown dataType {written_type!r}, read as text")
        data_type = "string"
    elif data_type != written_type:
        report.repair(None, f"property {name!r}: dataType {written_type!r} read as {data_type!r}")
    written_unit = raw.get("unitOfMeasure")
    unit = resolve_unit(written_unit if isinstance(written_unit, str) else None)
    if unit is None:
        report.warn(None, f"property {name!r}: unit {written_unit!r} unknown, no unitCode")
    elif written_unit is not None and unit != written_unit:
        report.repair(None, f"property {name!r}: unit {written_unit!r} read as {unit!r}")
    return PropertyDefinition(name, data_type, unit, property_unit_code(name, unit))


def _raw_definitions(spec: dict[str, Any]) -> list[dict[str, Any]]:
    properties = spec.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("propertyDefinition"), list):
        return [item for item in properties["propertyDefinition"]
                if isinstance(item, dict) and isinstance(item.get("propertyName"), str)]
    return []


def _definitions(
    spec: dict[str, Any], spec_base: str, report: ImportReport
) -> tuple[dict[str, PropertyDefinition], list[str], dict[str, str]]:
    published = template(spec_base)
    template_raw = _raw_definitions(published["specification"]) if published else []
    template_names = NameResolver(item["propertyName"] for item in template_raw)
    own_raw = _raw_definitions(spec)
    if not own_raw and template_raw:
        report.warn(None, f"no property definitions; read with ENEA's {spec_base} template")
    definitions: dict[str, PropertyDefinition] = {}
    # The template's definitions type the properties the document uses without defining them;
    # read quietly, since a report entry for each would only repeat the template.
    for item in template_raw:
        definitions[item["propertyName"]] = _definition(item, item["propertyName"],
                                                        ImportReport())
    declared: list[str] = []
    renamed: dict[str, str] = {}
    for item in own_raw:
        written = item["propertyName"]
        name, note = template_names.resolve(written) if template_raw else (written, None)
        name = name or written
        if note:
            report.repair(None, note)
            renamed[written] = name
        definitions[name] = _definition(item, name, report)
        declared.append(name)
    return definitions, declared, renamed


def _time_zone(context: dict[str, Any], report: ImportReport) -> tzinfo:
    written = context.get("timeZone")
    if isinstance(written, str):
        try:
            return parse_time_zone(written)
        except ValueError as exc:
            report.repair(None, f"{exc}; assumed {DEFAULT_TIME_ZONE}")
    else:
        report.repair(None, f"context.timeZone missing; assumed {DEFAULT_TIME_ZONE}")
    return parse_time_zone(DEFAULT_TIME_ZONE)


def read_coordinates(raw: Any) -> tuple[float, float, float | None] | None:
    """``{latitude, longitude, height?}`` → (lat, lon, height), None when absent or unreadable.
    Raises ValueError for coordinates outside WGS84 ranges."""
    if not isinstance(raw, dict):
        return None
    try:
        latitude = float(raw["latitude"])
        longitude = float(raw["longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise ValueError(f"coordinates ({latitude}, {longitude}) outside WGS84 ranges")
    height = raw.get("height")
    try:
        return latitude, longitude, float(height) if height is not None else None
    except (TypeError, ValueError):
        return latitude, longitude, None


def _producer(context: dict[str, Any], override: str | None, report: ImportReport) -> str:
    producer = context.get("producer")
    raw = producer.get("id") if isinstance(producer, dict) else None
    written = str(raw).strip() if raw is not None else ""
    if override:
        if written != override:
            report.repair(None, f"producer {written!r} replaced by {override!r} given by caller")
        return override
    if is_placeholder_producer(written):
        report.warn(None, f"producer id {written!r} is a placeholder: its entity ids may "
                          "collide with another placeholder producer's")
    return written or "unknown"


def read_header(ud: dict[str, Any], report: ImportReport,
                producer_id: str | None = None) -> Document:
    spec = ud.get("specification")
    context = ud.get("context")
    values = ud.get("values")
    if not isinstance(spec, dict):
        raise UrbanDatasetError("the UrbanDataset has no specification object")
    if not isinstance(context, dict):
        report.repair(None, "context missing; read as empty")
        context = {}
    lines = values.get("line") if isinstance(values, dict) else None
    if isinstance(lines, dict):
        report.repair(None, "values.line is a single object, read as a list of one line")
        lines = [lines]
    if not isinstance(lines, list):
        raise UrbanDatasetError("the UrbanDataset has no values.line list")
    spec_id = _spec_id(spec, report)
    spec_base = spec_base_name(spec_id)
    definitions, declared, renamed = _definitions(spec, spec_base, report)
    zone = _time_zone(context, report)
    times = LocalTimes(zone)
    timestamp = None
    written_timestamp = context.get("timestamp")
    if isinstance(written_timestamp, str):
        try:
            timestamp, note = times.to_utc(written_timestamp)
            if note:
                report.repair(None, note)
        except ValueError:
            report.repair(None, f"context.timestamp {written_timestamp!r} unreadable, ignored")
    try:
        coordinates = read_coordinates(context.get("coordinates"))
    except ValueError as exc:
        report.repair(None, f"context {exc}; ignored")
        coordinates = None
    if coordinates is not None and coordinates[0] == 0.0 and coordinates[1] == 0.0:
        report.repair(None, "context coordinates (0, 0) are a placeholder; ignored")
        coordinates = None
    return Document(
        version=_version(spec, spec_id),
        spec_id=spec_id,
        spec_base=spec_base,
        definitions=definitions,
        names=NameResolver(definitions, renamed),
        producer_id=_producer(context, producer_id, report),
        zone=zone,
        times=times,
        timestamp=timestamp,
        coordinates=coordinates,
        lines=lines,
        declared=declared,
    )
