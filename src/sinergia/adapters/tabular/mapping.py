"""The mapping file of ``sinergia import table``: how the rows of a CSV or GeoJSON file become
NGSI-LD entities of one type.

A mapping is YAML (or JSON), validated here with pydantic so that a typo is a clear error
naming its place (``attributes.NO2.kind: …``) before a single row is read::

    type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:MI-{stazione}-{data}"
    context: {NO2: "https://smartdatamodels.org/dataModel.Environment/NO2"}
    delimiter: ";"              # sniffed when absent
    decimal: ","                # "1.234,5" → 1234.5
    missing: ["", "-999", "n.d."]
    dates: {formats: ["%d/%m/%Y %H:%M"], timezone: Europe/Rome}
    observedAt: data            # column giving every attribute's observedAt
    geometry: {lat: lat, lon: lon}
    attributes:
      NO2: {column: no2, parser: number, unitCode: GQ}
      refDevice: {kind: Relationship, template: "urn:ngsi-ld:Device:MI-{stazione}"}

Templates (``id``, ``scope``, ``template``) name columns in braces; ``{{`` and ``}}`` are
literal braces. Values put in an ``id`` are percent-encoded where a URI cannot hold them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

AttributeKind = Literal["Property", "Relationship", "GeoProperty", "LanguageProperty",
                        "VocabProperty", "JsonProperty", "ListProperty"]
ParserName = Literal["auto", "string", "number", "integer", "boolean", "datetime", "date",
                     "json", "list", "wkt", "geojson"]

# Italian spreadsheets first, after ISO 8601 (always tried first).
DEFAULT_DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
                        "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}|[{}]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class MappingError(ValueError):
    """The mapping file is invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def template_columns(template: str) -> list[str]:
    """The column names a template refers to, in order. Raises ValueError on a lone brace."""
    columns: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        if token in ("{", "}"):
            raise ValueError(f"unbalanced brace in template {template!r} "
                             "(write {{ or }} for a literal brace)")
        if match.group(1) is not None:
            columns.append(match.group(1))
    return columns


