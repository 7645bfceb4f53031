"""Processes sharing one PostgreSQL database wake each other (LISTEN/NOTIFY), and keep doing so
after their LISTEN connection was lost. Two stores on one schema stand for two processes.

Other test runs may share the database (channels belong to the database, not to a schema), so
the tests listen for record kinds of their own: only this test can ring them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from sinergia.storage.base import OutboxMessage, Store, open_store

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

WAIT = 30.0  # seconds: only reached when the wake-up never comes


@pytest.fixture
def app_name() -> str:
    return f"sinergia-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def stores(postgres_url: str, app_name: str) -> AsyncIterator[tuple[Store, Store]]:
    first = open_store(postgres_url)
    # The listener's connection is named after the URL's application_name, plus ":listen".
    second = open_store(f"{postgres_url}&application_name={app_name}")
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_another_process_s_outbox_messages_wake_the_notifier(stores: tuple[Store, Store]
                                                                    ) -> None:
    first, second = stores
    await second.wait_outbox(0)  # forget the wake-up of start-up
    await first.enqueue("", [OutboxMessage("urn:sub:1", {"n": 1})])
    assert await second.wait_outbox(WAIT)
    (item,) = await second.claim_outbox(10, lease_seconds=60)
    assert item.payload == {"n": 1}


async def test_another_process_s_record_change_wakes_the_cache(stores: tuple[Store, Store]
                                                                ) -> None:
    first, second = stores
    kind = f"test-{uuid.uuid4().hex}"
    await second.wait_records(kind, 0)
    await first.put_record(kind, "", "r1", {})
    assert await second.wait_records(kind, WAIT)
    await first.delete_record(kind, "", "r1")
    assert await second.wait_records(kind, WAIT)


async def test_listening_resumes_after_the_connection_is_lost(
        stores: tuple[Store, Store], postgres_server: str, app_name: str) -> None:
    import psycopg

    first, second = stores
    kind = f"test-{uuid.uuid4().hex}"
    await second.wait_records(kind, 0)
    async with await psycopg.AsyncConnection.connect(postgres_server, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s", (f"{app_name}:listen",))
        assert await cur.fetchall() == [(True,)]
    # Back: it wakes every waiter at once (what was announced meanwhile is lost) ...
    assert await second.wait_records(kind, WAIT)
    # ... and hears the other process again.
    await first.put_record(kind, "", "r1", {})
    assert await second.wait_records(kind, WAIT)
