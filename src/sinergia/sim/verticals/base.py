"""What every simulated vertical is: a set of things in the city (its *inventory*, created once
through the NGSI-LD API as the vertical's own management system would) and the *readings*
they produce at each period boundary of simulated time, sent through one of the platform's
doors.

A reading is a device's message: the entity it updates (``urn:ngsi-ld:<type>:<device id>``),
the moment it was observed, and plain values by attribute name (units are the vertical's and
are added by the door: a unit code on NGSI-LD attributes, in the device's provisioning for
MQTT, in the specification for UrbanDataset). A value may also be an NGSI-LD DateTime
(:func:`date_time`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sinergia.sim.clock import iso

URN = "urn:ngsi-ld:"


class DoorKind(StrEnum):
    """The ways into the platform a real deployment uses."""

    NGSI_LD = "ngsi-ld"            # a vertical's management system, batch upserts over HTTP
    MQTT = "mqtt"                  # field devices publishing measurements
    URBANDATASET = "urbandataset"  # ENEA SCPS: documents pushed to the gateway


@dataclass(frozen=True, slots=True)
class Reading:
    entity_type: str
    device_id: str
    observed_at: datetime
    values: Mapping[str, Any]
    units: Mapping[str, str] = field(default_factory=dict)
    # Where the device stands, for doors whose messages carry it (UrbanDataset lines).
    position: tuple[float, float] | None = None

    @property
    def entity_id(self) -> str:
        return f"{URN}{self.entity_type}:{self.device_id}"


class CityReader(Protocol):
    """What a vertical may read back from the platform (through its public API)."""

    async def query(self, entity_type: str, attrs: Sequence[str]) -> list[dict[str, Any]]: ...


class Vertical(Protocol):
    name: str
    door: DoorKind
    period: timedelta

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        """The vertical's entities as they stand at ``start`` (normalized, the city's short
        names), created before the first readings."""
        ...

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        """MQTT provisioning records of the devices whose readings go through MQTT, their
        payloads' names meaning what the hosted @context at ``context_url`` says."""
        ...

    async def prepare(self, city: CityReader, at: datetime) -> None:
        """Read what the next readings depend on from the platform (most verticals: nothing)."""
        ...

    def readings(self, at: datetime) -> list[Reading]:
        """What the devices report for the period ending at the boundary ``at``."""
        ...


class StaticVertical:
    """Defaults for verticals that read nothing back and have no MQTT devices."""

    async def prepare(self, city: CityReader, at: datetime) -> None:
        return None

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return []


# -- building NGSI-LD entities ----------------------------------------------------------------


def entity_id(entity_type: str, device_id: str) -> str:
    return f"{URN}{entity_type}:{device_id}"


def prop(value: Any, unit: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        attribute["unitCode"] = unit
    return attribute


def rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def point(longitude: float, latitude: float) -> dict[str, Any]:
    return {"type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [round(longitude, 6), round(latitude, 6)]}}


def date_time(at: datetime) -> dict[str, str]:
    """An NGSI-LD DateTime value (as the Smart Data Models normalized examples write it)."""
    return {"@type": "DateTime", "@value": iso(at)}


def mqtt_device(entity_type: str, device_id: str, context_url: str,
                units: Mapping[str, str]) -> dict[str, Any]:
    """The provisioning record of an MQTT device: its entity, the @context of its payload's
    names and the unit of each of its numbers."""
    return {"deviceId": device_id, "entityType": entity_type,
            "entityId": entity_id(entity_type, device_id), "jsonldContext": context_url,
            "attributes": {name: {"name": name, "unitCode": unit}
                           for name, unit in units.items()}}
