"""The ``attr_values`` side table: which attribute values it holds, that the SQLite store keeps
it in step with every write (and fills it for databases made before it existed), and that q
really reads it. That the SQL reading it agrees with the q evaluator is checked, on generated
expressions and entities, in test_sqlite_filters."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import Entity
from sinergia.ngsild.qlang import parse_q, resolve_q
from sinergia.ngsild.query import EntityQuery
from sinergia.storage.base import Edit
from sinergia.storage.sqlite import SQLiteStore
from sinergia.storage.sqlite_schema import MIGRATIONS, migrate
from sinergia.storage.sqlite_values import AttrIds, sync_values, value_rows

pytestmark = pytest.mark.anyio

EX = "https://ex.org/"


def p(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


def test_only_one_scalar_property_or_relationship_value_has_a_row() -> None:
    entity = {"id": "urn:e:1", "type": [EX + "T"], "attrs": {
        EX + "n": [p(5, unitCode="C62", observedAt="2024-01-01T00:00:00.000Z")],
        EX + "x": [p(2.5)], EX + "s": [p("on")], EX + "b": [p(True)], EX + "f": [p(False)],
        EX + "r": [{"type": "Relationship", "object": "urn:x:1"}],
        EX + "big": [p(2**70)], EX + "list": [p([1, 2])], EX + "obj": [p({"k": 1})],
        EX + "two": [p(1), p(2, datasetId="urn:d:1")],
        EX + "geo": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}],
        EX + "lang": [{"type": "LanguageProperty", "languageMap": {"en": "x"}}],
        EX + "vocab": [{"type": "VocabProperty", "vocab": EX + "v"}],
        EX + "ds": [p(7, datasetId="urn:d:1")],
    }}
    assert value_rows(entity) == {
        EX + "n": ("integer", 5), EX + "x": ("real", 2.5), EX + "s": ("text", "on"),
        EX + "b": ("true", 1), EX + "f": ("false", 0), EX + "r": ("text", "urn:x:1"),
        EX + "ds": ("integer", 7)}


async def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'v.db'}", synchronous="normal", history=False)
    await store.open()
    return store


def _table(path: Path) -> dict[tuple[str, str], tuple[str, Any]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT e.id, n.iri, v.t, v.v FROM attr_values v JOIN attr_names n ON n.aid = v.aid "
            "JOIN entities e ON e.rid = v.rid").fetchall()
    finally:
        conn.close()
    return {(entity_id, iri): (t, v) for entity_id, iri, t, v in rows}


def _expected(path: Path) -> dict[tuple[str, str], tuple[str, Any]]:
    conn = sqlite3.connect(path)
    try:
        docs = [orjson.loads(doc) for (doc,) in conn.execute("SELECT doc FROM entities")]
    finally:
        conn.close()
    return {(e["id"], iri): row for e in docs for iri, row in value_rows(e).items()}


def _put(entity: Entity | None) -> Any:
    return lambda current: entity


async def test_the_store_keeps_the_rows_in_step_with_every_write(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    path = tmp_path / "v.db"
    try:
        first = {"id": "urn:e:1", "type": [EX + "T"],
                 "attrs": {EX + "a": [p(1)], EX + "b": [p("x")], EX + "c": [p([1])]}}
        second = {"id": "urn:e:2", "type": [EX + "T"], "attrs": {EX + "a": [p(2.5)]}}
        await store.apply("", [Edit("urn:e:1", _put(first)), Edit("urn:e:2", _put(second))])
        assert _table(path) == _expected(path) == {
            ("urn:e:1", EX + "a"): ("integer", 1), ("urn:e:1", EX + "b"): ("text", "x"),
            ("urn:e:2", EX + "a"): ("real", 2.5)}
        # a value changes, an attribute goes, one stops being simple, one becomes simple
        changed = {**first, "attrs": {EX + "a": [p(True)], EX + "b": [p("x"), p(
            "y", datasetId="urn:d:1")], EX + "c": [p(3)]}}
        await store.apply("", [Edit("urn:e:1", _put(changed))])
        assert _table(path) == _expected(path) == {
            ("urn:e:1", EX + "a"): ("true", 1), ("urn:e:1", EX + "c"): ("integer", 3),
            ("urn:e:2", EX + "a"): ("real", 2.5)}
        await store.apply("", [Edit("urn:e:1", _put(None))])
        assert _table(path) == _expected(path) == {("urn:e:2", EX + "a"): ("real", 2.5)}
        # a failed edit in the same call changes nothing of its own
        def refuse(current: Entity | None) -> Entity | None:
            raise BadRequestData("no")
        third = {"id": "urn:e:3", "type": [EX + "T"], "attrs": {EX + "a": [p(3)]}}
        results = await store.apply("", [Edit("urn:e:3", _put(third)),
                                         Edit("urn:e:2", refuse)])
        assert [r.ok for r in results] == [True, False]
        assert _table(path) == _expected(path)
    finally:
        await store.close()


async def test_concurrent_calls_are_applied_together_yet_fail_alone(tmp_path: Path) -> None:
    import anyio

    store = await _store(tmp_path)
    try:
        outcomes: dict[int, bool] = {}

        async def write(n: int) -> None:
            def rule(current: Entity | None) -> Entity:
                if n % 5 == 0:
                    raise BadRequestData("refused")
                return {"id": f"urn:e:{n}", "type": [EX + "T"], "attrs": {EX + "a": [p(n)]}}
            (result,) = await store.apply("", [Edit(f"urn:e:{n}", rule)])
            outcomes[n] = result.ok

        async with anyio.create_task_group() as group:
            for n in range(40):
                group.start_soon(write, n)
        assert outcomes == {n: n % 5 != 0 for n in range(40)}
        q = resolve_q(parse_q("a>30"), lambda term: EX + term)
        found = await store.query_entities("", EntityQuery(type=EX + "T", q=q, limit=100))
        assert sorted(e["id"] for e in found.entities) == [
            f"urn:e:{n}" for n in sorted(range(31, 40)) if n % 5 != 0]
    finally:
        await store.close()


async def test_q_reads_the_rows_when_they_exist(tmp_path: Path) -> None:
    """The rows are trusted over the document: what q selects follows a (doctored) row, and
    an entity without a row is judged on its document."""
    store = await _store(tmp_path)
    path = tmp_path / "v.db"
    try:
        await store.apply("", [Edit(f"urn:e:{n}", _put(
            {"id": f"urn:e:{n}", "type": [EX + "T"], "attrs": {EX + "a": [p(n)]}}))
            for n in (1, 2)] + [Edit("urn:e:3", _put(
                {"id": "urn:e:3", "type": [EX + "T"], "attrs": {EX + "a": [p([3])]}}))])
        conn = sqlite3.connect(path)
        conn.execute("UPDATE attr_values SET v = 100 WHERE rid = "
                     "(SELECT rid FROM entities WHERE id = 'urn:e:1')")
        conn.commit()
        conn.close()
        q = resolve_q(parse_q("a>2"), lambda term: EX + term)
        for query in (EntityQuery(type=EX + "T", q=q), EntityQuery(q=q)):
            found = await store.query_entities("", query)
            assert sorted(e["id"] for e in found.entities) == ["urn:e:1", "urn:e:3"]
    finally:
        await store.close()


def test_a_database_made_before_the_table_existed_is_filled(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    step = MIGRATIONS.index(next(m for m in MIGRATIONS if not isinstance(m, str)))
    for script in MIGRATIONS[:step]:
        assert isinstance(script, str)
        for statement in filter(None, (s.strip() for s in script.split(";"))):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {step}")
    docs = [{"id": f"urn:e:{n}", "type": [EX + "T"], "attrs": {EX + "a": [p(n)],
                                                              EX + "b": [p({"k": n})]}}
            for n in range(2500)]
    conn.executemany("INSERT INTO entities (tenant, id, doc) VALUES ('', ?, ?)",
                     [(d["id"], orjson.dumps(d).decode()) for d in docs])
    assert migrate(conn) == len(MIGRATIONS)
    conn.close()
    assert _table(path) == _expected(path)
    assert len(_table(path)) == 2500


def test_a_new_entity_gets_the_rows_an_empty_one_would_change_into(tmp_path: Path) -> None:
    """sync_values writes a created entity's rows without comparing: the same rows as
    bringing an attribute-less version of it up to date."""
    entity = {"id": "urn:e:1", "type": [EX + "T"], "attrs": {
        EX + "n": [p(5)], EX + "s": [p("on")], EX + "list": [p([1])],
        EX + "r": [{"type": "Relationship", "object": "urn:x:1"}]}}
    tables = []
    for before in (None, {"id": "urn:e:1", "type": [EX + "T"], "attrs": {}}):
        conn = sqlite3.connect(":memory:")
        migrate(conn)
        sync_values(conn, AttrIds(), [(1, before, entity)])
        tables.append(conn.execute("SELECT n.iri, v.t, v.v FROM attr_values v "
                                   "JOIN attr_names n USING (aid) ORDER BY n.iri").fetchall())
        conn.close()
    assert tables[0] == tables[1] == [
        (EX + "n", "integer", 5), (EX + "r", "text", "urn:x:1"), (EX + "s", "text", "on")]
