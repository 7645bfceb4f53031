"""The three doors the simulator feeds the platform through — the same a real deployment uses,
never the storage underneath:

* :class:`NgsiLdDoor` — a vertical's management system calling the NGSI-LD API over HTTP:
  batch upserts that merge the readings into the entities (``options=update``), the city's
  @context named in a ``Link`` header. It also creates the inventory, provisions the MQTT
  devices (``/sinergia/v1/devices``) and reads back what a vertical needs (queries);
* :class:`MqttDoor` — field devices publishing key-value JSON measurements to the MQTT broker,
  on ``<prefix>/<tenant>/<entity type>/<device id>/attrs``, with the time of the measurement
  (``TimeInstant``); the platform's ingester turns them into entity updates;
* :class:`UrbanDatasetDoor` — a meter-data system pushing ENEA UrbanDataset documents to the
  SCPS gateway (``/scps/UrbanDatasetGateway``): login for a token, then ``push``.

Every ``send`` returns what happened (:class:`Sent`) instead of raising: one failing door must
never stop the others, and the counts go to the simulator's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import anyio
import httpx
import orjson

from sinergia.adapters.urbandataset.export import export_document
from sinergia.sim.clock import MILAN_TZ, iso
from sinergia.sim.verticals.base import Reading

log = logging.getLogger(__name__)

NGSI_LD: Final = "/ngsi-ld/v1"
DEVICES: Final = "/sinergia/v1/devices"
GATEWAY: Final = "/scps/UrbanDatasetGateway"
CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"
PUSHED: Final = "02"
AUTHENTICATED: Final = "01"
TOKEN_REFUSED: Final = frozenset({"12", "13"})  # unauthorized, token expired
MQTT_IN_FLIGHT: Final = 8
MQTT_SEND_TIMEOUT: Final = 30.0  # seconds for one batch of publishes


@dataclass(frozen=True, slots=True)
class Sent:
    """What one ``send`` did: messages accepted and refused, and the first error if any."""

    accepted: int
    refused: int = 0
    error: str | None = None


class Door(Protocol):
    async def send(self, readings: Sequence[Reading]) -> Sent: ...


def link_header(context_url: str) -> str:
    return f'<{context_url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'


def _attribute(value: Any, observed: str, unit: str | None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
    if unit is not None:
        attribute["unitCode"] = unit
    return attribute


def reading_entities(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """Readings as normalized NGSI-LD entity fragments, one per entity (the readings of one
    entity merged, a later value of an attribute winning)."""
    merged: dict[str, dict[str, Any]] = {}
    for reading in readings:
        entity = merged.setdefault(reading.entity_id,
                                   {"id": reading.entity_id, "type": reading.entity_type})
        observed = iso(reading.observed_at)
        for name, value in reading.values.items():
            entity[name] = _attribute(value, observed, reading.units.get(name))
    return list(merged.values())


class NgsiLdDoor:
    def __init__(self, client: httpx.AsyncClient, context_url: str, *, tenant: str = "",
                 batch_size: int = 250) -> None:
        self.client = client
        self.context_url = context_url
        self.tenant = tenant
        self.batch_size = batch_size

    def _headers(self) -> dict[str, str]:
        headers = {"Link": link_header(self.context_url), "Content-Type": "application/json"}
        if self.tenant:
            headers["NGSILD-Tenant"] = self.tenant
        return headers

    async def _upsert(self, entities: Sequence[dict[str, Any]],
                      options: str | None) -> Sent:
        accepted = refused = 0
        error: str | None = None
        params = {"options": options} if options else None
        for start in range(0, len(entities), self.batch_size):
            chunk = entities[start:start + self.batch_size]
            try:
                response = await self.client.post(
                    f"{NGSI_LD}/entityOperations/upsert", content=orjson.dumps(chunk),
                    headers=self._headers(), params=params)
            except httpx.HTTPError as exc:
                return Sent(accepted, refused + len(entities) - start,
                            error or f"cannot reach the broker: {exc!r}")
            if response.status_code in (201, 204):
                accepted += len(chunk)
            elif response.status_code == 207:
                errors = response.json().get("errors", [])
                refused += len(errors)
                accepted += len(chunk) - len(errors)
                if errors and error is None:
                    first = errors[0]
                    error = (f"{first.get('entityId')}: "
                             f"{first.get('error', {}).get('detail', 'refused')}")
            else:
                refused += len(chunk)
                error = error or f"upsert refused ({response.status_code}): " \
                                 f"{response.text[:300]}"
        return Sent(accepted, refused, error)

    async def create(self, entities: Sequence[dict[str, Any]],
                     progress: Callable[[int], None] | None = None) -> None:
        """Create (or replace) whole entities; raises RuntimeError if any is refused."""
        for start in range(0, len(entities), self.batch_size):
            chunk = entities[start:start + self.batch_size]
            sent = await self._upsert(chunk, None)
            if sent.refused:
                raise RuntimeError(f"creating entities failed: {sent.error}")
            if progress is not None:
                progress(len(chunk))

    async def send(self, readings: Sequence[Reading]) -> Sent:
        return await self._upsert(reading_entities(readings), "update")

    async def query(self, entity_type: str, attrs: Sequence[str]) -> list[dict[str, Any]]:
        """Every entity of a type with the given attributes (normalized, short names)."""
        found: list[dict[str, Any]] = []
        limit = 1000
        while True:
            response = await self.client.get(
                f"{NGSI_LD}/entities", headers=self._headers(),
                params={"type": entity_type, "attrs": ",".join(attrs), "limit": str(limit),
                        "offset": str(len(found))})
            response.raise_for_status()
            page = response.json()
            found += page
            if len(page) < limit:
                return found

    async def provision(self, devices: Sequence[Mapping[str, Any]], *,
                        concurrency: int = 16) -> None:
        """Create or replace the MQTT devices' provisioning records; raises if one fails."""
        limit = asyncio.Semaphore(concurrency)
        headers = {"Content-Type": "application/json"}
        if self.tenant:
            headers["NGSILD-Tenant"] = self.tenant

        async def put(device: Mapping[str, Any]) -> None:
            async with limit:
                response = await self.client.put(
                    f"{DEVICES}/{quote(str(device['deviceId']), safe=':@~')}",
                    content=orjson.dumps(device), headers=headers)
            if response.status_code not in (201, 204):
                raise RuntimeError(f"provisioning {device['deviceId']} failed "
                                   f"({response.status_code}): {response.text[:300]}")

        await asyncio.gather(*(put(device) for device in devices))


