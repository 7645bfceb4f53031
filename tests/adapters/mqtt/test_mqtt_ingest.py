"""MQTT measurements through a real broker into entities and their history: key-value and
NGSI-LD payloads, provisioning, tenants, malformed messages, duplicates."""

from __future__ import annotations

import orjson
from mqtt_harness import Ingesting, ingesting_server, mqtt_settings
from starlette.testclient import TestClient

from sinergia.ngsild.model import now_iso
from sinergia.settings import Settings

ROOM = "urn:ngsi-ld:Room:r1"


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def test_key_value_measurements_become_the_entity_and_its_history(
        ingesting: Ingesting) -> None:
    topic = ingesting.mqtt.topic("", "Room", "r1")
    ingesting.mqtt.publish([
        (topic, _json({"temperature": 20.5 + i, "occupied": i % 2 == 0, "label": "Aula 1",
                       "TimeInstant": f"2026-11-21T08:0{i}:00+01:00"}))
        for i in range(3)])
    status = ingesting.wait_processed(3)
    assert (status["received"], status["written"], status["malformed"]) == (3, 3, 0)

    entity = ingesting.entity(ROOM)
    assert entity["type"] == "Room"
    assert entity["temperature"] == {"type": "Property", "value": 22.5,
                                     "observedAt": "2026-11-21T07:02:00.000Z"}
    assert entity["occupied"]["value"] is True
    history = ingesting.history(ROOM)
    assert [i["value"] for i in history["temperature"]] == [20.5, 21.5, 22.5]
    assert [i["observedAt"] for i in history["temperature"]] == [
        "2026-11-21T07:00:00.000Z", "2026-11-21T07:01:00.000Z", "2026-11-21T07:02:00.000Z"]
    assert [i["value"] for i in history["occupied"]] == [True, False, True]
    # Every attribute of a message is observed at the message's time.
    assert [i["observedAt"] for i in history["label"]] == [
        i["observedAt"] for i in history["temperature"]]


def test_measurements_without_a_timestamp_are_stamped_when_read(ingesting: Ingesting) -> None:
    topic = ingesting.mqtt.topic("", "Room", "r1")
    before = now_iso()
    ingesting.mqtt.publish([(topic, _json({"temperature": 21})),
                            (topic, _json({"temperature": 22}))])
    ingesting.wait_processed(2)
    after = now_iso()
    instances = ingesting.history(ROOM)["temperature"]
    assert [i["value"] for i in instances] == [21, 22]
    times = [i["observedAt"] for i in instances]
    assert before <= times[0] <= times[1] <= after


def test_ngsi_ld_concise_payloads_keep_their_members(ingesting: Ingesting) -> None:
    topic = ingesting.mqtt.topic("", "AirQualityObserved", "aq-7")
    ingesting.mqtt.publish([(topic, _json({
        "NO2": {"value": 41.5, "unitCode": "GQ", "observedAt": "2026-11-21T10:00:00Z"},
        "refPointOfInterest": {"object": "urn:ngsi-ld:PointOfInterest:Brera"},
        "location": {"type": "Point", "coordinates": [9.1879, 45.4719]},
        "TimeInstant": "2026-11-21T10:05:00Z"}))])
    ingesting.wait_processed(1)
    entity = ingesting.entity("urn:ngsi-ld:AirQualityObserved:aq-7")
    assert entity["NO2"] == {"type": "Property", "value": 41.5, "unitCode": "GQ",
                             "observedAt": "2026-11-21T10:00:00.000Z"}
    assert entity["refPointOfInterest"]["type"] == "Relationship"
    assert entity["refPointOfInterest"]["observedAt"] == "2026-11-21T10:05:00.000Z"
    assert entity["location"]["type"] == "GeoProperty"
    near = ingesting.api.get("/ngsi-ld/v1/entities", params={
        "type": "AirQualityObserved", "georel": "near;maxDistance==100",
        "geometry": "Point", "coordinates": "[9.188,45.472]"})
    assert [e["id"] for e in near.json()] == ["urn:ngsi-ld:AirQualityObserved:aq-7"]


