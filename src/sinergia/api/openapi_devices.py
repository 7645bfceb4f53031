"""The devices part of the OpenAPI description: ``/sinergia/v1/devices`` (provisioning of the
devices that publish measurements over MQTT) and ``/sinergia/v1/mqtt/status`` (what the
ingester has done), served by :mod:`sinergia.api.devices`."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.devices import BASE, DEVICES
from sinergia.api.http import JSON
from sinergia.api.openapi_builders import (
    BODY_ERRORS,
    NO_CONTENT,
    PAGING,
    TIME,
    URI,
    array,
    body,
    errors,
    example,
    media,
    operation,
    path,
    ref,
    response,
)
from sinergia.broker.devices import DEVICE_ID

TAG: Final = "Devices"
DEVICE_PATH: Final = f"{DEVICES}/{{deviceId}}"
THERMOMETER_ID: Final = "th-duomo-01"


def _schemas() -> dict[str, Any]:
    return {
        "Device": {
            "type": "object", "additionalProperties": False, "required": ["deviceId"],
            "dependentRequired": {"entityId": ["entityType"]},
            "description": (
                "A provisioned device: which entity its MQTT measurements update and how "
                "its payload keys become attributes. Measurements arrive on "
                "`<prefix>/<tenant>/<entity type>/<deviceId>/attrs`."),
            "properties": {
                "deviceId": {"type": "string", "pattern": f"^{DEVICE_ID.pattern}$",
                             "description": "The device's name, as in its MQTT topic."},
                "entityId": {**URI, "description": (
                    "The entity the device updates. Default: "
                    "`urn:ngsi-ld:<entityType>:<deviceId>`.")},
                "entityType": {"type": "string", "description": (
                    "The entity's type; the topic must name the same. Default: the type "
                    "the topic names.")},
                "attributes": {
                    "type": "object", "additionalProperties": ref("AttributeMapping"),
                    "description": "Per payload key: the attribute it becomes, its unit."},
                "staticAttributes": {"type": "object", "description": (
                    "Attributes written with every measurement (NGSI-LD normalized or "
                    "concise), e.g. a fixed location.")},
                "jsonldContext": {**URI, "description": (
                    "The @context of the attribute and type names. Default: the core "
                    "context.")},
            }},
        "AttributeMapping": {
            "type": "object", "additionalProperties": False, "minProperties": 1,
            "description": "How one payload key is read.",
            "properties": {
                "name": {"type": "string", "description": (
                    "The attribute the key becomes (default: the key itself).")},
                "unitCode": {"type": "string", "maxLength": 64, "description": (
                    "UN/CEFACT common code of the unit of its numbers, e.g. `CEL`.")}}},
        "MqttStatus": {
            "type": "object", "required": ["enabled"],
            "description": "What MQTT ingestion has done since the server started.",
            "properties": {
                "enabled": {"type": "boolean", "description": (
                    "False when the server ingests no MQTT (no `mqtt_url`, no embedded "
                    "broker); then no other member.")},
                "broker": {"type": "string", "description": "Where it connects."},
                "topic": {"type": "string", "description": "Its subscription."},
                "clientId": {"type": "string", "description": (
                    "Its MQTT client id (one per server process).")},
                "connected": {"type": "boolean"},
                "received": {"type": "integer", "minimum": 0,
                             "description": "Messages received."},
                "written": {"type": "integer", "minimum": 0, "description": (
                    "Messages written to their entity (and its history).")},
                "malformed": {"type": "integer", "minimum": 0, "description": (
                    "Messages dropped: unreadable topic or payload, unprovisioned device "
                    "(when provisioning is required), or refused by the broker.")},
                "duplicates": {"type": "integer", "minimum": 0, "description": (
                    "Messages not written because an identical timestamped message (a QoS 1 "
                    "resend) already was.")},
                "batches": {"type": "integer", "minimum": 0},
                "lastError": {"type": ["string", "null"]},
                "lastErrorAt": {"oneOf": [TIME, {"type": "null"}]},
            }},
    }


def _thermometer() -> dict[str, Any]:
    return {
        "deviceId": THERMOMETER_ID, "entityType": "WeatherObserved",
        "entityId": "urn:ngsi-ld:WeatherObserved:Milano-Duomo",
        "attributes": {"t": {"name": "temperature", "unitCode": "CEL"},
                       "h": {"name": "relativeHumidity", "unitCode": "P1"}},
        "staticAttributes": {"location": {"type": "Point", "coordinates": [9.1916, 45.4641]}},
    }


def _examples() -> dict[str, Any]:
    counter = {"deviceId": "tc-viale-monza-7", "entityType": "TrafficFlowObserved",
               "attributes": {"n": {"name": "intensity"}}}
    return {
        "Thermometer": example("A thermometer in Piazza del Duomo", _thermometer()),
        "Devices": example("The devices of a tenant", [_thermometer(), counter]),
        "MqttStatusRunning": example("Ingesting from Mosquitto", {
            "enabled": True, "broker": "mqtt://127.0.0.1:1883",
            "topic": "sinergia/+/+/+/attrs", "clientId": "sinergia-ingest",
            "connected": True, "received": 120345,
            "written": 120338, "malformed": 5, "duplicates": 2, "batches": 2210,
            "lastError": "sinergia/milano/WeatherObserved/th-9/attrs: the payload is not "
                         "JSON: unexpected character: line 1 column 1 (char 0)",
            "lastErrorAt": "2026-11-21T18:00:05.120Z"}),
        "MqttStatusOff": example("No MQTT ingestion configured", {"enabled": False}),
    }


def components() -> dict[str, dict[str, Any]]:
    return {"schemas": _schemas(), "examples": _examples(), "parameters": {
        "deviceId": path("deviceId", "The device's id, as in its MQTT topic.",
                         THERMOMETER_ID)}}


def paths() -> dict[str, Any]:
    device_body = body({JSON: media(ref("Device"), "Thermometer")}, "The device.")
    created = {"Location": {"description": "Where the device can be read.",
                            "schema": {"type": "string"},
                            "example": f"{DEVICES}/{THERMOMETER_ID}"}}
    return {
        DEVICES: {
            "post": operation(
                "createDevice", TAG, "Provision a device",
                "Records which entity a device's MQTT measurements update and how its "
                "payload is read. A device that sends measurements without being "
                "provisioned updates `urn:ngsi-ld:<type>:<deviceId>`, unless the server "
                "requires provisioning.", params=("Tenant",), body=device_body,
                responses={"201": response("Provisioned.", headers=created),
                           **errors(*BODY_ERRORS, 409)}),
            "get": operation(
                "listDevices", TAG, "List provisioned devices",
                "The devices of the tenant, by id, a page at a time.",
                params=("Tenant", *PAGING),
                responses={"200": response("The devices.",
                                           {JSON: media(array(ref("Device")), "Devices")}),
                           **errors(400, 403)}),
        },
        DEVICE_PATH: {
            "get": operation(
                "getDevice", TAG, "Read a provisioned device",
                "The device's record as it was provisioned.", params=("Tenant", "deviceId"),
                responses={"200": response("The device.",
                                           {JSON: media(ref("Device"), "Thermometer")}),
                           **errors(400, 404)}),
            "put": operation(
                "replaceDevice", TAG, "Provision or re-provision a device",
                "Creates the device's record, or replaces it whole. Measurements already "
                "written stay as they are; the next ones follow the new record.",
                params=("Tenant", "deviceId"), body=device_body,
                responses={"201": response("Provisioned.", headers=created), **NO_CONTENT,
                           **errors(*BODY_ERRORS)}),
            "delete": operation(
                "deleteDevice", TAG, "Forget a provisioned device",
                "Deletes the device's record; its entity and history stay.",
                params=("Tenant", "deviceId"),
                responses={**NO_CONTENT, **errors(400, 404)}),
        },
        f"{BASE}/mqtt/status": {
            "get": operation(
                "getMqttStatus", TAG, "MQTT ingestion status",
                "Whether the server is connected to its MQTT broker, and how many messages "
                "it has received, written and dropped as malformed since it started, with "
                "the last error.",
                responses={"200": response("The status.", {JSON: media(
                    ref("MqttStatus"), "MqttStatusRunning", "MqttStatusOff")})}),
        },
    }
