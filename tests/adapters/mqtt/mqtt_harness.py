"""MQTT test harness: a running server (in-process, lifespan and all) ingesting from a real MQTT
broker — Mosquitto at ``SINERGIA_TEST_MQTT_URL`` when it is set (CI), else the embedded amqtt
broker the server starts itself — and a publisher that talks to that broker.

Every test gets its own topic prefix and client id, so tests sharing one Mosquitto never see
each other's messages. Waiting is polling of the API with a deadline, never a fixed sleep."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.settings import Settings

MQTT_URL = os.environ.get("SINERGIA_TEST_MQTT_URL", "")
DEADLINE = 60.0  # seconds; generous for a loaded machine, never reached when things work
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def eventually(check: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {result!r})")
        time.sleep(0.02)


@dataclass
class Publisher:
    host: str
    port: int
    prefix: str

    def topic(self, tenant: str, entity_type: str, device: str) -> str:
        return f"{self.prefix}/{tenant}/{entity_type}/{device}/attrs"

    def publish(self, messages: list[tuple[str, bytes]], *, qos: int = 1) -> None:
        """Publish and wait until the broker has acknowledged every message."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect(self.host, self.port)
        client.loop_start()
        try:
            sent = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
            for info in sent:
                info.wait_for_publish(timeout=DEADLINE)
                assert info.is_published(), "the MQTT broker did not take the message"
        finally:
            client.disconnect()
            client.loop_stop()


@dataclass
class Ingesting:
    """A server ingesting MQTT, its API client, and a publisher to its MQTT broker."""

    api: TestClient
    mqtt: Publisher

    def status(self) -> dict[str, Any]:
        response = self.api.get("/sinergia/v1/mqtt/status")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_processed(self, count: int) -> dict[str, Any]:
        """Wait until ``count`` messages were written, or dropped as malformed or as
        duplicates; the final status."""
        return eventually(lambda: (s := self.status())["written"] + s["malformed"]
                          + s["duplicates"] >= count and s, f"{count} messages processed")

    def entity(self, entity_id: str, tenant: str = "") -> dict[str, Any]:
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        response = self.api.get(f"/ngsi-ld/v1/entities/{entity_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def history(self, entity_id: str, tenant: str = "") -> dict[str, Any]:
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        response = self.api.get(f"/ngsi-ld/v1/temporal/entities/{entity_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def mqtt_settings(base: Settings, *, embedded: bool = False, **overrides: Any) -> Settings:
    """``base`` ingesting from the test MQTT broker under a prefix of this test's own."""
    prefix = f"sinergia-test/{uuid.uuid4().hex[:12]}"
    common: dict[str, Any] = {"mqtt_topic_prefix": prefix,
                              "mqtt_client_id": f"sinergia-test-{prefix[-12:]}",
                              "mqtt_batch_ms": 5.0}
    if MQTT_URL and not embedded:
        common["mqtt_url"] = MQTT_URL
    else:
        common.update(mqtt_embedded_broker=True, mqtt_embedded_port=free_port())
    return base.replace(**common, **overrides)


@contextmanager
def ingesting_server(settings: Settings) -> Iterator[Ingesting]:
    if settings.mqtt_embedded_broker:
        host, port = "127.0.0.1", settings.mqtt_embedded_port
    else:
        parts = urlsplit(settings.mqtt_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    with TestClient(create_app(settings), base_url="http://testserver") as api:
        ingesting = Ingesting(api, Publisher(host, port, settings.mqtt_topic_prefix))
        # Messages published before the subscription exists would never reach us.
        eventually(lambda: ingesting.status()["connected"], "the ingester subscribed")
        yield ingesting