def test_malformed_messages_are_counted_and_the_stream_goes_on(ingesting: Ingesting) -> None:
    good = ingesting.mqtt.topic("", "Room", "r1")
    bad = [
        (good, b"not json"),
        (good, b"[1, 2, 3]"),
        (good, _json({})),
        (good, _json({"temperature": 1, "TimeInstant": "yesterday"})),
        (good, _json({"id": "urn:ngsi-ld:Room:other", "temperature": 1})),
        (good, _json({"location": {"type": "Point", "coordinates": "the station"}})),
        (ingesting.mqtt.topic("", "Room", "bad device"), _json({"temperature": 1})),
        (ingesting.mqtt.topic("no tenant!", "Room", "r1"), _json({"temperature": 1})),
    ]
    ingesting.mqtt.publish([*bad, (good, _json({"temperature": 19.0}))])
    status = ingesting.wait_processed(len(bad) + 1)
    assert status["malformed"] == len(bad)
    assert status["written"] == 1
    assert status["connected"] is True
    assert status["lastError"] and status["lastErrorAt"]
    assert ingesting.entity(ROOM)["temperature"]["value"] == 19.0
    assert ingesting.api.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:other").status_code == 404


def test_a_provisioned_device_is_read_through_its_record(ingesting: Ingesting) -> None:
    device = {"deviceId": "th-duomo-01", "entityType": "WeatherObserved",
              "entityId": "urn:ngsi-ld:WeatherObserved:Milano-Duomo",
              "attributes": {"t": {"name": "temperature", "unitCode": "CEL"},
                             "h": {"name": "relativeHumidity"}},
              "staticAttributes": {
                  "location": {"type": "Point", "coordinates": [9.1916, 45.4641]},
                  "refPointOfInterest": {"object": "urn:ngsi-ld:PointOfInterest:Duomo"}}}
    created = ingesting.api.post("/sinergia/v1/devices", json=device,
                                 headers={"NGSILD-Tenant": "milano"})
    assert created.status_code == 201, created.text
    topic = ingesting.mqtt.topic("milano", "WeatherObserved", "th-duomo-01")
    ingesting.mqtt.publish([(topic, _json({"t": 7.5, "h": 0.81,
                                           "TimeInstant": "2026-11-21T06:00:00Z"})),
                            (topic, _json({"t": 8.0, "TimeInstant": "2026-11-21T07:00:00Z"}))])
    ingesting.wait_processed(2)
    entity = ingesting.entity("urn:ngsi-ld:WeatherObserved:Milano-Duomo", tenant="milano")
    assert entity["temperature"] == {"type": "Property", "value": 8.0, "unitCode": "CEL",
                                     "observedAt": "2026-11-21T07:00:00.000Z"}
    assert entity["relativeHumidity"]["value"] == 0.81
    assert "t" not in entity and "h" not in entity
    assert entity["location"]["value"]["coordinates"] == [9.1916, 45.4641]
    assert entity["refPointOfInterest"]["object"] == "urn:ngsi-ld:PointOfInterest:Duomo"
    history = ingesting.history("urn:ngsi-ld:WeatherObserved:Milano-Duomo", tenant="milano")
    assert [i["value"] for i in history["temperature"]] == [7.5, 8.0]
    assert len(history["location"]) == 1  # static attributes are history once, not each time


def test_a_topic_naming_another_type_than_the_record_is_refused(ingesting: Ingesting) -> None:
    record = {"deviceId": "th-1", "entityType": "WeatherObserved"}
    assert ingesting.api.put("/sinergia/v1/devices/th-1", json=record).status_code == 201
    ingesting.mqtt.publish([(ingesting.mqtt.topic("", "Room", "th-1"), _json({"t": 1}))])
    status = ingesting.wait_processed(1)
    assert status["malformed"] == 1 and "WeatherObserved" in status["lastError"]


def test_tenants_are_kept_apart(ingesting: Ingesting) -> None:
    ingesting.mqtt.publish([
        (ingesting.mqtt.topic("north", "Room", "r1"), _json({"temperature": 1})),
        (ingesting.mqtt.topic("", "Room", "r1"), _json({"temperature": 2})),
    ])
    ingesting.wait_processed(2)
    assert ingesting.entity(ROOM, tenant="north")["temperature"]["value"] == 1
    assert ingesting.entity(ROOM)["temperature"]["value"] == 2
    missing = ingesting.api.get(f"/ngsi-ld/v1/entities/{ROOM}",
                                headers={"NGSILD-Tenant": "south"})
    assert missing.status_code == 404


def test_a_resent_message_is_recorded_once(ingesting: Ingesting) -> None:
    # A QoS 1 message may arrive twice: the broker resends every message that was not
    # acknowledged when a connection broke, in order, after newer ones were written.
    topic = ingesting.mqtt.topic("", "Room", "r1")
    first = _json({"temperature": 21.0, "TimeInstant": "2026-11-21T08:00:00Z"})
    second = _json({"temperature": 22.0, "TimeInstant": "2026-11-21T08:01:00Z"})
    ingesting.mqtt.publish([(topic, first), (topic, second)])
    ingesting.wait_processed(2)
    ingesting.mqtt.publish([(topic, first), (topic, second)])
    status = ingesting.wait_processed(4)
    assert (status["written"], status["duplicates"], status["malformed"]) == (2, 2, 0)
    history = ingesting.history(ROOM)["temperature"]
    assert [i["value"] for i in history] == [21.0, 22.0]
    assert ingesting.entity(ROOM)["temperature"]["value"] == 22.0


