"""The ``attr_values`` side table: the scalar value of every simple top-level attribute, so that
the commonest q comparisons (``illuminanceLevel>0.5``, ``powerState=="on"``) are an index
probe instead of a parse of the whole JSON document.

An attribute is *simple* when it has exactly one instance, that instance is a ``Property`` or a
``Relationship``, and its value (``value`` / ``object``) is a JSON scalar: a string, a boolean, a
finite number (an integer within SQLite's 64 bits). Its row is ``(rid, aid, t, v)``: the entity's
row id, the attribute's id in ``attr_names``, the JSON type SQLite's ``json_type`` would report
for the value, and the value itself. Every other attribute has no row, and the query falls back to
the generic SQL over the document for that entity (:mod:`sinergia.storage.sqlite_filters`), so
the rows are only ever a shortcut to the same answer.

The writer keeps the rows in step with ``entities`` inside the same transaction
(:func:`sync_values`); a database created before this table existed is filled once by
:func:`backfill`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Final

import orjson

from sinergia.ngsild.model import PROPERTY, RELATIONSHIP, Entity

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_VALUE_MEMBER: Final = {PROPERTY: "value", RELATIONSHIP: "object"}

Row = tuple[str, Any]   # (JSON type, value)


def scalar_row(value: Any) -> Row | None:
    """``(json type, value)`` for a JSON scalar SQLite stores exactly, else None."""
    kind = type(value)
    if kind is str:
        return ("text", value)
    if kind is float:
        return ("real", value)
    if kind is bool:
        return ("true", 1) if value else ("false", 0)
    if kind is int:
        return ("integer", value) if _INT64_MIN <= value <= _INT64_MAX else None
    return None


def value_rows(entity: Entity | None, skip: dict[str, Any] | None = None) -> dict[str, Row]:
    """Attribute IRI → row, for the simple attributes of ``entity`` (see the module doc),
    leaving out those whose instance list, or whose one instance, is (by identity) the one in
    ``skip``."""
    rows: dict[str, Row] = {}
    if entity is None:
        return rows
    for iri, instances in entity.get("attrs", {}).items():
        if len(instances) != 1:
            continue
        if skip is not None:
            other = skip.get(iri)
            # Replacing rules keep an unchanged instance (the object) in a new list.
            if other is instances or (other and len(other) == 1 and other[0] is instances[0]):
                continue
        kind = instances[0].get("type")
        member = _VALUE_MEMBER.get(kind) if isinstance(kind, str) else None
        if member is None:
            continue
        instance = instances[0]
        row = scalar_row(instance.get(member))
        if row is not None:
            rows[iri] = row
    return rows


class AttrIds:
    """Attribute IRI → ``attr_names.aid``, cached for the writer's connection. Ids are never
    deleted or renumbered, so a cached id stays right; but one assigned inside a transaction
    that rolled back never existed, hence :meth:`forget` after every rollback."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def forget(self) -> None:
        self._ids.clear()

    def of(self, conn: sqlite3.Connection, iris: Iterable[str]) -> dict[str, int]:
        ids = self._ids
        missing = [iri for iri in dict.fromkeys(iris) if iri not in ids]
        if missing:
            conn.executemany("INSERT OR IGNORE INTO attr_names (iri) VALUES (?)",
                             [(iri,) for iri in missing])
            for start in range(0, len(missing), 500):
                chunk = missing[start:start + 500]
                marks = ",".join("?" * len(chunk))
                ids.update(conn.execute(
                    f"SELECT iri, aid FROM attr_names WHERE iri IN ({marks})",  # noqa: S608
                    chunk).fetchall())
        return ids


def sync_values(conn: sqlite3.Connection, attr_ids: AttrIds,
                changes: Iterable[tuple[int, Entity | None, Entity | None]]) -> None:
    """Bring the rows of each changed entity ``(rid, before, after)`` in step with ``after``
    (None: deleted). Only rows that differ are written."""
    removed: list[tuple[int, str]] = []
    written: list[tuple[int, str, str, Any]] = []
    for rid, before, after in changes:
        if before is None:  # a new entity: every row is written, nothing to compare
            written.extend([(rid, iri, t, v) for iri, (t, v) in value_rows(after).items()])
            continue
        # The update rules share unchanged instance lists between versions: skip those.
        old_attrs = None if before is None else before.get("attrs")
        new_attrs = None if after is None else after.get("attrs")
        old, new = value_rows(before, new_attrs), value_rows(after, old_attrs)
        removed.extend((rid, iri) for iri in old if iri not in new)
        written.extend((rid, iri, t, v) for iri, (t, v) in new.items()
                       if _differs(old.get(iri), (t, v)))
    if not removed and not written:
        return
    ids = attr_ids.of(conn, [iri for _, iri in removed] + [row[1] for row in written])
    if removed:
        conn.executemany("DELETE FROM attr_values WHERE rid = ? AND aid = ?",
                         [(rid, ids[iri]) for rid, iri in removed])
    if written:
        conn.executemany("INSERT OR REPLACE INTO attr_values (rid, aid, t, v) VALUES (?, ?, ?, ?)",
                         [(rid, ids[iri], t, v) for rid, iri, t, v in written])


def _differs(old: Row | None, new: Row) -> bool:
    # type() too: 1 == 1.0 == True in Python, but not as stored JSON
    return old is None or old[0] != new[0] or type(old[1]) is not type(new[1]) or old[1] != new[1]


def delete_values(conn: sqlite3.Connection, rids: Iterable[int]) -> None:
    conn.executemany("DELETE FROM attr_values WHERE rid = ?", [(rid,) for rid in rids])


def backfill(conn: sqlite3.Connection) -> None:
    """Fill ``attr_values`` from every stored document (a migration step; runs once)."""
    attr_ids = AttrIds()
    last = 0
    while True:
        rows = conn.execute("SELECT rid, doc FROM entities WHERE rid > ? ORDER BY rid LIMIT 2000",
                            (last,)).fetchall()
        if not rows:
            return
        sync_values(conn, attr_ids, ((rid, None, orjson.loads(doc)) for rid, doc in rows))
        last = rows[-1][0]
