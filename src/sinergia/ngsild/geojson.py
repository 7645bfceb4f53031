"""GeoJSON geometries (RFC 7946) as NGSI-LD accepts them: validation and normalisation, with
errors that name the offending position. Used for GeoProperty values and geo-query shapes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sinergia.ngsild.errors import BadRequestData

#: A geometry with more positions than this is refused (it would make every request slow).
MAX_POSITIONS = 100_000
#: Geometry types a geo-query may use (a GeometryCollection has no ``coordinates``).
QUERY_GEOMETRY_TYPES = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
)
GEOMETRY_TYPES = (*QUERY_GEOMETRY_TYPES, "GeometryCollection")

# RFC 7946 discourages nested collections; a small cap keeps recursion bounded.
MAX_COLLECTION_NESTING = 4


@dataclass(slots=True)
class _Budget:
    positions: int = 0


def validate_geometry(geometry: object, *, where: str = "geometry") -> dict[str, Any]:
    """Check ``geometry`` is an RFC 7946 geometry and return a normalised copy: only ``type``
    and ``coordinates`` (or ``geometries``), every coordinate a float. Foreign members such as
    ``bbox`` are dropped. Raises :class:`BadRequestData` naming the offending position."""
    return _validate(geometry, where, _Budget(), 0)


def _validate(geometry: object, where: str, budget: _Budget, depth: int) -> dict[str, Any]:
    if not isinstance(geometry, dict):
        raise BadRequestData(
            f"{where}: a GeoJSON geometry must be a JSON object, got {describe(geometry)}")
    gtype = geometry.get("type")
    if gtype is None:
        raise BadRequestData(f"{where}: the geometry has no 'type' member")
    if gtype == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData(f"{where}.geometries: a GeometryCollection needs a "
                                 f"'geometries' array, got {describe(members)}")
        if not members:
            raise BadRequestData(f"{where}.geometries: empty GeometryCollection; empty "
                                 "geometries are not accepted")
        if depth >= MAX_COLLECTION_NESTING:
            raise BadRequestData(f"{where}: GeometryCollections nested more than "
                                 f"{MAX_COLLECTION_NESTING} deep")
        return {"type": gtype, "geometries": [
            _validate(member, f"{where}.geometries[{i}]", budget, depth + 1)
            for i, member in enumerate(members)]}
    reader = _READERS.get(gtype) if isinstance(gtype, str) else None
    if reader is None:
        raise BadRequestData(f"{where}.type: unknown geometry type {show(gtype)}; expected "
                             f"one of {', '.join(GEOMETRY_TYPES)}")
    if "coordinates" not in geometry:
        raise BadRequestData(f"{where}: a {gtype} needs a 'coordinates' member")
    return {"type": gtype, "coordinates": reader(geometry["coordinates"],
                                                 f"{where}.coordinates", budget)}


def describe(value: object) -> str:
    """A short phrase for what a JSON value is, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, (list, tuple)):
        return "an empty array" if not value else f"an array of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: object, limit: int = 40) -> str:
    """``repr`` of a value, cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _array(value: object, path: str, what: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise BadRequestData(f"{path}: expected {what} (a JSON array), got {describe(value)}")
    if not value:
        raise BadRequestData(f"{path}: {what} is empty; empty geometries are not accepted")
    return value


def _number(value: object, path: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequestData(f"{path}: the {name} must be a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise BadRequestData(f"{path}: the {name} must be a finite number, got {show(value)}")
    return number


def _position(value: object, path: str, budget: _Budget) -> list[float]:
    if type(value) is list and 2 <= len(value) <= 3 and budget.positions < MAX_POSITIONS:
        # The common case, checked without building the messages of the errors it cannot
        # raise: finite float coordinates, longitude and latitude in range.
        lon, lat = value[0], value[1]
        if (type(lon) is float and type(lat) is float and -180.0 <= lon <= 180.0
                and -90.0 <= lat <= 90.0
                and (len(value) == 2 or (type(value[2]) is float and math.isfinite(value[2])))):
            budget.positions += 1
            return list(value)
    return _checked_position(value, path, budget)


def _checked_position(value: object, path: str, budget: _Budget) -> list[float]:
    """:func:`_position` the long way: every check, each with its own message."""
    if not isinstance(value, (list, tuple)):
        raise BadRequestData(f"{path}: expected a position [longitude, latitude] or "
                             f"[longitude, latitude, altitude], got {describe(value)}")
    if value and isinstance(value[0], (list, tuple)):
        raise BadRequestData(f"{path}: expected a position [longitude, latitude], got an array "
                             "of arrays (nested too deep for this geometry type)")
    if not 2 <= len(value) <= 3:
        raise BadRequestData(f"{path}: a position has 2 or 3 numbers "
                             f"[longitude, latitude(, altitude)], got {len(value)}")
    budget.positions += 1
    if budget.positions > MAX_POSITIONS:
        raise BadRequestData(f"{path}: the geometry has more than {MAX_POSITIONS} positions")
    out = [_number(v, f"{path}[{i}]", name)
           for i, (v, name) in enumerate(zip(value, ("longitude", "latitude", "altitude"),
                                             strict=False))]
    lon, lat = out[0], out[1]
    if not -180.0 <= lon <= 180.0:
        raise BadRequestData(f"{path}: longitude {lon:g} is outside [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        hint = ("; positions are [longitude, latitude], are they swapped?"
                if -90.0 <= lon <= 90.0 else "")
        raise BadRequestData(f"{path}: latitude {lat:g} is outside [-90, 90]{hint}")
    return out


def _positions(value: object, path: str, budget: _Budget, what: str) -> list[list[float]]:
    return [_position(p, f"{path}[{i}]", budget)
            for i, p in enumerate(_array(value, path, what))]


def _read_point(value: object, path: str, budget: _Budget) -> list[float]:
    if isinstance(value, (list, tuple)) and not value:
        raise BadRequestData(f"{path}: empty Point; empty geometries are not accepted")
    return _position(value, path, budget)


def _read_multipoint(value: object, path: str, budget: _Budget) -> list[list[float]]:
    return _positions(value, path, budget, "a MultiPoint's array of positions")


def _read_linestring(value: object, path: str, budget: _Budget) -> list[list[float]]:
    line = _array(value, path, "a LineString's array of positions")
    if len(line) < 2:
        raise BadRequestData(f"{path}: a LineString needs at least 2 positions, "
                             f"got {len(line)}")
    return _positions(line, path, budget, "a LineString's array of positions")


def _read_multilinestring(value: object, path: str, budget: _Budget) -> list[list[list[float]]]:
    return [_read_linestring(line, f"{path}[{i}]", budget)
            for i, line in enumerate(_array(value, path, "a MultiLineString's array of lines"))]


def _read_polygon(value: object, path: str, budget: _Budget) -> list[list[list[float]]]:
    rings = _array(value, path, "a Polygon's array of rings")
    out = []
    for i, ring in enumerate(rings):
        label = "exterior ring" if i == 0 else f"hole {i}"
        ring_path = f"{path}[{i}]"
        positions = _array(ring, ring_path, f"the {label}")
        if len(positions) < 4:
            raise BadRequestData(f"{ring_path}: the {label} needs at least 4 positions (the "
                                 f"first repeated at the end), got {len(positions)}")
        parsed = _positions(positions, ring_path, budget, f"the {label}")
        if parsed[0] != parsed[-1]:
            raise BadRequestData(
                f"{ring_path}: the {label} is not closed: its first position "
                f"{show(parsed[0])} differs from its last {show(parsed[-1])}")
        out.append(parsed)
    return out


def _read_multipolygon(value: object, path: str,
                       budget: _Budget) -> list[list[list[list[float]]]]:
    return [_read_polygon(polygon, f"{path}[{i}]", budget)
            for i, polygon in enumerate(_array(value, path,
                                               "a MultiPolygon's array of polygons"))]


_READERS: dict[str, Callable[[object, str, _Budget], Any]] = {
    "Point": _read_point,
    "MultiPoint": _read_multipoint,
    "LineString": _read_linestring,
    "MultiLineString": _read_multilinestring,
    "Polygon": _read_polygon,
    "MultiPolygon": _read_multipolygon,
}
