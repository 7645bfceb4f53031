"""The SQLite schema and its versioned migrations.

Current state lives in ``entities`` (one JSON document per entity, the internal form of
``sinergia.ngsild.model``). Two side tables make the frequent selections index look-ups instead
of scans: ``entity_types`` (type → entities, ordered by row id so that paginated type queries
read in index order), an R*Tree over the bounding boxes of every GeoProperty instance, and
``attr_values`` (the scalar values of simple attributes, for q; see ``sqlite_values``).
Every table carries the tenant (directly or through its parent row) so tenants never mix.

History is split in three so that the big table stays narrow: ``history_entities`` (one row per
entity ever recorded, with its types), ``history_series`` (one row per entity attribute, the
attribute by its id in ``attr_names``) and
``history`` (one row per attribute instance, keyed by series and time; ``t_ms`` is
``observedAt`` when given, else the time of the change, and ``num`` the value when it is a
number, so aggregations need not parse JSON; the ``history_by_series`` index carries ``num`` so
they need not read the rows either). The instance text holds neither its ``instanceId`` nor, when
``modified_ms`` gives them back, its last ``createdAt``/``modifiedAt`` (``stamps``).

``record_generations`` counts the changes of the record kinds that processes cache (the
subscriptions), so that a process sharing the file notices in its write transaction that its
copy is out of date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sinergia.storage import sqlite_values

_VALUES_SCHEMA = """
    CREATE TABLE attr_names (
        aid  INTEGER PRIMARY KEY,
        iri  TEXT NOT NULL UNIQUE
    );
    CREATE TABLE attr_values (
        rid  INTEGER NOT NULL,
        aid  INTEGER NOT NULL,
        t    TEXT NOT NULL,
        v,
        PRIMARY KEY (rid, aid)
    ) WITHOUT ROWID;
    """


def _add_attr_values(conn: sqlite3.Connection) -> None:
    _run_script(conn, _VALUES_SCHEMA)
    sqlite_values.backfill(conn)


# Each migration is SQL (statements separated by ';') or a function of the connection.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
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
    # 2: per-tenant records (replacing the contexts table), the outbox, delivery status, history
    """
    CREATE TABLE records (
        kind    TEXT NOT NULL,
        tenant  TEXT NOT NULL,
        id      TEXT NOT NULL,
        record  TEXT NOT NULL,
        PRIMARY KEY (kind, tenant, id)
    ) WITHOUT ROWID;
    INSERT INTO records (kind, tenant, id, record) SELECT 'context', tenant, id, record
        FROM contexts;
    DROP TABLE contexts;

    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        tenant           TEXT NOT NULL,
        subscription_id  TEXT NOT NULL,
        payload          TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        due              REAL NOT NULL
    );
    CREATE INDEX outbox_by_due ON outbox (due, id);

    CREATE TABLE delivery_status (
        tenant             TEXT NOT NULL,
        subscription_id    TEXT NOT NULL,
        times_sent         INTEGER NOT NULL DEFAULT 0,
        times_failed       INTEGER NOT NULL DEFAULT 0,
        last_notification  TEXT,
        last_success       TEXT,
        last_failure       TEXT,
        PRIMARY KEY (tenant, subscription_id)
    ) WITHOUT ROWID;

    CREATE TABLE history_entities (
        heid    INTEGER PRIMARY KEY,
        tenant  TEXT NOT NULL,
        id      TEXT NOT NULL,
        types   TEXT NOT NULL,
        UNIQUE (tenant, id)
    );
    CREATE TABLE history_types (
        tenant  TEXT NOT NULL,
        type    TEXT NOT NULL,
        heid    INTEGER NOT NULL,
        PRIMARY KEY (tenant, type, heid)
    ) WITHOUT ROWID;
    CREATE INDEX history_types_by_heid ON history_types (heid);
    CREATE TABLE history_series (
        sid   INTEGER PRIMARY KEY,
        heid  INTEGER NOT NULL,
        attr  TEXT NOT NULL,
        UNIQUE (heid, attr)
    );
    CREATE TABLE history (
        hid          INTEGER PRIMARY KEY,
        sid          INTEGER NOT NULL,
        t_ms         INTEGER NOT NULL,
        modified_ms  INTEGER NOT NULL,
        instance_id  TEXT NOT NULL,
        deleted      INTEGER NOT NULL DEFAULT 0,
        created      INTEGER NOT NULL DEFAULT 0,
        num          REAL,
        instance     TEXT NOT NULL
    );
    CREATE INDEX history_by_series_time ON history (sid, t_ms);
    CREATE INDEX history_by_instance ON history (instance_id);
    CREATE INDEX history_by_modified ON history (modified_ms);
    """,
    # 3: a generation per kind of records, bumped with every change of one, so that processes
    # sharing the file know when their copy of the subscriptions is out of date
    """
    CREATE TABLE record_generations (
        kind        TEXT PRIMARY KEY,
        generation  INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO record_generations (kind, generation) VALUES ('subscription', 0)
    """,
    # 4: the scalar values of simple attributes, for fast q (see sqlite_values)
    _add_attr_values,
    # 5: history by series keyed (sid, t_ms, hid), the order reads ask for, so a newest-first
    # lastN reads only its N rows; with deleted and num in it, aggregations and series of
    # numbers read the index alone, not the wide rows
    """
    CREATE INDEX history_by_series ON history (sid, t_ms, hid, deleted, num);
    DROP INDEX history_by_series_time
    """,
    # 6: a series names its attribute by its id in attr_names, not by the IRI: the table and
    # its (heid, attribute) index were as big as the history rows they name
    """
    INSERT OR IGNORE INTO attr_names (iri) SELECT DISTINCT attr FROM history_series;
    CREATE TABLE history_series_by_aid (
        sid   INTEGER PRIMARY KEY,
        heid  INTEGER NOT NULL,
        aid   INTEGER NOT NULL,
        UNIQUE (heid, aid)
    );
    INSERT INTO history_series_by_aid (sid, heid, aid)
        SELECT s.sid, s.heid, n.aid FROM history_series s JOIN attr_names n ON n.iri = s.attr;
    DROP TABLE history_series;
    ALTER TABLE history_series_by_aid RENAME TO history_series
    """,
    # 7: no index of history by modification time: only the retention purge read it, and every
    # write paid for it; the purge walks the oldest rows by id instead (sqlite_history.purge).
    """
    DROP INDEX IF EXISTS history_by_modified
    """,
    # 8: the stored text of a history instance leaves out its last createdAt/modifiedAt when
    # modified_ms holds their time; ``stamps`` says how many (see sqlite_history._stored_text)
    """
    ALTER TABLE history ADD COLUMN stamps INTEGER NOT NULL DEFAULT 0
    """,
    # 9: the parked outbox messages of one subscription (storage.base.PARKED), found when its
    # receiver is probed or comes back; healthy messages never enter this index
    """
    CREATE INDEX outbox_parked ON outbox (tenant, subscription_id, id) WHERE due >= 1e12
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the latest schema version; return that version. Each migration
    runs in its own transaction together with the version bump, so a crash leaves either the
    old or the new schema. The version is read again under the write lock because another
    process (a second server worker on the same file) may have migrated meanwhile."""
    latest = len(MIGRATIONS)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    while version < latest:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version < latest:
                step = MIGRATIONS[version]
                if isinstance(step, str):
                    _run_script(conn, step)
                else:
                    step(conn)
                version += 1
                conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return latest


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript would commit; run the statements one by one in our transaction
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        conn.execute(statement)
