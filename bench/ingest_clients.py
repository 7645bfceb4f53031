"""The MQTT load of bench_ingest, run as separate processes so that they never share a core's
Python interpreter with what they measure:

    python -m bench.ingest_clients publish  --prefix P --devices N --messages M --qos Q
    python -m bench.ingest_clients subscribe --prefix P --messages M

``publish`` sends M key-value payloads (``temperature``, ``humidity``, ``TimeInstant``) over
N device topics ``P/<tenant>/Sensor/<device>/attrs`` as fast as paho-mqtt can, then prints
``{"start": <time.time() before the first publish>, "end": …}``. ``subscribe`` (Mosquitto's
own rate: a subscriber that does nothing with the messages) prints ``ready`` once subscribed,
then ``{"count": …, "last": <time.time() of the last message>}`` when it has M messages or
nothing came for 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt

START = datetime(2026, 1, 1, tzinfo=UTC)
TYPE = "Sensor"


def topics(prefix: str, devices: int) -> list[str]:
    return [f"{prefix}//{TYPE}/dev{d:05d}/attrs" for d in range(devices)]


def payloads(devices: int, messages: int) -> list[bytes]:
    """Message i is device i % devices' reading number i // devices, one a second."""
    out = []
    for i in range(messages):
        moment = START + timedelta(seconds=i // devices)
        out.append(orjson.dumps({
            "temperature": round(15 + (i % 997) / 50, 2), "humidity": 30 + i % 50,
            "TimeInstant": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    return out


def _client() -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    # QoS1: at most 100 messages awaiting their PUBACK, as a gateway of devices would; paho
    # slows down a lot with thousands in flight (and stalls for tens of seconds at 65,535).
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    return client


def publish(args: argparse.Namespace) -> None:
    names = topics(args.prefix, args.devices)
    bodies = payloads(args.devices, args.messages)
    client = _client()
    client.connect(args.host, args.port)
    client.loop_start()
    start = time.time()
    last = None
    for i, body in enumerate(bodies):
        last = client.publish(names[i % args.devices], body, qos=args.qos)
    if last is not None:
        last.wait_for_publish(timeout=600)
    end = time.time()
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"start": start, "end": end}), flush=True)


def subscribe(args: argparse.Namespace) -> None:
    client = _client()
    state = {"count": 0, "last": 0.0}
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        state["count"] += 1
        state["last"] = time.time()
        if state["count"] >= args.messages:
            done.set()

    def on_subscribe(*_: object) -> None:
        print("ready", flush=True)

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(args.host, args.port)
    client.subscribe(f"{args.prefix}/#", qos=0)
    client.loop_start()
    seen = -1
    while not done.wait(10.0) and state["count"] != seen:
        seen = state["count"]
    client.disconnect()
    client.loop_stop()
    print(json.dumps(state), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("publish", "subscribe"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--qos", type=int, default=0, choices=(0, 1))
    args = parser.parse_args()
    (publish if args.role == "publish" else subscribe)(args)
    sys.exit(0)


if __name__ == "__main__":
    main()
