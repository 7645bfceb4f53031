"""The PostgreSQL schema and its versioned migrations.

Layout (every table carries the tenant and has it in every key, so the schema can be
distributed by tenant on Citus):

* ``entities`` — current state, one JSONB document per entity (the internal form of
  :mod:`sinergia.ngsild.model`), also as JSON text (``doc_text``, generated: what queries
  return); ``rid`` (from a sequence) orders query results stably.
* ``entity_types`` — type → entities, keyed ``(tenant, type, rid)`` so a query by type reads
  the index in result order and stops after one page.
* ``entity_geo`` — one row per GeoProperty instance with its PostGIS geometry: Points also as
  a ``point`` (``pt``) in an SP-GiST index that covers the query's keys (box queries on Points
  read that index alone), other shapes in a GiST index. The spatial prefilter of geo-queries.
  Points also have a grid ``cell``, indexed with the rid, so that a page of a geo-query reads
  its Points in rid order (:mod:`sinergia.storage.postgres_grid`).
* ``records`` (per-tenant documents: hosted @contexts, subscriptions, …), ``outbox`` and
  ``delivery_status`` (notifications); ``record_generations`` counts the changes of the
  record kinds that processes cache (subscriptions), so a stale copy is noticed in the write
  transaction itself. Documents that are only stored and read back (records,
  outbox payloads, history instances) are JSON text: cheaper to write than JSONB, and it
  keeps every string JSON allows (JSONB refuses U+0000).
* history in three tables: ``history_entities`` (with the types, GIN-indexed),
  ``history_series`` (one row per entity attribute) and ``history``, the last one partitioned
  by month of recording time (``modified_ms``) so the retention setting drops whole
  partitions; :mod:`sinergia.storage.postgres_history` creates partitions ahead of need.
* ``ngsild_dtkey(text, want_time)``: the comparison key of a date-time string, exactly
  :func:`sinergia.ngsild.qlang.datetime_key`, for q comparisons with date-times.

Migrations run under an advisory lock (so several server processes starting at once do not
race), each in its own transaction together with the version bump. ``sinergia serve`` applies
the pending ones by itself only when all of them are marked ``online``-safe (quick, additive);
otherwise it stops and asks for ``sinergia db upgrade``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sinergia.storage.postgres_grid import CELL_SQL

log = logging.getLogger(__name__)

# The first code point of each run of ten Unicode decimal digits (category Nd, 0 to 9), beyond
# ASCII: Python's ``\d`` and ``int()`` accept them in date-times, so the SQL does too.
_DIGIT_RUNS = (
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
)
_UNICODE_DIGITS = "".join(chr(start + n) for start in _DIGIT_RUNS for n in range(10))
_ASCII_DIGITS = "0123456789" * len(_DIGIT_RUNS)

_OFFSET = r"(Z|[-+ ][0-9]{2}(?::?[0-9]{2})?)?"
_CLOCK = r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"

# The body of ngsild_dtkey. Validation is explicit (no exception blocks: they would cost a
# subtransaction per call).
_DTKEY = f"""
CREATE FUNCTION ngsild_dtkey(t text, want_time boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
    m text[];
    y int := 2000; mo int := 1; d int := 2; days int; h int; mi int; s int;
    frac text; off text; digits text; shift int := 0;
    ts timestamp;
BEGIN
    IF octet_length(t) <> char_length(t) THEN
        t := translate(t, '{_UNICODE_DIGITS}', '{_ASCII_DIGITS}');
    END IF;
    IF want_time THEN
        m := regexp_match(t, '^{_CLOCK}{_OFFSET}$');
        IF m IS NULL THEN RETURN NULL; END IF;
        h := m[1]::int; mi := m[2]::int; s := coalesce(m[3], '0')::int; frac := m[4];
        off := m[5];
    ELSE
        m := regexp_match(t, '^([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})T{_CLOCK}{_OFFSET}$');
        IF m IS NULL THEN
            m := regexp_match(t, '^([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})$');
            IF m IS NULL THEN RETURN NULL; END IF;
        END IF;
        y := m[1]::int; mo := m[2]::int; d := m[3]::int;
        -- (PL/pgSQL ends an IF condition at its first THEN: no CASE inside one)
        days := CASE WHEN mo = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0
                                           THEN 29 ELSE 28 END
                     WHEN mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END;
        IF y < 1 OR mo < 1 OR mo > 12 OR d < 1 OR d > days THEN
            RETURN NULL;
        END IF;
        IF array_length(m, 1) = 3 THEN
            RETURN t;  -- a date: its own key
        END IF;
        h := m[4]::int; mi := m[5]::int; s := coalesce(m[6], '0')::int; frac := m[7];
        off := m[8];
    END IF;
    IF h > 23 OR mi > 59 OR s > 59 THEN RETURN NULL; END IF;
    IF off IS NOT NULL AND off <> 'Z' THEN
        digits := replace(substr(off, 2), ':', '');
        shift := left(digits, 2)::int * 60 + coalesce(nullif(substr(digits, 3), ''), '0')::int;
        IF shift >= 1440 THEN RETURN NULL; END IF;
        IF left(off, 1) = '-' THEN shift := -shift; END IF;
    END IF;
    ts := make_timestamp(y, mo, d, h, mi, s) - make_interval(mins => shift);
    frac := '.' || left(rpad(coalesce(frac, ''), 3, '0'), 3) || 'Z';
    IF want_time THEN
        RETURN to_char(ts, 'HH24:MI:SS') || frac;
    END IF;
    IF ts < '0001-01-01'::timestamp OR ts >= '10000-01-01'::timestamp THEN RETURN NULL; END IF;
    RETURN to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS') || frac;
END
$fn$;
"""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str
    online: bool = True   # quick and additive: safe to run while other versions serve


MIGRATIONS: tuple[Migration, ...] = (
    Migration("broker core: entities, records, outbox, history", """
    CREATE EXTENSION IF NOT EXISTS postgis;

    CREATE TABLE tenants (
        tenant      text PRIMARY KEY,
        created_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE SEQUENCE entity_rid AS bigint;
    CREATE TABLE entities (
        tenant  text NOT NULL,
        rid     bigint NOT NULL,
        id      text NOT NULL,
        doc     jsonb NOT NULL,
        PRIMARY KEY (tenant, rid),
        UNIQUE (tenant, id)
    );
    CREATE TABLE entity_types (
        tenant  text NOT NULL,
        type    text NOT NULL,
        rid     bigint NOT NULL,
        PRIMARY KEY (tenant, type, rid)
    );
    CREATE TABLE entity_geo (
        tenant  text NOT NULL,
        rid     bigint NOT NULL,
        attr    text NOT NULL,
        n       integer NOT NULL,
        geom    geometry NOT NULL,
        PRIMARY KEY (tenant, rid, attr, n)
    );
    CREATE INDEX entity_geo_gist ON entity_geo USING gist (geom);

    CREATE TABLE records (
        kind    text NOT NULL,
        tenant  text NOT NULL,
        id      text NOT NULL,
        record  text NOT NULL,
        PRIMARY KEY (kind, tenant, id)
    );

    CREATE SEQUENCE outbox_id AS bigint;
    CREATE TABLE outbox (
        tenant           text NOT NULL,
        id               bigint NOT NULL DEFAULT nextval('outbox_id'),
        subscription_id  text NOT NULL,
        payload          text NOT NULL,
        attempts         integer NOT NULL DEFAULT 0,
        due              double precision NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE INDEX outbox_by_due ON outbox (due, id);
    CREATE INDEX outbox_by_id ON outbox (id);

    CREATE TABLE delivery_status (
        tenant             text NOT NULL,
        subscription_id    text NOT NULL,
        times_sent         integer NOT NULL DEFAULT 0,
        times_failed       integer NOT NULL DEFAULT 0,
        last_notification  text,
        last_success       text,
        last_failure       text,
        PRIMARY KEY (tenant, subscription_id)
    );

    CREATE SEQUENCE history_ids AS bigint;
    CREATE TABLE history_entities (
        tenant  text NOT NULL,
        heid    bigint NOT NULL,
        id      text NOT NULL,
        types   jsonb NOT NULL,
        PRIMARY KEY (tenant, heid),
        UNIQUE (tenant, id)
    );
    CREATE INDEX history_entities_by_type ON history_entities USING gin (types);
    CREATE TABLE history_series (
        tenant  text NOT NULL,
        sid     bigint NOT NULL,
        heid    bigint NOT NULL,
        attr    text NOT NULL,
        PRIMARY KEY (tenant, sid),
        UNIQUE (tenant, heid, attr)
    );
    CREATE TABLE history (
        tenant       text NOT NULL,
        sid          bigint NOT NULL,
        hid          bigint NOT NULL,
        t_ms         bigint NOT NULL,
        modified_ms  bigint NOT NULL,
        instance_id  text NOT NULL,
        deleted      boolean NOT NULL DEFAULT false,
        created      boolean NOT NULL DEFAULT false,
        num          double precision,
        instance     text NOT NULL,
        PRIMARY KEY (tenant, hid, modified_ms)
    ) PARTITION BY RANGE (modified_ms);
    CREATE INDEX history_by_series_time ON history (tenant, sid, t_ms);
    CREATE INDEX history_by_series_modified ON history (tenant, sid, modified_ms);
    CREATE INDEX history_by_instance ON history (instance_id);
    """ + _DTKEY),
    Migration("record generations: processes learn when cached subscriptions changed", """
    CREATE TABLE record_generations (
        kind        text PRIMARY KEY,
        generation  bigint NOT NULL
    );
    INSERT INTO record_generations (kind, generation) VALUES ('subscription', 0);
    """),
    # Points (nearly every located entity) get their coordinates as a point the server fills
    # in, indexed with the keys a geo-query filters on: a box query reads the index alone,
    # where the GiST index of geometries (lossy boxes) must visit a table page per candidate.
    # The GiST index keeps the other shapes only. Documents compress with lz4, which
    # decompresses several times faster than pglz, when the server has it.
    Migration("geo-queries on points read an index only; documents compress with lz4", """
    ALTER TABLE entity_geo ADD COLUMN pt point GENERATED ALWAYS AS (
        CASE WHEN GeometryType(geom) = 'POINT' THEN point(ST_X(geom), ST_Y(geom)) END) STORED;
    CREATE INDEX entity_geo_points ON entity_geo USING spgist (pt) INCLUDE (tenant, attr, rid)
        WHERE pt IS NOT NULL;
    DROP INDEX entity_geo_gist;
    CREATE INDEX entity_geo_shapes ON entity_geo USING gist (geom) WHERE pt IS NULL;
    DO $$
    BEGIN
        ALTER TABLE entities ALTER COLUMN doc SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported THEN
        NULL;  -- a server built without lz4 keeps pglz
    END
    $$;
    """, online=False),
    # Keyed in the order reads ask for, so a newest-first lastN reads only its N rows; with
    # deleted and num included, aggregations over numbers can read the index alone. Building
    # it locks the history partitions against writes for as long as it takes: offline.
    Migration("history by series in read order, with the numbers aggregations need", """
    CREATE INDEX history_by_series ON history (tenant, sid, t_ms, hid) INCLUDE (deleted, num);
    DROP INDEX history_by_series_time;
    """, online=False),
    # A page of a geo-query reads the Points of the box's grid cells merged in rid order and
    # stops when it has enough (see postgres_grid), instead of every Point in the box. Adding
    # the column rewrites entity_geo: offline.
    Migration("geo-query pages read Points by grid cell in rid order", f"""
    ALTER TABLE entity_geo ADD COLUMN cell bigint GENERATED ALWAYS AS ({CELL_SQL}) STORED;
    CREATE INDEX entity_geo_cells ON entity_geo (tenant, attr, cell, rid) INCLUDE (pt)
        WHERE pt IS NOT NULL;
    """, online=False),
    # A page of query results is returned as JSON text: converting each document from JSONB
    # (escaping every string) cost more than finding the page. The text is kept once, when
    # the document is written, and only decompressed when read. Adding the column rewrites
    # entities: offline.
    Migration("documents also kept as JSON text, for query results", """
    DO $$
    BEGIN
        ALTER TABLE entities ADD COLUMN doc_text text COMPRESSION lz4
            GENERATED ALWAYS AS (doc::text) STORED;
    EXCEPTION WHEN feature_not_supported THEN  -- a server built without lz4
        ALTER TABLE entities ADD COLUMN doc_text text GENERATED ALWAYS AS (doc::text) STORED;
    END
    $$;
    """, online=False),
    # The parked outbox messages of one subscription (storage.base.PARKED), found when its
    # receiver is probed or comes back; healthy messages never enter this index.
    Migration("parked outbox messages by subscription", """
    CREATE INDEX outbox_parked ON outbox (tenant, subscription_id, id) WHERE due >= 1e12;
    """),
)

LATEST = len(MIGRATIONS)
# pg_advisory_lock(key, hashtext(current_schema())): one lock per schema
_LOCK_KEY = 0x5E_4E_61  # "SiNa"


class SchemaError(RuntimeError):
    """The database schema cannot be used as it is (too new, or needs ``db upgrade``)."""


async def schema_version(conn: Any) -> int:
    """The version of the schema in the connection's current schema (0: none yet)."""
    cur = await conn.execute(
        "SELECT to_regclass('sinergia_schema') IS NOT NULL")
    (exists,) = await cur.fetchone()
    if not exists:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM sinergia_schema")
    (version,) = await cur.fetchone()
    return int(version)


async def migrate(conn: Any, *, allow_offline: bool) -> int:
    """Bring the schema to :data:`LATEST` on ``conn`` (an autocommit psycopg connection) and
    return the version. Without ``allow_offline`` only online-safe migrations run (a new
    database counts as safe: nothing is serving it)."""
    version = await schema_version(conn)
    if version == LATEST:
        return version
    if version > LATEST:
        raise SchemaError(f"The database schema is version {version}, newer than this "
                          f"Sinergia knows ({LATEST}); upgrade Sinergia")
    await conn.execute("SELECT pg_advisory_lock(%s, hashtext(current_schema()))", (_LOCK_KEY,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS sinergia_schema (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        version = await schema_version(conn)  # another process may have migrated meanwhile
        pending = MIGRATIONS[version:]
        if version and not allow_offline and not all(m.online for m in pending):
            raise SchemaError(f"The database schema is version {version} and needs migrations "
                              "that must not run while Sinergia serves; stop the servers and "
                              "run `sinergia db upgrade`")
        for number, migration in enumerate(pending, start=version + 1):
            log.info("Migrating the database schema to version %d (%s)", number, migration.name)
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO sinergia_schema (version, name) VALUES (%s, %s)",
                                   (number, migration.name))
        return LATEST
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(current_schema()))",
                           (_LOCK_KEY,))
