"""GBFS 2.3 and 3.0 documents → BikeHireDockingStation entities (pure functions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.gbfs.feed import (
    GbfsError,
    discovery_feeds,
    localized,
    parse_time,
    read_document,
    removed_attributes,
    station_entities,
)

FIXTURES = Path(__file__).parent / "fixtures"
PREFIX = "urn:ngsi-ld:BikeHireDockingStation:bikemi-"


def fixture(version: str, name: str) -> Any:
    return json.loads((FIXTURES / version / f"{name}.json").read_text(encoding="utf-8"))


def snapshot(version: str, language: str | None = None) -> dict[str, dict[str, Any]]:
    entities = station_entities(
        read_document("station_information", fixture(version, "station_information")),
        read_document("station_status", fixture(version, "station_status")),
        id_prefix=PREFIX, language=language, provider="Clear Channel Italia",
        source="https://gbfs.example-bikemi.it/gbfs.json")
    return {e["id"]: e for e in entities}


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_posix_seconds_are_utc(seconds: int) -> None:
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    assert parse_time(seconds, "t") == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
       st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_rfc3339_times_with_any_offset_are_utc(moment: datetime, minutes: int) -> None:
    moment = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=minutes)))
    assert parse_time(moment.isoformat(), "t") == \
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("value", [None, "ieri", True, [1], 10**20])
def test_invalid_times(value: Any) -> None:
    with pytest.raises(GbfsError, match="t:"):
        parse_time(value, "t")


def test_documents_need_data_and_a_sane_ttl() -> None:
    with pytest.raises(GbfsError, match="no 'data'"):
        read_document("station_status", {"last_updated": 0, "ttl": 0})
    with pytest.raises(GbfsError, match="ttl"):
        read_document("station_status", {"last_updated": 0, "ttl": -5, "data": {}})
    doc = read_document("gbfs", fixture("v3_0", "gbfs"))
    assert (doc.version, doc.ttl, doc.last_updated) == ("3.0", 60, "2024-03-01T09:00:00.000Z")


def test_discovery_2x_lists_feeds_per_language() -> None:
    doc = read_document("gbfs", fixture("v2_3", "gbfs"))
    assert discovery_feeds(doc)["station_status"].endswith("/2.3/en/station_status.json")
    assert discovery_feeds(doc, "it")["station_status"].endswith("/2.3/it/station_status.json")
    assert discovery_feeds(doc, "fr")["station_status"].endswith("/en/station_status.json")


def test_discovery_3_0_lists_feeds_once() -> None:
    feeds = discovery_feeds(read_document("gbfs", fixture("v3_0", "gbfs")))
    assert set(feeds) == {"system_information", "station_information", "station_status",
                          "vehicle_types"}


def test_discovery_without_feeds() -> None:
    with pytest.raises(GbfsError, match="no feeds"):
        discovery_feeds(read_document("gbfs", {"last_updated": 0, "ttl": 0, "data": {}}))


def test_gbfs_2_3_stations() -> None:
    stations = snapshot("v2_3")
    assert len(stations) == 4
    duomo = stations[PREFIX + "001"]
    seen = "2024-03-01T10:00:30.000Z"  # last_reported 1709287230
    assert duomo == {
        "id": PREFIX + "001", "type": "BikeHireDockingStation",
        "name": {"type": "Property", "value": "Duomo 1"},
        "stationCode": {"type": "Property", "value": "001"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point",
                               "coordinates": [9.189029859952287, 45.46472373507982]}},
        "address": {"type": "Property", "value": {"streetAddress": "Piazza del Duomo",
                                                  "postalCode": "20122"}},
        "totalSlotNumber": {"type": "Property", "value": 24},
        "dataProvider": {"type": "Property", "value": "Clear Channel Italia"},
        "source": {"type": "Property", "value": "https://gbfs.example-bikemi.it/gbfs.json"},
        "availableBikeNumber": {"type": "Property", "value": 7, "observedAt": seen,
                                "byVehicleType": {"type": "Property",
                                                  "value": {"bike": 5, "ebike": 2}}},
        "freeSlotNumber": {"type": "Property", "value": 16, "observedAt": seen},
        "outOfServiceSlotNumber": {"type": "Property", "value": 0, "observedAt": seen},
        "status": {"type": "Property", "value": "working", "observedAt": seen},
    }
    status = {sid[-3:]: e["status"]["value"] for sid, e in stations.items()}
    assert status == {"001": "working", "002": "empty", "003": "full", "004": "outOfService"}


def test_gbfs_3_0_stations() -> None:
    stations = snapshot("v3_0")
    duomo, cattolica, giorgio = (stations[PREFIX + n] for n in ("001", "005", "006"))
    assert duomo["name"]["value"] == "Duomo 1"  # the first localized name
    assert snapshot("v3_0", "en")[PREFIX + "001"]["name"]["value"] == "Cathedral 1"
    assert duomo["availableBikeNumber"] == {
        "type": "Property", "value": 9, "observedAt": "2024-03-01T09:00:30.000Z",
        "byVehicleType": {"type": "Property", "value": {"bike": 6, "ebike": 3}}}
    assert duomo["address"]["value"]["addressLocality"] == "Milano"
    assert cattolica["name"]["value"] == "Università Cattolica"
    assert cattolica["status"]["value"] == "withIncidence"  # renting but not returning
    assert cattolica["outOfServiceSlotNumber"]["value"] == 2
    assert giorgio["status"] == {"type": "Property", "value": "outOfService",
                                 "observedAt": "2024-03-01T08:30:00.000Z"}
    assert "postalCode" not in giorgio["address"]["value"]


def test_stations_without_status_or_with_odd_values() -> None:
    information = read_document("station_information", {
        "last_updated": 1709287200, "ttl": 0, "data": {"stations": [
            {"station_id": 7, "name": "Sette", "lat": 45.0, "lon": 9.0, "capacity": -1},
            {"name": "no id"}]}})
    (only,) = station_entities(information, None, id_prefix="urn:x:")
    assert only["id"] == "urn:x:7"
    assert "totalSlotNumber" not in only and "availableBikeNumber" not in only
    status = read_document("station_status", {
        "last_updated": 1709287200, "ttl": 0, "data": {"stations": [
            {"station_id": "7", "vehicle_types_available": [
                {"vehicle_type_id": "bike", "count": 2}, {"vehicle_type_id": "ebike",
                                                          "count": 1}]}]}})
    (with_status,) = station_entities(information, status, id_prefix="urn:x:")
    # no num_*_available: the total of the vehicle types; no last_reported: the feed's time
    assert with_status["availableBikeNumber"]["value"] == 3
    assert with_status["status"]["observedAt"] == "2024-03-01T10:00:00.000Z"
    with pytest.raises(GbfsError, match=r"data\.stations"):
        station_entities(read_document("station_information",
                                       {"last_updated": 0, "ttl": 0, "data": {}}),
                         None, id_prefix="urn:x:")


def test_localized_texts_and_removal_marker() -> None:
    texts = [{"text": "Duomo", "language": "it"}, {"text": "Cathedral", "language": "en"}]
    assert localized(texts, "en") == "Cathedral"
    assert localized(texts, None) == "Duomo"
    assert localized([], "it") is None and localized(3, "it") is None
    assert removed_attributes("2024-03-01T09:00:00.000Z") == {"status": {
        "type": "Property", "value": "outOfService", "observedAt": "2024-03-01T09:00:00.000Z",
        "reason": {"type": "Property", "value": "removedFromFeed"}}}
