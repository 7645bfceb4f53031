"""The Milan demo geography: counts match the Comune's datasets, every entity is well-formed
NGSI-LD with a valid WGS84 location, and relationships agree with the shipped geometry."""

from __future__ import annotations

import asyncio
import importlib.util
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import shapely
from shapely.geometry import Point, shape

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.entity import parse_entity
from sinergia.sim.milano import DATA_PROVIDER, MILANO_CONTEXT, city_entities

# Milan's bounding box (the Comune); metro lines run on into neighbouring towns.
CITY_BOX = (9.0, 45.35, 9.35, 45.57)
METRO_BOX = (9.0, 45.35, 9.45, 45.60)
CORE_TERMS = {"location", "description", "status", "scope", "type", "id"}
ATTRIBUTE_KINDS = {"Property", "Relationship", "GeoProperty"}

Entity = dict[str, Any]


@pytest.fixture(scope="module")
def entities() -> list[Entity]:
    return city_entities()


@pytest.fixture(scope="module")
def by_id(entities: list[Entity]) -> dict[str, Entity]:
    return {e["id"]: e for e in entities}


def of_type(entities: list[Entity], entity_type: str, prefix: str = "") -> list[Entity]:
    return [e for e in entities
            if e["type"] == entity_type and e["id"].startswith(f"urn:ngsi-ld:{entity_type}:MI-"
                                                               + prefix)]


def geometry(entity: Entity) -> Any:
    return shape(entity["location"]["value"])


def scopes(entity: Entity) -> list[str]:
    scope = entity.get("scope", [])
    return scope if isinstance(scope, list) else [scope]


def test_counts_match_the_source_datasets(entities: list[Entity]) -> None:
    assert len(of_type(entities, "CityDistrict")) == 9
    assert len(of_type(entities, "Neighbourhood")) == 88
    assert len(of_type(entities, "BikeHireDockingStation")) == 280
    assert len(of_type(entities, "OffStreetParking")) == 53
    assert len(of_type(entities, "Device", "ARPA-")) == 9  # 32 sensor rows, 9 stations
    assert len(of_type(entities, "Device", "AreaC-")) == 42
    assert len(of_type(entities, "PublicTransportStop")) == 110
    assert len(of_type(entities, "BikeLane")) == 2334
    assert len(of_type(entities, "RestrictedTrafficArea")) == 180
    assert len(entities) == 9 + 88 + 280 + 53 + 9 + 42 + 110 + 2334 + 180


def test_ids_are_unique_uris_named_after_the_type(entities: list[Entity]) -> None:
    ids = [e["id"] for e in entities]
    assert len(set(ids)) == len(ids)
    for entity in entities:
        assert isinstance(entity["type"], str)
        assert entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:MI-")


def test_entities_are_normalized_without_context(entities: list[Entity]) -> None:
    for entity in entities:
        assert "@context" not in entity
        for name, attribute in entity.items():
            if name in ("id", "type", "scope"):
                continue
            assert attribute["type"] in ATTRIBUTE_KINDS, (entity["id"], name)
            member = "object" if attribute["type"] == "Relationship" else "value"
            assert attribute[member] is not None, (entity["id"], name)


def test_every_location_is_valid_wgs84_inside_milan(entities: list[Entity]) -> None:
    for entity in entities:
        assert entity["location"]["type"] == "GeoProperty"
        shape_ = geometry(entity)
        assert shape_.is_valid and not shape_.is_empty, entity["id"]
        in_city = entity["type"] != "PublicTransportStop" or "refNeighbourhood" in entity
        xmin, ymin, xmax, ymax = CITY_BOX if in_city else METRO_BOX
        lon_min, lat_min, lon_max, lat_max = shape_.bounds
        assert xmin <= lon_min <= lon_max <= xmax, entity["id"]
        assert ymin <= lat_min <= lat_max <= ymax, entity["id"]


def test_coordinates_have_at_most_six_decimals(entities: list[Entity]) -> None:
    for entity in entities[:200]:  # the areas and the first points: every geometry kind
        coords = shapely.get_coordinates(geometry(entity))
        assert (abs(coords * 1e6 - (coords * 1e6).round()) < 1e-6).all(), entity["id"]


def test_neighbourhoods_belong_to_the_municipio_holding_most_of_them(
        entities: list[Entity], by_id: dict[str, Entity]) -> None:
    municipi = {e["id"]: geometry(e) for e in of_type(entities, "CityDistrict")}
    for nil in of_type(entities, "Neighbourhood"):
        target = nil["refMunicipio"]["object"]
        assert by_id[target]["type"] == "CityDistrict"
        shares = {m: g.intersection(geometry(nil)).area for m, g in municipi.items()}
        assert target == max(shares, key=lambda m: shares[m]), nil["name"]["value"]
        assert scopes(nil) == [f"/Milano/Municipio{target.rsplit('-', 1)[1]}"]


