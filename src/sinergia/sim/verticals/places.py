"""Where simulated things stand: the packaged Milan geography, read once, and a few measuring
helpers in metres.

Distances use a local equirectangular projection centred on the Duomo: within the 15 km of the
Comune it is exact to a few parts in ten thousand, which is plenty for spacing street lights
and placing bins (the lighting app measures its sensor distances with pyproj).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import shapely
from shapely.geometry import LineString, Polygon, shape
from shapely.geometry.base import BaseGeometry

from sinergia.sim.milano import load_data

DUOMO: Final = (9.1916, 45.4641)  # longitude, latitude
_EARTH_RADIUS: Final = 6_371_008.8
_M_PER_DEG_LAT: Final = math.pi * _EARTH_RADIUS / 180.0
_M_PER_DEG_LON: Final = _M_PER_DEG_LAT * math.cos(math.radians(DUOMO[1]))


def to_metres(longitude: float, latitude: float) -> tuple[float, float]:
    return ((longitude - DUOMO[0]) * _M_PER_DEG_LON, (latitude - DUOMO[1]) * _M_PER_DEG_LAT)


def to_degrees(x: float, y: float) -> tuple[float, float]:
    return (round(DUOMO[0] + x / _M_PER_DEG_LON, 6), round(DUOMO[1] + y / _M_PER_DEG_LAT, 6))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres between two (longitude, latitude) points."""
    ax, ay = to_metres(*a)
    bx, by = to_metres(*b)
    return math.hypot(ax - bx, ay - by)


def metric(geometry: dict[str, Any]) -> BaseGeometry:
    """A GeoJSON geometry in local metres."""
    return shapely.transform(shape(geometry), _array_to_metres)


def _array_to_metres(coords: Any) -> Any:
    out = coords.copy()
    out[:, 0] = (coords[:, 0] - DUOMO[0]) * _M_PER_DEG_LON
    out[:, 1] = (coords[:, 1] - DUOMO[1]) * _M_PER_DEG_LAT
    return out


def points_along(line: LineString, spacing: float, limit: int | None = None,
                 offset: float | None = None) -> Iterator[tuple[float, float]]:
    """(longitude, latitude) points every ``spacing`` metres along a line in metres, the first
    ``offset`` (default: half a spacing) from its start."""
    position = spacing / 2.0 if offset is None else offset
    count = 0
    while position <= line.length and (limit is None or count < limit):
        found = line.interpolate(position)
        yield to_degrees(found.x, found.y)
        position += spacing
        count += 1


def longest_line(geometry: BaseGeometry) -> LineString | None:
    if isinstance(geometry, LineString):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, LineString)]
    return max(parts, key=lambda g: g.length) if parts else None


def largest_polygon(geometry: BaseGeometry) -> Polygon | None:
    if isinstance(geometry, Polygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]
    return max(parts, key=lambda g: g.area) if parts else None


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    id: int
    name: str
    municipio: int
    shape: BaseGeometry  # in metres

    @property
    def entity_id(self) -> str:
        return f"urn:ngsi-ld:Neighbourhood:MI-{self.id}"

    @property
    def centre(self) -> tuple[float, float]:
        """A point inside the neighbourhood (longitude, latitude)."""
        inside = self.shape.representative_point()
        return to_degrees(inside.x, inside.y)


@cache
def milan() -> dict[str, Any]:
    """The packaged Milan data, read once (callers must not change it)."""
    return load_data()


@cache
def neighbourhoods() -> tuple[Neighbourhood, ...]:
    return tuple(Neighbourhood(int(n["id"]), str(n["name"]).title(), int(n["municipio"]),
                               metric(n["geometry"]))
                 for n in sorted(milan()["neighbourhoods"], key=lambda n: int(n["id"])))


def neighbourhood_ref(nil: int | None) -> dict[str, Any] | None:
    if nil is None:
        return None
    return {"type": "Relationship", "object": f"urn:ngsi-ld:Neighbourhood:MI-{nil}"}


def scope_of(municipio: int | None) -> str | None:
    return None if municipio is None else f"/Milano/Municipio{municipio}"
