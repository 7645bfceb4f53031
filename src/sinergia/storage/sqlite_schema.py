"""The SQLite schema and its versioned migrations.

Current state lives in ``entities`` (one JSON document per entity, the internal form of
``sinergia.ngsild.model``). Two side tables make the frequent selections index look-ups instead
of scans: ``entity_types`` (type → entities, ordered by row id so that paginated type queries
read in index order) and an R*Tree over the bounding boxes of every GeoProperty instance.
Every table carries the tenant so tenants never mix.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the broker core
    """
    CREATE TABLE tenants (
        name        TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE entities (
        rid     INTEGER PRIMARY KEY,
        tenant  TEXT NOT NULL,
        id      TEXT NOT NULL,
        doc     TEXT NOT NULL,
        UNIQUE (tenant, id)
    );

    CREATE TABLE entity_types (
        tenant  TEXT NOT NULL,
        type    TEXT NOT NULL,
        rid     INTEGER NOT NULL,
        PRIMARY KEY (tenant, type, rid)
    ) WITHOUT ROWID;
    CREATE INDEX entity_types_by_rid ON entity_types (rid);

    CREATE VIRTUAL TABLE geo_index USING rtree (gid, minx, maxx, miny, maxy);
    CREATE TABLE geo_refs (
        gid   INTEGER PRIMARY KEY,
        rid   INTEGER NOT NULL,
        attr  TEXT NOT NULL
    );
    CREATE INDEX geo_refs_by_rid ON geo_refs (rid);

    CREATE TABLE contexts (
        tenant  TEXT NOT NULL,
        id      TEXT NOT NULL,
        record  TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest schema version; return that version. Each migration
    runs in its own transaction together with the version bump, so a crash leaves either the
    old or the new schema."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript would commit; run the statements one by one inside our transaction
            for statement in filter(None, (s.strip() for s in script.split(";"))):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
