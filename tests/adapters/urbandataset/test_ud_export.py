"""NGSI-LD history → UrbanDataset 2.0: valid against ENEA's schema, and values round-trip."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.adapters.urbandataset import (
    EmptyExport,
    export_document,
    import_document,
    validate,
)
from sinergia.adapters.urbandataset.mapping import spec_base_name

Doc = Callable[[str], dict[str, Any]]
Raw = Callable[[str], bytes]
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
PRODUCED = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
TEMPLATES = Path(str(importlib.resources.files("sinergia").joinpath(
    "data/urbandataset/templates")))


def history(entities: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """What must survive a round trip: per entity and attribute, the (time, value, unit)s."""
    return {
        item["id"]: {
            name: [(instance["observedAt"], instance["value"], instance.get("unitCode"))
                   for instance in instances]
            for name, instances in item.items() if name not in ("id", "type", "@context")
        }
        for item in entities
    }


def export(entities: list[dict[str, Any]], spec_id: str, **options: Any) -> dict[str, Any]:
    options.setdefault("period", EVER)
    options.setdefault("timestamp", PRODUCED)
    return export_document(entities, spec_id=spec_id, producer_id=options.pop("producer",
                           "PELL-Milano-Illuminazione"), **options)


@pytest.mark.parametrize("name", [
    "counter-reading-2.0.json", "air-monitoring-2.0.json", "weather-condition-2.0-ist.json",
    "weather-condition-2.0.xml", "lighting-point-status-2.0.json", "presences-2.0.json",
])
@pytest.mark.parametrize("time_zone", ["UTC+1", "UTC+5:30", "UTC-3"])
def test_import_export_import_keeps_every_value(fixture_bytes: Raw, name: str,
                                                time_zone: str) -> None:
    first = import_document(fixture_bytes(name))
    document = export(first.entities, first.spec_id, producer=first.producer_id,
                      time_zone=time_zone)
    assert validate(document) == []
    assert document["UrbanDataset"]["context"]["timeZone"] == time_zone
    second = import_document(document)
    assert second.report.repairs == [] and second.report.skipped == []
    assert second.report.warnings == []
    assert history(second.entities) == history(first.entities)


def test_exported_counter_reading_reads_like_the_original(fixture_doc: Doc) -> None:
    original = fixture_doc("counter-reading-2.0.json")["UrbanDataset"]
    result = import_document({"UrbanDataset": original})
    exported = export(result.entities, "CounterReading-2.0")["UrbanDataset"]
    assert exported["specification"]["id"] == {"value": "CounterReading-2.0", "schemeID": "SCPS"}
    assert exported["specification"]["properties"] == original["specification"]["properties"]
    context = exported["context"]
    assert context["producer"] == {"id": "PELL-Milano-Illuminazione"}
    assert (context["timeZone"], context["timestamp"]) == ("UTC+1", "2026-11-21T07:00:00")
    # the document's place: the mean of the three meters'
    assert context["coordinates"] == {"format": "WGS84-DD",
                                      "latitude": pytest.approx((45.4781 + 45.4609 + 45.4408) / 3),
                                      "longitude": pytest.approx((9.2262 + 9.1796 + 9.1921) / 3)}
    first = exported["values"]["line"][0]
    assert first["period"] == {"start_ts": "2026-11-20T00:00:00", "end_ts": "2026-11-20T00:15:00"}
    assert first["coordinates"] == {"format": "WGS84-DD", "latitude": 45.4781,
                                    "longitude": 9.2262}
    by_name = {item["name"]: item["val"] for item in first["property"]}
    written = {item["name"]: item["val"]
               for item in original["values"]["line"][0]["property"]}
    assert {name: float(value) for name, value in by_name.items()
            if name not in ("PODID", "ElectricPanelID", "TownCode")} == \
        {name: float(value) for name, value in written.items()
         if name not in ("PODID", "ElectricPanelID", "TownCode")}
    assert by_name["PODID"] == "IT001E00112233" and by_name["TownCode"] == "015146"
    assert [line["id"] for line in exported["values"]["line"]] == list(range(1, 13))


def test_the_period_selects_instances_start_included_end_excluded(fixture_doc: Doc) -> None:
    entities = import_document(fixture_doc("counter-reading-2.0.json")).entities
    start = datetime(2026, 11, 19, 23, 15, tzinfo=UTC)
    document = export(entities, "CounterReading-2.0", period=(start, start + timedelta(
        minutes=30)))
    periods = {line["period"]["start_ts"] for line in document["UrbanDataset"]["values"]["line"]}
    assert periods == {"2026-11-20T00:15:00", "2026-11-20T00:30:00"}
    assert len(document["UrbanDataset"]["values"]["line"]) == 6


def test_period_bounds_in_any_offset(fixture_doc: Doc) -> None:
    entities = import_document(fixture_doc("counter-reading-2.0.json")).entities
    rome = timezone(timedelta(hours=1))
    document = export(entities, "CounterReading-2.0",
                      period=(datetime(2026, 11, 20, 0, 45, tzinfo=rome),
                              datetime(2026, 11, 20, 1, 0, tzinfo=rome)))
    assert len(document["UrbanDataset"]["values"]["line"]) == 3


def test_no_values_in_the_period(fixture_doc: Doc) -> None:
    entities = import_document(fixture_doc("counter-reading-2.0.json")).entities
    with pytest.raises(EmptyExport, match="no CounterReading values"):
        export(entities, "CounterReading-2.0",
               period=(datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)))


def test_bad_arguments(fixture_doc: Doc) -> None:
    entities = import_document(fixture_doc("counter-reading-2.0.json")).entities
    with pytest.raises(ValueError, match="aware"):
        export(entities, "CounterReading-2.0", period=(datetime(2026, 1, 1), datetime(2027, 1, 1)))
    with pytest.raises(ValueError, match="fixed offset"):
        export(entities, "CounterReading-2.0", time_zone="Europe/Rome")


def test_smart_data_model_entities_from_elsewhere_export_as_weather_condition() -> None:
    """Entities that never were UrbanDatasets (e.g. from an MQTT weather station) export too:
    only the specification's properties are written, in its units."""
    station = {
        "id": "urn:ngsi-ld:WeatherObserved:MI-Brera", "type": "WeatherObserved",
        "temperature": [{"type": "Property", "value": 7.5, "unitCode": "CEL",
                         "observedAt": "2026-11-20T10:00:00.000Z"},
                        {"type": "Property", "value": 8.0, "unitCode": "CEL",
                         "observedAt": "2026-11-20T11:00:00Z"}],
        "atmosphericPressure": [{"type": "Property", "value": 101_250.0, "unitCode": "PAL",
                                 "observedAt": "2026-11-20T10:00:00.000Z"}],
        "windSpeed": [{"type": "Property", "value": 18.0, "unitCode": "KMH",
                       "observedAt": "2026-11-20T10:00:00.000Z"}],
        "name": {"type": "Property", "value": "Milano Brera"},  # no observedAt: holds always
        "refDevice": [{"type": "Relationship", "object": "urn:ngsi-ld:Device:x",
                       "observedAt": "2026-11-20T10:00:00.000Z"}],
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [9.1881, 45.4719]}},
        "@context": ["https://w3id.org/sinergia/urbandataset-context.jsonld"],
    }
    document = export([station], "WeatherCondition", producer="Sinergia-Milano")
    assert validate(document) == []
    lines = document["UrbanDataset"]["values"]["line"]
    assert len(lines) == 2
    first = {item["name"]: item["val"] for item in lines[0]["property"]}
    assert first == {"AirTemperature": "7.5", "AtmosphericPressure": "1012.5",
                     "WindSpeed": "5.0", "MeteoStationName": "Milano Brera"}
    assert lines[0]["timestamp"] == "2026-11-20T11:00:00"
    assert lines[0]["coordinates"] == {"format": "WGS84-DD", "latitude": 45.4719,
                                       "longitude": 9.1881}
    assert document["UrbanDataset"]["specification"]["id"]["value"] == "WeatherCondition-2.0"


