"""Notifications are durable: a change commits together with its notification (outbox), so a
``kill -9`` between the commit and the delivery loses nothing — the restarted server delivers.
Also a live delivery over MQTT to a real broker."""

from __future__ import annotations

import os
import queue
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from support.receiver import http_receiver

from .conftest import StartServer

pytestmark = pytest.mark.slow

BASE = "/ngsi-ld/v1"
# Short timeout (so a notification claimed when the server died is retried after its lease of
# 2 x timeout + 5 s) and quick retries.
FAST_RETRIES = ("--notification-backoff-base", "0.2", "--notification-backoff-cap", "0.5",
                "--notification-timeout", "2")


def subscription(uri: str) -> dict[str, object]:
    return {"id": "urn:ngsi-ld:Subscription:e2e", "type": "Subscription",
            "entities": [{"type": "Probe"}],
            "notification": {"endpoint": {"uri": uri}, "format": "keyValues"}}


def probe(n: int) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Probe:{n}", "type": "Probe",
            "reading": {"type": "Property", "value": n}}


def test_kill_between_commit_and_delivery_loses_nothing(start_server: StartServer,
                                                        tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'notify.db'}"
    with http_receiver() as receiver:
        receiver.status = 503  # the receiver is down: every attempt fails and is retried
        server = start_server(database, *FAST_RETRIES)
        base = server.base_url + BASE
        assert httpx.post(f"{base}/subscriptions",
                          json=subscription(receiver.url)).status_code == 201
        for n in range(3):
            assert httpx.post(f"{base}/entities", json=probe(n)).status_code == 201
        server.kill()  # kill -9 while the notifications wait in the outbox
        receiver.status = 200  # the receiver comes back
        start_server(database, *FAST_RETRIES)
        got = {entity["id"] for entity in receiver.entities(3, timeout=30)}
        assert got == {f"urn:ngsi-ld:Probe:{n}" for n in range(3)}


@pytest.mark.skipif(not os.environ.get("SINERGIA_TEST_MQTT_URL"),
                    reason="SINERGIA_TEST_MQTT_URL names no MQTT broker (CI sets it)")
def test_notifications_reach_an_mqtt_broker(start_server: StartServer, tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    broker = urlsplit(os.environ["SINERGIA_TEST_MQTT_URL"])
    topic = f"sinergia/e2e/{os.getpid()}"
    inbox: queue.Queue[bytes] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, message: inbox.put(message.payload)
    client.on_subscribe = lambda *_: subscribed.put(True)
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        subscribed.get(timeout=10)
        server = start_server(f"sqlite:///{tmp_path / 'mqtt.db'}")
        base = server.base_url + BASE
        uri = f"mqtt://{broker.hostname}:{broker.port or 1883}/{topic}"
        assert httpx.post(f"{base}/subscriptions", json=subscription(uri)).status_code == 201
        assert httpx.post(f"{base}/entities", json=probe(7)).status_code == 201
        message = orjson.loads(inbox.get(timeout=20))
        assert message["body"]["data"][0] == {"id": "urn:ngsi-ld:Probe:7", "type": "Probe",
                                              "reading": 7}
        assert message["metadata"]["Content-Type"] == "application/json"
    finally:
        client.loop_stop()
        client.disconnect()