def mqtt_payload(reading: Reading) -> bytes:
    """Key-value JSON of a reading, with its time."""
    return orjson.dumps({**reading.values, "TimeInstant": iso(reading.observed_at)})


class MqttDoor:
    """A connection to the MQTT broker shared by every simulated device (each publishes on its
    own topic). Connects on first use and again after losing the broker."""

    def __init__(self, host: str, port: int, *, prefix: str = "sinergia", tenant: str = "",
                 client_id: str = "sinergia-demo-devices", username: str | None = None,
                 password: str | None = None, tls: bool = False,
                 tls_ca: str | None = None) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix.strip("/")
        self.tenant = tenant
        self.client_id = client_id
        self.username = username
        self.password = password
        self.tls_context = ssl.create_default_context(cafile=tls_ca) if tls or tls_ca else None
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    def topic(self, reading: Reading) -> str:
        return f"{self.prefix}/{self.tenant}/{reading.entity_type}/{reading.device_id}/attrs"

    async def _connected(self) -> Any:
        if self._client is None:
            import aiomqtt

            stack = contextlib.AsyncExitStack()
            # A few publishes in flight at once: a burst of hundreds would only queue up in
            # the broker (and an embedded one shares our process).
            client = aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                    username=self.username, password=self.password,
                                    tls_context=self.tls_context,
                                    protocol=aiomqtt.ProtocolVersion.V311,
                                    max_concurrent_outgoing_calls=MQTT_IN_FLIGHT)
            await stack.enter_async_context(client)
            self._stack, self._client = stack, client
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def send(self, readings: Sequence[Reading]) -> Sent:
        try:
            client = await self._connected()
            # QoS 1: each publish returns once the broker has the message. A batch is finished
            # even when the simulator is being stopped (within a bound): publishes abandoned
            # half-way would leave the MQTT client with acknowledgements nobody waits for.
            with anyio.CancelScope(shield=True), anyio.fail_after(MQTT_SEND_TIMEOUT):
                await asyncio.gather(*(client.publish(self.topic(r), mqtt_payload(r), qos=1)
                                       for r in readings))
        except Exception as exc:  # aiomqtt.MqttError, the socket's errors, the timeout
            await self.close()
            return Sent(0, len(readings), f"MQTT broker {self.host}:{self.port}: {exc!r}")
        return Sent(len(readings))


