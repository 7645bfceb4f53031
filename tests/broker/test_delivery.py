"""Notification delivery against real receivers: a local HTTP server (uvicorn in a thread) and
an MQTT broker (``SINERGIA_TEST_MQTT_URL``, else amqtt embedded in the test's event loop)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import anyio
import anyio.to_thread
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sinergia.broker.delivery import (
    Deliverer,
    DeliveryOutcome,
    RetryPolicy,
    backoff,
    endpoint_origin,
)
from sinergia.settings import Settings

pytestmark = pytest.mark.anyio

BODY = orjson.dumps({"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "data": []})
HEADERS = {"Content-Type": "application/json", "X-Auth": "secret"}


# --- pure parts ------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    top = [backoff(n, base=1.0, cap=60.0, rand=lambda: 0.0) for n in range(1, 9)]
    assert top == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    low = [backoff(n, base=1.0, cap=60.0, rand=lambda: 1.0) for n in range(1, 9)]
    assert low == [t / 2 for t in top]
    assert backoff(10_000, base=2.0, cap=300.0, rand=lambda: 0.0) == 300.0
    assert backoff(3, base=1.0, cap=60.0, jitter=0.0, rand=lambda: 0.7) == 4.0
    with pytest.raises(ValueError, match="attempt counts from 1"):
        backoff(0, base=1.0, cap=1.0)


def test_retry_policy_retries_only_what_may_succeed() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=2.0, backoff_cap=100.0)
    failed = DeliveryOutcome(False, error="timeout", retryable=True)
    assert policy.next_delay(1, failed, rand=lambda: 0.0) == 2.0
    assert policy.next_delay(2, failed, rand=lambda: 0.0) == 4.0
    assert policy.next_delay(3, failed) is None                       # out of tries
    assert policy.next_delay(1, DeliveryOutcome(True, status=200)) is None
    assert policy.next_delay(1, DeliveryOutcome(False, status=400, error="HTTP 400")) is None
    settings = Settings(notification_max_attempts=5, notification_backoff_base=0.5,
                        notification_backoff_cap=9.0)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(5, 0.5, 9.0)
    deliverer = Deliverer.from_settings(Settings(notification_timeout=3.0,
                                                 notification_endpoint_concurrency=7))
    assert (deliverer.timeout, deliverer.per_endpoint) == (3.0, 7)


def test_endpoint_origin() -> None:
    assert endpoint_origin("http://Example.org/a?b") == "http://example.org:80"
    assert endpoint_origin("https://example.org:8443/n") == "https://example.org:8443"
    assert endpoint_origin("mqtt://u:p@broker/t/x") == "mqtt://broker:1883"
    assert endpoint_origin("mqtts://[::1]/t") == "mqtts://[::1]:8883"


# --- a real HTTP receiver ----------------------------------------------------------------------


@dataclass
class Hanging:
    """The ``/hang`` requests of one test: they wait for ``release`` (a worker thread blocks
    on it, so nothing polls). Each request keeps the state it started with, so stragglers
    from an earlier test never count in the next one."""

    release: threading.Event = field(default_factory=threading.Event)
    two_in_flight: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Receiver:
    """Records what arrives; ``/hang`` waits (see :class:`Hanging`); ``/status/{code}``
    answers that status."""

    ports: list[int]
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    hanging: Hanging = field(default_factory=Hanging)

    def url(self, path: str, which: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[which]}{path}"

    def reset(self) -> None:
        self.hanging.release.set()   # let anything still hanging from the last test go
        self.hanging = Hanging()
        self.received.clear()


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)   # connections queue from now on: no need to wait for the server
    return sock


def _app(receiver: Receiver) -> Starlette:
    async def record(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:   # a sender that gave up waiting (timeout tests)
            return Response(status_code=499)
        receiver.received.append((request.url.path, dict(request.headers), body))
        return Response(status_code=200)

    async def status(request: Request) -> Response:
        await record(request)
        return Response(status_code=int(request.path_params["code"]))

    async def hang(request: Request) -> Response:
        state = receiver.hanging
        with state.lock:
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
            if state.in_flight >= 2:
                state.two_in_flight.set()
        await anyio.to_thread.run_sync(state.release.wait)
        with state.lock:
            state.in_flight -= 1
        return await record(request)

    return Starlette(routes=[Route("/ok", record, methods=["POST"]),
                             Route("/status/{code:int}", status, methods=["POST"]),
                             Route("/hang", hang, methods=["POST"])])


@pytest.fixture(scope="module")
def http_receiver() -> Iterator[Receiver]:
    sockets = [_listening_socket(), _listening_socket()]
    receiver = Receiver([s.getsockname()[1] for s in sockets])
    config = uvicorn.Config(_app(receiver), log_level="warning", lifespan="off", ws="none",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hanging.release.set()
        server.should_exit = True
        thread.join()
        for sock in sockets:
            sock.close()


@pytest.fixture
def receiver(http_receiver: Receiver) -> Iterator[Receiver]:
    http_receiver.reset()
    yield http_receiver
    http_receiver.hanging.release.set()


async def test_http_post_carries_headers_and_body(receiver: Receiver) -> None:
    async with Deliverer(timeout=10) as deliverer:
        outcome = await deliverer.deliver(receiver.url("/ok"), HEADERS, BODY)
    assert outcome == DeliveryOutcome(True, status=200)
    ((path, headers, body),) = receiver.received
    assert path == "/ok" and body == BODY
    assert headers["content-type"] == "application/json" and headers["x-auth"] == "secret"


@pytest.mark.parametrize(("code", "retryable"), [(500, True), (503, True), (429, True),
                                                 (408, True), (404, False), (400, False),
                                                 (301, False)])
async def test_http_errors_say_whether_to_retry(receiver: Receiver, code: int,
                                                retryable: bool) -> None:
    async with Deliverer(timeout=10) as deliverer:
        outcome = await deliverer.deliver(receiver.url(f"/status/{code}"), HEADERS, BODY)
        assert outcome == DeliveryOutcome(False, status=code, error=f"HTTP {code}",
                                          retryable=retryable)
        assert (await deliverer.deliver(receiver.url("/status/204"), HEADERS, BODY)).ok


async def test_a_hanging_receiver_times_out_and_is_retryable(receiver: Receiver) -> None:
    async with Deliverer(timeout=0.3) as deliverer:
        outcome = await deliverer.deliver(receiver.url("/hang"), HEADERS, BODY)
    assert not outcome.ok and outcome.retryable
    assert outcome.error is not None and "no answer within 0.3 s" in outcome.error


async def test_a_hanging_receiver_never_delays_the_others(receiver: Receiver) -> None:
    async with Deliverer(timeout=60, per_endpoint=2) as deliverer:
        hung: list[DeliveryOutcome] = []

        async def to_hanging() -> None:
            hung.append(await deliverer.deliver(receiver.url("/hang", 1), HEADERS, BODY))

        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(to_hanging)
            # Both slots of the hanging receiver are taken and three more calls wait...
            assert await anyio.to_thread.run_sync(receiver.hanging.two_in_flight.wait, 30)
            assert deliverer.busy(receiver.url("/hang", 1)) == 5
            # ...while another receiver is served at once.
            outcome = await deliverer.deliver(receiver.url("/ok"), HEADERS, BODY)
            assert outcome.ok and hung == []
            assert [path for path, _, _ in receiver.received] == ["/ok"]
            receiver.hanging.release.set()
        assert len(hung) == 5 and all(o.ok for o in hung)
        assert receiver.hanging.most_in_flight == 2   # never more than its own slots
        assert deliverer.busy(receiver.url("/hang", 1)) == 0


async def test_a_full_endpoint_gives_up_after_the_timeout() -> None:
    deliverer = Deliverer(timeout=0.2, per_endpoint=1)
    unblock = anyio.Event()

    async def stuck(*_: Any) -> DeliveryOutcome:
        await unblock.wait()
        return DeliveryOutcome(True)

    deliverer._attempt = stuck  # type: ignore[method-assign]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(deliverer.deliver, "http://receiver.test:1/a", HEADERS, BODY)
        await anyio.wait_all_tasks_blocked()
        busy = await deliverer.deliver("http://receiver.test:1/b", HEADERS, BODY)
        assert not busy.ok and busy.retryable
        assert busy.error is not None and "is busy" in busy.error
        unblock.set()
    assert (await deliverer.deliver("http://receiver.test:1/c", HEADERS, BODY)).ok


async def test_an_unreachable_receiver_fails_then_recovers_when_it_comes_back() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))   # bound, not listening: connections are refused
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ok"
    async with Deliverer(timeout=10) as deliverer:
        refused = await deliverer.deliver(url, HEADERS, BODY)
        assert not refused.ok and refused.retryable and refused.status is None
        assert refused.error

        sock.listen(8)
        receiver = Receiver([port])
        server = uvicorn.Server(uvicorn.Config(_app(receiver), log_level="warning",
                                               lifespan="off", ws="none"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            assert (await deliverer.deliver(url, HEADERS, BODY)).ok
            assert len(receiver.received) == 1
        finally:
            server.should_exit = True
            await deliverer.aclose()
            await anyio.to_thread.run_sync(thread.join)
            sock.close()


async def test_nothing_is_rendered_for_a_receiver_that_cannot_be_reached(
        receiver: Receiver) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))   # bound, not listening: connections are refused
    rendered: list[str] = []

    def render(name: str) -> tuple[dict[str, str], bytes]:
        rendered.append(name)
        return HEADERS, BODY

    async with Deliverer(timeout=10) as deliverer:
        refused = await deliverer.deliver_rendered(
            f"http://127.0.0.1:{sock.getsockname()[1]}/ok", lambda: render("refused"))
        served = await deliverer.deliver_rendered(receiver.url("/ok"), lambda: render("ok"))
    sock.close()
    assert not refused.ok and refused.retryable and served.ok
    assert rendered == ["ok"]
    assert [body for _, _, body in receiver.received] == [BODY]


async def test_unsupported_and_invalid_endpoints_are_not_retried() -> None:
    deliverer = Deliverer(timeout=1)
    ftp = await deliverer.deliver("ftp://example.org/x", HEADERS, BODY)
    assert not ftp.ok and not ftp.retryable and "unsupported" in (ftp.error or "")
    bad_port = await deliverer.deliver("http://example.org:99999/x", HEADERS, BODY)
    assert not bad_port.ok and not bad_port.retryable
    no_topic = await deliverer.deliver("mqtt://127.0.0.1:1/", HEADERS, BODY)
    assert not no_topic.ok and not no_topic.retryable


# --- MQTT --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_amqtt(port: int) -> Any:
    from amqtt.broker import Broker

    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}},
    })
    await broker.start()
    return broker


@dataclass
class MqttBroker:
    host: str
    port: int
    embedded: Any = None   # the amqtt Broker when we run one

    def url(self, topic: str) -> str:
        return f"mqtt://{self.host}:{self.port}/{topic}"


@pytest.fixture
async def mqtt_broker() -> AsyncIterator[MqttBroker]:
    configured = os.environ.get("SINERGIA_TEST_MQTT_URL")
    if configured:
        parts = urlsplit(configured)
        yield MqttBroker(parts.hostname or "127.0.0.1", parts.port or 1883)
        return
    port = _free_port()
    broker = await _start_amqtt(port)
    try:
        yield MqttBroker("127.0.0.1", port, broker)
    finally:
        await broker.shutdown()


async def _receive_one(broker: MqttBroker, topic: str, send: Any) -> aiomqtt.Message:
    async with aiomqtt.Client(broker.host, broker.port) as listener:
        await listener.subscribe(topic, qos=1)
        await send()
        with anyio.fail_after(10):
            async for message in listener.messages:
                return message
    raise AssertionError("the listener stopped without a message")


@pytest.mark.parametrize("qos", ["0", "1", "2"])
async def test_mqtt_publishes_the_envelope(mqtt_broker: MqttBroker, qos: str) -> None:
    topic = f"sinergia/test/{uuid.uuid4()}"
    envelope = orjson.dumps({"metadata": HEADERS, "body": orjson.loads(BODY)})
    async with Deliverer(timeout=10) as deliverer:
        outcomes: list[DeliveryOutcome] = []

        async def send() -> None:
            outcomes.append(await deliverer.deliver(mqtt_broker.url(topic), HEADERS, envelope,
                                                    notifier_info={"MQTT-QoS": qos}))

        message = await _receive_one(mqtt_broker, topic, send)
    assert outcomes == [DeliveryOutcome(True)]
    assert message.payload == envelope and str(message.topic) == topic


async def test_mqtt_connection_is_reused(mqtt_broker: MqttBroker) -> None:
    async with Deliverer(timeout=10) as deliverer:
        for _ in range(3):
            outcome = await deliverer.deliver(mqtt_broker.url("sinergia/test/reuse"), HEADERS,
                                              BODY)
            assert outcome.ok
        assert len(deliverer._mqtt) == 1


async def test_mqtt_broker_down_fails_retryably_and_recovers() -> None:
    port = _free_port()
    url = f"mqtt://127.0.0.1:{port}/sinergia/test/recover"
    async with Deliverer(timeout=5) as deliverer:
        down = await deliverer.deliver(url, HEADERS, BODY)
        assert not down.ok and down.retryable and (down.error or "").startswith("MQTT")

        broker = await _start_amqtt(port)
        try:
            assert (await deliverer.deliver(url, HEADERS, BODY)).ok
        finally:
            await broker.shutdown()

        # The cached connection is now dead; the broker comes back on the same port. The
        # outbox would retry failed attempts: a bounded number of tries must get through.
        broker = await _start_amqtt(port)
        try:
            outcomes = []
            for _ in range(3):
                outcomes.append(await deliverer.deliver(url, HEADERS, BODY))
                if outcomes[-1].ok:
                    break
            assert outcomes[-1].ok, outcomes
        finally:
            await deliverer.aclose()
            await broker.shutdown()
