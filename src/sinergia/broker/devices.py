"""Device provisioning: what the broker knows about a device that sends measurements (over MQTT
today), kept as the store's per-tenant records of kind ``device``.

A device record says which entity the device's measurements update and how to read them:

* ``deviceId`` — the device's own name, as it appears in its MQTT topic;
* ``entityId`` / ``entityType`` — the entity it updates (default
  ``urn:ngsi-ld:<type>:<deviceId>``, the type coming from the topic);
* ``attributes`` — per payload key, the NGSI-LD attribute it becomes (``name``) and the unit
  of its numbers (``unitCode``, UN/CEFACT common code such as ``CEL``);
* ``staticAttributes`` — attributes written with every measurement (a fixed location, a
  relationship to the street it stands in), NGSI-LD normalized or concise;
* ``jsonldContext`` — the @context (a URL) that gives the attribute and type names their
  meaning; without it, the core context.

Readers that need every device of a tenant at once (the MQTT ingester, for each batch of
messages) use :meth:`DeviceService.directory`, a per-tenant snapshot kept for a few seconds:
changes made through this service are seen at once, changes made by another server process
within ``cache_seconds``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.entity import check_name, is_uri, parse_attributes
from sinergia.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from sinergia.storage.base import Store

KIND: Final = "device"
# One MQTT topic level that also reads well inside a URN: no "/", "+", "#" or spaces.
DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~@\-]{0,127}")
_MEMBERS: Final = frozenset({"deviceId", "entityId", "entityType", "attributes",
                             "staticAttributes", "jsonldContext"})
_MAPPING_MEMBERS: Final = frozenset({"name", "unitCode"})
MAX_UNIT_CODE: Final = 64


@dataclass(frozen=True, slots=True)
class AttributeMapping:
    """How one payload key is read: the attribute name it becomes and the unit of its value."""

    name: str
    unit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    entity_type: str | None = None
    entity_id: str | None = None
    attributes: Mapping[str, AttributeMapping] = field(default_factory=dict)
    static_attributes: Mapping[str, Any] = field(default_factory=dict)
    jsonld_context: str | None = None

    def render(self) -> dict[str, Any]:
        """The JSON form (API bodies and the stored record)."""
        out: dict[str, Any] = {"deviceId": self.device_id}
        if self.entity_id is not None:
            out["entityId"] = self.entity_id
        if self.entity_type is not None:
            out["entityType"] = self.entity_type
        if self.attributes:
            out["attributes"] = {
                key: {"name": m.name} | ({"unitCode": m.unit_code} if m.unit_code else {})
                for key, m in self.attributes.items()}
        if self.static_attributes:
            out["staticAttributes"] = dict(self.static_attributes)
        if self.jsonld_context is not None:
            out["jsonldContext"] = self.jsonld_context
        return out


def default_entity_id(entity_type: str, device_id: str) -> str:
    """The entity an unprovisioned device (or one provisioned without ``entityId``) updates."""
    return f"urn:ngsi-ld:{entity_type}:{device_id}"


def check_device_id(value: Any, where: str = "device") -> str:
    if not isinstance(value, str) or DEVICE_ID.fullmatch(value) is None:
        raise BadRequestData(
            f"{where}: deviceId must be 1-128 letters, digits or _.:~@- (starting with a "
            f"letter or digit), not {str(value)[:80]!r}")
    return value


def parse_device(body: Any, device_id: str | None = None) -> Device:
    """A device record from its JSON form; ``device_id`` is the one of the URL, which the
    body may repeat but not contradict. Raises BadRequestData saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequestData("a device is a JSON object")
    unknown = set(body) - _MEMBERS
    if unknown:
        raise BadRequestData(f"unknown member(s) of a device: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(_MEMBERS))})")
    given = body.get("deviceId", device_id)
    if device_id is not None and given != device_id:
        raise BadRequestData(f"the body's deviceId {str(given)[:80]!r} is not the one of the "
                             f"URL ({device_id!r})")
    identifier = check_device_id(given)
    where = f"device {identifier!r}"
    entity_type = body.get("entityType")
    if entity_type is not None:
        check_name(entity_type, where, "entityType")
    entity_id = body.get("entityId")
    if entity_id is not None and not is_uri(entity_id):
        raise BadRequestData(f"{where}: entityId must be an absolute URI, "
                             f"not {str(entity_id)[:80]!r}")
    if entity_id is not None and entity_type is None:
        raise BadRequestData(f"{where}: an entityId needs its entityType too")
    context = body.get("jsonldContext")
    if context is not None and not is_uri(context):
        raise BadRequestData(f"{where}: jsonldContext must be the URL of an @context")
    static = body.get("staticAttributes", {})
    if not isinstance(static, dict):
        raise BadRequestData(f"{where}: staticAttributes must be an object of attributes")
    return Device(identifier, entity_type, entity_id,
                  _parse_mappings(body.get("attributes", {}), where), static, context)


