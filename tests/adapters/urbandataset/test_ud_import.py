"""UrbanDataset → NGSI-LD temporal entities: types, ids, typed values, UTC times, units,
locations, and the report of repairs and skipped lines on defective documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.adapters.urbandataset import (
    CONTEXT,
    ImportResult,
    UrbanDatasetError,
    import_document,
)

Doc = Callable[[str], dict[str, Any]]
Raw = Callable[[str], bytes]


def entity(result: ImportResult, suffix: str) -> dict[str, Any]:
    found = [item for item in result.entities if item["id"].endswith(suffix)]
    assert len(found) == 1, [item["id"] for item in result.entities]
    return found[0]


def test_counter_reading_becomes_three_phase_measurements(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("counter-reading-2.0.json"))
    assert (result.spec_id, result.version) == ("CounterReading-2.0", "2.0")
    assert result.entity_type == "ThreePhaseAcMeasurement"
    assert result.report.repairs == [] and result.report.skipped == []
    assert result.report.counts == {"lines": 12, "imported": 12, "skipped": 0, "values": 204,
                                    "empty": 0, "entities": 3, "instances": 159}
    meter = entity(result, ":IT001E00112233")
    assert meter["id"] == ("urn:ngsi-ld:ThreePhaseAcMeasurement:PELL-Milano-Illuminazione:"
                           "CounterReading:IT001E00112233")
    assert meter["type"] == "ThreePhaseAcMeasurement"
    assert meter["@context"] == CONTEXT
    energy = meter["totalActiveEnergyImport"]
    assert [instance["observedAt"] for instance in energy] == [
        "2026-11-19T23:00:00.000Z", "2026-11-19T23:15:00.000Z",
        "2026-11-19T23:30:00.000Z", "2026-11-19T23:45:00.000Z"]
    assert energy[0] == {"type": "Property", "value": 15820.5,
                         "observedAt": "2026-11-19T23:00:00.000Z", "unitCode": "KWH"}
    assert meter["phaseVoltage"][0]["value"] == {"L1": 230.1, "L2": 229.6, "L3": 231.0}
    assert meter["phaseVoltage"][0]["unitCode"] == "VLT"
    assert meter["current"][0]["unitCode"] == "AMP"
    assert meter["totalReactiveEnergyImport"][0]["unitCode"] == "K3"
    assert meter["podId"][0]["value"] == "IT001E00112233"
    assert "unitCode" not in meter["podId"][0]
    assert meter["townCode"][0]["value"] == "015146"  # a code stays text, leading zero kept
    assert meter["dateObservedTo"][0]["value"] == {"@type": "DateTime",
                                                   "@value": "2026-11-19T23:15:00.000Z"}
    # A fixed meter: one location instance, not one per line.
    assert meter["location"] == [{"type": "GeoProperty", "observedAt": "2026-11-19T23:00:00.000Z",
                                  "value": {"type": "Point", "coordinates": [9.2262, 45.4781]}}]


def test_latest_holds_the_last_instance_of_each_attribute(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("counter-reading-2.0.json"))
    assert [item["id"] for item in result.latest] == [item["id"] for item in result.entities]
    current = next(item for item in result.latest if item["id"].endswith(":IT001E00112233"))
    assert current["totalActivePower"] == {"type": "Property", "value": 10.75, "unitCode": "KWT",
                                           "observedAt": "2026-11-19T23:45:00.000Z"}
    assert current["location"]["type"] == "GeoProperty"
    assert current["@context"] == CONTEXT


def test_air_monitoring_uses_air_quality_observed_names(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("air-monitoring-2.0.json"))
    station = entity(result, ":AirMonitoring:MI-Pascal")
    assert station["type"] == "AirQualityObserved"
    assert station["pm25"][0]["value"] == 26.0
    assert station["pm25"][0]["unitCode"] == "GQ"
    assert station["no2"][0]["unitCode"] == "59"
    assert station["volatileOrganicCompoundsTotal"][0]["unitCode"] == "61"
    assert station["name"][0]["value"] == "Milano - Pascal Città Studi"
    assert [item["observedAt"] for item in station["pm10"]] == ["2026-11-20T09:00:00.000Z",
                                                                 "2026-11-20T10:00:00.000Z"]


def test_half_hour_time_zone(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("weather-condition-2.0-ist.json"))
    weather = entity(result, ":PUNE-SHIVAJINAGAR")
    assert weather["type"] == "WeatherObserved"
    assert weather["temperature"][0] == {"type": "Property", "value": 17.1, "unitCode": "CEL",
                                         "observedAt": "2026-11-19T21:30:00.000Z"}
    assert weather["relativeHumidity"][0]["unitCode"] == "P1"  # ENEA: in percent
    assert weather["windSpeed"][0]["unitCode"] == "MTS"
    assert weather["dateObservedTo"][0]["value"]["@value"] == "2026-11-19T22:29:59.000Z"
    assert weather["location"][0]["value"]["coordinates"] == [73.8475, 18.5308, 559.0]


def test_xml_reads_like_json(fixture_bytes: Raw) -> None:
    result = import_document(fixture_bytes("weather-condition-2.0.xml"))
    assert result.report.repairs == [] and result.report.skipped == []
    weather = entity(result, ":WeatherCondition:MI-LAMBRATE")
    assert [item["value"] for item in weather["temperature"]] == [8.4, 9.1]
    assert weather["temperature"][0]["observedAt"] == "2026-11-20T09:00:00.000Z"
    assert weather["location"][0]["value"]["coordinates"] == [9.2211, 45.4736, 122.0]
    text_result = import_document(fixture_bytes("weather-condition-2.0.xml").decode())
    assert text_result.entities == result.entities


def test_json_bytes_text_and_dict_read_the_same(fixture_bytes: Raw, fixture_doc: Doc) -> None:
    name = "air-monitoring-2.0.json"
    from_dict = import_document(fixture_doc(name)).entities
    assert import_document(fixture_bytes(name)).entities == from_dict
    assert import_document(fixture_bytes(name).decode()).entities == from_dict
    assert import_document(b"\xef\xbb\xbf" + fixture_bytes(name)).entities == from_dict


def test_a_gateway_push_envelope_is_unwrapped(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    envelope = {"resource_id": "SCP-MI_ARPA-1_AirMonitoring-2.0_20260101000000",
                "dataset": document}
    assert import_document(envelope).entities == import_document(document).entities


def test_defective_1_0_document_is_repaired_and_reported(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("counter-reading-1.0-defective.json"))
    report = result.report
    assert result.version == "1.0"
    assert result.entity_type == "ThreePhaseAcMeasurement"
    repairs = set(report.repairs)
    for expected in [
        (None, "property 'ActiveEnergy' read as 'TotalActiveEnergy', its 2.0 name"),
        (None, "property 'VoltagePhase1' read as 'Phase1Voltage', its 2.0 name"),
        (None, "property 'TotalActiveEnergy': unit 'chilowattora' read as 'kilowattHour'"),
        (None, "property 'PODID': unit 'adimensionale' read as 'dimensionless'"),
        (None, "property 'TotalActivePower': dataType 'Double' read as 'double'"),
        (None, "context coordinates (0, 0) are a placeholder; ignored"),
        (1, "TotalActiveEnergy: decimal comma in '158,92' read as a point"),
        (1, "timestamp '2026-11-20T24:00:00' read as 00:00 of the next day"),
        (2, "property 'podid' read as the defined 'PODID'"),
        (2, "Phase1Voltage: value written as a JSON number"),
        (5, "coordinates (0, 0) are a placeholder; ignored"),
    ]:
        assert expected in repairs
    assert report.skipped == [
        (2, "TotalActivePower: 'n/a' is not a number"),
        (3, "period ends (2026-11-21T00:00:00) before it starts (2026-11-22T00:00:00)"),
        (4, "no readable value"),
    ]
    warnings = [message for _, message in report.warnings]
    assert any("'id1' is a placeholder" in message for message in warnings)
    assert any("'Temperatura' is not defined" in message for message in warnings)
    assert report.counts["imported"] == 3 and report.counts["skipped"] == 2
    assert report.counts["empty"] == 3

    meter = entity(result, ":id1:CounterReading:IT001E99887766")
    assert [item["value"] for item in meter["totalActiveEnergyImport"]] == [158.92, 161.07]
    assert meter["totalActiveEnergyImport"][0]["unitCode"] == "KWH"
    assert meter["totalActivePower"] == [{"type": "Property", "value": 6.6, "unitCode": "KWT",
                                          "observedAt": "2026-11-19T23:00:00.000Z"}]
    assert meter["phaseVoltage"][1]["value"] == {"L1": 229.8, "L2": 231.1}
    assert meter["dateObservedTo"][0]["value"]["@value"] == "2026-11-20T23:00:00.000Z"
    other = entity(result, ":IT001E11223344")
    assert "location" not in other  # (0, 0) was a placeholder, and so is the context's
    assert other["Temperatura"][0]["value"] == "21"


def test_report_summary_and_dict(fixture_doc: Doc) -> None:
    report = import_document(fixture_doc("counter-reading-1.0-defective.json")).report
    assert ("TotalActiveEnergy: decimal comma in '158,92' read as a point", 1) in report.summary()
    as_dict = orjson.loads(orjson.dumps(report.as_dict()))
    assert as_dict["skipped"][0] == [2, "TotalActivePower: 'n/a' is not a number"]


def test_aggregated_properties_and_other_types(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("lighting-point-status-2.0.json"))
    assert result.entity_type == "LightingPointStatus"
    assert result.report.repairs == [] and result.report.warnings == []
    lamp = entity(result, ":BG-PL-00017")
    assert lamp["Supply"][0]["value"] == {"SupplyVoltage": 229.7, "SupplyCurrent": 0.41}
    assert "unitCode" not in lamp["Supply"][0]  # volts and amperes: no single unit
    assert lamp["DimmingLevel"][0] == {"type": "Property", "value": 70, "unitCode": "P1",
                                       "observedAt": "2026-06-30T19:00:00.000Z"}
    assert lamp["Fault"][0]["value"] is False
    assert lamp["SwitchOnTime"][0]["value"] == {"@type": "Time", "@value": "21:14:00"}
    assert lamp["LastMaintenance"][0]["value"] == {"@type": "DateTime",
                                                   "@value": "2026-03-12T07:30:00.000Z"}
    assert lamp["description"][0]["value"] == "Via XX Settembre 12"


def test_table_cells_are_distinct_entities(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("presences-2.0.json"))
    assert len(result.entities) == 4
    assert result.report.skipped == []
    cell = entity(result, ":MI-DUOMO:AgeRange=35-64:GenderCode=M:StartTimeSlot=08%3A00%3A00:"
                          "EndTimeSlot=09%3A00%3A00:WorkingDayFlag=true")
    assert cell["presenceCount"][0]["value"] == 1348
    assert cell["workingDayFlag"][0]["value"] is True
    assert cell["startTimeSlot"][0]["value"] == {"@type": "Time", "@value": "08:00:00"}
    # no line coordinates: the document's place
    assert cell["location"][0]["value"]["coordinates"] == [9.19, 45.4642]


def test_lines_keyed_by_coordinates_without_identifying_property(fixture_doc: Doc) -> None:
    document = fixture_doc("counter-reading-2.0.json")
    for line in document["UrbanDataset"]["values"]["line"]:
        line["property"] = [item for item in line["property"]
                            if item["name"] not in ("PODID", "ElectricPanelID")]
    result = import_document(document)
    assert len(result.entities) == 3
    assert result.entities[0]["id"].endswith(":CounterReading:45.4781,9.2262")


def test_lines_keyed_by_line_id_as_a_last_resort(fixture_doc: Doc) -> None:
    document = fixture_doc("presences-2.0.json")
    for line in document["UrbanDataset"]["values"]["line"]:
        line["property"] = [item for item in line["property"]
                            if item["name"] in ("PresenceCount", "TownName")]
    del document["UrbanDataset"]["context"]["coordinates"]
    result = import_document(document)
    assert [item["id"].rsplit(":", 1)[1] for item in result.entities] == \
        ["line-1", "line-2", "line-3", "line-4"]
    assert any("named by line id" in message for _, message in result.report.warnings)


def test_the_whatever_template_reads_undefined_properties_as_text() -> None:
    document = {"UrbanDataset": {
        "specification": {"id": {"value": "Whatever-1.0", "schemeID": "SCPS"},
                          "name": "Whatever", "uri": "http://example.org#Whatever"},
        "context": {"producer": {"id": "DARETIMTEST-9"}, "timeZone": "UTC+1",
                    "timestamp": "2021-03-31T00:00:00",
                    "coordinates": {"latitude": 41.91153, "longitude": 12.41503}},
        "values": {"line": [{"id": 1, "description": "Prova invio",
                             "coordinates": {"latitude": 41.91153, "longitude": 12.41503},
                             "period": {"start_ts": "2021-03-31T12:00:00",
                                        "end_ts": "2021-03-31T12:01:00"},
                             "property": [{"name": "nomeSensore", "val": "1234X"},
                                          {"name": "valoremisurato", "val": "115"}]}]}}}
    result = import_document(document)
    assert result.version == "1.0"
    (item,) = result.entities
    assert item["type"] == "Whatever"
    assert item["valoremisurato"][0]["value"] == "115"
    assert item["id"] == "urn:ngsi-ld:Whatever:DARETIMTEST-9:Whatever:41.91153,12.41503"
    assert len(result.report.warnings) == 2


def test_duplicate_values_for_one_entity_and_time_keep_the_first(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    lines = document["UrbanDataset"]["values"]["line"]
    copy = orjson.loads(orjson.dumps(lines[0]))
    copy["id"] = 99
    lines.append(copy)
    result = import_document(document)
    assert (99, "every value repeats an earlier line's for the same entity and time") \
        in result.report.skipped
    assert len(entity(result, ":MI-SeniGallia")["pm10"]) == 2


def test_split_observations_merge(fixture_doc: Doc) -> None:
    """Two lines with the same entity and period but different properties are one
    observation."""
    document = fixture_doc("air-monitoring-2.0.json")
    line = document["UrbanDataset"]["values"]["line"][0]
    second = orjson.loads(orjson.dumps(line))
    line["property"] = [item for item in line["property"] if item["name"] != "O3"]
    second["property"] = [item for item in second["property"]
                          if item["name"] in ("LocationID", "O3")]
    second["id"] = 50
    document["UrbanDataset"]["values"]["line"].append(second)
    result = import_document(document)
    assert result.report.skipped == []
    station = entity(result, ":MI-SeniGallia")
    assert [item["observedAt"] for item in station["o3"]] == ["2026-11-20T09:00:00.000Z",
                                                               "2026-11-20T10:00:00.000Z"]


def test_periods_and_coordinates_written_as_properties_are_recovered(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    line = document["UrbanDataset"]["values"]["line"][0]
    period = line.pop("period")
    coordinates = line.pop("coordinates")
    line["property"].append({"name": "period", "property": [
        {"name": "start_ts", "val": period["start_ts"]},
        {"name": "end_ts", "val": period["end_ts"]}]})
    line["property"].append({"name": "latitude", "val": str(coordinates["latitude"])})
    line["property"].append({"name": "longitude", "val": str(coordinates["longitude"])})
    fixed = import_document(document)
    repairs = [message for line_id, message in fixed.report.repairs if line_id == 1]
    assert repairs == ["period written as properties; read as the line's period",
                       "coordinates written as properties; read as the line's"]
    original = import_document(fixture_doc("air-monitoring-2.0.json"))
    assert fixed.entities == original.entities


def test_missing_time_zone_assumes_the_italian_default(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    del document["UrbanDataset"]["context"]["timeZone"]
    result = import_document(document)
    assert (None, "context.timeZone missing; assumed UTC+1") in result.report.repairs
    assert result.entities == import_document(fixture_doc("air-monitoring-2.0.json")).entities


def test_caller_producer_replaces_a_placeholder(fixture_doc: Doc) -> None:
    result = import_document(fixture_doc("counter-reading-1.0-defective.json"),
                             producer_id="SCP-MI_Illuminazione-1")
    assert result.producer_id == "SCP-MI_Illuminazione-1"
    assert result.entities[0]["id"].startswith(
        "urn:ngsi-ld:ThreePhaseAcMeasurement:SCP-MI_Illuminazione-1:CounterReading:")
    assert (None, "producer 'id1' replaced by 'SCP-MI_Illuminazione-1' given by caller") \
        in result.report.repairs


def test_lines_without_any_time_are_skipped(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    del document["UrbanDataset"]["context"]["timestamp"]
    del document["UrbanDataset"]["values"]["line"][0]["period"]
    result = import_document(document)
    assert result.report.skipped == [(1, "no period, no timestamp, and no context.timestamp")]


def test_entity_ids_are_stable_across_documents(fixture_doc: Doc) -> None:
    first = import_document(fixture_doc("counter-reading-2.0.json"))
    document = fixture_doc("counter-reading-2.0.json")
    document["UrbanDataset"]["values"]["line"].reverse()
    second = import_document(document)
    assert sorted(item["id"] for item in first.entities) == \
        sorted(item["id"] for item in second.entities)


@pytest.mark.parametrize(("source", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    ("<other/>", "not <UrbanDataset>"),
    ("<UrbanDataset><values>", "not well-formed XML"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><UrbanDataset/>', "DOCTYPE"),
    ({"UrbanDataset": {"specification": {"id": {"value": "X-2.0"}}}}, "values.line"),
    ({"UrbanDataset": {"values": {"line": []}}}, "specification"),
    ({"something": "else"}, "no UrbanDataset"),
])
def test_inputs_that_are_not_urban_datasets(source: Any, message: str) -> None:
    with pytest.raises(UrbanDatasetError, match=message):
        import_document(source)


def test_malformed_lines_and_properties_are_skipped_not_fatal(fixture_doc: Doc) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    lines = document["UrbanDataset"]["values"]["line"]
    lines[0]["property"].append({"name": ["not", "a", "name"], "val": "1"})
    lines[0]["property"].append("PM10=12")
    lines[1]["property"] = []
    lines.append("line 5")
    result = import_document(document)
    assert (1, "a property that is not an object") in result.report.skipped
    assert any(line == 1 and reason.startswith("a property without a name")
               for line, reason in result.report.skipped)
    assert (2, "no property list") in result.report.skipped
    assert (None, "a line that is not an object") in result.report.skipped
    assert result.report.counts["imported"] == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "name", "val", "property", "period", "start_ts", "end_ts",
                         "coordinates", "latitude", "longitude", "timestamp", "x"]),
        children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(json_values, max_size=4), zone=json_values, spec=json_values)
def test_any_shape_is_either_read_or_refused_cleanly(lines: Any, zone: Any, spec: Any) -> None:
    document = {"UrbanDataset": {
        "specification": {"id": {"value": "CounterReading-2.0"}, "properties": spec},
        "context": {"producer": {"id": "p"}, "timeZone": zone, "timestamp": "2026-01-01T00:00:00"},
        "values": {"line": lines}}}
    try:
        result = import_document(document)
    except UrbanDatasetError:
        return
    counts = result.report.counts
    assert counts["imported"] + counts["skipped"] == counts["lines"]
    assert orjson.loads(orjson.dumps(result.entities)) == result.entities
