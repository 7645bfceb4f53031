"""Which traffic concerns which group of lamps: the nearest sensors, in metres.

A group's geometry (its lamps as a MultiPoint, or the street it lights as a line) and the
sensors' points are projected to an azimuthal equidistant projection centred on the data
(pyproj), where shapely measures true distances in metres around the city. A group gets its
``k`` nearest sensors within ``max_distance_m``; a group with none gets no traffic and so stays
at its design class (the policy's "no data, full light").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True, slots=True)
class AssignmentRule:
    k: int = 2                     # at most this many sensors per group
    max_distance_m: float = 150.0  # farther sensors measure another street

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_distance_m <= 0:
            raise ValueError("k must be at least 1 and max_distance_m positive")


@dataclass(frozen=True, slots=True)
class SensorLink:
    sensor_id: str
    distance_m: float


def _geometry(value: Mapping[str, Any] | BaseGeometry) -> BaseGeometry:
    return value if isinstance(value, BaseGeometry) else shape(value)


def _local_projection(geometries: list[BaseGeometry]) -> Transformer:
    centre = shapely.GeometryCollection(geometries).envelope.centroid
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 "
                           "+units=m +no_defs")
    return Transformer.from_crs(CRS.from_epsg(4326), local, always_xy=True)


def assign_sensors(groups: Mapping[str, Mapping[str, Any] | BaseGeometry],
                   sensors: Mapping[str, Mapping[str, Any] | BaseGeometry],
                   rule: AssignmentRule | None = None) -> dict[str, tuple[SensorLink, ...]]:
    """For every group id, its sensors nearest first (possibly none). Geometries are GeoJSON
    objects or shapely geometries in WGS84 longitude/latitude."""
    rule = rule or AssignmentRule()
    result: dict[str, tuple[SensorLink, ...]] = {group_id: () for group_id in groups}
    if not groups or not sensors:
        return result
    group_ids = list(groups)
    sensor_ids = list(sensors)
    group_geoms = [_geometry(groups[g]) for g in group_ids]
    sensor_geoms = [_geometry(sensors[s]) for s in sensor_ids]
    to_metres = _local_projection(group_geoms + sensor_geoms)
    # (x, y) arrays in, (x, y) arrays out: pyproj projects every coordinate in one call
    group_metric = shapely.transform(np.array(group_geoms), to_metres.transform,
                                     interleaved=False)
    sensor_metric = shapely.transform(np.array(sensor_geoms), to_metres.transform,
                                      interleaved=False)
    tree = shapely.STRtree(sensor_metric)
    # every (group, sensor) pair closer than the limit, found through the tree's index
    pairs = tree.query(group_metric, predicate="dwithin", distance=rule.max_distance_m)
    found: dict[int, list[SensorLink]] = {}
    for group_index, sensor_index in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        distance = float(shapely.distance(group_metric[group_index], sensor_metric[sensor_index]))
        found.setdefault(group_index, []).append(SensorLink(sensor_ids[sensor_index], distance))
    for group_index, links in found.items():
        links.sort(key=lambda link: (link.distance_m, link.sensor_id))
        result[group_ids[group_index]] = tuple(links[:rule.k])
    return result
