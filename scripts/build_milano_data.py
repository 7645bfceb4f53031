#!/usr/bin/env python3
"""Derive Sinergia's compact Milan geography from the Comune di Milano open-data originals.

    python scripts/build_milano_data.py SOURCE_DIR            # writes the packaged file
    python scripts/build_milano_data.py SOURCE_DIR --check    # fails if it would change it

SOURCE_DIR holds the GeoJSON files as downloaded from https://dati.comune.milano.it in 2020
(CC-BY 4.0; see src/sinergia/data/milano/SOURCES.md). The output,
src/sinergia/data/milano/milano.json, is what `sinergia.sim.milano` turns into NGSI-LD entities
at run time, so everything expensive or fiddly happens here, once:

* every file is checked to be WGS84 lon/lat (its "crs" member and its coordinate ranges); a
  projected file (UTM 32N, Monte Mario / Gauss-Boaga) would be converted with pyproj;
* polygons and lines are simplified in metres (UTM 32N): the neighbourhoods (NIL) and the
  municipi with GEOS coverage simplification, so neighbouring shapes keep sharing their edges
  instead of opening slivers; coordinates are then snapped to a 1e-6 degree grid (~0.1 m);
* the municipio and neighbourhood of every point and line (its midpoint) are computed by
  point-in-polygon against the *shipped* (simplified) polygons, so a geo-query on the broker and the
  refNeighbourhood relationship never disagree;
* only the properties the demo uses are kept, dates become UTC ISO 8601 strings.

Needs shapely >= 2.2 (GEOS >= 3.14, for coverage_clean) and pyproj; not needed at run time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape

OUTPUT = Path(__file__).resolve().parents[1] / "src/sinergia/data/milano/milano.json"

WGS84_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"}
# The projected systems Milan's open data has been published in over the years.
PROJECTED_NAMES = {
    "EPSG:32632": 32632, "urn:ogc:def:crs:EPSG::32632": 32632,  # WGS84 / UTM 32N
    "EPSG:3003": 3003, "urn:ogc:def:crs:EPSG::3003": 3003,  # Monte Mario / Italy zone 1
}
METRIC_CRS = 32632  # UTM 32N: metres, little distortion over Milan
GRID = 1e-6  # degrees; 6 decimals ≈ 0.11 m north-south, 0.08 m east-west at Milan

AREA_TOLERANCE_M = 8.0  # coverage simplification of NIL and municipi (Visvalingam-Whyatt)
RESTRICTED_TOLERANCE_M = 3.0  # pedestrian areas and ZTLs are street-sized: keep them finer
LANE_TOLERANCE_M = 3.0  # bike lanes (Douglas-Peucker)
MIN_SCOPE_SHARE = 0.05  # a restricted area is in a municipio's scope from 5% of its surface

ROME = ZoneInfo("Europe/Rome")
PORTAL = "https://dati.comune.milano.it/dataset/"

DATASETS: dict[str, dict[str, str]] = {
    "municipi": {
        "file": "ds379_municipi_label.geojson",
        "title": "Municipi: superficie (ds379)",
        "url": PORTAL + "ds379-infogeo-municipi-superficie",
    },
    "neighbourhoods": {
        "file": "ds964.nil_wm.geojson",
        "title": "Nuclei d'Identità Locale (NIL) vigenti - PGT 2030 (ds964)",
        "url": PORTAL + "ds964-nil-vigenti-pgt-2030",
    },
    "bike_stations": {
        "file": "ds65.bikemi_areesosta.geojson",
        "title": "Bike sharing BikeMi: localizzazione stazioni (ds65)",
        "url": PORTAL + "ds65_infogeo_aree_sosta_bike_sharing_localizzazione_",
    },
    "car_parks": {
        "file": "ds342.parking_pub.geojson",
        "title": "Parcheggi pubblici: localizzazione (ds342)",
        "url": PORTAL + "ds342-trafficotrasporti-parcheggi-pubblici-localizzazione",
    },
    "weather_stations": {
        "file": "ds699.stazioni-meteorologiche_arpa_mi_final.geojson",
        "title": "Stazioni meteorologiche ARPA nel Comune di Milano (ds699)",
        "url": PORTAL + "ds699_stazioni_meteorologiche_arpa_nel_comune_di_milano",
    },
    "areac_gates": {
        "file": "ds82.ingressi_areac_varchi.geojson",
        "title": "Area C: varchi elettronici (ds82)",
        "url": PORTAL + "ds82_infogeo_varchi_elettronici_localizzazione_",
    },
    "metro_stops": {
        "file": "ds535.tpl_metrofermate.geojson",
        "title": "ATM: fermate linee metropolitane (ds535)",
        "url": PORTAL + "ds535_atm-fermate-linee-metropolitane",
    },
    "bike_lanes": {
        "file": "ds60.bike_ciclabili.geojson",
        "title": "Piste ciclabili: localizzazione (ds60)",
        "url": PORTAL + "ds60_infogeo_piste_ciclabili_localizzazione_",
    },
    "restricted_areas": {
        "file": "ds51.disciplina_aree.geojson",
        "title": "Aree pedonali, ZTL, Area B e Area C (ds51)",
        "url": PORTAL + "ds51_trafficotrasporti_aree_pedonali_ztl_zone_30_",
    },
}

# ARPA sensor kinds → Smart Data Models Device `controlledProperty` values.
ARPA_QUANTITIES = {
    "Temperatura": "temperature",
    "Umidità Relativa": "humidity",
    "Precipitazione": "precipitation",
    "Direzione Vento": "windDirection",
    "Velocità Vento": "windSpeed",
    "Radiazione Globale": "solarRadiation",
    "Livello Idrometrico": "waterLevel",
}

Feature = dict[str, Any]
Geometry = Any  # a shapely geometry


class SourceError(Exception):
    """An original file is not what this script knows how to read."""


# --- reading ---------------------------------------------------------------------------------

def _crs_name(collection: dict[str, Any]) -> str | None:
    crs = collection.get("crs")
    if isinstance(crs, dict):
        name = crs.get("properties", {}).get("name")
        return name if isinstance(name, str) else None
    return None


def _to_wgs84(name: str, geometries: list[Geometry]) -> list[Geometry]:
    """Check the declared CRS against the coordinates (a file saying WGS84 but holding metres
    is caught here) and convert projected files."""
    bounds = shapely.total_bounds([g for g in geometries if g is not None])
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    looks_geographic = xmin >= -180 and xmax <= 180 and ymin >= -90 and ymax <= 90
    crs = name or "unspecified (RFC 7946 default: WGS84)"
    if name in PROJECTED_NAMES:
        if looks_geographic:
            raise SourceError(f"declared {name} but the coordinates look like degrees")
        epsg = PROJECTED_NAMES[name]
        return [_reproject(g, epsg, 4326) if g is not None else None for g in geometries]
    if name and name not in WGS84_NAMES:
        raise SourceError(f"unknown CRS {name!r}: add it to PROJECTED_NAMES")
    if not looks_geographic:
        raise SourceError(f"CRS {crs} but coordinates out of the degree range: {bounds}")
    return geometries


def read(source: Path, key: str) -> list[tuple[dict[str, Any], Geometry]]:
    path = source / DATASETS[key]["file"]
    collection = json.loads(path.read_text(encoding="utf-8"))
    features: list[Feature] = collection["features"]
    geometries = [shape(f["geometry"]) if f.get("geometry") else None for f in features]
    geometries = _to_wgs84(_crs_name(collection) or "", geometries)
    return [(f["properties"], g) for f, g in zip(features, geometries, strict=True)]


# --- geometry --------------------------------------------------------------------------------

def _reproject(geometry: Geometry, source: int, target: int) -> Geometry:
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def convert(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, convert)


def to_metres(geometry: Geometry) -> Geometry:
    return _reproject(geometry, 4326, METRIC_CRS)


def to_degrees(geometry: Geometry) -> Geometry:
    return _reproject(geometry, METRIC_CRS, 4326)


def snap(geometry: Geometry) -> Geometry:
    """Onto the 1e-6° grid; set_precision keeps polygons valid (unlike rounding each number)."""
    snapped = shapely.set_precision(geometry, GRID)
    if not snapped.is_valid or snapped.is_empty:
        reason = shapely.is_valid_reason(snapped)
        raise SourceError(f"snapping produced an invalid geometry: {reason}")
    return snapped


def simplify_coverage(geometries: list[Geometry]) -> list[Geometry]:
    """NIL and municipi tile the city: clean the tiling (the NIL file has sub-millimetre
    slivers and unmatched vertices) and simplify it as a whole so shared edges stay shared."""
    metric = [to_metres(g) for g in geometries]
    cleaned = shapely.coverage_clean(metric)
    simplified = shapely.coverage_simplify(cleaned, AREA_TOLERANCE_M)
    return [snap(_largest_polygon(to_degrees(g))) for g in simplified]


def _largest_polygon(geometry: Geometry) -> Geometry:
    # Cleaning can leave a MultiPolygon with a speck next to the real shape.
    if geometry.geom_type == "MultiPolygon":
        return max(geometry.geoms, key=lambda part: part.area)
    return geometry


def simplify(geometry: Geometry, tolerance: float) -> Geometry:
    metric = to_metres(geometry)
    return snap(to_degrees(shapely.simplify(metric, tolerance, preserve_topology=True)))


def area_m2(geometry: Geometry) -> int:
    return round(float(to_metres(geometry).area))


def geojson(geometry: Geometry) -> dict[str, Any]:
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, list | tuple):
            return [rounded(item) for item in value]
        return value

    data = mapping(geometry)
    return {"type": data["type"], "coordinates": rounded(data["coordinates"])}


def midpoint(line: Geometry) -> Geometry:
    """Half-way along a (multi)line: where a line is "placed". Unlike representative_point,
    it does not flip between two equidistant vertices when coordinates are rounded."""
    return shapely.line_interpolate_point(line, 0.5, normalized=True)


class Locator:
    """Which polygon (by id) holds a geometry; ties (a point exactly on a shared edge) go to
    the lowest id so the output is deterministic."""

    def __init__(self, polygons: dict[int, Geometry]) -> None:
        self._ids = sorted(polygons)
        self._polygons = [polygons[i] for i in self._ids]
        self._tree = shapely.STRtree(self._polygons)

    def point(self, geometry: Geometry) -> int | None:
        probe = geometry if geometry.geom_type == "Point" else midpoint(geometry)
        hits = self._tree.query(probe, predicate="intersects")
        return min((self._ids[i] for i in hits), default=None)

    def shares(self, geometry: Geometry) -> list[tuple[int, float]]:
        """(id, share of the geometry's area inside it) for every polygon it overlaps."""
        metric = to_metres(geometry)
        out = []
        for i in self._tree.query(geometry, predicate="intersects"):
            inside = to_metres(self._polygons[i].intersection(geometry)).area
            out.append((self._ids[i], inside / metric.area if metric.area else 0.0))
        return sorted(out)


# --- values ----------------------------------------------------------------------------------

def clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text or None


def local_date(text: str | None) -> str | None:
    """ARPA's 'dd/mm/yyyy' (local civil date) → the UTC instant of that local midnight."""
    if not text:
        return None
    day = datetime.strptime(text, "%d/%m/%Y").replace(tzinfo=ROME)
    return iso(day)


def offset_datetime(text: str | None) -> str | None:
    """ds51's 'yyyy/mm/dd hh:mm:ss+01' → UTC ISO 8601."""
    if not text:
        return None
    moment = datetime.strptime(text + "00", "%Y/%m/%d %H:%M:%S%z")
    return iso(moment)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def integer(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise SourceError(f"expected a whole number, got {value!r}")
    return int(number)


# --- datasets --------------------------------------------------------------------------------

def build_areas(source: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    municipi = sorted(read(source, "municipi"), key=lambda f: integer(f[0]["MUNICIPIO"]))
    nil = sorted(read(source, "neighbourhoods"), key=lambda f: integer(f[0]["ID_NIL"]))
    municipi_shapes = simplify_coverage([g for _, g in municipi])
    nil_shapes = simplify_coverage([g for _, g in nil])

    municipio_of = Locator({integer(p["MUNICIPIO"]): g
                            for (p, _), g in zip(municipi, municipi_shapes, strict=True)})
    municipi_out = [
        {"id": integer(props["MUNICIPIO"]), "area": area_m2(original), "geometry": geojson(g)}
        for (props, original), g in zip(municipi, municipi_shapes, strict=True)
    ]
    nil_out = []
    for (props, original), g in zip(nil, nil_shapes, strict=True):
        # A NIL belongs to the municipio holding most of it (a few straddle a boundary).
        shares = municipio_of.shares(g)
        municipio = max(shares, key=lambda item: (item[1], -item[0]))[0]
        nil_out.append({
            "id": integer(props["ID_NIL"]),
            "name": clean_text(props["NIL"]),
            "municipio": municipio,
            "area": area_m2(original),
            "geometry": geojson(g),
        })
    return municipi_out, nil_out


def place(record: dict[str, Any], geometry: Geometry, municipi: Locator,
          neighbourhoods: Locator) -> dict[str, Any]:
    record["municipio"] = municipi.point(geometry)
    record["nil"] = neighbourhoods.point(geometry)
    record["geometry"] = geojson(geometry)
    return record


def point(geometry: Geometry) -> Geometry:
    if geometry.geom_type != "Point":
        raise SourceError(f"expected a Point, got {geometry.geom_type}")
    return snap(geometry)


def build_bike_stations(source: Path, where: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for props, geometry in read(source, "bike_stations"):
        label = clean_text(props["bike_shari"]) or ""
        code, _, name = label.partition(" ")
        if not code.isdigit() or not name:
            raise SourceError(f"BikeMi station label {label!r} is not '<code> <name>'")
        out.append(where({
            "id": integer(props["id_amat"]),
            "code": code,
            "name": name,
            "address": clean_text(props["indirizzo"]),
            "slots": integer(props["stalli"]),
            "year": integer(props["anno"]),
        }, point(geometry)))
    return sorted(out, key=lambda r: r["id"])


def build_car_parks(source: Path, where: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for props, geometry in read(source, "car_parks"):
        out.append(where({
            "id": integer(props["id"]),
            "name": clean_text(props["nome"]),
            "address": clean_text(props["indirizzo"]),
            "locality": clean_text(props["comune"]),
            "spots": integer(props["n_posti"]),
            "kind": clean_text(props["tipo"]),
        }, point(geometry)))
    return sorted(out, key=lambda r: r["id"])


def build_weather_stations(source: Path,
                           where: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per station (IdStazione); the file has one row per sensor."""
    rows: dict[str, list[tuple[dict[str, Any], Geometry]]] = {}
    for props, geometry in read(source, "weather_stations"):
        rows.setdefault(str(props["IdStazione"]), []).append((props, geometry))
    out = []
    for station_id, sensors in rows.items():
        first, geometry = sensors[0]
        for props, other in sensors:
            if not other.equals(geometry) or props["NomeStazione"] != first["NomeStazione"]:
                raise SourceError(f"ARPA station {station_id}: sensors disagree on place/name")
        sensor_out = []
        for props, _ in sorted(sensors, key=lambda s: int(s[0]["IdSensore"])):
            unit_key = next(k for k in props if k.startswith("Unit"))  # "Unità\xa0DiMisura"
            sensor_out.append({
                "id": str(props["IdSensore"]),
                "quantity": ARPA_QUANTITIES[props["Tipologia"]],
                "unit": props[unit_key],
                "since": local_date(props["DataStart"]),
                "until": local_date(props["DataStop"]),
            })
        stops = [s["until"] for s in sensor_out]
        out.append(where({
            "id": station_id,
            "name": clean_text(first["NomeStazione"]),
            "elevation": integer(first["Quota"]),
            "sensors": sensor_out,
            "first_used": min(s["since"] for s in sensor_out if s["since"]),
            # A station is out of service when every one of its sensors has stopped.
            "last_value": max(stops) if all(stops) else None,
        }, point(geometry)))
    return sorted(out, key=lambda r: int(r["id"]))


def build_gates(source: Path, where: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    out = [where({"id": integer(p["id_amat"]), "name": clean_text(p["label"])}, point(g))
           for p, g in read(source, "areac_gates")]
    return sorted(out, key=lambda r: r["id"])


def build_metro_stops(source: Path, where: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for props, geometry in read(source, "metro_stops"):
        lines = [f"M{n.strip()}" for n in str(props["linee"]).split(",") if n.strip()]
        out.append(where({
            "id": integer(props["id_amat"]),
            "name": clean_text(props["nome"]),
            "lines": sorted(lines),
        }, point(geometry)))
    return sorted(out, key=lambda r: r["id"])


def build_bike_lanes(source: Path, where: Callable[..., dict[str, Any]],
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lanes, and the table of their classes: 2,334 lanes share 84 combinations of
    network/kind/seat/direction, and repeating those strings would double the file."""
    rows = read(source, "bike_lanes")

    def lane_class(props: dict[str, Any]) -> tuple[str | None, ...]:
        return tuple(clean_text(props[k]) for k in ("rete", "tipologia", "sede", "marcia"))

    classes = sorted({lane_class(props) for props, _ in rows}, key=lambda c: [x or "" for x in c])
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for props, geometry in rows:
        out.append(where({
            "id": integer(props["id_amat"]),
            "street": clean_text(props["anagrafica"]),
            "class": index[lane_class(props)],
            "length": integer(props["lunghezza"]) if props["lunghezza"] is not None else None,
        }, simplify(geometry, LANE_TOLERANCE_M)))
    table = [dict(zip(("network", "kind", "seat", "direction"), c, strict=True)) for c in classes]
    return table, sorted(out, key=lambda r: r["id"])


def build_restricted_areas(source: Path, municipi: Locator) -> list[dict[str, Any]]:
    out = []
    for props, geometry in read(source, "restricted_areas"):
        simplified = simplify(geometry, RESTRICTED_TOLERANCE_M)
        shares = municipi.shares(simplified)
        inside = [m for m, share in shares if share >= MIN_SCOPE_SHARE]
        if not inside and shares:
            inside = [max(shares, key=lambda item: (item[1], -item[0]))[0]]
        out.append({
            "id": integer(props["id_amat"]),
            "kind": clean_text(props["tipo"]),
            "name": clean_text(props["nome"]),
            "stretch": clean_text(props["tratto"]),
            "order": clean_text(props["ordinanza"]),
            "deliberation": clean_text(props["delibera"]),
            "exemptions": clean_text(props["deroghe"]),
            "notes": clean_text(props["note"]),
            "valid_from": offset_datetime(props["val_inizio"]),
            "valid_to": offset_datetime(props["val_fine"]),
            "municipi": inside,
            "geometry": geojson(simplified),
        })
    return sorted(out, key=lambda r: r["id"])


def build(source: Path) -> dict[str, Any]:
    municipi, neighbourhoods = build_areas(source)
    municipio_of = Locator({m["id"]: shape(m["geometry"]) for m in municipi})
    nil_of = Locator({n["id"]: shape(n["geometry"]) for n in neighbourhoods})

    def where(record: dict[str, Any], geometry: Geometry) -> dict[str, Any]:
        return place(record, geometry, municipio_of, nil_of)

    lane_classes, bike_lanes = build_bike_lanes(source, where)
    return {
        "about": {
            "publisher": "Comune di Milano",
            "license": "CC-BY-4.0",
            "downloaded": "2020",
            "derived_by": "scripts/build_milano_data.py",
            "datasets": {key: dict(meta) for key, meta in DATASETS.items()},
        },
        "municipi": municipi,
        "neighbourhoods": neighbourhoods,
        "bike_stations": build_bike_stations(source, where),
        "car_parks": build_car_parks(source, where),
        "weather_stations": build_weather_stations(source, where),
        "areac_gates": build_gates(source, where),
        "metro_stops": build_metro_stops(source, where),
        "bike_lane_classes": lane_classes,
        "bike_lanes": bike_lanes,
        "restricted_areas": build_restricted_areas(source, municipio_of),
    }


# --- output ----------------------------------------------------------------------------------

def dumps(data: dict[str, Any]) -> str:
    """Compact JSON, one record per line so a rebuild shows up as a readable diff."""

    def compact(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            body = ",\n".join(compact(item) for item in value)
            parts.append(f"{compact(key)}:[\n{body}\n]")
        else:
            parts.append(f"{compact(key)}:{compact(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def summary(data: dict[str, Any]) -> Iterable[str]:
    for key, value in data.items():
        if isinstance(value, list):
            yield f"{key}: {len(value)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with the original GeoJSON files")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output would differ")
    args = parser.parse_args(argv)

    text = dumps(build(args.source))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode()) / 1024:.0f} KiB): "
          + ", ".join(summary(json.loads(text))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
