"""The MQTT ingester: one wildcard subscription (QoS 1) on every device's measurement topic,
messages written to the broker in batches.

Flow: messages wait in the client's queue; a batch is the first one plus whatever else arrives
within ``batch_ms`` (or ``batch_max`` messages, whichever comes first — under load a batch
fills at once and nobody waits). While one batch is being written the next one is collected,
so reading the network and writing the database overlap; writes stay in arrival order.

Each batch becomes one broker upsert per tenant (NGSI-LD batch upsert with ``options=update``:
attributes merged into the device's entity, created on its first message); the store records
every changed attribute in the history in the same transaction.

Delivery: a message is acknowledged to the MQTT broker (PUBACK) only after the batch that
holds it has been committed, so a crash loses nothing: the broker sends unacknowledged
messages again when we reconnect. A message that cannot be read, or that the broker refuses,
is logged, counted as malformed, acknowledged and dropped — it never stops the stream. When
the database itself is unavailable, the batch is retried with backoff and nothing is
acknowledged until it is written.

Duplicates: QoS 1 means a message can arrive twice (the broker resends what was not
acknowledged when a connection broke). A message with a timestamp that is identical (topic
and payload) to one written recently is the same measurement: it is counted as a duplicate and
not written again. One without a timestamp cannot be told from a new reading of the same
value; it is written, and only changes the history if it differs from the current value.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiomqtt
import anyio
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sinergia.adapters.broker_client import BrokerClient
from sinergia.adapters.mqtt.payload import (
    MalformedMessage,
    Measurement,
    Topic,
    measurement_entity,
    parse_topic,
    subscription_filter,
)
from sinergia.adapters.mqtt.receive import buffer_reads, share_property_tables
from sinergia.broker.devices import Device, DeviceService
from sinergia.ngsild.model import now_iso

log = logging.getLogger(__name__)

# How long the MQTT broker keeps our session, with the messages that arrive while we are away.
SESSION_EXPIRY_SECONDS: Final = 86_400
# The most unacknowledged messages an MQTT 5 broker may send us (the protocol's maximum).
_RECEIVE_MAXIMUM: Final = 65_535
# Timestamped messages remembered after they are written: a message resent by the broker
# (all that were unacknowledged when a connection broke: at most the receive maximum) is
# recognised and not recorded twice.
_RECENT_MAX: Final = 2 * _RECEIVE_MAXIMUM
# Topics seen recently, read once: a device publishes on the same topic again and again.
_TOPIC_CACHE_SIZE: Final = 100_000
_LOG_INTERVAL: Final = 1.0  # seconds between two log lines about malformed messages


@dataclass(frozen=True, slots=True)
class IngestConfig:
    host: str
    port: int
    tls: bool = False
    tls_ca: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    prefix: str = "sinergia"
    client_id: str = "sinergia-ingest"
    protocol: str = "5"
    # Keep the session (and the messages sent meanwhile) when disconnected or restarted.
    persistent: bool = True
    # Several server processes share the subscription under this group name, each one
    # receiving part of the messages.
    share_group: str | None = None
    require_provisioning: bool = False
    batch_max: int = 1000
    batch_ms: float = 10.0

    @property
    def broker_url(self) -> str:
        """Where we connect, without credentials (for logs and the status)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def subscription(self) -> str:
        topic = subscription_filter(self.prefix)
        return f"$share/{self.share_group}/{topic}" if self.share_group else topic


@dataclass(slots=True)
class IngestStatus:
    """Counters since the server started, shown by ``GET /sinergia/v1/mqtt/status``."""

    broker: str
    topic: str
    client_id: str
    connected: bool = False
    received: int = 0
    written: int = 0
    malformed: int = 0
    duplicates: int = 0
    batches: int = 0
    last_error: str | None = None
    last_error_at: str | None = None

    def render(self) -> dict[str, Any]:
        return {"enabled": True, "broker": self.broker, "topic": self.topic,
                "clientId": self.client_id, "connected": self.connected, "received": self.received,
                "written": self.written, "malformed": self.malformed,
                "duplicates": self.duplicates, "batches": self.batches,
                "lastError": self.last_error, "lastErrorAt": self.last_error_at}


def _refused(granted: int | ReasonCode) -> bool:
    """A SUBACK code saying no (MQTT 3.1.1: 0x80; MQTT 5: any reason code from 0x80)."""
    return granted >= 0x80 if isinstance(granted, int) else granted.is_failure


