"""geoQ: GeoJSON validation, geo-query parsing, R*Tree boxes and exact predicates in metres."""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import patch

import orjson
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from sinergia.ngsild import geo, geojson
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.geo import (
    GeoQuery,
    boxes_out_of_reach,
    distance_m,
    filter_geometries,
    geometry_bbox,
    make_predicate,
    parse_geoq,
    parse_geoq_object,
    query_bbox,
)
from sinergia.ngsild.geojson import GEOMETRY_TYPES, MAX_POSITIONS, validate_geometry

GEOD = Geod(ellps="WGS84")
LOC = "https://uri.etsi.org/ngsi-ld/location"
DUOMO: dict[str, Any] = {"type": "Point", "coordinates": [9.1916, 45.4641]}
CASTELLO: dict[str, Any] = {"type": "Point", "coordinates": [9.1796, 45.4705]}
# One hundredth of a degree of longitude on the equator: a * pi / 180 / 100.
EQUATOR_CENTIDEGREE_M = 6_378_137.0 * math.pi / 180.0 / 100.0


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def moved(lon: float, lat: float, azimuth: float, metres: float) -> dict[str, Any]:
    """The point ``metres`` away from (lon, lat) along ``azimuth`` (exact geodesic)."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return point(float(lon2), float(lat2))


def query(georel: str, geometry: dict[str, Any]) -> GeoQuery:
    return parse_geoq(georel, geometry["type"], geometry["coordinates"], LOC)


def haversine(a: list[float], b: list[float]) -> float:
    (lon1, lat1), (lon2, lat2) = map(math.radians, a[:2]), map(math.radians, b[:2])
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def within_box(geometry: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    minx, miny, maxx, maxy = geometry_bbox(geometry)
    return box[0] <= minx and maxx <= box[2] and box[1] <= miny and maxy <= box[3]


# --- distances -------------------------------------------------------------------------------


def test_duomo_to_castello_sforzesco() -> None:
    # The geodesic is 1,177.5 m (the ~1,150 m often quoted is a rough map estimate).
    metres = distance_m(DUOMO, CASTELLO)
    assert metres == pytest.approx(1177.5, rel=0.01)
    assert metres == pytest.approx(haversine(DUOMO["coordinates"], CASTELLO["coordinates"]),
                                   rel=0.005)
    assert distance_m(CASTELLO, DUOMO) == pytest.approx(metres)


def test_distance_to_itself_and_inside_is_zero() -> None:
    assert distance_m(DUOMO, DUOMO) == 0.0
    assert distance_m(DUOMO, square(9.18, 45.46, 9.20, 45.47)) == 0.0


def test_distance_between_polygons_on_the_equator() -> None:
    a, b = square(0.0, 0.0, 0.01, 0.01), square(0.02, 0.0, 0.03, 0.01)
    assert distance_m(a, b) == pytest.approx(EQUATOR_CENTIDEGREE_M, rel=1e-4)


def test_distance_from_point_to_line_is_the_perpendicular() -> None:
    line = {"type": "LineString", "coordinates": [[9.10, 45.46], [9.30, 45.46]]}
    north = moved(9.20, 45.46, 0.0, 1000.0)
    assert distance_m(north, line) == pytest.approx(1000.0, rel=0.001)
    assert distance_m(line, north) == pytest.approx(1000.0, rel=0.001)


def test_distance_across_the_antimeridian() -> None:
    east, west = point(179.995, 0.0), point(-179.995, 0.0)
    assert distance_m(east, west) == pytest.approx(EQUATOR_CENTIDEGREE_M, rel=1e-6)
    line = {"type": "LineString", "coordinates": [[-179.995, -1.0], [-179.995, 1.0]]}
    assert distance_m(east, line) == pytest.approx(EQUATOR_CENTIDEGREE_M, rel=1e-3)


def test_distance_rejects_bad_geometries() -> None:
    with pytest.raises(BadRequestData, match=r"^b\.coordinates: .*longitude 200"):
        distance_m(DUOMO, point(200.0, 0.0))


# --- validate_geometry -----------------------------------------------------------------------


def test_validate_normalises_to_floats_and_drops_foreign_members() -> None:
    raw = {"type": "Polygon", "bbox": [0, 0, 1, 1],
           "coordinates": [[[0, 0], [1, 0], [1, 1, 7], [0, 0]]]}
    out = validate_geometry(raw)
    assert out == {"type": "Polygon",
                   "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0, 7.0], [0.0, 0.0]]]}
    assert all(type(v) is float for ring in out["coordinates"] for p in ring for v in p)


def test_validate_accepts_every_type_and_self_intersections() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    geometries = [
        point(1, 2),
        {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
        {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
        {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]},
        square(0, 0, 1, 1),
        {"type": "MultiPolygon", "coordinates": [square(0, 0, 1, 1)["coordinates"]]},
        {"type": "GeometryCollection", "geometries": [point(1, 2), bowtie]},
        bowtie,
    ]
    for geometry in geometries:
        out = validate_geometry(geometry)
        assert out["type"] == geometry["type"]
        assert validate_geometry(out) == out
        assert not shapely.from_geojson(orjson.dumps(out)).is_empty


@pytest.mark.parametrize(("geometry", "message"), [
    ([1, 2], r"^geometry: a GeoJSON geometry must be a JSON object, got an array"),
    ({"coordinates": [1, 2]}, r"has no 'type' member"),
    ({"type": "Circle", "coordinates": [1, 2]}, r"^geometry\.type: unknown geometry type 'Circle'"),
    ({"type": "Feature", "geometry": None}, r"unknown geometry type 'Feature'"),
    ({"type": "Point"}, r"^geometry: a Point needs a 'coordinates' member"),
    ({"type": "Point", "coordinates": []}, r"empty Point"),
    ({"type": "Point", "coordinates": "9,45"}, r"expected a position .* got the string"),
    ({"type": "Point", "coordinates": [9]}, r"2 or 3 numbers .* got 1"),
    ({"type": "Point", "coordinates": [9, 45, 1, 2]}, r"2 or 3 numbers .* got 4"),
    ({"type": "Point", "coordinates": ["9", 45]},
     r"^geometry\.coordinates\[0\]: the longitude must be a number, got the string '9'"),
    ({"type": "Point", "coordinates": [9, True]}, r"coordinates\[1\]: the latitude .*boolean"),
    ({"type": "Point", "coordinates": [9, 45, None]}, r"coordinates\[2\]: the altitude .*null"),
    ({"type": "Point", "coordinates": [math.nan, 45]}, r"longitude must be a finite number"),
    ({"type": "Point", "coordinates": [9, math.inf]}, r"latitude must be a finite number"),
    ({"type": "Point", "coordinates": [9, 45, 10**400]}, r"altitude must be a finite number"),
    ({"type": "Point", "coordinates": [180.5, 45]}, r"longitude 180\.5 is outside \[-180, 180\]"),
    ({"type": "Point", "coordinates": [45.46, 91]},
     r"latitude 91 is outside \[-90, 90\]; positions are \[longitude, latitude\], are they"),
    ({"type": "Point", "coordinates": [120, -95]}, r"latitude -95 is outside \[-90, 90\]$"),
    ({"type": "MultiPoint", "coordinates": []}, r"MultiPoint's array of positions is empty"),
    ({"type": "MultiPoint", "coordinates": [[1, 2], [3, 400]]},
     r"^geometry\.coordinates\[1\]: latitude 400"),
    ({"type": "LineString", "coordinates": [[1, 2]]}, r"at least 2 positions, got 1"),
    ({"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[1, 2]]]},
     r"^geometry\.coordinates\[1\]: a LineString needs at least 2 positions"),
    ({"type": "Polygon", "coordinates": []}, r"Polygon's array of rings is empty"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
     r"^geometry\.coordinates\[0\]: the exterior ring needs at least 4 positions .* got 3"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
     r"exterior ring is not closed: its first position \[0\.0, 0\.0\] differs from its last"),
    ({"type": "Polygon", "coordinates": [square(0, 0, 4, 4)["coordinates"][0],
                                         [[1, 1], [2, 1], [2, 2], [1, 1.5]]]},
     r"^geometry\.coordinates\[1\]: the hole 1 is not closed"),
    ({"type": "MultiPolygon", "coordinates": [square(0, 0, 1, 1)["coordinates"], [[[0, 0]]]]},
     r"^geometry\.coordinates\[1\]\[0\]: the exterior ring needs at least 4"),
    ({"type": "MultiPolygon", "coordinates": [[]]}, r"coordinates\[0\]: .*rings is empty"),
    ({"type": "GeometryCollection", "geometries": []}, r"empty GeometryCollection"),
    ({"type": "GeometryCollection"}, r"needs a 'geometries' array, got null"),
    ({"type": "GeometryCollection", "geometries": [point(1, 2), {"type": "Point"}]},
     r"^geometry\.geometries\[1\]: a Point needs a 'coordinates' member"),
])
def test_validate_rejects_with_a_precise_message(geometry: object, message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        validate_geometry(geometry)


def test_validate_uses_the_given_location_in_messages() -> None:
    with pytest.raises(BadRequestData, match=r"^location\.value\.coordinates\[1\]: latitude"):
        validate_geometry({"type": "MultiPoint", "coordinates": [[0, 0], [0, 99]]},
                          where="location.value")


def test_validate_refuses_oversized_geometries() -> None:
    ok = {"type": "MultiPoint", "coordinates": [[0.0, 0.0]] * MAX_POSITIONS}
    assert len(validate_geometry(ok)["coordinates"]) == MAX_POSITIONS
    too_big = {"type": "MultiPoint", "coordinates": [[0.0, 0.0]] * (MAX_POSITIONS + 1)}
    with pytest.raises(BadRequestData, match=f"more than {MAX_POSITIONS} positions"):
        validate_geometry(too_big)


def test_validate_refuses_deeply_nested_collections() -> None:
    geometry: dict[str, Any] = point(0, 0)
    for _ in range(10):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    with pytest.raises(BadRequestData, match="nested more than"):
        validate_geometry(geometry)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(["type", "coordinates", "geometries", "x"]), children,
                      max_size=3),
    max_leaves=40,
)
NUMBER = st.integers(-200, 200) | st.floats(-200, 200) | st.sampled_from([math.nan, True, "1"])
NESTED = st.recursive(NUMBER, lambda c: st.lists(c, max_size=5), max_leaves=40)
GEOMETRY_LIKE = st.recursive(
    st.builds(lambda t, c: {"type": t, "coordinates": c},
              st.sampled_from([*GEOMETRY_TYPES, "Feature"]), NESTED),
    lambda children: st.builds(lambda gs: {"type": "GeometryCollection", "geometries": gs},
                               st.lists(children, max_size=3)),
    max_leaves=6,
)


@given(st.one_of(JSON, GEOMETRY_LIKE))
@settings(max_examples=250)
def test_validate_only_ever_raises_bad_request_data(value: object) -> None:
    try:
        out = validate_geometry(value)
    except BadRequestData as exc:
        assert exc.detail.startswith("geometry")
        return
    # Whatever passes is stable and readable by GEOS.
    assert validate_geometry(out) == out
    assert shapely.from_geojson(orjson.dumps(out)) is not None
    geometry_bbox(out)


# Well-formed geometries, often degenerate (repeated points, zero-area or self-crossing rings).
POSITION = st.lists(st.integers(-3, 3).map(float), min_size=2, max_size=3)
LINE = st.lists(POSITION, min_size=2, max_size=5)
RING = st.lists(POSITION, min_size=3, max_size=6).map(lambda ps: [*ps, ps[0]])
POLYGON = st.lists(RING, min_size=1, max_size=2)
WELL_FORMED = st.one_of(
    st.builds(lambda c: {"type": "Point", "coordinates": c}, POSITION),
    st.builds(lambda c: {"type": "MultiPoint", "coordinates": c}, LINE),
    st.builds(lambda c: {"type": "LineString", "coordinates": c}, LINE),
    st.builds(lambda c: {"type": "MultiLineString", "coordinates": c},
              st.lists(LINE, min_size=1, max_size=2)),
    st.builds(lambda c: {"type": "Polygon", "coordinates": c}, POLYGON),
    st.builds(lambda c: {"type": "MultiPolygon", "coordinates": c},
              st.lists(POLYGON, min_size=1, max_size=2)),
)
GEORELS = st.sampled_from(["within", "contains", "intersects", "equals", "disjoint", "overlaps",
                           "near;maxDistance==100000", "near;minDistance==100000"])


def boxes_meet(a: tuple[float, float, float, float],
               b: tuple[float, float, float, float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@given(WELL_FORMED, WELL_FORMED, GEORELS)
@settings(max_examples=150, deadline=None)
# A polygon whose hole is its shell is empty: near it is nothing (once crashed the prefilter).
@example({"type": "Polygon", "coordinates": [[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]] * 2},
         {"type": "Point", "coordinates": [0.0, 0.0]}, "near;maxDistance==100000")
def test_predicates_are_robust_and_prefiltered_correctly(query_geometry: dict[str, Any],
                                                         stored: dict[str, Any],
                                                         georel: str) -> None:
    q = query(georel, validate_geometry(query_geometry))
    stored = validate_geometry(stored)
    # Errors on unreadable stored data count as "no match"; well-formed data must not need it.
    with patch.object(geo, "_UNREADABLE", ()):
        matched = make_predicate(q)(stored)
        assert filter_geometries(q, [stored]) == [matched]
    box = query_bbox(q)
    if matched and box is not None:
        assert boxes_meet(box, geometry_bbox(stored))
    if matched:
        minx, miny, maxx, maxy = geometry_bbox(stored)
        assert boxes_out_of_reach(q, [minx], [miny], [maxx], [maxy]) == [False]


@given(st.floats(-179.0, 179.0), st.floats(-85.0, 85.0), st.floats(0.0, 360.0),
       st.floats(0.0, 5_000.0), st.floats(0.0, 0.01), st.floats(0.0, 0.01),
       st.floats(1.0, 3_000.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
@settings(max_examples=300, deadline=None)
def test_a_box_out_of_reach_holds_no_match(lon: float, lat: float, azimuth: float,
                                           metres: float, width: float, height: float,
                                           distance: float, fx: float, fy: float) -> None:
    """Whatever point of a box out of reach is stored, it is farther than maxDistance."""
    centre = moved(lon, lat, azimuth, metres)["coordinates"]
    minx, miny = centre[0] - width / 2, centre[1] - height / 2
    maxx, maxy = centre[0] + width / 2, centre[1] + height / 2
    q = GeoQuery("near", point(lon, lat), LOC, max_distance=distance)
    if boxes_out_of_reach(q, [minx], [miny], [maxx], [maxy]) == [True]:
        for x, y in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy),
                     (minx + fx * width, miny + fy * height)):
            assert not make_predicate(q)(point(x, y))


def test_boxes_out_of_reach_settles_far_boxes_only_for_near_a_point() -> None:
    q = query("near;maxDistance==500", DUOMO)
    # Castello is ~1.1 km from the Duomo; a box around the Duomo itself may match.
    assert boxes_out_of_reach(q, [9.1795, 9.1915], [45.4704, 45.4640], [9.1797, 9.1917],
                              [45.4706, 45.4642]) == [True, False]
    # Near a polygon, or with minDistance, no box is settled.
    polygon = query("near;maxDistance==500", square(9.19, 45.46, 9.192, 45.462))
    assert boxes_out_of_reach(polygon, [9.1795], [45.4704], [9.1797], [45.4706]) == [False]
    minimum = query("near;minDistance==500", DUOMO)
    assert boxes_out_of_reach(minimum, [9.1795], [45.4704], [9.1797], [45.4706]) == [False]


# --- parse_geoq ------------------------------------------------------------------------------


def test_parse_near_max_and_min_distance() -> None:
    q = parse_geoq("near;maxDistance==500", "Point", "[9.19,45.46]", LOC)
    assert q == GeoQuery("near", {"type": "Point", "coordinates": [9.19, 45.46]}, LOC,
                         max_distance=500.0)
    q = parse_geoq(" near ; minDistance==10.5 ", "point", [9.19, 45.46], LOC)
    assert (q.georel, q.max_distance, q.min_distance) == ("near", None, 10.5)
    # The NGSIv2 spelling is accepted too.
    assert parse_geoq("near;maxDistance:1e3", "Point", "[0,0]", LOC).max_distance == 1000.0


@pytest.mark.parametrize("georel", ["within", "contains", "intersects", "equals", "disjoint",
                                    "overlaps"])
def test_parse_topological_georels(georel: str) -> None:
    q = parse_geoq(georel, "Polygon", "[[[0,0],[1,0],[1,1],[0,0]]]", LOC)
    assert (q.georel, q.max_distance, q.min_distance) == (georel, None, None)
    assert q.geometry["type"] == "Polygon" and q.geoproperty == LOC


@pytest.mark.parametrize(("georel", "geometry", "coordinates", "message"), [
    (None, "Point", "[0,0]", r"^geoQ: 'georel' missing"),
    ("within", None, None, r"'geometry' and 'coordinates' missing"),
    ("within", "Point", " ", r"'coordinates' missing"),
    ("beside", "Point", "[0,0]", r"^geoQ\.georel: unknown georel 'beside'; expected near;max"),
    ("near", "Point", "[0,0]", r"near needs a distance"),
    ("near;", "Point", "[0,0]", r"near needs a distance"),
    ("near;maxDistance==5;minDistance==1", "Point", "[0,0]", r"exactly one of maxDistance"),
    ("near;radius==5", "Point", "[0,0]", r"near modifier 'radius==5' is not maxDistance"),
    ("near;maxDistance==-5", "Point", "[0,0]", r"maxDistance must be a non-negative number"),
    ("near;minDistance==nan", "Point", "[0,0]", r"minDistance must be a non-negative number"),
    ("near;maxDistance==1e999", "Point", "[0,0]", r"maxDistance must be a non-negative"),
    ("near;maxDistance==", "Point", "[0,0]", r"maxDistance must be a non-negative"),
    ("within;maxDistance==5", "Point", "[0,0]", r"within takes no modifiers"),
    ("within", "Circle", "[0,0]", r"^geoQ\.geometry: unknown geometry 'Circle'"),
    ("within", "GeometryCollection", "[]", r"GeometryCollection cannot be used in a geo-query"),
    ("within", "Point", "[0,0", r"^geoQ\.coordinates: not valid JSON .* such as \[9\.19,45\.46\]"),
    ("within", "Point", '{"x":1}', r"^geoQ\.coordinates: expected a JSON array .* an object"),
    ("within", "Point", "[[0,0]]", r"^geoQ\.coordinates: .* array of arrays \(nested too deep"),
    ("within", "LineString", "[[0,0],[1]]", r"^geoQ\.coordinates\[1\]: a position has 2 or 3"),
    ("within", "Point", "[0,100]", r"^geoQ\.coordinates: latitude 100 is outside"),
    ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", r"exterior ring is not closed"),
])
def test_parse_geoq_errors(georel: str | None, geometry: str | None, coordinates: str | None,
                           message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        parse_geoq(georel, geometry, coordinates, LOC)


def test_parse_geoq_object_defaults_geoproperty_to_location() -> None:
    expanded: list[str] = []

    def expand(term: str) -> str:
        expanded.append(term)
        return "https://example.org/" + term

    q = parse_geoq_object({"georel": "within", "geometry": "Polygon",
                           "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, expand)
    assert q.geoproperty == "https://example.org/location" and expanded == ["location"]
    q = parse_geoq_object({"georel": "near;maxDistance==5", "geometry": "Point",
                           "coordinates": "[1,2]", "geoproperty": "observationSpace"}, expand)
    assert q.geoproperty == "https://example.org/observationSpace" and q.max_distance == 5.0


@pytest.mark.parametrize(("obj", "message"), [
    ([], r"^geoQ: must be a JSON object, got an empty array"),
    ({"georel": 5, "geometry": "Point", "coordinates": [0, 0]}, r"geoQ\.georel: must be a str"),
    ({"georel": "within", "geometry": ["Point"], "coordinates": [0, 0]}, r"geoQ\.geometry: "),
    ({"georel": "within", "geometry": "Point", "coordinates": {"lon": 0}}, r"must be an array"),
    ({"georel": "within", "geometry": "Point"}, r"'coordinates' missing"),
    ({"georel": "within", "geometry": "Point", "coordinates": [0, 0], "geoproperty": ""},
     r"geoQ\.geoproperty: must be a non-empty"),
])
def test_parse_geoq_object_errors(obj: Any, message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        parse_geoq_object(obj, lambda term: term)


@given(st.text(max_size=40), st.text(max_size=10), st.text(max_size=30))
def test_parse_geoq_only_ever_raises_bad_request_data(georel: str, geometry: str,
                                                      coordinates: str) -> None:
    try:
        q = parse_geoq(georel, geometry, coordinates, LOC)
    except BadRequestData as exc:
        assert exc.detail.startswith("geoQ")
        return
    assert q.georel in ("near", "within", "contains", "intersects", "equals", "disjoint",
                        "overlaps")


# --- predicates: one boundary case after another ---------------------------------------------

SQUARE = square(9.18, 45.46, 9.20, 45.47)


def test_within() -> None:
    within = make_predicate(query("within", SQUARE))
    assert within(point(9.19, 45.465))
    assert not within(point(9.18, 45.465))  # on the boundary: not in the interior
    assert not within(point(9.21, 45.465))
    assert within(square(9.185, 45.462, 9.195, 45.468))
    assert within(SQUARE)  # a polygon is within itself
    assert not within(square(9.19, 45.462, 9.21, 45.468))  # half out


def test_contains() -> None:
    contains = make_predicate(query("contains", point(9.19, 45.465)))
    assert contains(SQUARE)
    assert contains(point(9.19, 45.465))
    assert not contains(square(9.17, 45.46, 9.19, 45.47))  # the point is on its boundary
    assert not contains(point(9.19, 45.466))


def test_intersects_and_disjoint_are_complements() -> None:
    intersects = make_predicate(query("intersects", SQUARE))
    disjoint = make_predicate(query("disjoint", SQUARE))
    cases = {
        "inside": (point(9.19, 45.465), True),
        "on the edge": (point(9.20, 45.465), True),
        "on a corner": (point(9.20, 45.47), True),
        "outside": (point(9.21, 45.465), False),
        "crossing line": ({"type": "LineString", "coordinates": [[9.1, 45.465], [9.3, 45.465]]},
                          True),
        "touching square": (square(9.20, 45.46, 9.21, 45.47), True),
        "far square": (square(10, 46, 11, 47), False),
    }
    for name, (geometry, expected) in cases.items():
        assert intersects(geometry) is expected, name
        assert disjoint(geometry) is not expected, name


def test_equals_is_topological() -> None:
    equals = make_predicate(query("equals", SQUARE))
    ring = SQUARE["coordinates"][0]
    rotated = {"type": "Polygon", "coordinates": [ring[1:] + ring[1:2]]}
    reversed_ = {"type": "Polygon", "coordinates": [ring[::-1]]}
    assert equals(SQUARE) and equals(rotated) and equals(reversed_)
    assert equals({"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]})
    assert not equals(square(9.18, 45.46, 9.20, 45.4701))
    assert make_predicate(query("equals", DUOMO))(point(9.1916, 45.4641))


def test_overlaps() -> None:
    overlaps = make_predicate(query("overlaps", SQUARE))
    assert overlaps(square(9.19, 45.465, 9.21, 45.475))
    assert not overlaps(square(9.185, 45.462, 9.195, 45.468))  # contained
    assert not overlaps(square(9.20, 45.46, 9.21, 45.47))  # only touching
    assert not overlaps(point(9.19, 45.465))  # different dimension


@pytest.mark.parametrize("azimuth", [0.0, 45.0, 90.0, 180.0, 270.0])
def test_near_points_at_the_threshold(azimuth: float) -> None:
    lon, lat = DUOMO["coordinates"]
    near_1000 = make_predicate(query("near;maxDistance==1000", DUOMO))
    far_1000 = make_predicate(query("near;minDistance==1000", DUOMO))
    inside, outside = moved(lon, lat, azimuth, 999.0), moved(lon, lat, azimuth, 1001.0)
    assert near_1000(inside) and not near_1000(outside)
    assert far_1000(outside) and not far_1000(inside)


def test_near_zero_distance_and_the_castello() -> None:
    assert make_predicate(query("near;maxDistance==0", DUOMO))(point(9.1916, 45.4641))
    assert make_predicate(query("near;maxDistance==1190", DUOMO))(CASTELLO)
    assert not make_predicate(query("near;maxDistance==1165", DUOMO))(CASTELLO)
    assert make_predicate(query("near;minDistance==0", DUOMO))(DUOMO)


def test_near_a_polygon_measures_to_its_edge() -> None:
    box = square(0.0, 0.0, 0.01, 0.01)
    east = point(0.014, 0.005)  # 0.004 degrees east of the edge on the equator: 445.3 m
    assert make_predicate(query("near;maxDistance==450", box))(east)
    assert not make_predicate(query("near;maxDistance==440", box))(east)
    assert make_predicate(query("near;minDistance==440", box))(east)
    assert make_predicate(query("near;maxDistance==0", box))(point(0.005, 0.005))


def test_near_a_point_with_stored_lines_and_polygons() -> None:
    lon, lat = DUOMO["coordinates"]
    near_500 = make_predicate(query("near;maxDistance==500", DUOMO))
    north = moved(lon, lat, 0.0, 480.0)["coordinates"]
    line = {"type": "LineString", "coordinates": [[lon - 0.05, north[1]], [lon + 0.05, north[1]]]}
    assert near_500(line)
    assert make_predicate(query("near;minDistance==470", DUOMO))(line)
    assert not make_predicate(query("near;maxDistance==470", DUOMO))(line)
    assert near_500(square(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001))


def test_near_across_the_antimeridian() -> None:
    q = query("near;maxDistance==1200", point(179.995, 0.0))
    assert make_predicate(q)(point(-179.995, 0.0))
    box = query_bbox(q)
    assert box is not None and within_box(point(-179.995, 0.0), box)


def test_self_intersecting_polygons_behave_as_what_they_draw() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    in_left_lobe, in_the_gap = point(0.2, 1.0), point(1.0, 1.8)
    within = make_predicate(query("within", bowtie))
    assert within(in_left_lobe) and not within(in_the_gap)
    assert make_predicate(query("intersects", in_left_lobe))(bowtie)
    assert not make_predicate(query("intersects", in_the_gap))(bowtie)
    assert make_predicate(query("equals", bowtie))(bowtie)
    assert make_predicate(query("near;maxDistance==0", in_left_lobe))(bowtie)


@pytest.mark.parametrize("georel", ["within", "contains", "intersects", "equals", "disjoint",
                                    "overlaps", "near;maxDistance==10", "near;minDistance==10"])
def test_unreadable_stored_geometries_never_match(georel: str) -> None:
    test = make_predicate(query(georel, SQUARE))
    garbage: list[dict[str, Any]] = [
        {}, {"type": "Point"}, {"type": "Point", "coordinates": "x"},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]},
    ]
    for stored in garbage:
        assert test(stored) is False


@pytest.mark.parametrize("georel", ["within", "contains", "intersects", "equals", "disjoint",
                                    "overlaps", "near;maxDistance==800", "near;minDistance==800"])
@pytest.mark.parametrize("geometry", [DUOMO, SQUARE])
def test_filter_geometries_agrees_with_the_predicate(georel: str,
                                                     geometry: dict[str, Any]) -> None:
    q = query(georel, geometry)
    test = make_predicate(q)
    candidates = [
        DUOMO, CASTELLO, point(9.19, 45.465), point(9.18, 45.465), point(9.3, 45.5),
        point(0, 0), SQUARE, square(9.19, 45.465, 9.21, 45.475),
        {"type": "LineString", "coordinates": [[9.1, 45.465], [9.3, 45.465]]},
        {"type": "Point", "coordinates": ["bad", 0]}, {"type": "Point", "coordinates": [500, 0]},
    ]
    expected = [test(g) for g in candidates]
    assert filter_geometries(q, candidates) == expected
    assert (True in expected and False in expected) or georel in ("equals", "overlaps")


# --- bounding boxes --------------------------------------------------------------------------


def test_geometry_bbox() -> None:
    assert geometry_bbox(DUOMO) == (9.1916, 45.4641, 9.1916, 45.4641)
    assert geometry_bbox(SQUARE) == (9.18, 45.46, 9.20, 45.47)
    collection = {"type": "GeometryCollection",
                  "geometries": [point(-1, 2), {"type": "LineString",
                                                "coordinates": [[3, -4], [5, 6, 100]]}]}
    assert geometry_bbox(collection) == (-1.0, -4.0, 5.0, 6.0)
    with pytest.raises(BadRequestData):
        geometry_bbox({"type": "Point"})


def test_query_bbox_per_georel() -> None:
    for georel in ("within", "contains", "intersects", "equals", "overlaps"):
        assert query_bbox(query(georel, SQUARE)) == (9.18, 45.46, 9.20, 45.47)
    assert query_bbox(query("disjoint", SQUARE)) is None
    assert query_bbox(query("near;minDistance==10", DUOMO)) is None
    assert query_bbox(query("near;maxDistance==5000000", DUOMO)) is None


def test_query_bbox_near_is_tight_but_safe() -> None:
    box = query_bbox(query("near;maxDistance==1000", DUOMO))
    assert box is not None
    west, south, east, north = box
    lon, lat = DUOMO["coordinates"]
    # ~1 km is ~0.009 degrees of latitude and ~0.0128 of longitude at Milan.
    assert 0.009 < lat - south < 0.0095 and 0.009 < north - lat < 0.0095
    assert 0.0126 < lon - west < 0.0132 and 0.0126 < east - lon < 0.0132
    for azimuth in range(0, 360, 15):
        assert within_box(moved(lon, lat, azimuth, 1000.0), box)


def test_query_bbox_near_a_pole_spans_all_longitudes() -> None:
    box = query_bbox(query("near;maxDistance==20000", point(10.0, 89.9)))
    assert box is not None
    assert box[0] == -180.0 and box[2] == 180.0 and box[3] == 90.0
    assert within_box(point(-170.0, 89.95), box)


LATITUDES = st.floats(-89.5, 89.5)
LONGITUDES = st.floats(-180.0, 180.0)


@given(lon=LONGITUDES, lat=LATITUDES, metres=st.floats(1.0, 200_000.0),
       samples=st.lists(st.tuples(st.floats(0.0, 360.0), st.floats(0.0, 1.3)), min_size=1,
                        max_size=20))
@settings(max_examples=200, deadline=None)
def test_query_bbox_holds_every_near_match(lon: float, lat: float, metres: float,
                                           samples: list[tuple[float, float]]) -> None:
    q = query(f"near;maxDistance=={metres!r}", point(lon, lat))
    box = query_bbox(q)
    test = make_predicate(q)
    for azimuth, fraction in samples:
        candidate = moved(lon, lat, azimuth, metres * fraction)
        exact = GEOD.inv(lon, lat, *candidate["coordinates"])[2]
        if abs(exact - metres) > 1e-6 * metres:
            assert test(candidate) is (exact <= metres)
        if test(candidate):
            assert box is not None and within_box(candidate, box)


@given(lon=st.floats(-179.0, 178.0), lat=st.floats(-80.0, 79.0),
       size=st.floats(0.001, 1.0), metres=st.floats(0.0, 50_000.0),
       samples=st.lists(st.tuples(st.floats(-2.0, 3.0), st.floats(-2.0, 3.0)), min_size=1,
                        max_size=20))
@settings(max_examples=100, deadline=None)
def test_query_bbox_holds_every_polygon_match(lon: float, lat: float, size: float,
                                              metres: float,
                                              samples: list[tuple[float, float]]) -> None:
    area = square(lon, lat, lon + size, lat + size)
    for georel in ("within", "intersects", f"near;maxDistance=={metres!r}"):
        q = query(georel, area)
        box = query_bbox(q)
        assert box is not None
        test = make_predicate(q)
        for fx, fy in samples:
            candidate = point(lon + fx * size, max(-90.0, min(90.0, lat + fy * size)))
            if test(candidate):
                assert within_box(candidate, box), (georel, candidate, box)


_COORDINATE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-400, 400),
    st.booleans(), st.none(), st.text(max_size=2), st.lists(st.floats(), max_size=2))


@settings(max_examples=400)
@given(st.one_of(st.lists(_COORDINATE, max_size=4), _COORDINATE,
                 st.tuples(st.floats(-200, 200), st.floats(-100, 100))))
def test_the_position_fast_path_agrees_with_the_checked_one(value: Any) -> None:
    """A position passing the quick check returns what the full check would; every other one
    goes the full way, so its error (or its result) is that of the full check."""
    def outcome(fn: Any) -> Any:
        budget = geojson._Budget()
        try:
            return fn(value, "p", budget), budget.positions
        except BadRequestData as exc:
            return str(exc), budget.positions

    assert outcome(geojson._position) == outcome(geojson._checked_position)


def test_the_position_fast_path_keeps_the_position_budget() -> None:
    budget = geojson._Budget(positions=MAX_POSITIONS)
    with pytest.raises(BadRequestData, match="more than"):
        geojson._position([9.0, 45.0], "p", budget)
