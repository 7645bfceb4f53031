"""A mapping compiled against a table's columns: one row → one NGSI-LD entity (normalized form).

Everything that can be decided once — column positions, parsers, templates, the coordinate
transformation — is decided in :class:`RowConverter`'s constructor, so converting a row is a
short loop of closures. A cell that does not fit raises :class:`CellError` naming its column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
import shapely
import shapely.geometry

from sinergia.adapters.tabular.mapping import (
    AttributeSpec,
    MappingError,
    TableMapping,
    template_columns,
)
from sinergia.adapters.tabular.reader import FEATURE_GEOMETRY, Row, TableSource
from sinergia.adapters.tabular.values import (
    DateParser,
    NumberParser,
    Parser,
    build_parser,
    geometry_from_geojson,
    geometry_from_wkt,
)

Getter = Callable[[Any], Any]
Step = Callable[[Any, dict[str, Any], str | None], None]
# Characters left as they are when a cell value is put into an id; the rest is %-encoded.
_ID_SAFE = "-._~:@!$&*+,;="
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-._~:@!$&*+,;=]")


class CellError(ValueError):
    """One cell (or the row's shape) does not fit the mapping."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"column {self.column!r}: {self.message}" if self.column else self.message


def _value_member(kind: str) -> str:
    return {"Relationship": "object", "LanguageProperty": "languageMap",
            "VocabProperty": "vocab", "JsonProperty": "json",
            "ListProperty": "valueList"}.get(kind, "value")


class RowConverter:
    def __init__(self, mapping: TableMapping, source: TableSource) -> None:
        self.mapping = mapping
        self.source = source
        self.entity_type = mapping.type
        self._check_columns()
        self.numbers = NumberParser(mapping.decimal, mapping.thousands_separator)
        self.dates = DateParser(mapping.dates)
        self._missing = frozenset(code.strip() for code in mapping.missing)
        self._min_length = self._needed_length()
        self._id = self._template(mapping.id_template, encode=True, what="the id")
        self._scope = (self._template(mapping.scope, encode=False, what="the scope")
                       if mapping.scope else None)
        self._observed = (self._cell(mapping.observed_at, self.dates.instant, self._missing)
                          if mapping.observed_at else None)
        self._steps: list[Step] = [self._attribute_step(name, spec)
                                   for name, spec in mapping.attributes.items()]
        geometry_step = self._geometry_step()
        if geometry_step is not None:
            self._steps.append(geometry_step)

    # -- compile ---------------------------------------------------------------------------

    def _check_columns(self) -> None:
        known = set(self.source.columns)
        unknown = sorted(self.mapping.columns() - known)
        if unknown:
            shown = ", ".join(repr(c) for c in self.source.columns[:30])
            raise MappingError(f"the mapping names columns the file does not have: "
                               f"{', '.join(map(repr, unknown))}; the file's columns are "
                               f"{shown}")

    def _needed_length(self) -> int:
        if self.source.kind != "csv":
            return 0
        indexes = [self.source.column_index(c) for c in self.mapping.columns()]
        return max(indexes, default=-1) + 1

    def _cell(self, column: str, parse: Parser, missing: frozenset[str]
              ) -> Callable[[Any], Any]:
        """Read and parse one column; None when the cell holds a missing-value code."""
        get = self.source.getter(column)
        missing_numbers = frozenset(_as_number(code) for code in missing) - {None}

        def read(row: Any) -> Any:
            raw = get(row)
            if raw is None:
                return None
            if isinstance(raw, str):
                if raw in missing or raw.strip() in missing:
                    return None
            elif (isinstance(raw, int | float) and not isinstance(raw, bool)
                  and raw in missing_numbers):
                return None
            try:
                return parse(raw)
            except ValueError as exc:
                raise CellError(column, str(exc)) from None

        return read

    def _template(self, template: str, *, encode: bool, what: str) -> Callable[[Any], str]:
        parts: list[str | Getter] = []
        position = 0
        for column in template_columns(template):
            marker = "{" + column + "}"
            start = template.index(marker, position)
            parts.append(template[position:start].replace("{{", "{").replace("}}", "}"))
            parts.append(self._cell(column, _template_text, self._missing))
            position = start + len(marker)
        parts.append(template[position:].replace("{{", "{").replace("}}", "}"))
        columns = template_columns(template)

        def render(row: Any) -> str:
            out: list[str] = []
            column_index = 0
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                text = part(row)
                if text is None or text == "":
                    raise CellError(columns[column_index], f"is empty, and {what} needs it")
                if encode and _NEEDS_QUOTING.search(text) is not None:
                    text = quote(text, safe=_ID_SAFE)
                out.append(text)
                column_index += 1
            return "".join(out)

        return render

    def _attribute_step(self, name: str, spec: AttributeSpec) -> Step:
        kind = spec.kind
        member = _value_member(kind)
        missing = self._missing | frozenset(code.strip() for code in spec.missing)
        if spec.value is not None:
            constant = spec.value
            read: Callable[[Any], Any] = lambda row: constant  # noqa: E731
        elif spec.template is not None:
            read = self._template(spec.template, encode=kind == "Relationship",
                                  what=f"attribute {name!r}")
        else:
            assert spec.column is not None
            read = self._cell(spec.column, self._parser_for(spec), missing)
        if kind == "LanguageProperty":
            language, inner = spec.language, read
            read = lambda row: None if (v := inner(row)) is None else {language: v}  # noqa: E731
        observed = (self._cell(spec.observed_at, self.dates.instant, self._missing)
                    if isinstance(spec.observed_at, str) else None)
        unit = spec.unit_code
        # Constants are not observations; `observedAt: false` opts a column out.
        use_default_time = spec.value is None and spec.observed_at is not False

        def step(row: Any, entity: dict[str, Any], default_time: str | None) -> None:
            value = read(row)
            if value is None:
                return
            instance: dict[str, Any] = {"type": kind, member: value}
            if unit is not None:
                instance["unitCode"] = unit
            when = observed(row) if observed is not None else None
            if when is None and use_default_time:
                when = default_time
            if when is not None:
                instance["observedAt"] = when
            entity[name] = instance

        return step

    def _parser_for(self, spec: AttributeSpec) -> Parser:
        parser = spec.parser
        if parser == "auto" and spec.kind == "GeoProperty":
            parser = "geojson"
        if parser == "auto" and spec.kind == "Relationship":
            parser = "string"
        return build_parser(parser, self.numbers, self.dates, separator=spec.separator)

    def _geometry_step(self) -> Step | None:
        spec = self.mapping.geometry
        crs = spec.crs if spec is not None and spec.crs else self.source.crs
        reproject = _reprojector(crs)
        attribute = spec.attribute if spec is not None else "location"
        read: Callable[[Any], dict[str, Any] | None]
        if spec is not None and spec.lat is not None and spec.lon is not None:
            lat = self._cell(spec.lat, self.numbers.number, self._missing)
            lon = self._cell(spec.lon, self.numbers.number, self._missing)
            read = lambda row: _point(lon(row), lat(row))  # noqa: E731
        elif spec is not None and spec.wkt is not None:
            read = self._cell(spec.wkt, geometry_from_wkt, self._missing)
        elif spec is not None and spec.geojson is not None:
            read = self._cell(spec.geojson, geometry_from_geojson, self._missing)
        elif self.source.kind == "geojson":
            read = self._cell(FEATURE_GEOMETRY, geometry_from_geojson, frozenset())
        else:
            return None

        def step(row: Any, entity: dict[str, Any], default_time: str | None) -> None:
            geometry = read(row)
            if geometry is not None:
                if reproject is not None:
                    geometry = reproject(geometry)
                entity[attribute] = {"type": "GeoProperty", "value": geometry}

        return step

    # -- run -------------------------------------------------------------------------------

    def convert(self, row: Row) -> dict[str, Any]:
        """The entity of one row, or CellError."""
        if len(row) < self._min_length:
            raise CellError(None, f"has {len(row)} fields; the mapping reads up to field "
                                  f"{self._min_length} (is the delimiter right?)")
        entity: dict[str, Any] = {"id": self._id(row), "type": self.entity_type}
        if self._scope is not None:
            entity["scope"] = self._scope(row)
        default_time = self._observed(row) if self._observed is not None else None
        for step in self._steps:
            step(row, entity, default_time)
        return entity


def _template_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # GeoJSON ids like 12.0 read as "12"
    return value.strip() if isinstance(value, str) else str(value)


def _as_number(code: str) -> float | None:
    try:
        number = float(code)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _point(lon: Any, lat: Any) -> dict[str, Any] | None:
    if lon is None and lat is None:
        return None
    if lon is None or lat is None:
        raise CellError(None, "has only one of the two coordinates")
    return {"type": "Point", "coordinates": [lon, lat]}


def _reprojector(crs: str | None) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """A function taking geometries from ``crs`` to WGS84 lon/lat; None when nothing to do."""
    if not crs:
        return None
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        source = CRS.from_user_input(crs)
    except CRSError:
        raise MappingError(f"unknown coordinate reference system {crs!r}") from None
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    transformer = Transformer.from_crs(source, "EPSG:4326", always_xy=True)

    def reproject(geometry: dict[str, Any]) -> dict[str, Any]:
        try:
            shape = shapely.geometry.shape(geometry)
        except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
            raise CellError(None, "the geometry is not valid GeoJSON") from None
        moved = shapely.transform(shape, transformer.transform, interleaved=False)
        result: dict[str, Any] = orjson.loads(shapely.to_geojson(moved))
        return result

    return reproject