def test_ref_neighbourhood_and_scope_agree_with_the_polygons(
        entities: list[Entity], by_id: dict[str, Entity]) -> None:
    nil_shapes = {e["id"]: geometry(e) for e in of_type(entities, "Neighbourhood")}
    municipio_shapes = {f"/Milano/Municipio{e['id'].rsplit('-', 1)[1]}": geometry(e)
                        for e in of_type(entities, "CityDistrict")}
    nil_union = shapely.union_all(list(nil_shapes.values()))
    located = [e for e in entities
               if e["type"] not in ("CityDistrict", "Neighbourhood", "RestrictedTrafficArea")]
    unplaced = []
    for entity in located:
        shape_ = geometry(entity)
        # Lines are placed by their midpoint.
        probe = shape_ if shape_.geom_type == "Point" else shapely.line_interpolate_point(
            shape_, 0.5, normalized=True)
        if "refNeighbourhood" in entity:
            target = entity["refNeighbourhood"]["object"]
            assert by_id[target]["type"] == "Neighbourhood"
            assert nil_shapes[target].intersects(probe), entity["id"]
        else:
            unplaced.append(entity)
            assert not nil_union.intersects(probe), entity["id"]
        if "scope" in entity:
            [scope] = scopes(entity)
            assert municipio_shapes[scope].intersects(probe), entity["id"]
        else:
            assert not any(m.intersects(probe) for m in municipio_shapes.values()), entity["id"]
    # Outside the Comune: 20 metro stops (Sesto, Cologno, Assago, Rho, the M2 branches) and a
    # few bike lanes running on into the next town.
    assert {e["type"] for e in unplaced} == {"PublicTransportStop", "BikeLane"}
    assert sum(e["type"] == "PublicTransportStop" for e in unplaced) == 20
    assert sum(e["type"] == "BikeLane" for e in unplaced) < 10


def test_restricted_areas_are_scoped_to_the_municipi_they_cover(entities: list[Entity]) -> None:
    municipio_shapes = {f"/Milano/Municipio{e['id'].rsplit('-', 1)[1]}": geometry(e)
                        for e in of_type(entities, "CityDistrict")}
    areas = of_type(entities, "RestrictedTrafficArea")
    for area in areas:
        assert scopes(area), area["id"]
        for scope in scopes(area):
            assert municipio_shapes[scope].intersects(geometry(area)), (area["id"], scope)
    area_b = [a for a in areas if a["areaType"]["value"] == "lowEmissionZone"]
    assert len(area_b) == 1 and len(scopes(area_b[0])) == 9  # Area B covers the whole city


def test_area_c_gates_point_at_area_c(entities: list[Entity], by_id: dict[str, Entity]) -> None:
    area_c = geometry(next(a for a in of_type(entities, "RestrictedTrafficArea")
                           if a["areaType"]["value"] == "congestionCharge"))
    for gate in of_type(entities, "Device", "AreaC-"):
        target = by_id[gate["refRestrictedTrafficArea"]["object"]]
        assert target["areaType"]["value"] == "congestionCharge"
        assert gate["controlledProperty"]["value"] == ["trafficFlow"]
        # Gates sit on Area C's edge: within 100 m (~0.001°) of its boundary.
        assert area_c.boundary.distance(geometry(gate)) < 0.001, gate["name"]["value"]


def test_weather_stations_group_the_arpa_sensors(entities: list[Entity]) -> None:
    stations = {e["id"]: e for e in of_type(entities, "Device", "ARPA-")}
    assert sum(len(s["sensors"]["value"]) for s in stations.values()) == 32
    brera = stations["urn:ngsi-ld:Device:MI-ARPA-620"]
    assert brera["name"]["value"] == "Milano v.Brera"
    assert set(brera["controlledProperty"]["value"]) == {
        "temperature", "humidity", "precipitation", "windDirection", "windSpeed",
        "solarRadiation"}
    # Via Confalonieri's rain gauge stopped in 2012 (replaced by Via Rosellini).
    retired = [s for s in stations.values() if s["deviceState"]["value"] == "decommissioned"]
    assert [s["id"] for s in retired] == ["urn:ngsi-ld:Device:MI-ARPA-890"]
    assert retired[0]["dateLastValueReported"]["value"]["@value"].startswith("2012-04-0")


def test_sample_entities_carry_the_source_values(by_id: dict[str, Entity]) -> None:
    duomo = by_id["urn:ngsi-ld:BikeHireDockingStation:MI-1"]
    assert duomo["name"]["value"] == "Duomo 1"
    assert duomo["stationCode"]["value"] == "001"
    assert duomo["totalSlotNumber"]["value"] == 24
    assert duomo["address"]["value"]["streetAddress"] == "P.za Duomo"
    assert duomo["scope"] == "/Milano/Municipio1"
    assert duomo["refNeighbourhood"]["object"] == "urn:ngsi-ld:Neighbourhood:MI-1"  # DUOMO
    park = by_id["urn:ngsi-ld:OffStreetParking:MI-23"]
    assert (park["name"]["value"], park["totalSpotNumber"]["value"]) == ("Vittor Pisani", 964)
    zara = by_id["urn:ngsi-ld:PublicTransportStop:MI-890"]
    assert zara["lines"]["value"] == ["M3", "M5"]
    assert zara["transportationType"]["value"] == [1]


