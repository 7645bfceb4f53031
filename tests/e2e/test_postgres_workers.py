"""``sinergia serve --workers 2`` on one PostgreSQL database: both workers serve the API, a
subscription made through one is matched by changes made through the other at once, each
notification is delivered once, and a ``kill -9`` of every worker while notifications wait
for a failing receiver loses none of them (at-least-once).

Runs when SINERGIA_TEST_POSTGRES_URL is set (CI sets it; then an unreachable database fails
the test). Each test gets a fresh schema, selected through the URL's search_path."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from support.receiver import Receiver, http_receiver

from .conftest import ServerProcess, StartServer
from .test_notification_durability import FAST_RETRIES, probe
from .test_serve import _serving_pid

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BASE = "/ngsi-ld/v1"
SUB_ID = "urn:ngsi-ld:Subscription:workers"
COUNT = 20
DELIVERY_DEADLINE = 60.0  # seconds; covers the 9 s lease of a killed worker's claims


def subscription(uri: str) -> dict[str, object]:
    return {"id": SUB_ID, "type": "Subscription", "entities": [{"type": "Probe"}],
            "notification": {"endpoint": {"uri": uri}, "format": "keyValues"}}


def start_two_workers(start_server: StartServer, database_url: str,
                      *args: str) -> ServerProcess:
    server = start_server(database_url, "--workers", "2", *args)
    output = server.wait_for_output("Application startup complete", times=2)
    assert "Traceback" not in output
    return server


@contextmanager
def one_client_per_worker(server: ServerProcess) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two keep-alive clients whose connections two different workers accepted (new
    connections until both workers have one: the kernel picks the worker)."""
    clients: dict[int, httpx.Client] = {}
    opened: list[httpx.Client] = []
    try:
        for _ in range(200):
            client = httpx.Client(base_url=server.base_url + BASE, timeout=10.0)
            opened.append(client)
            response = client.get(f"{server.base_url}/version")
            assert response.status_code == 200
            clients.setdefault(_serving_pid(server, response), client)
            if len(clients) == 2:
                break
        assert len(clients) == 2, f"only worker(s) {sorted(clients)} accepted connections"
        first, second = clients.values()
        yield first, second
    finally:
        for client in opened:
            client.close()


def subscribe_then_write_through_both(one: httpx.Client, other: httpx.Client,
                                      receiver: Receiver) -> set[str]:
    """Subscribe through one worker, then at once create probes through the other and the
    first in turn; return the ids of the probes."""
    created = one.post("/subscriptions", json=subscription(receiver.url))
    assert created.status_code == 201, created.text
    for n in range(COUNT):
        response = (other if n % 2 == 0 else one).post("/entities", json=probe(n))
        assert response.status_code == 201, response.text
    return {f"urn:ngsi-ld:Probe:{n}" for n in range(COUNT)}


def wait_until(condition: Callable[[], bool], server: ServerProcess, what: str) -> None:
    """Poll ``condition`` until true; fail if the server exits or after the deadline."""
    give_up = time.monotonic() + DELIVERY_DEADLINE
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"{what}: not within {DELIVERY_DEADLINE} s")
        try:
            code = server.process.wait(timeout=0.05)  # the pause between polls
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"sinergia serve exited with {code}:\n{server.output()}")


def outbox_size(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        assert row is not None
        return int(row[0])


def delivery_counters(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"/subscriptions/{SUB_ID}")
    assert response.status_code == 200, response.text
    notification: dict[str, Any] = response.json()["notification"]
    return notification


# (postgres_url comes first: fixtures are torn down in reverse, so the servers stop before their
# schema is dropped)
def test_two_workers_share_subscriptions_and_deliver_each_notification_once(
        postgres_url: str, start_server: StartServer) -> None:
    server = start_two_workers(start_server, postgres_url)
    with http_receiver() as receiver, one_client_per_worker(server) as (one, other):
        expected = subscribe_then_write_through_both(one, other, receiver)
        received: list[str] = []
        requests = 0
        while not expected <= set(received):
            received.extend(e["id"] for e in receiver.next(DELIVERY_DEADLINE).body["data"])
            requests += 1
        # Once the outbox is empty nothing more can be sent; then every request the workers
        # made (timesSent, counted in the database by both) must have been received.
        wait_until(lambda: outbox_size(postgres_url) == 0, server, "the outbox to empty")
        counters = delivery_counters(other)
        assert counters["timesFailed"] == 0
        while requests < counters["timesSent"]:
            received.extend(e["id"] for e in receiver.next(DELIVERY_DEADLINE).body["data"])
            requests += 1
        assert requests == counters["timesSent"]
        assert receiver.inbox.empty()
        assert sorted(received) == sorted(expected)  # each exactly once


def test_kill_9_of_every_worker_loses_no_notification(postgres_url: str,
                                                      start_server: StartServer) -> None:
    with http_receiver() as receiver:
        receiver.status = 503  # the receiver is down: every attempt fails and is retried
        server = start_two_workers(start_server, postgres_url, *FAST_RETRIES)
        with one_client_per_worker(server) as (one, other):
            expected = subscribe_then_write_through_both(one, other, receiver)
            # The notifiers are at work (claiming, failing, rescheduling) when they die.
            wait_until(lambda: delivery_counters(one)["timesFailed"] > 0, server,
                       "a failed delivery attempt")
        server.kill()  # kill -9 of the whole group while the notifications are pending
        assert outbox_size(postgres_url) > 0
        receiver.status = 200  # the receiver comes back
        start_two_workers(start_server, postgres_url, *FAST_RETRIES)
        seen: set[str] = set()
        while not expected <= seen:
            seen.update(e["id"] for e in receiver.next(DELIVERY_DEADLINE).body["data"])
        assert seen == expected
