"""How the SQLite store writes history: the stored text of a record (its ``instanceId`` left to
the column), and new and known entities and series recorded by one write. What the temporal
API reads back is covered for both backends by the contract suite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinergia.ngsild.history import history_records, with_id
from sinergia.ngsild.model import Entity
from sinergia.ngsild.temporal import iso_to_ms
from sinergia.storage.base import Edit, HistoryQuery
from sinergia.storage.sqlite import SQLiteStore
from sinergia.storage.sqlite_history import _instance, _stamp_tails, _stored_text
from sinergia.storage.sqlite_schema import MIGRATIONS, migrate

pytestmark = pytest.mark.anyio

EX = "https://ex.org/"
NOW = "2026-01-01T00:00:00.000Z"


def entity(entity_id: str, **values: Any) -> Entity:
    return {"id": entity_id, "type": [EX + "T"], "attrs": {
        EX + name: [{"type": "Property", "value": value, "createdAt": NOW, "modifiedAt": NOW}]
        for name, value in values.items()}}


def test_a_stored_record_reads_back_as_recorded_without_storing_its_id_or_times_twice(
        ) -> None:
    before = entity("urn:e:1", a=1, b="x")
    after = entity("urn:e:1", a=2, c=[1, 2], d=3)
    after["attrs"][EX + "d"][0]["createdAt"] = "2025-01-01T00:00:00.000Z"  # created earlier
    after["attrs"][EX + "c"][0]["modifiedAt"] = "2026-01-01T00:00:00Z"  # not the stored form
    records = history_records(before, after, now=NOW)
    stamps_seen = set()
    for record in records:
        modified_ms = iso_to_ms(record.modified_at)
        whole = orjson.dumps(record.instance).decode()
        text, stamps = _stored_text(whole, _stamp_tails(record.modified_at, modified_ms))
        stamps_seen.add(stamps)
        assert record.instance_id not in text
        assert text.count('Z"') == whole.count('Z"') - stamps  # each left-out time
        read = _instance(record.instance_id, modified_ms, int(record.deleted), text, stamps)
        assert list(read.items()) == list(with_id(record).instance.items())
    # a (both times now), d (modifiedAt only), c (a time not in the stored form), b (deleted)
    assert stamps_seen == {0, 1, 2}


def test_an_instance_id_in_the_input_is_not_the_records() -> None:
    after = entity("urn:e:1", a=1)
    after["attrs"][EX + "a"][0]["instanceId"] = "urn:i:1"
    (record,) = history_records(None, after, now=NOW)
    assert "instanceId" not in record.instance and record.instance_id != "urn:i:1"
    assert with_id(record).instance["instanceId"] == record.instance_id


async def test_one_write_records_new_and_known_entities_and_series(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'h.db'}", synchronous="normal")
    await store.open()
    try:
        await store.apply("", [Edit("urn:e:1", lambda _: entity("urn:e:1", a=1))])
        # One call: a known entity gains a series and extends one; a new entity has both.
        await store.apply("", [
            Edit("urn:e:1", lambda _: entity("urn:e:1", a=2, b=3)),
            Edit("urn:e:2", lambda _: entity("urn:e:2", a=10, b=20)),
        ])
        result = await store.query_history("", HistoryQuery(timeproperty="modifiedAt"))
    finally:
        await store.close()
    values = {te.id: {attr: [i["value"] for i in instances]
                             for attr, instances in te.attrs.items()}
              for te in result.entities}
    assert values == {"urn:e:1": {EX + "a": [1, 2], EX + "b": [3]},
                      "urn:e:2": {EX + "a": [10], EX + "b": [20]}}
    ids = [i["instanceId"] for te in result.entities for insts in te.attrs.values()
           for i in insts]
    assert len(set(ids)) == len(ids) == 5


async def test_history_recorded_before_series_were_keyed_by_attribute_id_upgrades(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    keyed_by_id = next(n for n, m in enumerate(MIGRATIONS)
                       if isinstance(m, str) and "history_series_by_aid" in m)
    for step in MIGRATIONS[:keyed_by_id]:  # the schema as it was before
        if isinstance(step, str):
            for statement in filter(None, (s.strip() for s in step.split(";"))):
                conn.execute(statement)
        else:
            step(conn)
    conn.execute(f"PRAGMA user_version = {keyed_by_id}")
    conn.execute("INSERT INTO attr_names (iri) VALUES (?)", (EX + "b",))  # used by q already
    conn.execute("INSERT INTO history_entities (heid, tenant, id, types) VALUES "
                 "(1, '', 'urn:e:1', ?)", (orjson.dumps([EX + "T"]).decode(),))
    conn.executemany("INSERT INTO history_series (sid, heid, attr) VALUES (?, 1, ?)",
                     [(1, EX + "a"), (2, EX + "b")])
    conn.executemany(
        "INSERT INTO history (sid, t_ms, modified_ms, instance_id, num, instance) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(sid, 1000 * n, 1000 * n, f"urn:i:{sid}:{n}", n,
          orjson.dumps({"type": "Property", "value": n}).decode())
         for sid in (1, 2) for n in range(3)])
    assert migrate(conn) == len(MIGRATIONS)
    conn.close()
    store = SQLiteStore(f"sqlite:///{path}", synchronous="normal")
    await store.open()
    try:
        await store.apply("", [Edit("urn:e:1", lambda _: entity("urn:e:1", a=7, c=8))])
        result = await store.query_history("", HistoryQuery(timeproperty="modifiedAt"))
        gone = await store.delete_history("", "urn:e:1", EX + "b", "urn:i:2:1")
        after = await store.query_history("", HistoryQuery(timeproperty="modifiedAt",
                                                           attrs=(EX + "b",)))
    finally:
        await store.close()
    (recorded,) = result.entities
    assert {attr: [i["value"] for i in instances] for attr, instances in recorded.attrs.items()
            } == {EX + "a": [0, 1, 2, 7], EX + "b": [0, 1, 2], EX + "c": [8]}
    assert gone == 1
    assert [i["instanceId"] for i in after.entities[0].attrs[EX + "b"]] == ["urn:i:2:0",
                                                                          "urn:i:2:2"]


async def test_the_purge_deletes_only_rows_older_than_the_cutoff_without_an_index(
        tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'h.db'}", synchronous="normal")
    await store.open()
    try:
        for value in range(4):  # a history row each
            await store.apply("", [Edit("urn:e:1", lambda _, v=value: entity("urn:e:1", a=v))])
        hids = [hid for hid, _ in _modified_times(tmp_path / "h.db")]
        assert len(hids) == 4
        # Recorded at seconds 1, 2, 3, 4 -- but the first row was replaced at second 10: it
        # stands at the head of the table with a new time.
        conn = sqlite3.connect(tmp_path / "h.db")
        with conn:
            conn.executemany("UPDATE history SET modified_ms = ? WHERE hid = ?",
                             [(10_000 if i == 0 else (i + 1) * 1_000, hid)
                              for i, hid in enumerate(hids)])
        conn.close()
        assert await store.purge_history(older_than_ms=1_000) == 0
        assert await store.purge_history(older_than_ms=3_500) == 2  # seconds 2 and 3
        assert [hid for hid, _ in _modified_times(tmp_path / "h.db")] == [hids[0], hids[3]]
        assert await store.purge_history(older_than_ms=2**62, limit=1) == 1
        assert await store.purge_history(older_than_ms=2**62) == 1
    finally:
        await store.close()
    assert "history_by_modified" not in _history_indexes(tmp_path / "h.db")


def _modified_times(path: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT hid, modified_ms FROM history ORDER BY hid").fetchall()
    finally:
        conn.close()


def _history_indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'history'")}
    finally:
        conn.close()
