"""MQTT ingestion as a background service of ``sinergia serve``: built from the settings, run
beside the HTTP API for the server's lifetime.

* ``mqtt_url`` set: ingest from that broker (Mosquitto in production), MQTT 5 by default,
  with a persistent session so that messages sent while Sinergia is down wait for it;
* ``mqtt_embedded_broker`` on: start amqtt inside the server and ingest from it (the
  one-machine setup; MQTT 3.1.1, nothing kept across restarts);
* neither: no MQTT at all.

With several server processes (``workers`` > 1) each one connects with its own client id and
they share one subscription (``$share/…``), so each message is written once.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Final
from urllib.parse import unquote, urlsplit

import anyio
from anyio.abc import TaskStatus

from sinergia.adapters.broker_client import BrokerClient
from sinergia.adapters.mqtt.embedded import EmbeddedBroker
from sinergia.adapters.mqtt.ingest import IngestConfig, MqttIngester
from sinergia.broker.devices import DeviceService
from sinergia.settings import Settings

_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
PROTOCOLS: Final = ("5", "3.1.1")


class MqttService:
    """The embedded broker (if any) and the ingester, as one background service."""

    def __init__(self, ingester: MqttIngester, embedded: EmbeddedBroker | None = None) -> None:
        self.ingester = ingester
        self.embedded = embedded

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start (raising if the embedded broker cannot), report started, ingest until
        cancelled, then stop the embedded broker."""
        if self.embedded is not None:
            await self.embedded.start()
        try:
            task_status.started()
            await self.ingester.run()
        finally:
            if self.embedded is not None:
                await self.embedded.stop()


def ingest_config(settings: Settings) -> IngestConfig | None:
    """What the ingester connects to and how, from the settings; None when MQTT is off.
    Raises ValueError for settings that cannot work together."""
    prefix = settings.mqtt_topic_prefix.strip("/")
    if not prefix or any(c in prefix for c in "+#"):
        raise ValueError("mqtt_topic_prefix must be one or more topic levels without "
                         f"wildcards, not {settings.mqtt_topic_prefix!r}")
    if settings.mqtt_batch_max < 1 or settings.mqtt_batch_ms < 0:
        raise ValueError("mqtt_batch_max must be at least 1 and mqtt_batch_ms not negative")
    common = IngestConfig(host="", port=0, prefix=prefix, client_id=settings.mqtt_client_id,
                          require_provisioning=settings.mqtt_require_provisioning,
                          batch_max=settings.mqtt_batch_max, batch_ms=settings.mqtt_batch_ms)
    if settings.mqtt_embedded_broker:
        if settings.mqtt_url:
            raise ValueError("mqtt_url and mqtt_embedded_broker exclude each other: ingest "
                             "from an external broker or from the embedded one")
        if settings.workers > 1:
            raise ValueError("the embedded MQTT broker runs inside the server process: it "
                             "needs workers = 1")
        return replace(common, host=_local_address(settings.host),
                       port=settings.mqtt_embedded_port, protocol="3.1.1", persistent=False)
    if not settings.mqtt_url:
        return None
    if settings.mqtt_protocol not in PROTOCOLS:
        raise ValueError(f"mqtt_protocol must be one of {', '.join(PROTOCOLS)}, "
                         f"not {settings.mqtt_protocol!r}")
    parts = urlsplit(settings.mqtt_url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"mqtt_url must be mqtt://host[:port] or mqtts://host[:port], "
                         f"not {settings.mqtt_url!r}")
    shared = settings.workers > 1
    return replace(
        common, host=parts.hostname, port=parts.port or _DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts" or bool(settings.mqtt_tls_ca),
        tls_ca=settings.mqtt_tls_ca or None,
        username=settings.mqtt_username or (unquote(parts.username) if parts.username
                                            else None),
        password=settings.mqtt_password or (unquote(parts.password) if parts.password
                                            else None),
        client_id=f"{settings.mqtt_client_id}-{os.getpid()}" if shared
        else settings.mqtt_client_id,
        protocol=settings.mqtt_protocol, persistent=not shared,
        share_group=settings.mqtt_client_id if shared else None)


def mqtt_service(settings: Settings, broker: BrokerClient,
                 devices: DeviceService) -> MqttService | None:
    config = ingest_config(settings)
    if config is None:
        return None
    embedded = (EmbeddedBroker(settings.host, settings.mqtt_embedded_port)
                if settings.mqtt_embedded_broker else None)
    return MqttService(MqttIngester(config, broker, devices), embedded)


def _local_address(host: str) -> str:
    """Where a client on this machine reaches a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
