"""Reading MQTT topics and payloads (no broker): examples, and properties that hold for any
input — the reader either gives an entity the broker's own parser accepts, or refuses with
MalformedMessage; it never fails any other way."""

from __future__ import annotations

import asyncio
import contextlib
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.adapters.mqtt.payload import (
    MalformedMessage,
    Topic,
    measurement_entity,
    parse_topic,
    subscription_filter,
)
from sinergia.broker.devices import AttributeMapping, Device
from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.entity import parse_entity
from sinergia.ngsild.errors import NgsiLdError

NOW = "2026-11-21T12:00:00.000Z"
ROOM = Topic("", "Room", "r1")


def _entity(payload: Any, device: Device | None = None, topic: Topic = ROOM) -> dict[str, Any]:
    return measurement_entity(orjson.dumps(payload), topic, device, NOW).entity


# -- topics --------------------------------------------------------------------------------

def test_topics_name_tenant_type_and_device() -> None:
    assert parse_topic("sinergia/milano/Streetlight/SL-1/attrs", "sinergia") == Topic(
        "milano", "Streetlight", "SL-1")
    assert parse_topic("city/one/sinergia//Room/r1/attrs", "city/one/sinergia") == ROOM
    assert subscription_filter("city/one") == "city/one/+/+/+/attrs"


@pytest.mark.parametrize("topic", [
    "other/t/Room/r1/attrs",          # another prefix
    "sinergia/t/Room/r1/cmd",         # not measurements
    "sinergia/t/Room/attrs",          # a level missing
    "sinergia/t/Room/r1/x/attrs",     # a level too many
    "sinergia/bad tenant/Room/r1/attrs",
    "sinergia/" + "t" * 65 + "/Room/r1/attrs",
    "sinergia/t/Room/bad device/attrs",
    "sinergia/t/Room/-r1/attrs",
    "sinergia/t/Bad(Type)/r1/attrs",
    "sinergia/t//r1/attrs",           # no type
])
def test_topics_that_name_no_device_are_malformed(topic: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_topic(topic, "sinergia")


# No deadline: a loaded machine must not fail a test (speed is measured in bench/, not here).
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
_LEVEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:~@\-]{0,20}", fullmatch=True)
_TENANT = st.from_regex(r"[A-Za-z0-9_\-]{0,20}", fullmatch=True)
_TYPE = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)


@PROPERTY
@given(_TENANT, _TYPE, _LEVEL)
def test_every_well_formed_topic_reads_back(tenant: str, entity_type: str,
                                            device: str) -> None:
    topic = f"sinergia/{tenant}/{entity_type}/{device}/attrs"
    assert parse_topic(topic, "sinergia") == Topic(tenant, entity_type, device)


@PROPERTY
@given(st.text(max_size=80))
def test_any_topic_is_read_or_refused(topic: str) -> None:
    try:
        parsed = parse_topic(topic, "sinergia")
    except MalformedMessage:
        return
    assert topic == f"sinergia/{parsed.tenant}/{parsed.entity_type}/{parsed.device_id}/attrs"


# -- payloads --------------------------------------------------------------------------------

def test_key_values_become_properties_observed_at_the_timestamp() -> None:
    entity = _entity({"temperature": 21.5, "on": True, "name": "Aula",
                      "TimeInstant": "2026-11-21T09:00:00+01:00"})
    at = "2026-11-21T08:00:00.000Z"
    assert entity == {
        "id": "urn:ngsi-ld:Room:r1", "type": "Room",
        "temperature": {"type": "Property", "value": 21.5, "observedAt": at},
        "on": {"type": "Property", "value": True, "observedAt": at},
        "name": {"type": "Property", "value": "Aula", "observedAt": at}}


def test_without_a_timestamp_the_reading_time_is_used() -> None:
    measurement = measurement_entity(b'{"temperature": 1}', ROOM, None, NOW)
    assert measurement.entity["temperature"]["observedAt"] == NOW
    assert not measurement.timestamped
    assert measurement_entity(b'{"temperature": 1, "observedAt": "2026-01-01T00:00:00Z"}',
                              ROOM, None, NOW).timestamped


def test_geojson_becomes_a_geoproperty_and_ngsi_ld_members_are_kept() -> None:
    point = {"type": "Point", "coordinates": [9.19, 45.46]}
    entity = _entity({"location": point,
                      "NO2": {"value": 40, "unitCode": "GQ", "observedAt": "2026-01-01T00:00Z"},
                      "refStreet": {"object": "urn:ngsi-ld:Road:1"},
                      "address": {"streetAddress": "Piazza del Duomo"}})
    assert entity["location"] == {"type": "GeoProperty", "value": point, "observedAt": NOW}
    assert entity["NO2"] == {"value": 40, "unitCode": "GQ", "observedAt": "2026-01-01T00:00Z"}
    assert entity["refStreet"] == {"object": "urn:ngsi-ld:Road:1", "observedAt": NOW}
    assert entity["address"]["value"] == {"streetAddress": "Piazza del Duomo"}