def test_unconvertible_units_are_left_out() -> None:
    meter = {"id": "urn:ngsi-ld:ThreePhaseAcMeasurement:m1", "type": "ThreePhaseAcMeasurement",
             "totalActivePower": [{"type": "Property", "value": 5.0, "unitCode": "KEL",
                                   "observedAt": "2026-11-20T10:00:00.000Z"}],
             "totalActiveEnergyImport": [{"type": "Property", "value": 1500.0, "unitCode": "WHR",
                                          "observedAt": "2026-11-20T10:00:00.000Z"}]}
    document = export([meter], "CounterReading-2.0")
    (line,) = document["UrbanDataset"]["values"]["line"]
    assert line["property"] == [{"name": "TotalActiveEnergy", "val": "1.5"}]


def test_unknown_specifications_get_definitions_from_their_values(fixture_bytes: Raw) -> None:
    first = import_document(fixture_bytes("lighting-point-status-2.0.json"))
    document = export(first.entities, "LightingPointStatus-2.0", producer="Comune-di-Bergamo-PL")
    definitions = {item["propertyName"]: item for item in
                   document["UrbanDataset"]["specification"]["properties"]["propertyDefinition"]}
    assert definitions["DimmingLevel"] == {"propertyName": "DimmingLevel", "dataType": "integer",
                                           "unitOfMeasure": "percent"}
    assert definitions["Fault"]["dataType"] == "boolean"
    assert definitions["SwitchOnTime"]["dataType"] == "Time"
    assert definitions["LastMaintenance"]["dataType"] == "dateTime"
    assert definitions["Supply"] == {"propertyName": "Supply", "subProperties": {
        "propertyName": ["SupplyVoltage", "SupplyCurrent"]}}
    assert definitions["SupplyVoltage"]["dataType"] == "double"
    assert definitions["period"]["subProperties"] == {"propertyName": ["start_ts", "end_ts"]}
    assert "coordinates" in definitions
    line = document["UrbanDataset"]["values"]["line"][0]
    assert line["description"] == "Via XX Settembre 12"
    assert {"name": "Supply", "property": [{"name": "SupplyVoltage", "val": "229.7"},
                                           {"name": "SupplyCurrent", "val": "0.41"}]} \
        in line["property"]