def time_zone_of(moment: datetime) -> str:
    """Milan's offset at ``moment`` as UrbanDataset writes it (``UTC+1``, ``UTC+2``)."""
    offset = moment.astimezone(MILAN_TZ).utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset is not None else 0
    return f"UTC{hours:+d}"


def temporal_entities(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """Readings as NGSI-LD temporal entities (one instance per attribute, observed at the
    start of the reading's period), the form the UrbanDataset export reads."""
    entities: dict[str, dict[str, Any]] = {}
    for reading in readings:
        start = reading.values.get("dateObservedFrom")
        observed = start["@value"] if isinstance(start, dict) else iso(reading.observed_at)
        entity = entities.setdefault(reading.entity_id,
                                     {"id": reading.entity_id, "type": reading.entity_type})
        for name, value in reading.values.items():
            entity.setdefault(name, []).append(
                _attribute(value, observed, reading.units.get(name)))
        if reading.position is not None:
            entity.setdefault("location", []).append({
                "type": "GeoProperty", "observedAt": observed,
                "value": {"type": "Point", "coordinates": list(reading.position)}})
    return list(entities.values())


class UrbanDatasetDoor:
    """Pushes each batch of readings as one UrbanDataset document of ``spec_id``."""

    def __init__(self, client: httpx.AsyncClient, *, username: str, password: str,
                 resource_id: str, spec_id: str, producer_id: str, tenant: str = "") -> None:
        self.client = client
        self.username = username
        self.password = password
        self.resource_id = resource_id
        self.spec_id = spec_id
        self.producer_id = producer_id
        self.tenant = tenant
        self._token: str | None = None

    async def _call(self, operation: str, body: dict[str, Any],
                    token: str | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if self.tenant:
            headers["NGSILD-Tenant"] = self.tenant
        response = await self.client.post(f"{GATEWAY}/{operation}", content=orjson.dumps(body),
                                          headers=headers)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    async def login(self) -> str:
        answer = await self._call("login", {"username": self.username,
                                            "password": self.password})
        if answer.get("code") != AUTHENTICATED:
            raise PermissionError(f"login refused: {answer.get('code')} "
                                  f"{answer.get('message')}: {answer.get('detail')}")
        self._token = str(answer["token"])
        return self._token

    def document(self, readings: Sequence[Reading]) -> dict[str, Any]:
        entities = temporal_entities(readings)
        starts = [_start(r) for r in readings]
        end = max(r.observed_at for r in readings)
        return export_document(entities, spec_id=self.spec_id, producer_id=self.producer_id,
                               period=(min(starts), end), time_zone=time_zone_of(end),
                               timestamp=end)

    async def send(self, readings: Sequence[Reading]) -> Sent:
        if not readings:
            return Sent(0)
        try:
            body = {"resource_id": self.resource_id, "dataset": self.document(readings)}
            for attempt in range(2):
                token = self._token or await self.login()
                answer = await self._call("push", body, token)
                if answer.get("code") in TOKEN_REFUSED and attempt == 0:
                    self._token = None  # expired or forgotten: log in again, once
                    continue
                break
        except (httpx.HTTPError, PermissionError, ValueError) as exc:
            return Sent(0, len(readings), f"UrbanDataset push: {exc}")
        if answer.get("code") != PUSHED:
            return Sent(0, len(readings), f"UrbanDataset push refused: {answer.get('code')} "
                                          f"{answer.get('message')}: {answer.get('detail')}")
        return Sent(len(readings))


def _start(reading: Reading) -> datetime:
    start = reading.values.get("dateObservedFrom")
    if isinstance(start, dict) and isinstance(start.get("@value"), str):
        return datetime.fromisoformat(start["@value"].replace("Z", "+00:00"))
    return reading.observed_at
