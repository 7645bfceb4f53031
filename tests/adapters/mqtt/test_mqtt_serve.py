"""``sinergia serve`` as a real process ingesting MQTT: with its own embedded broker (the
one-machine setup, flags only), and from the test MQTT broker with two workers sharing the
subscription, so that each message is written exactly once."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from mqtt_harness import MQTT_URL, Publisher, eventually, free_port

from e2e.conftest import ServerProcess

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, *args: str) -> ServerProcess:
    server = ServerProcess(f"sqlite:///{tmp_path / 'mqtt.db'}", tmp_path / "server.log", *args)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def _status(server: ServerProcess) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{server.base_url}/sinergia/v1/mqtt/status").json()
    return body


def test_serve_with_its_own_mqtt_broker(tmp_path: Path) -> None:
    port = free_port()
    server = _run(tmp_path, "--mqtt-embedded-broker", "--mqtt-embedded-port", str(port))
    try:
        eventually(lambda: _status(server)["connected"], "the ingester subscribed")
        publisher = Publisher("127.0.0.1", port, "sinergia")
        publisher.publish([(publisher.topic("", "Room", "r1"),
                            orjson.dumps({"temperature": 20.5}))])
        eventually(lambda: _status(server)["written"] == 1, "the message written")
        entity = httpx.get(f"{server.base_url}/ngsi-ld/v1/entities/urn:ngsi-ld:Room:r1")
        assert entity.json()["temperature"]["value"] == 20.5
    finally:
        server.stop()
    assert "Traceback" not in server.output()


@pytest.mark.skipif(not MQTT_URL, reason="needs SINERGIA_TEST_MQTT_URL (a broker with $share)")
def test_two_workers_write_each_message_once(tmp_path: Path) -> None:
    unique = uuid.uuid4().hex[:12]
    prefix = f"sinergia-test/{unique}"
    server = _run(tmp_path, "--workers", "2", "--mqtt-url", MQTT_URL,
                  "--mqtt-topic-prefix", prefix, "--mqtt-client-id", f"sinergia-test-{unique}")
    try:
        # A message goes to one subscribed member of the shared subscription: one is enough.
        eventually(lambda: _status(server)["connected"], "a worker subscribed")
        broker = urlsplit(MQTT_URL)
        publisher = Publisher(broker.hostname or "127.0.0.1", broker.port or 1883, prefix)
        messages = [(publisher.topic("", "Room", f"r{i % 10}"),
                     orjson.dumps({"n": i, "TimeInstant": f"2026-11-21T08:00:{i:02d}Z"}))
                    for i in range(40)]
        publisher.publish(messages)

        def counted() -> int:
            response = httpx.get(f"{server.base_url}/ngsi-ld/v1/temporal/entities",
                                 params={"type": "Room", "limit": "100", "timerel": "after",
                                         "timeAt": "2026-11-21T00:00:00Z"})
            if response.status_code != 200:  # nothing written yet: no tenant, no history
                return 0
            return sum(len(e.get("n", [])) for e in response.json())

        eventually(lambda: counted() == 40, "40 instances in the history")
    finally:
        server.stop()