def template_document(path: Path) -> dict[str, Any]:
    """A filled-in copy of one of ENEA's templates: two entities, two periods each."""
    document = orjson.loads(path.read_bytes())
    ud = document["UrbanDataset"]
    definitions = {item["propertyName"]: item
                   for item in ud["specification"]["properties"]["propertyDefinition"]}
    ud["context"]["producer"] = {"id": "Sinergia-Test", "schemeID": "SCPS"}
    ud["context"]["coordinates"] = {"format": "WGS84-DD", "latitude": 45.46, "longitude": 9.19}
    template_line = ud["values"]["line"][0]
    samples = {"double": "12.5", "integer": "7", "boolean": "true",
               "dateTime": "2026-11-20T08:30:00", "Time": "08:30:00", "enumeration": "Push"}
    lines = []
    for number, (entity, hour) in enumerate([(0, 8), (1, 8), (0, 9), (1, 9)], start=1):
        line: dict[str, Any] = {"id": number}
        if "coordinates" in template_line:
            line["coordinates"] = {"format": "WGS84-DD", "latitude": 45.4 + entity / 100,
                                   "longitude": 9.1 + entity / 100}
        if "period" in template_line:
            line["period"] = {"start_ts": f"2026-11-20T{hour:02d}:00:00",
                              "end_ts": f"2026-11-20T{hour:02d}:59:59"}
        else:
            line["timestamp"] = f"2026-11-20T{hour:02d}:00:00"
        line["property"] = [
            {"name": item["name"],
             "val": samples.get(definitions[item["name"]]["dataType"], f"{item['name']}-{entity}")}
            for item in template_line["property"]
        ]
        lines.append(line)
    ud["values"]["line"] = lines
    return document


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*-2.0-Template.json")),
                         ids=lambda path: path.name.removesuffix("-Template.json"))