def _parse_mappings(value: Any, where: str) -> dict[str, AttributeMapping]:
    if not isinstance(value, dict):
        raise BadRequestData(f"{where}: attributes must map payload keys to "
                             "{\"name\": …, \"unitCode\": …}")
    mappings: dict[str, AttributeMapping] = {}
    for key, spec in value.items():
        at = f"{where}, attribute {key!r}"
        check_name(key, at, "payload key")
        if not isinstance(spec, dict) or not spec or set(spec) - _MAPPING_MEMBERS:
            raise BadRequestData(f"{at}: expected an object with name and/or unitCode")
        name = check_name(spec.get("name", key), at, "name")
        unit = spec.get("unitCode")
        if unit is not None and (not isinstance(unit, str) or not unit
                                 or len(unit) > MAX_UNIT_CODE or not unit.isprintable()):
            raise BadRequestData(f"{at}: unitCode must be a short code such as 'CEL'")
        mappings[key] = AttributeMapping(name, unit)
    names = [m.name for m in mappings.values()]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise BadRequestData(f"{where}: several payload keys become {duplicated}")
    return mappings


@dataclass(slots=True)
class _Snapshot:
    loaded_at: float
    devices: dict[str, Device]


class DeviceService:
    def __init__(self, store: Store, resolver: ContextResolver, *, cache_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.resolver = resolver
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._snapshots: dict[str, _Snapshot] = {}

    async def _validated(self, body: Any, device_id: str | None) -> Device:
        device = parse_device(body, device_id)
        # Refuse now what could never be written: static attributes that do not parse with
        # the device's @context (which must itself be available).
        ctx = await self.resolver.resolve(device.jsonld_context)
        try:
            parse_attributes(dict(device.static_attributes), ctx)
        except BadRequestData as exc:
            raise BadRequestData(f"device {device.device_id!r}, staticAttributes: "
                                 f"{exc.detail}") from None
        return device

    async def create(self, tenant: str, body: Any) -> Device:
        device = await self._validated(body, None)
        if not await self.store.put_record(KIND, tenant, device.device_id, device.render(),
                                           only_if_absent=True):
            raise AlreadyExists(f"Device {device.device_id!r} is already provisioned")
        self._snapshots.pop(tenant, None)
        return device

    async def put(self, tenant: str, device_id: str, body: Any) -> bool:
        """Create or replace; True when the device was new."""
        device = await self._validated(body, device_id)
        existed = await self.store.get_record(KIND, tenant, device_id) is not None
        await self.store.put_record(KIND, tenant, device_id, device.render())
        self._snapshots.pop(tenant, None)
        return not existed

    async def get(self, tenant: str, device_id: str) -> Device:
        record = await self.store.get_record(KIND, tenant, device_id)
        if record is None:
            raise ResourceNotFound(f"No device {device_id!r}")
        return parse_device(record)

    async def list(self, tenant: str, limit: int, offset: int) -> tuple[list[Device], int]:
        records = await self.store.list_records(KIND, tenant)
        page = records[offset:offset + limit]
        return [parse_device(r.record) for r in page], len(records)

    async def delete(self, tenant: str, device_id: str) -> None:
        if not await self.store.delete_record(KIND, tenant, device_id):
            raise ResourceNotFound(f"No device {device_id!r}")
        self._snapshots.pop(tenant, None)

    async def directory(self, tenant: str) -> Mapping[str, Device]:
        """Every device of the tenant by id, from a snapshot at most ``cache_seconds`` old."""
        now = self._clock()
        snapshot = self._snapshots.get(tenant)
        if snapshot is None or now - snapshot.loaded_at >= self.cache_seconds:
            records = await self.store.list_records(KIND, tenant)
            snapshot = _Snapshot(now, {r.id: parse_device(r.record) for r in records})
            self._snapshots[tenant] = snapshot
        return snapshot.devices
