"""Importing tables end to end: rows → entities through a BrokerClient (in-process and over
HTTP), good rows committed, bad rows reported with their line, entities read back through the
NGSI-LD API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from sinergia.adapters.broker_client import BrokerClient
from sinergia.adapters.tabular.importer import import_table
from sinergia.adapters.tabular.mapping import MappingError, load_mapping, parse_mapping
from sinergia.cli import app
from sinergia.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "/ngsi-ld/v1"
PARKING = "https://smartdatamodels.org/dataModel.Parking/"
SENATO_10 = "urn:ngsi-ld:AirQualityObserved:MI-Senato-01%2F03%2F2024%2010:00"


@pytest.fixture(params=["in-process", "http"])
def broker(request: pytest.FixtureRequest, live_broker: Any) -> BrokerClient:
    if request.param == "in-process":
        return live_broker.in_process
    return live_broker.over_http()


async def entity(live_broker: Any, entity_id: str, **params: str) -> dict[str, Any]:
    response = await live_broker.http.get(f"{BASE}/entities/{quote(entity_id, safe=':')}",
                                          params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.anyio
async def test_italian_csv_good_rows_committed_bad_rows_reported(
        broker: BrokerClient, live_broker: Any) -> None:
    progress: list[tuple[int, int | None]] = []
    report = await import_table(FIXTURES / "qualita_aria.csv",
                                load_mapping(FIXTURES / "qualita_aria.yaml"), broker,
                                chunk_size=2, on_progress=lambda *p: progress.append(p))
    assert (report.rows, report.written, report.error_count) == (9, 4, 5)
    assert report.encoding == "cp1252" and report.delimiter == ";"
    problems = {error.row: error for error in report.errors}
    assert sorted(problems) == [5, 6, 8, 9, 10]
    assert problems[5].column == "data" and "31/02/2024" in problems[5].message
    assert problems[6].column == "no2" and "3,4,5" in problems[6].message
    assert problems[8].column == "stazione" and "empty" in problems[8].message
    assert "has 3 fields" in problems[9].message
    # refused by the broker, not the mapping: the row is still found from the entity id
    assert problems[10].entity_id is not None and "latitude 145" in problems[10].message
    assert str(problems[5]).startswith("line 5, column 'data': ")
    assert progress[-1] == (9, 9) and [done for done, _ in progress] == sorted(
        done for done, _ in progress)

    senato = await entity(live_broker, SENATO_10)
    assert senato["type"] == "AirQualityObserved"
    assert senato["NO2"] == {"type": "Property", "value": 32.5, "unitCode": "GQ",
                             "observedAt": "2024-03-01T09:00:00.000Z"}  # 10:00 in Rome
    assert "PM10" not in senato  # -999 means no reading
    assert senato["name"] == {"type": "Property", "value": "Milano Senato"}
    assert senato["active"]["value"] is True
    assert senato["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:MI-Senato"}
    assert senato["dataProvider"]["value"] == "Comune di Milano"
    assert senato["location"]["value"] == {"type": "Point", "coordinates": [9.1973, 45.4705]}
    verziere = await entity(live_broker, SENATO_10.replace("Senato", "Verziere"),
                            options="keyValues")
    assert verziere["NO2"] == 1041.0  # 1.041,0 with a thousands point
    citta_studi = await entity(live_broker, SENATO_10.replace("Senato", "CittaStudi"),
                               options="keyValues")
    assert citta_studi["name"] == "Città Studi" and "temperature" not in citta_studi

    found = await live_broker.http.get(f"{BASE}/entities", params={
        "type": "AirQualityObserved", "q": "NO2>30", "options": "keyValues", "attrs": "NO2"})
    assert sorted(e["NO2"] for e in found.json()) == [30.1, 32.5, 1041.0]


@pytest.mark.anyio
async def test_geojson_features_with_a_context(broker: BrokerClient, live_broker: Any) -> None:
    report = await import_table(FIXTURES / "parcheggi.geojson",
                                load_mapping(FIXTURES / "parcheggi.yaml"), broker)
    assert (report.rows, report.written) == (5, 3)
    assert [(e.label, e.row, e.column) for e in report.errors] == [
        ("feature", 4, "id"), ("feature", 5, "apertura")]
    parks = await live_broker.http.get(f"{BASE}/entities", params={
        "type": PARKING + "OffStreetParking", "options": "keyValues", "limit": "10"})
    by_id = {p["id"]: p for p in parks.json()}
    assert set(by_id) == {f"urn:ngsi-ld:OffStreetParking:MI-{n}" for n in (11, 12, 13)}
    cesare = by_id["urn:ngsi-ld:OffStreetParking:MI-11"]
    assert cesare[PARKING + "totalSpotNumber"] == 116
    assert cesare["https://smartdatamodels.org/address"] == "Piazza Giulio Cesare, Milano"
    assert cesare["dateOpened"] == {"@type": "Date", "@value": "2005-09-01"}
    assert cesare["location"]["coordinates"] == [9.155567631859647, 45.47389318024339]
    bonola = by_id["urn:ngsi-ld:OffStreetParking:MI-13"]
    assert bonola["location"]["type"] == "Polygon"
    assert PARKING + "totalSpotNumber" not in bonola  # -999 in a GeoJSON number
    near = await live_broker.http.get(f"{BASE}/entities", params={
        "type": PARKING + "OffStreetParking", "georel": "near;maxDistance==300",
        "geometry": "Point", "coordinates": "[9.1765,45.4625]", "options": "keyValues"})
    assert [p["id"] for p in near.json()] == ["urn:ngsi-ld:OffStreetParking:MI-12"]


@pytest.mark.anyio
async def test_reprojection_wkt_and_scope(tmp_path: Path, live_broker: Any) -> None:
    path = tmp_path / "lampioni.csv"
    # Gauss-Boaga (EPSG:3003) coordinates, as older municipal GIS exports have them
    path.write_text("codice,x,y,municipio\nL1,1514000,5034000,1\nL2,,,2\n", encoding="utf-8")
    mapping = parse_mapping({
        "type": "Streetlight", "id": "{codice}", "scope": "/Milano/Municipio{municipio}",
        "geometry": {"lon": "x", "lat": "y", "crs": "EPSG:3003"},
        "attributes": {"municipio": {"column": "municipio", "parser": "integer"}}})
    report = await import_table(path, mapping, live_broker.in_process)
    assert report.ok and report.written == 2
    lamp = await entity(live_broker, "urn:ngsi-ld:Streetlight:L1", options="keyValues")
    lon, lat = lamp["location"]["coordinates"]
    assert lon == pytest.approx(9.1787, abs=1e-3) and lat == pytest.approx(45.4592, abs=1e-3)
    assert lamp["scope"] == "/Milano/Municipio1"
    assert "location" not in await entity(live_broker, "urn:ngsi-ld:Streetlight:L2")

    wkt = tmp_path / "aree.csv"
    wkt.write_text('id;area\nA;"POLYGON ((9.1 45.4, 9.2 45.4, 9.2 45.5, 9.1 45.4))"\n',
                   encoding="utf-8")
    areas = parse_mapping({"type": "Area", "id": "{id}", "geometry": {"wkt": "area"}})
    assert (await import_table(wkt, areas, live_broker.in_process)).ok
    area = await entity(live_broker, "urn:ngsi-ld:Area:A", options="keyValues")
    assert area["location"]["type"] == "Polygon"


@pytest.mark.anyio
async def test_a_mapping_that_does_not_fit_the_file_writes_nothing(
        tmp_path: Path, live_broker: Any) -> None:
    path = tmp_path / "t.csv"
    path.write_text("codice;valore\nA;1\n", encoding="utf-8")
    mapping = parse_mapping({"type": "T", "id": "{codice}",
                             "attributes": {"v": {"column": "value"}}})
    with pytest.raises(MappingError, match=r"'value'.*columns are 'codice', 'valore'"):
        await import_table(path, mapping, live_broker.in_process)
    response = await live_broker.http.get(f"{BASE}/entities", params={"type": "T"})
    assert response.json() == []


@pytest.mark.anyio
async def test_duplicate_ids_in_a_file_count_each_row(tmp_path: Path, live_broker: Any) -> None:
    path = tmp_path / "t.csv"
    path.write_text("codice;valore\nA;1\nA;2\nB;3\n", encoding="utf-8")
    mapping = parse_mapping({"type": "T", "id": "{codice}",
                             "attributes": {"v": {"column": "valore", "parser": "integer"}}})
    report = await import_table(path, mapping, live_broker.in_process)
    assert report.written == 3 and report.ok
    assert (await entity(live_broker, "urn:ngsi-ld:T:A", options="keyValues"))["v"] == 2


def test_command_line_import_into_a_database(tmp_path: Path, settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the command opens its own store")
    database = f"sqlite:///{tmp_path / 'city.db'}"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "table", str(FIXTURES / "qualita_aria.csv"),
                                 "--mapping", str(FIXTURES / "qualita_aria.yaml"),
                                 "--database", database])
    assert result.exit_code == 1, result.output  # some rows refused
    assert "4 of 9 rows imported, 5 refused" in result.output
    assert "line 6, no2" in result.output and "[longitude, latitude]" in result.output
    again = runner.invoke(app, ["import", "table", str(FIXTURES / "parcheggi.geojson"),
                                "--mapping", str(FIXTURES / "parcheggi.yaml"),
                                "--database", database, "--tenant", "comune_milano"])
    assert again.exit_code == 1 and "3 of 5 rows imported" in again.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(json.dumps({"type": "T"}), encoding="utf-8")
    bad = runner.invoke(app, ["import", "table", str(FIXTURES / "qualita_aria.csv"),
                              "--mapping", str(broken), "--database", database])
    assert bad.exit_code == 2 and "id: Field required" in bad.output
