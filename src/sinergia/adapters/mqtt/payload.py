"""Reading one MQTT message: its topic names the tenant, entity type and device; its payload
holds measurements. Both are turned into an NGSI-LD concise entity that the broker merges
into the device's entity (creating it on the first message).

Topic: ``<prefix>/<tenant>/<entity type>/<device id>/attrs``; an empty tenant level
(``sinergia//Room/r1/attrs``) is the default tenant.

Payload: a JSON object. Each member is one attribute, either a plain value (key-value JSON:
``{"temperature": 21.5}``) or NGSI-LD concise/normalized (``{"temperature": {"value": 21.5,
"unitCode": "CEL"}}``); a GeoJSON geometry becomes a GeoProperty. A ``TimeInstant`` or
``observedAt`` member is the time of the measurement: it becomes the ``observedAt`` of every
attribute that has none of its own. Without one, the time the message was read is used, so
that every measurement is a distinct instance in the history.

The device's provisioning record (if any) renames payload keys, adds unit codes and adds its
static attributes; everything else is checked by the broker's own entity parser when the
entity is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from sinergia.broker.devices import (
    DEVICE_ID,
    AttributeMapping,
    Device,
    default_entity_id,
)
from sinergia.ngsild.entity import (
    check_name,
    is_multi_instance,
    looks_like_attribute,
    looks_like_geometry,
    parse_datetime,
)
from sinergia.ngsild.errors import BadRequestData

TIME_KEYS: Final = ("TimeInstant", "observedAt")
# Members of an entity that are not attributes: a payload may not set them.
RESERVED: Final = frozenset({"id", "type", "scope", "@context", "createdAt", "modifiedAt"})
_TENANT_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789_-")
_MAX_TENANT: Final = 64


class MalformedMessage(ValueError):
    """The message cannot become an entity update; the text says why."""


@dataclass(frozen=True, slots=True)
class Topic:
    tenant: str
    entity_type: str
    device_id: str


def subscription_filter(prefix: str) -> str:
    """The one wildcard subscription that receives every device's measurements."""
    return f"{prefix}/+/+/+/attrs"


def parse_topic(topic: str, prefix: str) -> Topic:
    """The tenant, entity type and device id a topic names (MalformedMessage if it names
    none: wrong shape, a tenant or device id that is not allowed)."""
    head = prefix + "/"
    if not topic.startswith(head):
        raise MalformedMessage(f"topic {topic[:200]!r} is not under {prefix!r}")
    levels = topic[len(head):].split("/")
    if len(levels) != 4 or levels[3] != "attrs":
        raise MalformedMessage(f"topic {topic[:200]!r} is not "
                               f"{prefix}/<tenant>/<entity type>/<device id>/attrs")
    tenant, entity_type, device_id = levels[:3]
    if len(tenant) > _MAX_TENANT or not _TENANT_CHARS.issuperset(tenant):
        raise MalformedMessage(f"tenant {tenant[:80]!r} must be 1-64 letters, digits, '_' or "
                               "'-' (an empty level is the default tenant)")
    if DEVICE_ID.fullmatch(device_id) is None:
        raise MalformedMessage(f"device id {device_id[:80]!r} must be 1-128 letters, digits or "
                               "_.:~@- (starting with a letter or digit)")
    try:
        check_name(entity_type, "topic", "entity type")
    except BadRequestData as exc:
        raise MalformedMessage(exc.detail) from None
    return Topic(tenant, entity_type, device_id)


@dataclass(frozen=True, slots=True)
class Measurement:
    """The concise entity (``id``, ``type``, attributes, and ``@context`` when the device has
    one) that records a message's measurements; ``timestamped`` when the payload said when
    they were taken (so an identical payload is the same measurement)."""

    entity: dict[str, Any]
    timestamped: bool


def measurement_entity(payload: bytes, topic: Topic, device: Device | None,
                       received_at: str) -> Measurement:
    """The measurements of ``payload``; ``received_at`` (an NGSI-LD time) stands in for a
    missing timestamp."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"the payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("the payload must be a JSON object of attributes, "
                               f"not {type(body).__name__}")
    observed = received_at
    timestamped = False
    for key in TIME_KEYS:
        if key in body:
            timestamped = True
            try:
                observed = parse_datetime(body[key], "payload", key)
            except BadRequestData as exc:
                raise MalformedMessage(exc.detail) from None
    entity_type = topic.entity_type
    mappings: Mapping[str, AttributeMapping] = {}
    entity_id = None
    if device is not None:
        if device.entity_type is not None and device.entity_type != entity_type:
            raise MalformedMessage(f"device {topic.device_id!r} is provisioned as a "
                                   f"{device.entity_type!r}, not a {entity_type!r}")
        mappings = device.attributes
        entity_id = device.entity_id
    entity: dict[str, Any] = {
        "id": entity_id or default_entity_id(entity_type, topic.device_id),
        "type": entity_type}
    for key, value in body.items():
        if key in TIME_KEYS:
            continue
        mapping = mappings.get(key)
        name = mapping.name if mapping is not None else key
        if name in RESERVED:
            raise MalformedMessage(f"{key!r} is not an attribute and cannot be set by a device")
        if name in entity:
            raise MalformedMessage(f"several payload members become the attribute {name!r}")
        entity[name] = _attribute(value, observed,
                                  mapping.unit_code if mapping is not None else None)
    if len(entity) == 2:
        raise MalformedMessage("the payload holds no attribute")
    if device is not None:
        for name, value in device.static_attributes.items():
            entity.setdefault(name, value)  # a measured value wins over a static one
        if device.jsonld_context is not None:
            entity["@context"] = device.jsonld_context
    return Measurement(entity, timestamped)


def _attribute(value: Any, observed: str, unit_code: str | None) -> Any:
    if looks_like_geometry(value):  # before attributes: a geometry has a "type" too
        return {"type": "GeoProperty", "value": value, "observedAt": observed}
    if is_multi_instance(value):
        return [_stamped(instance, observed, unit_code) for instance in value]
    if looks_like_attribute(value):
        return _stamped(value, observed, unit_code)
    attribute = {"type": "Property", "value": value, "observedAt": observed}
    if unit_code is not None:
        attribute["unitCode"] = unit_code
    return attribute


def _stamped(attribute: dict[str, Any], observed: str, unit_code: str | None) -> dict[str, Any]:
    """An attribute given in NGSI-LD form, with the message's time and the device's unit
    when it has none of its own (a unit only on a Property)."""
    out = dict(attribute)
    out.setdefault("observedAt", observed)
    is_property = out.get("type", "Property") == "Property" and "value" in out \
        and not looks_like_geometry(out["value"])
    if unit_code is not None and is_property:
        out.setdefault("unitCode", unit_code)
    return out