def test_everything_credits_the_comune(entities: list[Entity]) -> None:
    for entity in entities:
        assert entity["dataProvider"]["value"] == DATA_PROVIDER
        assert entity["source"]["value"].startswith("https://dati.comune.milano.it/dataset/ds")
    assert "CC-BY 4.0" in DATA_PROVIDER


def test_output_is_deterministic_and_not_shared() -> None:
    first, second = city_entities(), city_entities()
    assert first == second
    first[0]["location"]["value"]["coordinates"].clear()  # a caller's edit stays its own
    assert city_entities() == second


def test_context_maps_only_to_smart_data_models_iris(entities: list[Entity]) -> None:
    for term, iri in MILANO_CONTEXT.items():
        assert isinstance(iri, str) and iri.startswith("https://smartdatamodels.org/"), term
        assert iri.endswith("/" + term), term
    assert not CORE_TERMS & set(MILANO_CONTEXT)  # the core context's terms win anyway
    used = {name for e in entities for name in e} | {e["type"] for e in entities}
    assert set(MILANO_CONTEXT) - {"streetAddress", "addressLocality", "addressCountry",
                                  "district"} <= used


def test_every_entity_parses_with_the_resolved_context(entities: list[Entity]) -> None:
    try:
        context = asyncio.run(ContextResolver(allow_remote=False).resolve(MILANO_CONTEXT))
        parsed = [parse_entity(entity, context) for entity in entities]
    except NotImplementedError as exc:
        pytest.skip(f"NGSI-LD context/entity parsing not implemented yet: {exc}")
    assert len(parsed) == len(entities)
    station = next(p for p, e in zip(parsed, entities, strict=True)
                   if e["type"] == "BikeHireDockingStation")
    assert station["type"] == [MILANO_CONTEXT["BikeHireDockingStation"]]
    assert MILANO_CONTEXT["totalSlotNumber"] in station["attrs"]
    nil = next(p for p, e in zip(parsed, entities, strict=True) if e["type"] == "Neighbourhood")
    assert "https://uri.etsi.org/ngsi-ld/default-context/refMunicipio" in nil["attrs"]


def test_packaged_data_stays_compact() -> None:
    size = len(files("sinergia").joinpath("data/milano/milano.json").read_bytes())
    assert size < 1_500_000
    assert files("sinergia").joinpath("data/milano/SOURCES.md").is_file()


# --- the build script's coordinate handling ---------------------------------------------------

@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "build_milano_data.py"
    spec = importlib.util.spec_from_file_location("build_milano_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_converts_projected_files_to_wgs84(build_script: ModuleType) -> None:
    # Piazza del Duomo in UTM 32N and in Monte Mario / Italy zone 1 (Gauss-Boaga).
    for crs, x, y in (("EPSG:32632", 514_853.5, 5_034_536.8),
                      ("EPSG:3003", 1_514_881.5, 5_034_556.8)):
        [converted] = build_script._to_wgs84(crs, [Point(x, y)])
        assert converted.x == pytest.approx(9.1900, abs=1e-5), crs
        assert converted.y == pytest.approx(45.4642, abs=1e-5), crs
    [same] = build_script._to_wgs84("urn:ogc:def:crs:OGC:1.3:CRS84", [Point(9.19, 45.46)])
    assert (same.x, same.y) == (9.19, 45.46)


def test_build_rejects_coordinates_that_contradict_the_declared_crs(
        build_script: ModuleType) -> None:
    with pytest.raises(build_script.SourceError, match="degree range"):
        build_script._to_wgs84("EPSG:4326", [Point(514_838.0, 5_034_588.0)])
    with pytest.raises(build_script.SourceError, match="look like degrees"):
        build_script._to_wgs84("EPSG:32632", [Point(9.19, 45.46)])
    with pytest.raises(build_script.SourceError, match="unknown CRS"):
        build_script._to_wgs84("EPSG:2154", [Point(9.19, 45.46)])


def test_build_turns_local_dates_into_utc(build_script: ModuleType) -> None:
    assert build_script.local_date("15/11/2012") == "2012-11-14T23:00:00Z"  # CET
    assert build_script.local_date("29/06/2001") == "2001-06-28T22:00:00Z"  # CEST
    assert build_script.local_date(None) is None
    assert build_script.offset_datetime("2050/01/01 00:00:00+01") == "2049-12-31T23:00:00Z"


def test_areas_come_before_the_entities_pointing_at_them(entities: list[Entity]) -> None:
    # The order is part of the contract: areas first, so relationship targets exist before
    # the entities that point at them when posted one by one.
    order = list(dict.fromkeys(e["type"] for e in entities))
    assert order[:3] == ["CityDistrict", "Neighbourhood", "RestrictedTrafficArea"]
    position = {e["id"]: i for i, e in enumerate(entities)}
    for i, entity in enumerate(entities):
        for attribute in entity.values():
            if isinstance(attribute, dict) and attribute.get("type") == "Relationship":
                assert position[attribute["object"]] < i, entity["id"]