def _identity(message: aiomqtt.Message) -> bytes:
    """What makes two messages the same one: topic and payload (a digest, to keep it small)."""
    digest = hashlib.blake2b(message.topic.value.encode(), digest_size=16)
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        digest.update(b"\0" + payload)
    return digest.digest()


def _inbox_type(holder: list[asyncio.Queue[aiomqtt.Message]]) -> type[asyncio.Queue[Any]]:
    """A queue class for aiomqtt's incoming messages that lets us keep the instance, so a
    batch can be drained without the per-message task its iterator creates."""

    class Inbox(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            holder.append(self)

    return Inbox


class MqttIngester:
    def __init__(self, config: IngestConfig, broker: BrokerClient, devices: DeviceService,
                 *, min_backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self.config = config
        self.broker = broker
        self.devices = devices
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.status = IngestStatus(config.broker_url, config.subscription, config.client_id)
        self._failures = 0
        self._topics: dict[str, Topic] = {}
        self._recent: dict[bytes, None] = {}  # insertion-ordered set of message identities
        self._last_log = 0.0
        self._unlogged = 0

    # -- connection --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, ingest, and reconnect with backoff, until cancelled."""
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self._note_error(f"MQTT connection to {self.config.broker_url}: {exc}")
            except Exception as exc:  # a bug must not end ingestion for good: log, reconnect
                log.exception("MQTT ingestion failed")
                self._note_error(f"{type(exc).__name__}: {exc}")
            self.status.connected = False
            self._failures += 1
            delay = self._backoff(self._failures)
            log.warning("MQTT ingestion from %s interrupted (%s); reconnecting in %.1f s",
                        self.config.broker_url, self.status.last_error, delay)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        return float(min(self.max_backoff, self.min_backoff * 2 ** min(failures - 1, 16)))

    def _client(self, holder: list[asyncio.Queue[aiomqtt.Message]]) -> aiomqtt.Client:
        config = self.config
        tls_context = None
        if config.tls:
            tls_context = ssl.create_default_context(cafile=config.tls_ca or None)
        if config.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            # As many unacknowledged messages in flight as MQTT allows: messages are
            # acknowledged only once written, and a burst must wait here (to be written
            # soon) rather than in the broker's queue, which drops what overflows it
            # (Mosquitto keeps 1000 per client by default).
            properties.ReceiveMaximum = _RECEIVE_MAXIMUM
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS if config.persistent else 0
            client = aiomqtt.Client(
                config.host, config.port, username=config.username,
                password=config.password, identifier=config.client_id,
                protocol=aiomqtt.ProtocolVersion.V5, clean_start=not config.persistent,
                properties=properties, tls_context=tls_context,
                queue_type=_inbox_type(holder))
        else:
            client = aiomqtt.Client(
                config.host, config.port, username=config.username,
                password=config.password, identifier=config.client_id,
                protocol=aiomqtt.ProtocolVersion.V311, clean_session=not config.persistent,
                tls_context=tls_context, queue_type=_inbox_type(holder))
        share_property_tables()
        # Acknowledge only what is committed. aiomqtt has no option for it yet
        # (empicano/aiomqtt#345): set it on its paho client before any message can arrive.
        client._client.manual_ack_set(True)
        return client

    async def _session(self) -> None:
        holder: list[asyncio.Queue[aiomqtt.Message]] = []
        client = self._client(holder)
        async with client:
            (inbox,) = holder
            buffer_reads(client._client)
            granted = await client.subscribe(self.config.subscription, qos=1)
            if any(_refused(code) for code in granted):  # e.g. an ACL forbids the topic
                raise aiomqtt.MqttError(
                    f"the broker refused the subscription to {self.config.subscription}")
            self.status.connected = True
            self._failures = 0
            log.info("Ingesting MQTT measurements from %s on %s", self.config.broker_url,
                     self.config.subscription)
            await self._consume(client, inbox)

    # -- batches -------------------------------------------------------------------------------

    async def _consume(self, client: aiomqtt.Client,
                       inbox: asyncio.Queue[aiomqtt.Message]) -> None:
        messages = client.messages
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                batch = await self._collect(messages, inbox)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write(client, batch))
        except asyncio.CancelledError:
            if writing is not None:  # shutting down: unacknowledged messages come back later
                writing.cancel()
                with anyio.CancelScope(shield=True):  # let it end before the loop does
                    await asyncio.wait([writing])
            raise
        except aiomqtt.MqttError:
            if writing is not None:  # the batch is good: store it (the broker resends it too)
                await writing
            raise

    async def _collect(self, messages: aiomqtt.client.MessagesIterator,
                       inbox: asyncio.Queue[aiomqtt.Message]) -> list[aiomqtt.Message]:
        batch = [await anext(messages)]  # raises MqttError when the connection is lost
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.batch_ms / 1000
        while len(batch) < self.config.batch_max:
            try:
                batch.append(inbox.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await inbox.get())
            except TimeoutError:
                break
        return batch

    async def _write(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        self.status.received += len(batch)
        by_tenant: dict[str, list[dict[str, Any]]] = {}
        directories: dict[str, Mapping[str, Device]] = {}
        measured: dict[bytes, None] = {}  # identities of this batch's timestamped messages
        for message in batch:
            topic = message.topic.value
            identity = _identity(message)
            if identity in self._recent or identity in measured:
                self.status.duplicates += 1
                continue
            try:
                tenant, measurement = await self._measurement_of(message, directories)
            except MalformedMessage as exc:
                self._malformed(topic, str(exc))
                continue
            except Exception as exc:  # a bug in reading one message must not stop the others
                log.exception("Reading the MQTT message on %s failed", topic)
                self._malformed(topic, f"{type(exc).__name__}: {exc}")
                continue
            by_tenant.setdefault(tenant, []).append(measurement.entity)
            if measurement.timestamped:
                measured[identity] = None
        for tenant, entities in by_tenant.items():
            await self._upsert(tenant, entities)
        self.status.batches += 1
        self._remember(measured)
        paho = client._client
        for message in batch:
            if message.qos > 0:
                paho.ack(message.mid, message.qos)

    async def _measurement_of(self, message: aiomqtt.Message,
                              directories: dict[str, Mapping[str, Device]]
                              ) -> tuple[str, Measurement]:
        topic = self._topic(message.topic.value)
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            raise MalformedMessage("the payload is not a JSON object")
        directory = directories.get(topic.tenant)
        if directory is None:
            directory = directories[topic.tenant] = await self.devices.directory(topic.tenant)
        device = directory.get(topic.device_id)
        if device is None and self.config.require_provisioning:
            raise MalformedMessage(f"device {topic.device_id!r} is not provisioned")
        return topic.tenant, measurement_entity(bytes(payload), topic, device, now_iso())

    def _remember(self, identities: dict[bytes, None]) -> None:
        """Keep the identities of the timestamped messages just written, as many as could
        be resent to us, forgetting the oldest."""
        recent = self._recent
        recent.update(identities)
        for _ in range(len(recent) - _RECENT_MAX):
            del recent[next(iter(recent))]

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = parse_topic(name, self.config.prefix)  # MalformedMessage: not cached
            if len(self._topics) >= _TOPIC_CACHE_SIZE:
                self._topics.clear()
            self._topics[name] = topic
        return topic

    async def _upsert(self, tenant: str, entities: list[dict[str, Any]]) -> None:
        attempts = 0
        while True:
            try:
                report = await self.broker.upsert(entities, tenant=tenant, update=True)
                break
            except Exception as exc:  # the database is unavailable: wait, keep the messages
                attempts += 1
                delay = self._backoff(attempts)
                self._note_error(f"writing {len(entities)} measurements failed ({exc!r}); "
                                 f"retrying in {delay:.1f} s")
                log.warning("%s", self.status.last_error)
                await asyncio.sleep(delay)
        self.status.written += len(report.succeeded)
        for failure in report.failed:
            self._malformed(failure.entity_id, f"{failure.title}: {failure.detail}")

    # -- errors --------------------------------------------------------------------------------

    def _note_error(self, text: str) -> None:
        self.status.last_error = text
        self.status.last_error_at = now_iso()

    def _malformed(self, where: str, detail: str) -> None:
        self.status.malformed += 1
        self._note_error(f"{where}: {detail}")
        # A device sending garbage many times a second must not flood the log.
        now = time.monotonic()
        if now - self._last_log < _LOG_INTERVAL:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
        log.warning("Dropped a malformed MQTT message: %s: %s%s", where, detail, more)
        self._last_log, self._unlogged = now, 0