def test_the_device_record_renames_adds_units_and_static_attributes() -> None:
    device = Device("th-1", "WeatherObserved", "urn:ngsi-ld:WeatherObserved:Duomo",
                    {"t": AttributeMapping("temperature", "CEL"),
                     "loc": AttributeMapping("location", "XX")},
                    {"refPointOfInterest": {"object": "urn:ngsi-ld:PointOfInterest:Duomo"},
                     "temperature": {"value": -999}},
                    "https://example.org/weather.jsonld")
    topic = Topic("milano", "WeatherObserved", "th-1")
    entity = _entity({"t": 7.5, "loc": {"type": "Point", "coordinates": [9, 45]},
                      "pressure": {"value": 1013, "unitCode": "A97"}}, device, topic)
    assert entity["id"] == "urn:ngsi-ld:WeatherObserved:Duomo"
    assert entity["temperature"] == {"type": "Property", "value": 7.5, "unitCode": "CEL",
                                     "observedAt": NOW}  # the measured value wins
    assert "unitCode" not in entity["location"]  # units are for numbers, not geometries
    assert entity["pressure"]["unitCode"] == "A97"
    assert entity["refPointOfInterest"] == {"object": "urn:ngsi-ld:PointOfInterest:Duomo"}
    assert entity["@context"] == "https://example.org/weather.jsonld"


@pytest.mark.parametrize(("payload", "why"), [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"21.5", "JSON object"),
    (b"[]", "JSON object"),
    (b"{}", "no attribute"),
    (b'{"TimeInstant": "2026-01-01T00:00:00Z"}', "no attribute"),
    (b'{"temperature": 1, "TimeInstant": 1700000000}', "TimeInstant"),
    (b'{"temperature": 1, "observedAt": "noon"}', "observedAt"),
    (b'{"type": "Room", "temperature": 1}', "'type'"),
    (b'{"scope": "/Milano", "temperature": 1}', "'scope'"),
])
def test_payloads_that_hold_no_measurement_are_malformed(payload: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        measurement_entity(payload, ROOM, None, NOW)


def test_two_keys_may_not_become_one_attribute() -> None:
    device = Device("r1", attributes={"t": AttributeMapping("temperature")})
    with pytest.raises(MalformedMessage, match="temperature"):
        _entity({"t": 1, "temperature": 2}, device)


def test_the_topic_must_name_the_provisioned_type() -> None:
    with pytest.raises(MalformedMessage, match="WeatherObserved"):
        _entity({"t": 1}, Device("r1", entity_type="WeatherObserved"))


# -- any payload -------------------------------------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
            | st.floats(allow_nan=False) | st.text())
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _parses_or_refuses(payload: bytes) -> None:
    """The reader's two allowed outcomes: MalformedMessage, or an entity that the broker's
    parser either accepts or refuses with an NGSI-LD error (counted as malformed too)."""
    try:
        entity = measurement_entity(payload, ROOM, None, NOW).entity
    except MalformedMessage:
        return
    assert entity["id"] == "urn:ngsi-ld:Room:r1" and entity["type"] == "Room"
    with contextlib.suppress(NgsiLdError):
        parse_entity(entity, _core())


@cache
def _core() -> Context:
    return asyncio.run(ContextResolver(allow_remote=False).resolve(None))


@PROPERTY
@given(st.binary(max_size=200))
def test_any_bytes_are_read_or_refused(payload: bytes) -> None:
    _parses_or_refuses(payload)


@PROPERTY
@given(st.dictionaries(st.text(min_size=1, max_size=12), _JSON, max_size=5))
def test_any_json_object_is_read_or_refused(body: dict[str, Any]) -> None:
    _parses_or_refuses(orjson.dumps(body))


@PROPERTY
@given(st.dictionaries(st.from_regex(r"[a-z][A-Za-z0-9]{0,10}", fullmatch=True),
                       st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=20)
                       | st.floats(allow_nan=False, allow_infinity=False),
                       min_size=1, max_size=5))
def test_plain_key_values_always_make_a_valid_entity(body: dict[str, Any]) -> None:
    body.pop("observedAt", None)
    entity = measurement_entity(orjson.dumps(body), ROOM, None, NOW).entity
    parsed = parse_entity(entity, _core())
    assert len(parsed["attrs"]) == len(body)