def test_repeated_readings_without_timestamp_are_not_duplicates(ingesting: Ingesting) -> None:
    topic = ingesting.mqtt.topic("", "Room", "r1")
    ingesting.mqtt.publish([(topic, _json({"temperature": 21.0}))])
    ingesting.wait_processed(1)
    ingesting.mqtt.publish([(topic, _json({"temperature": 21.0}))])
    status = ingesting.wait_processed(2)
    assert (status["written"], status["duplicates"]) == (2, 0)
    assert len(ingesting.history(ROOM)["temperature"]) == 2


def test_unprovisioned_devices_are_refused_when_provisioning_is_required(
        settings: Settings) -> None:
    with ingesting_server(mqtt_settings(settings, mqtt_require_provisioning=True)) as server:
        record = {"deviceId": "known", "entityType": "Room"}
        assert server.api.post("/sinergia/v1/devices", json=record).status_code == 201
        server.mqtt.publish([
            (server.mqtt.topic("", "Room", "stranger"), _json({"temperature": 1})),
            (server.mqtt.topic("", "Room", "known"), _json({"temperature": 2})),
        ])
        status = server.wait_processed(2)
        assert (status["written"], status["malformed"]) == (1, 1)
        assert "not provisioned" in status["lastError"]
        assert server.entity("urn:ngsi-ld:Room:known")["temperature"]["value"] == 2
        stranger = server.api.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:stranger")
        assert stranger.status_code == 404


def test_the_embedded_broker_needs_no_mqtt_server(settings: Settings) -> None:
    with ingesting_server(mqtt_settings(settings, embedded=True)) as server:
        assert server.status()["broker"] == f"mqtt://127.0.0.1:{server.mqtt.port}"
        server.mqtt.publish([(server.mqtt.topic("", "Room", "r1"),
                              _json({"temperature": 18.5}))])
        server.wait_processed(1)
        assert server.entity(ROOM)["temperature"]["value"] == 18.5


def test_status_says_when_mqtt_is_off(client: TestClient) -> None:
    assert client.get("/sinergia/v1/mqtt/status").json() == {"enabled": False}


def test_many_messages_in_one_go(ingesting: Ingesting) -> None:
    messages = [(ingesting.mqtt.topic("", "Room", f"r{i % 25}"),
                 _json({"temperature": i, "TimeInstant": f"2026-11-21T08:{i // 60 % 60:02d}:"
                                                         f"{i % 60:02d}Z"}))
                for i in range(1500)]
    ingesting.mqtt.publish(messages)
    status = ingesting.wait_processed(1500)
    assert (status["written"], status["malformed"]) == (1500, 0)
    assert status["batches"] < 1500  # written together, not one by one
    counted = ingesting.api.get("/ngsi-ld/v1/entities",
                                params={"type": "Room", "count": "true", "limit": "0"})
    assert counted.headers["NGSILD-Results-Count"] == "25"
    history = ingesting.history("urn:ngsi-ld:Room:r0")
    assert len(history["temperature"]) == 60


def test_a_device_context_gives_the_names_their_meaning(ingesting: Ingesting) -> None:
    weather = "https://smartdatamodels.org/dataModel.Weather/"
    hosted = ingesting.api.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {
        "WeatherObserved": weather + "WeatherObserved", "temperature": weather + "temperature"}})
    assert hosted.status_code == 201, hosted.text
    context = hosted.headers["location"]
    record = {"deviceId": "ws-1", "jsonldContext": context}
    assert ingesting.api.post("/sinergia/v1/devices", json=record).status_code == 201
    ingesting.mqtt.publish([(ingesting.mqtt.topic("", "WeatherObserved", "ws-1"),
                             _json({"temperature": 3.5}))])
    assert ingesting.wait_processed(1)["written"] == 1
    entity_id = "urn:ngsi-ld:WeatherObserved:ws-1"
    plain = ingesting.entity(entity_id)
    assert plain["type"] == weather + "WeatherObserved"
    assert plain[weather + "temperature"]["value"] == 3.5
    link = f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    compact = ingesting.api.get(f"/ngsi-ld/v1/entities/{entity_id}", headers={"Link": link})
    assert compact.json()["temperature"]["value"] == 3.5