class DateSpec(_Strict):
    formats: tuple[str, ...] = DEFAULT_DATE_FORMATS  # strptime formats, after ISO 8601
    timezone: str = "UTC"  # zone of date-times written without an offset, e.g. Europe/Rome

    @field_validator("formats")
    @classmethod
    def _formats_have_directives(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        for fmt in formats:
            if "%" not in fmt:
                raise ValueError(f"{fmt!r} is not a strptime format (no % directive)")
        return formats

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (use an IANA name such as "
                             "Europe/Rome, or UTC)") from None
        return zone


class GeometrySpec(_Strict):
    """Where each row's location comes from: a lat/lon column pair, a WKT column or a column
    holding a GeoJSON geometry. For GeoJSON files the feature's own geometry is used when the
    mapping has no geometry section."""

    attribute: str = "location"
    lat: str | None = None
    lon: str | None = None
    wkt: str | None = None
    geojson: str | None = None
    crs: str | None = None  # source coordinate system, e.g. EPSG:3003; default WGS84 lon/lat

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        pair = (self.lat is not None, self.lon is not None)
        if pair[0] != pair[1]:
            raise ValueError("give both 'lat' and 'lon', or neither")
        sources = sum((pair[0], self.wkt is not None, self.geojson is not None))
        if sources > 1:
            raise ValueError("give only one of lat/lon, wkt or geojson")
        return self


class AttributeSpec(_Strict):
    """One attribute of every entity: from a column, a template over columns, or a constant."""

    column: str | None = None
    template: str | None = None
    value: Any = None
    kind: AttributeKind = "Property"
    parser: ParserName = "auto"
    unit_code: str | None = Field(default=None, alias="unitCode")
    # A column giving this attribute's observedAt; false: none, not even the mapping's.
    observed_at: str | Literal[False] | None = Field(default=None, alias="observedAt")
    missing: tuple[str, ...] = ()  # more missing-value codes, this column only
    language: str | None = None    # language tag of a LanguageProperty
    separator: str = "|"           # item separator of the 'list' parser

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [n for n, v in (("column", self.column), ("template", self.template),
                                ("value", self.value)) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'column', 'template' or 'value'"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.template is not None:
            template_columns(self.template)
        if self.kind == "LanguageProperty" and not self.language:
            raise ValueError("a LanguageProperty needs 'language' (e.g. it)")
        return self


class TableMapping(_Strict):
    type: str  # entity type of every row
    id: str    # id template; without a URI scheme, urn:ngsi-ld:<type>: is put in front
    context: str | list[Any] | dict[str, Any] | None = None
    scope: str | None = None
    delimiter: str | None = None  # CSV field delimiter; sniffed when absent
    encoding: str | None = None   # CSV encoding; default UTF-8 (BOM or not), else Windows-1252
    decimal: Literal[".", ","] = "."
    # Thousands separator; default "." when decimal is ",", none otherwise.
    thousands: Literal[".", ",", " ", "'"] | None = None
    missing: tuple[str, ...] = ("",)
    dates: DateSpec = DateSpec()
    observed_at: str | None = Field(default=None, alias="observedAt")
    geometry: GeometrySpec | None = None
    attributes: dict[str, AttributeSpec] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type_is_a_name(cls, value: str) -> str:
        if not value or re.search(r"[\s<>\"'=;(){}]", value):
            raise ValueError(f"{value!r} is not a valid entity type name")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, delimiter: str | None) -> str | None:
        if delimiter is not None:
            delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
            if len(delimiter) != 1:
                raise ValueError(f"a delimiter is one character, not {delimiter!r}")
        return delimiter

    @model_validator(mode="after")
    def _check(self) -> Self:
        template_columns(self.id)
        if self.scope is not None:
            template_columns(self.scope)
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError("'thousands' and 'decimal' must differ")
        if self.geometry is not None and self.geometry.attribute in self.attributes:
            raise ValueError(f"attribute {self.geometry.attribute!r} is both an attribute "
                             "and the geometry")
        return self

    @property
    def id_template(self) -> str:
        """The id template, with ``urn:ngsi-ld:<type>:`` in front when it has no scheme."""
        return self.id if _SCHEME.match(self.id) else f"urn:ngsi-ld:{self.type}:{self.id}"

    @property
    def thousands_separator(self) -> str | None:
        if self.thousands is not None:
            return self.thousands
        return "." if self.decimal == "," else None

    def columns(self) -> set[str]:
        """Every column the mapping reads."""
        names = set(template_columns(self.id))
        if self.scope:
            names.update(template_columns(self.scope))
        if self.observed_at:
            names.add(self.observed_at)
        for spec in self.attributes.values():
            if spec.column:
                names.add(spec.column)
            if spec.template:
                names.update(template_columns(spec.template))
            if isinstance(spec.observed_at, str):
                names.add(spec.observed_at)
        if self.geometry is not None:
            names.update(c for c in (self.geometry.lat, self.geometry.lon, self.geometry.wkt,
                                     self.geometry.geojson) if c)
        return names


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_mapping(document: Any, *, source: str = "mapping") -> TableMapping:
    """Validate a mapping already read from YAML/JSON."""
    if not isinstance(document, dict):
        raise MappingError(f"{source}: a mapping is an object with at least 'type' and 'id'")
    try:
        return TableMapping.model_validate(document)
    except ValidationError as exc:
        problems = [f"  {_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise MappingError(f"{source} is invalid:\n" + "\n".join(problems)) from None


def load_mapping(path: Path) -> TableMapping:
    """Read and validate a YAML (or JSON) mapping file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read the mapping {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path} is not valid YAML: {exc}") from None
    return parse_mapping(document, source=str(path))
