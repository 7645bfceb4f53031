"""The write path of the PostgreSQL store: the net changes of one ``apply`` (computed from the
locked state and the edited one) and the set-based statements that write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import AsyncConnection

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import GEOPROPERTY, Entity
from sinergia.storage.postgres_arrays import Float8Array, Int4Array, Int8Array, TextArray

Conn = AsyncConnection[Any]


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _geo_values(entity: Entity | None) -> list[tuple[str, int, dict[str, Any]]]:
    """(attribute, index, GeoJSON) of every GeoProperty instance: what ``entity_geo`` holds."""
    found: list[tuple[str, int, dict[str, Any]]] = []
    if entity is None:
        return found
    for attr, instances in entity.get("attrs", {}).items():
        for n, instance in enumerate(instances):
            if instance.get("type") == GEOPROPERTY and isinstance(instance.get("value"), dict):
                found.append((attr, n, instance["value"]))
    return found


@dataclass(slots=True)
class Changes:
    """The net changes of one ``apply``, as columns for set-based statements."""

    deleted: list[int] = field(default_factory=list)
    updated_rids: list[int] = field(default_factory=list)
    updated_docs: list[str] = field(default_factory=list)
    inserted_ids: list[str] = field(default_factory=list)
    inserted_rids: list[int] = field(default_factory=list)
    inserted_docs: list[str] = field(default_factory=list)
    inserted_types: list[list[str]] = field(default_factory=list)
    inserted_geo: list[list[tuple[str, int, dict[str, Any]]]] = field(default_factory=list)
    types_gone: list[tuple[str, int]] = field(default_factory=list)
    types_new: list[tuple[str, int]] = field(default_factory=list)
    geo_reset: list[int] = field(default_factory=list)
    geo_new: list[tuple[int, str, int, dict[str, Any]]] = field(default_factory=list)


def serialise(entity_id: str, entity: Entity) -> str:
    """The JSON text of ``entity``; BadRequestData for what PostgreSQL cannot store."""
    if "\x00" in entity_id:
        raise BadRequestData("Entity ids cannot contain the character U+0000")
    doc = orjson.dumps(entity)
    if b"\\u0000" in doc and _contains_nul(entity):
        raise BadRequestData("Strings cannot contain the character U+0000 (NUL)")
    return doc.decode()


def changes_of(stored: dict[str, tuple[int, Entity]], state: dict[str, Entity | None],
             docs: dict[str, str]) -> Changes:
    changes = Changes()
    for entity_id, entity in state.items():
        old = stored.get(entity_id)
        if old is not None and entity is old[1]:
            continue  # untouched (every edit failed or returned its input)
        if entity is None:
            if old is not None:
                changes.deleted.append(old[0])
                changes.types_gone.extend((t, old[0]) for t in set(old[1]["type"]))
            continue
        if old is None:
            changes.inserted_ids.append(entity_id)
            changes.inserted_docs.append(docs[entity_id])
            changes.inserted_types.append(list(dict.fromkeys(entity["type"])))
            changes.inserted_geo.append(_geo_values(entity))
            continue
        rid, before = old
        changes.updated_rids.append(rid)
        changes.updated_docs.append(docs[entity_id])
        old_types, new_types = set(before["type"]), set(entity["type"])
        changes.types_gone.extend((t, rid) for t in old_types - new_types)
        changes.types_new.extend((t, rid) for t in new_types - old_types)
        old_geo, new_geo = _geo_values(before), _geo_values(entity)
        if old_geo != new_geo:
            if old_geo:
                changes.geo_reset.append(rid)
            changes.geo_new.extend((rid, attr, n, value) for attr, n, value in new_geo)
    return changes


async def write_state(conn: Conn, tenant: str, changes: Changes) -> None:
    """Queue the statements writing ``changes`` (the caller runs them in a pipeline).

    New entities are plain INSERTs: should another writer have created one of them first, the
    unique violation makes the store run the edits again (ON CONFLICT's speculative insertion
    would cost more on every row than that rare retry). Arrays go in binary: no quoting or
    escaping of the documents."""
    for rid, types, geo in zip(changes.inserted_rids, changes.inserted_types,
                               changes.inserted_geo, strict=True):
        changes.types_new.extend((t, rid) for t in types)
        changes.geo_new.extend((rid, attr, n, value) for attr, n, value in geo)
    if changes.deleted:
        await conn.execute("DELETE FROM entities WHERE tenant = %s AND rid = ANY(%b::bigint[])",
                           (tenant, Int8Array(changes.deleted)))
        await conn.execute("DELETE FROM entity_geo WHERE tenant = %s "
                           "AND rid = ANY(%b::bigint[])", (tenant, Int8Array(changes.deleted)))
    if changes.geo_reset:
        await conn.execute("DELETE FROM entity_geo WHERE tenant = %s "
                           "AND rid = ANY(%b::bigint[])", (tenant, Int8Array(changes.geo_reset)))
    if changes.types_gone:
        await conn.execute(
            "DELETE FROM entity_types t USING unnest(%b::text[], %b::bigint[]) AS v(type, rid) "
            "WHERE t.tenant = %s AND t.type = v.type AND t.rid = v.rid",
            (TextArray([t for t, _ in changes.types_gone]),
             Int8Array([r for _, r in changes.types_gone]), tenant))
    if changes.updated_rids:
        await conn.execute(
            "UPDATE entities e SET doc = v.doc::jsonb FROM unnest(%b::bigint[], %b::text[]) "
            "AS v(rid, doc) WHERE e.tenant = %s AND e.rid = v.rid",
            (Int8Array(changes.updated_rids), TextArray(changes.updated_docs), tenant))
    if changes.inserted_ids:
        await conn.execute(
            "INSERT INTO entities (tenant, rid, id, doc) SELECT %s, v.rid, v.id, "
            "v.doc::jsonb FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS v(rid, id, doc)",
            (tenant, Int8Array(changes.inserted_rids), TextArray(changes.inserted_ids),
             TextArray(changes.inserted_docs)))
    if changes.types_new:
        await conn.execute(
            "INSERT INTO entity_types (tenant, type, rid) SELECT %s, v.type, v.rid "
            "FROM unnest(%b::text[], %b::bigint[]) AS v(type, rid) ON CONFLICT DO NOTHING",
            (tenant, TextArray([t for t, _ in changes.types_new]),
             Int8Array([r for _, r in changes.types_new])))
    if changes.geo_new:
        # Points (nearly all located entities) are made from their coordinates: cheaper for
        # PostGIS than parsing GeoJSON.
        xs: list[float | None] = []
        ys: list[float | None] = []
        other: list[str | None] = []
        for _, _, _, value in changes.geo_new:
            point = _point_xy(value)
            xs.append(None if point is None else point[0])
            ys.append(None if point is None else point[1])
            other.append(None if point is not None else orjson.dumps(value).decode())
        await conn.execute(
            "INSERT INTO entity_geo (tenant, rid, attr, n, geom) SELECT %s, v.rid, v.attr, "
            "v.n, CASE WHEN v.g IS NULL THEN ST_SetSRID(ST_MakePoint(v.x, v.y), 4326) "
            "ELSE ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(v.g)), 4326) END FROM "
            "unnest(%b::bigint[], %b::text[], %b::int[], %b::float8[], %b::float8[], "
            "%b::text[]) AS v(rid, attr, n, x, y, g)",
            (tenant, Int8Array([g[0] for g in changes.geo_new]),
             TextArray([g[1] for g in changes.geo_new]), Int4Array([g[2] for g in changes.geo_new]),
             Float8Array(xs), Float8Array(ys), TextArray(other)))


def _point_xy(value: dict[str, Any]) -> tuple[float, float] | None:
    """(x, y) of a GeoJSON Point whose coordinates are plain numbers, else None."""
    if value.get("type") != "Point":
        return None
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) not in (2, 3):
        return None
    x, y = coordinates[0], coordinates[1]
    if type(x) not in (int, float) or type(y) not in (int, float):
        return None
    return float(x), float(y)