def test_every_enea_specification_round_trips(path: Path) -> None:
    document = template_document(path)
    assert validate(document) == []
    first = import_document(document)
    assert first.report.repairs == [] and first.report.skipped == []
    assert first.report.warnings == []
    assert first.report.counts["imported"] == 4
    assert len(first.entities) == 2
    exported = export(first.entities, first.spec_id, producer="Sinergia-Test")
    assert validate(exported) == []
    second = import_document(exported)
    assert history(second.entities) == history(first.entities)
    assert spec_base_name(second.spec_id) == path.name.removesuffix("-2.0-Template.json")


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(energy=finite, voltages=st.lists(finite, min_size=1, max_size=3),
       offset=st.integers(min_value=-12 * 60, max_value=14 * 60),
       start=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2090, 1, 1)))
def test_generated_readings_round_trip(energy: float, voltages: list[float], offset: int,
                                       start: datetime) -> None:
    zone_text = f"UTC{'-' if offset < 0 else '+'}{abs(offset) // 60}:{abs(offset) % 60:02d}"
    start = start.replace(microsecond=0)
    properties = [{"name": "PODID", "val": "IT001E00000001"},
                  {"name": "TotalActiveEnergy", "val": repr(energy)}]
    properties += [{"name": f"Phase{n}Voltage", "val": repr(value)}
                   for n, value in enumerate(voltages, start=1)]
    document = {"UrbanDataset": {
        "specification": {"version": "2.0", "id": {"value": "CounterReading-2.0"},
                          "name": "Counter Reading", "uri": "x#CounterReading"},
        "context": {"producer": {"id": "p"}, "timeZone": zone_text,
                    "timestamp": start.isoformat(),
                    "coordinates": {"latitude": 45.0, "longitude": 9.0}},
        "values": {"line": [{"id": 1, "period": {
            "start_ts": start.isoformat(),
            "end_ts": (start + timedelta(minutes=15)).isoformat()}, "property": properties}]}}}
    first = import_document(document)
    assert first.report.skipped == []
    exported = export(first.entities, "CounterReading-2.0", time_zone=zone_text, producer="p")
    assert validate(exported) == []
    line = exported["UrbanDataset"]["values"]["line"][0]
    assert line["period"]["start_ts"] == start.isoformat()
    assert history(import_document(exported).entities) == history(first.entities)


def test_line_timestamps_descriptions_and_context_options(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    line = document["UrbanDataset"]["values"]["line"][0]
    line["timestamp"] = "2026-11-20T11:02:00"  # when the hourly value was computed
    line["description"] = "Media oraria validata"
    first = import_document(document)
    station = next(item for item in first.entities if item["id"].endswith(":MI-SeniGallia"))
    assert station["dateObserved"][0]["value"] == {"@type": "DateTime",
                                                   "@value": "2026-11-20T10:02:00.000Z"}
    exported = export(first.entities, "AirMonitoring-2.0", producer="ARPA-Lombardia",
                      producer_scheme="SCPS", coordinates=(45.47, 9.2), language="IT")
    assert validate(exported) == []
    context = exported["UrbanDataset"]["context"]
    assert context["producer"] == {"id": "ARPA-Lombardia", "schemeID": "SCPS"}
    assert context["coordinates"] == {"format": "WGS84-DD", "latitude": 45.47, "longitude": 9.2}
    assert context["language"] == "IT"
    (written,) = [item for item in exported["UrbanDataset"]["values"]["line"]
                  if {"name": "LocationID", "val": "MI-SeniGallia"} in item["property"]
                  and item["period"]["start_ts"] == "2026-11-20T10:00:00"]
    assert written["timestamp"] == "2026-11-20T11:02:00"
    assert written["description"] == "Media oraria validata"
    assert written["period"] == {"start_ts": "2026-11-20T10:00:00",
                                 "end_ts": "2026-11-20T11:00:00"}
    assert history(import_document(exported).entities) == history(first.entities)
