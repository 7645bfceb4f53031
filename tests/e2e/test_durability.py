"""Acknowledged means durable: every write the server acknowledged survives ``kill -9``.

Concurrent writer threads create entities and partially update them, recording what the server
acknowledged (201/204). Once enough is acknowledged the whole server process group is killed
while the writers are still sending; the server is restarted on the same database, with the
default settings (so the default ``sqlite_synchronous`` is what is tested), and every
acknowledged entity must be there with its acknowledged content. A request in flight at the kill
may or may not have been applied, so for it either outcome is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from sinergia.settings import BY_NAME

from .conftest import ServerProcess, StartServer

pytestmark = pytest.mark.slow

BASE = "/ngsi-ld/v1"
TYPE = "DurabilityProbe"
WRITERS = 8
ACKS_BEFORE_KILL = 300  # acknowledged writes (all writers together) before kill -9
MAX_WRITES_PER_WRITER = 5_000  # a bound, so a writer stops even if the kill never comes
DEADLINE = 30.0  # seconds allowed to reach ACKS_BEFORE_KILL, and for writers to finish


def probe_id(writer: int, seq: int) -> str:
    return f"urn:ngsi-ld:{TYPE}:w{writer}-{seq:05d}"


@dataclass
class WriterLog:
    """What one writer sent, and what the server acknowledged. A writer sends one request at a
    time, so at most one request (``in_flight``) has an unknown outcome when the server dies."""

    writer: int
    acknowledged: dict[str, str] = field(default_factory=dict)  # entity id -> `reading` value
    attempted: set[str] = field(default_factory=set)  # every id a create was sent for
    in_flight: tuple[str, str] | None = None  # (entity id, `reading` value) of a lost answer
    error: str | None = None  # anything other than the server going away


class AckCounter:
    def __init__(self, target: int) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._target = target
        self.reached = threading.Event()

    def add(self) -> None:
        with self._lock:
            self._count += 1
            if self._count >= self._target:
                self.reached.set()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


def write_until_the_server_dies(base_url: str, log: WriterLog, acks: AckCounter,
                                stop: threading.Event) -> None:
    """Create entities and partially update earlier ones, one request at a time."""
    with httpx.Client(base_url=base_url, timeout=20.0) as client:
        for seq in range(MAX_WRITES_PER_WRITER):
            if stop.is_set():
                return
            entity_id = probe_id(log.writer, seq)
            entity = {"id": entity_id, "type": TYPE,
                      "writer": {"type": "Property", "value": log.writer},
                      "seq": {"type": "Property", "value": seq},
                      "reading": {"type": "Property", "value": "created"}}
            log.attempted.add(entity_id)
            if not send(log, acks, entity_id, "created", 201,
                        partial(client.post, f"{BASE}/entities", json=entity)):
                return
            # A partial update of an earlier entity of this writer: alternately the
            # attribute endpoint and the entity's attrs endpoint.
            target = probe_id(log.writer, seq // 2)
            value = f"patched-{seq}"
            attribute = {"type": "Property", "value": value}
            if seq % 2:
                url, body = f"{BASE}/entities/{target}/attrs/reading", attribute
            else:
                url, body = f"{BASE}/entities/{target}/attrs", {"reading": attribute}
            if not send(log, acks, target, value, 204, partial(client.patch, url, json=body)):
                return


def send(log: WriterLog, acks: AckCounter, entity_id: str, value: str, expected: int,
         request: Callable[[], httpx.Response]) -> bool:
    """Send one write; record it as acknowledged on ``expected``. False: stop writing."""
    log.in_flight = (entity_id, value)
    try:
        response = request()
    except httpx.TransportError:
        return False  # the server died with this request in flight
    except Exception as exc:
        log.error = repr(exc)
        return False
    if response.status_code != expected:
        log.error = f"{entity_id}: {response.status_code} {response.text}"
        return False
    log.in_flight = None
    log.acknowledged[entity_id] = value
    acks.add()
    return True


def stored_probes(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Every DurabilityProbe entity the server has, in keyValues form, page by page."""
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        offset = 0
        while True:
            page = client.get(f"{BASE}/entities", params={
                "type": TYPE, "format": "keyValues", "limit": 1000, "offset": offset})
            assert page.status_code == 200, page.text
            entities = page.json()
            if not entities:
                return found
            found.update((e["id"], e) for e in entities)
            offset += len(entities)


def kill_while_writing(server: ServerProcess) -> list[WriterLog]:
    logs = [WriterLog(writer) for writer in range(WRITERS)]
    acks = AckCounter(ACKS_BEFORE_KILL)
    stop = threading.Event()
    threads = [threading.Thread(target=write_until_the_server_dies,
                                args=(server.base_url, log, acks, stop), daemon=True)
               for log in logs]
    for thread in threads:
        thread.start()
    try:
        reached = acks.reached.wait(timeout=DEADLINE)
        server.kill()  # kill -9 of the whole process group, writers still sending
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=DEADLINE)
    assert not any(thread.is_alive() for thread in threads), "a writer did not stop"
    errors = [log.error for log in logs if log.error]
    assert not errors, errors
    assert reached, f"only {acks.count} writes acknowledged within {DEADLINE}s"
    return logs


def assert_acknowledged_writes_survived(logs: list[WriterLog],
                                        stored: dict[str, dict[str, Any]]) -> None:
    attempted = set().union(*(log.attempted for log in logs))
    assert set(stored) <= attempted, sorted(set(stored) - attempted)[:5]
    for log in logs:
        for entity_id, value in log.acknowledged.items():
            assert entity_id in stored, f"acknowledged {entity_id} lost"
            entity = stored[entity_id]
            seq = int(entity_id.rsplit("-", 1)[1])
            assert (entity["type"], entity["writer"], entity["seq"]) == (TYPE, log.writer, seq)
            allowed = {value}
            if log.in_flight is not None and log.in_flight[0] == entity_id:
                allowed.add(log.in_flight[1])  # the lost answer may or may not have applied
            assert entity["reading"] in allowed, (
                f"{entity_id}: acknowledged reading {value!r}, stored {entity['reading']!r}")
    # An entity created without an acknowledgement (in flight) is absent or whole.
    for entity in stored.values():
        assert {"writer", "seq", "reading"} <= set(entity), entity


def test_default_synchronous_is_the_durable_one() -> None:
    # The servers below run on the defaults, so this is the setting the durability rests on.
    assert BY_NAME["sqlite_synchronous"].default in {"full", "extra"}


@pytest.mark.parametrize("workers", [1, 2])
def test_acknowledged_writes_survive_kill_9(start_server: StartServer, tmp_path: Path,
                                            workers: int) -> None:
    database_url = f"sqlite:///{tmp_path / 'durable.db'}"
    server = start_server(database_url, "--workers", str(workers))
    server.wait_for_output("Application startup complete", times=workers)

    logs = kill_while_writing(server)

    restarted = start_server(database_url)
    stored = stored_probes(restarted)
    assert_acknowledged_writes_survived(logs, stored)
    patched = sum(value != "created" for log in logs for value in log.acknowledged.values())
    assert patched > 0, "no partial update was acknowledged"
