"""One contract for every Store backend: the same tests run on SQLite and (when
SINERGIA_TEST_POSTGRES_URL is set) on PostgreSQL."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sinergia.ngsild.aggregation import AGGR_METHODS, Aggregation, aggregate, parse_period
from sinergia.ngsild.errors import AlreadyExists, ResourceNotFound
from sinergia.ngsild.geo import make_predicate, parse_geoq
from sinergia.ngsild.history import HistoryInstance, deletion_record, temporal_records
from sinergia.ngsild.model import LOCATION, Entity
from sinergia.ngsild.qlang import TypeAnd, TypeOr, parse_q, parse_scope_q, resolve_q
from sinergia.ngsild.query import EntityQuery
from sinergia.ngsild.temporal import iso_to_ms, ms_to_iso
from sinergia.storage.base import (
    PARKED,
    Aggregated,
    DeliveryNote,
    DeliveryStatus,
    Edit,
    EditResult,
    HistoryQuery,
    OutboxItem,
    OutboxMessage,
    Series,
    Store,
    open_store,
)

pytestmark = pytest.mark.anyio

V = "https://example.org/"
T_LIGHT = V + "Streetlight"
T_SENSOR = V + "Sensor"


def expand(term: str) -> str:
    return term if ":" in term else V + term


def entity(n: int, *, types: tuple[str, ...] = (T_LIGHT,), level: float | None = None,
           lon: float | None = None, lat: float | None = None,
           scope: list[str] | None = None) -> Entity:
    attrs: dict[str, Any] = {}
    if level is not None:
        attrs[V + "level"] = [{"type": "Property", "value": level}]
    if lon is not None and lat is not None:
        attrs[LOCATION] = [{"type": "GeoProperty",
                            "value": {"type": "Point", "coordinates": [lon, lat]}}]
    doc: Entity = {"id": f"urn:ngsi-ld:X:{n}", "type": list(types), "attrs": attrs,
                   "createdAt": "2026-01-01T00:00:00.000Z",
                   "modifiedAt": "2026-01-01T00:00:00.000Z"}
    if scope:
        doc["scope"] = scope
    return doc


def put(new: Entity) -> Edit:
    return Edit(new["id"], lambda current: new)


def create(new: Entity) -> Edit:
    def fn(current: Entity | None) -> Entity:
        if current is not None:
            raise AlreadyExists(new["id"])
        return new
    return Edit(new["id"], fn)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = open_store(database_url, synchronous="normal")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def ids_of(store: Store, query: EntityQuery, tenant: str = "") -> list[str]:
    result = await store.query_entities(tenant, query)
    return [str(e["id"]) for e in result.entities]


async def test_apply_then_get_round_trips(store: Store) -> None:
    e = entity(1, level=0.5)
    (result,) = await store.apply("", [put(e)])
    assert result.ok and result.before is None and result.after == e
    assert await store.get_entity("", e["id"]) == e
    assert await store.get_entity("", "urn:ngsi-ld:X:missing") is None


async def test_failed_edit_writes_nothing_and_others_commit(store: Store) -> None:
    await store.apply("", [put(entity(1))])
    results = await store.apply("", [create(entity(1, level=9)), create(entity(2))])
    assert isinstance(results[0].error, AlreadyExists)
    assert results[1].ok
    assert await store.get_entity("", "urn:ngsi-ld:X:1") == entity(1)
    assert await store.get_entity("", "urn:ngsi-ld:X:2") == entity(2)


async def test_edits_in_one_call_see_each_other(store: Store) -> None:
    first = entity(1, level=1)
    second = entity(1, level=2)
    seen: list[Entity | None] = []

    def then(cur: Entity | None) -> Entity:
        seen.append(cur)
        return second

    results = await store.apply("", [create(first), Edit(first["id"], then)])
    assert seen == [first]
    assert all(r.ok for r in results)
    assert results[1].before == first
    assert await store.get_entity("", first["id"]) == second


async def test_delete_by_returning_none(store: Store) -> None:
    await store.apply("", [put(entity(1, lon=9.19, lat=45.46))])
    await store.apply("", [Edit("urn:ngsi-ld:X:1", lambda cur: None)])
    assert await store.get_entity("", "urn:ngsi-ld:X:1") is None
    geo = parse_geoq("near;maxDistance==1000", "Point", "[9.19,45.46]", LOCATION)
    assert await ids_of(store, EntityQuery(geo=geo)) == []
    assert await ids_of(store, EntityQuery(type=T_LIGHT)) == []


async def test_unexpected_exception_in_rule_fails_only_that_edit(store: Store) -> None:
    def broken(cur: Entity | None) -> Entity:
        raise ZeroDivisionError("bug")

    results = await store.apply("", [Edit("urn:ngsi-ld:X:1", broken), put(entity(2))])
    assert results[0].error is not None and results[0].error.status == 500
    assert results[1].ok
    assert await store.get_entity("", "urn:ngsi-ld:X:1") is None


async def test_tenants_are_isolated(store: Store) -> None:
    assert not await store.tenant_exists("cityA")
    await store.apply("cityA", [put(entity(1))])
    assert await store.tenant_exists("cityA")
    assert await store.tenant_exists("")
    assert await store.get_entity("", "urn:ngsi-ld:X:1") is None
    assert await store.get_entity("cityB", "urn:ngsi-ld:X:1") is None
    assert await ids_of(store, EntityQuery(type=T_LIGHT)) == []
    assert await ids_of(store, EntityQuery(type=T_LIGHT), "cityA") == ["urn:ngsi-ld:X:1"]
    assert "cityA" in await store.list_tenants()


async def test_type_expressions(store: Store) -> None:
    await store.apply("", [put(entity(1)), put(entity(2, types=(T_SENSOR,))),
                           put(entity(3, types=(T_LIGHT, T_SENSOR)))])
    assert await ids_of(store, EntityQuery(type=T_LIGHT)) == ["urn:ngsi-ld:X:1",
                                                              "urn:ngsi-ld:X:3"]
    both = await ids_of(store, EntityQuery(type=TypeAnd((T_LIGHT, T_SENSOR))))
    assert both == ["urn:ngsi-ld:X:3"]
    either = await ids_of(store, EntityQuery(type=TypeOr((T_LIGHT, T_SENSOR))))
    assert either == ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2", "urn:ngsi-ld:X:3"]


async def test_ids_pattern_and_attrs(store: Store) -> None:
    await store.apply("", [put(entity(n, level=n if n % 2 else None)) for n in range(1, 6)])
    assert await ids_of(store, EntityQuery(ids=("urn:ngsi-ld:X:2", "urn:ngsi-ld:X:4"))) == [
        "urn:ngsi-ld:X:2", "urn:ngsi-ld:X:4"]
    assert await ids_of(store, EntityQuery(id_pattern=r"X:[34]$")) == [
        "urn:ngsi-ld:X:3", "urn:ngsi-ld:X:4"]
    assert await ids_of(store, EntityQuery(attrs=(V + "level",))) == [
        "urn:ngsi-ld:X:1", "urn:ngsi-ld:X:3", "urn:ngsi-ld:X:5"]


async def test_q_filter(store: Store) -> None:
    await store.apply("", [put(entity(n, level=n / 10)) for n in range(10)])
    q = resolve_q(parse_q("level>0.45;level<=0.7"), expand)
    assert await ids_of(store, EntityQuery(type=T_LIGHT, q=q)) == [
        "urn:ngsi-ld:X:5", "urn:ngsi-ld:X:6", "urn:ngsi-ld:X:7"]


async def test_scope_filter(store: Store) -> None:
    await store.apply("", [put(entity(1, scope=["/Milano/M1"])),
                           put(entity(2, scope=["/Milano/M2/Brera"])),
                           put(entity(3))])
    scope = parse_scope_q("/Milano/M2/#")
    assert await ids_of(store, EntityQuery(type=T_LIGHT, scope=scope)) == ["urn:ngsi-ld:X:2"]
    assert await ids_of(store, EntityQuery(type=T_LIGHT, scope=parse_scope_q("/#"))) == [
        "urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"]


async def test_pagination_is_stable_and_counted(store: Store) -> None:
    await store.apply("", [put(entity(n)) for n in range(250)])
    seen: list[str] = []
    for offset in range(0, 250, 40):
        result = await store.query_entities("", EntityQuery(type=T_LIGHT, limit=40,
                                                            offset=offset, count=True))
        assert result.count == 250
        seen.extend(str(e["id"]) for e in result.entities)
    assert seen == [f"urn:ngsi-ld:X:{n}" for n in range(250)]
    only_count = await store.query_entities("", EntityQuery(type=T_LIGHT, limit=0, count=True))
    assert only_count.entities == [] and only_count.count == 250


async def test_geo_near_and_within(store: Store) -> None:
    duomo = (9.1916, 45.4641)
    await store.apply("", [
        put(entity(1, lon=duomo[0], lat=duomo[1])),
        put(entity(2, lon=9.1796, lat=45.4705)),        # Castello, ~1.15 km away
        put(entity(3, lon=9.2040, lat=45.4860)),        # Stazione Centrale, ~2.6 km
        put(entity(4)),                                  # no location
    ])
    near = parse_geoq("near;maxDistance==1500", "Point", "[9.1916,45.4641]", LOCATION)
    assert await ids_of(store, EntityQuery(geo=near)) == ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"]
    far = parse_geoq("near;minDistance==1500", "Point", "[9.1916,45.4641]", LOCATION)
    assert await ids_of(store, EntityQuery(geo=far)) == ["urn:ngsi-ld:X:3"]
    box = "[[[9.18,45.46],[9.20,45.46],[9.20,45.47],[9.18,45.47],[9.18,45.46]]]"
    within = parse_geoq("within", "Polygon", box, LOCATION)
    counted = await store.query_entities("", EntityQuery(geo=within, count=True))
    assert [e["id"] for e in counted.entities] == ["urn:ngsi-ld:X:1"]
    assert counted.count == 1


async def test_geo_pages_over_many_candidates(store: Store) -> None:
    """Enough candidates in the index box that a backend reading them in slices needs several;
    every page, with or without a count, is a slice of the one list the predicate gives."""
    centre = (9.19, 45.46)
    grid = [(n, centre[0] + (n % 30 - 15) * 0.0004, centre[1] + (n // 30 - 10) * 0.0003)
            for n in range(600)]
    await store.apply("", [put(entity(n, lon=lon, lat=lat)) for n, lon, lat in grid])
    near = parse_geoq("near;maxDistance==400", "Point", f"[{centre[0]},{centre[1]}]", LOCATION)
    matches = make_predicate(near)
    expected = {f"urn:ngsi-ld:X:{n}" for n, lon, lat in grid
                if matches({"type": "Point", "coordinates": [lon, lat]})}
    assert 100 < len(expected) < 600  # the index box holds non-matches too
    everything = await ids_of(store, EntityQuery(geo=near, limit=1000))
    assert set(everything) == expected and len(everything) == len(expected)
    for offset, limit in ((0, 100), (150, 100), (len(expected) - 5, 100), (0, 0)):
        for count in (False, True):
            page = await store.query_entities("", EntityQuery(geo=near, offset=offset,
                                                              limit=limit, count=count))
            assert [e["id"] for e in page.entities] == everything[offset:offset + limit]
            assert page.count == (len(expected) if count else None)


async def test_geo_index_follows_updates(store: Store) -> None:
    await store.apply("", [put(entity(1, lon=9.19, lat=45.46))])
    await store.apply("", [put(entity(1, lon=12.49, lat=41.89))])  # moved to Rome
    in_milan = parse_geoq("near;maxDistance==2000", "Point", "[9.19,45.46]", LOCATION)
    in_rome = parse_geoq("near;maxDistance==2000", "Point", "[12.49,41.89]", LOCATION)
    assert await ids_of(store, EntityQuery(geo=in_milan)) == []
    assert await ids_of(store, EntityQuery(geo=in_rome)) == ["urn:ngsi-ld:X:1"]


async def test_types_and_attributes_discovery(store: Store) -> None:
    await store.apply("", [put(entity(1, level=1, lon=9.1, lat=45.4)),
                           put(entity(2, types=(T_SENSOR,), level=2))])
    types = {t.type: t for t in await store.entity_types("")}
    assert set(types) == {T_LIGHT, T_SENSOR}
    assert types[T_LIGHT].count == 1
    assert set(types[T_LIGHT].attributes) == {V + "level", LOCATION}
    attrs = {a.attribute: a for a in await store.attributes("")}
    assert attrs[V + "level"].count == 2
    assert set(attrs[V + "level"].types) == {T_LIGHT, T_SENSOR}
    assert attrs[LOCATION].kinds == ("GeoProperty",)


async def test_records_by_kind_and_tenant(store: Store) -> None:
    record = {"localId": "abc", "URL": "http://x/abc", "kind": "hosted",
              "document": {"@context": {"a": "http://a/"}}}
    assert await store.put_record("context", "t1", "abc", record)
    assert await store.get_record("context", "t1", "abc") == record
    assert await store.get_record("context", "t2", "abc") is None
    assert await store.get_record("subscription", "t1", "abc") is None
    assert [r.record for r in await store.list_records("context", "t1")] == [record]
    assert not await store.put_record("context", "t1", "abc", {"x": 1}, only_if_absent=True)
    assert await store.get_record("context", "t1", "abc") == record
    await store.put_record("context", "t2", "abd", {"x": 2})
    assert [(r.tenant, r.id) for r in await store.list_records("context")] == [
        ("t1", "abc"), ("t2", "abd")]
    assert await store.delete_record("context", "t1", "abc")
    assert not await store.delete_record("context", "t1", "abc")


async def test_reopen_keeps_data(database_url: str) -> None:
    s = open_store(database_url, synchronous="normal")
    await s.open()
    await s.apply("", [put(entity(1, level=3))])
    await s.close()
    again = open_store(database_url, synchronous="normal")
    await again.open()
    try:
        assert await again.get_entity("", "urn:ngsi-ld:X:1") == entity(1, level=3)
    finally:
        await again.close()


async def test_missing_entity_edit_can_raise_not_found(store: Store) -> None:
    def must_exist(cur: Entity | None) -> Entity:
        if cur is None:
            raise ResourceNotFound("nope")
        return cur

    (result,) = await store.apply("", [Edit("urn:ngsi-ld:X:1", must_exist)])
    assert isinstance(result.error, ResourceNotFound)


# -- change listener and outbox ------------------------------------------------------------------


async def test_listener_messages_commit_with_the_change(store: Store) -> None:
    seen: list[tuple[str, list[str]]] = []

    def listener(tenant: str, results: Sequence[EditResult]) -> list[OutboxMessage]:
        seen.append((tenant, [r.entity_id for r in results]))
        return [OutboxMessage("urn:sub:1", {"entity": r.entity_id}) for r in results]

    store.set_change_listener(listener)
    results = await store.apply("t1", [create(entity(1)), create(entity(1)), create(entity(2))])
    assert [r.ok for r in results] == [True, False, True]
    # only the successful changes reach the listener, and in one call per transaction
    assert seen == [("t1", ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"])]
    assert await store.outbox_size() == 2
    items = await store.claim_outbox(10, lease_seconds=60)
    assert sorted(i.payload["entity"] for i in items) == ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"]
    assert {(i.tenant, i.subscription_id, i.attempts) for i in items} == {("t1", "urn:sub:1", 0)}


async def test_failed_changes_enqueue_nothing(store: Store) -> None:
    store.set_change_listener(lambda tenant, results: [OutboxMessage("s", {}) for _ in results])
    await store.apply("", [create(entity(1))])
    await store.apply("", [create(entity(1))])  # AlreadyExists
    assert await store.outbox_size() == 1


async def test_claimed_messages_are_leased_then_settled(store: Store) -> None:
    await store.enqueue("", [OutboxMessage("s1", {"n": 1}), OutboxMessage("s2", {"n": 2})])
    first = await store.claim_outbox(1, lease_seconds=60)
    second = await store.claim_outbox(10, lease_seconds=60)
    assert [i.payload["n"] for i in first + second] == [1, 2]
    assert await store.claim_outbox(10, lease_seconds=60) == []  # both leased
    await store.settle_outbox(done=[first[0].id], retry=[(second[0].id, 0.0)])
    assert await store.outbox_size() == 1
    (again,) = await store.claim_outbox(10, lease_seconds=60)
    assert (again.id, again.attempts) == (second[0].id, 1)
    await store.settle_outbox(done=[], defer=[(again.id, 0.0)])  # busy receiver: no attempt
    (deferred,) = await store.claim_outbox(10, lease_seconds=60)
    assert deferred.attempts == 1


async def test_expired_lease_makes_a_message_due_again(store: Store) -> None:
    await store.enqueue("", [OutboxMessage("s1", {})])
    (item,) = await store.claim_outbox(1, lease_seconds=-1)  # a claimer that died at once
    (again,) = await store.claim_outbox(1, lease_seconds=60)
    assert again.id == item.id


async def test_delivery_status_counts(store: Store) -> None:
    assert await store.delivery_status("t", "s") == DeliveryStatus()
    await store.settle_outbox([], notes=[
        DeliveryNote("t", "s", 2, 1, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"),
        DeliveryNote("t", "s2", 1, 0, "2026-01-01T00:00:05.000Z")])
    status = await store.delivery_status("t", "s")
    assert (status.times_sent, status.times_failed) == (2, 1)
    assert status.last_success == "2026-01-01T00:00:00.000Z"
    assert status.last_failure == status.last_notification == "2026-01-01T00:00:01.000Z"
    assert not status.ok
    await store.settle_outbox([], notes=[
        DeliveryNote("t", "s", 1, 0, "2026-01-01T00:00:02.000Z")])
    status = await store.delivery_status("t", "s")
    assert status.ok and (status.times_sent, status.times_failed) == (3, 1)
    assert status.last_notification == status.last_success == "2026-01-01T00:00:02.000Z"
    # a note that lands late (another process's) never moves a time back
    await store.settle_outbox([], notes=[DeliveryNote("t", "s", 1, 1, None,
                                                      "2025-12-31T00:00:00.000Z")])
    status = await store.delivery_status("t", "s")
    assert (status.times_sent, status.times_failed) == (4, 2)
    assert status.last_failure == "2026-01-01T00:00:01.000Z"
    assert status.last_notification == "2026-01-01T00:00:02.000Z"
    assert (await store.delivery_status("t", "s2")).times_sent == 1
    assert await store.delivery_status("other", "s") == DeliveryStatus()


async def test_settling_writes_outcomes_and_status_together(store: Store) -> None:
    await store.enqueue("t", [OutboxMessage("s", {"n": 1}), OutboxMessage("s", {"n": 2})])
    one, two = await store.claim_outbox(10, lease_seconds=60)
    await store.settle_outbox([one.id], retry=[(two.id, 0.0)],
                              notes=[DeliveryNote("t", "s", 2, 1, "2026-01-01T00:00:00.000Z",
                                                  "2026-01-01T00:00:00.000Z")])
    (again,) = await store.claim_outbox(10, lease_seconds=60)
    assert (again.id, again.attempts) == (two.id, 1)
    assert (await store.delivery_status("t", "s")).times_failed == 1


async def test_handed_over_messages_are_leased_to_the_consumer(store: Store) -> None:
    taken: list[list[OutboxItem]] = []
    store.set_change_listener(
        lambda tenant, results: [OutboxMessage("s", {"entity": r.entity_id, "n": [1.5, None]})
                                 for r in results])
    store.set_outbox_consumer(taken.append, lease_seconds=60)
    await store.apply("t1", [create(entity(1)), create(entity(2))])
    await store.enqueue("t1", [OutboxMessage("p", {"periodic": True})])
    handed = [item for batch in taken for item in batch]
    assert [(i.tenant, i.subscription_id, i.attempts) for i in handed] == \
        [("t1", "s", 0), ("t1", "s", 0), ("t1", "p", 0)]
    assert len({i.id for i in handed}) == 3
    # held under the consumer's lease: nobody else claims them
    assert await store.claim_outbox(10, lease_seconds=60) == []
    assert await store.outbox_size() == 3


async def test_handed_over_messages_match_the_outbox(store: Store) -> None:
    """What the consumer is handed is what a claimer finds once the lease is over: same ids,
    same payloads, so the fast path and the claim path deliver the same notifications."""
    taken: list[list[OutboxItem]] = []
    store.set_change_listener(lambda tenant, results: [
        OutboxMessage(f"s{n}", {"entity": r.entity_id, "n": n, "x": {"a": [1, "é", 2.5]}})
        for r in results for n in range(3)])
    store.set_outbox_consumer(taken.append, lease_seconds=-1)  # a consumer that died at once
    await store.apply("t", [create(entity(1))])
    await store.apply("t", [create(entity(2)), create(entity(3))])
    store.set_outbox_consumer(None)
    handed = sorted((item for batch in taken for item in batch), key=lambda i: i.id)
    claimed = sorted(await store.claim_outbox(100, lease_seconds=60), key=lambda i: i.id)
    assert len(handed) == 9
    assert handed == claimed


async def test_without_a_consumer_messages_are_due_at_once(store: Store) -> None:
    taken: list[list[OutboxItem]] = []
    store.set_outbox_consumer(taken.append, lease_seconds=60)
    store.set_outbox_consumer(None)
    await store.enqueue("", [OutboxMessage("s", {})])
    assert taken == []
    assert len(await store.claim_outbox(10, lease_seconds=60)) == 1


async def test_parked_messages_wait_for_a_probe(store: Store) -> None:
    await store.enqueue("t", [OutboxMessage("down", {"n": n}) for n in range(5)])
    await store.enqueue("t", [OutboxMessage("up", {"n": 9})])
    await store.enqueue("u", [OutboxMessage("down", {"n": 7})])
    items = await store.claim_outbox(10, lease_seconds=60)
    down = [i for i in items if i.subscription_id == "down"]
    first, *rest = down
    far = PARKED + 1e6   # given up long after this test
    await store.settle_outbox([], retry=[(first.id, far)],   # a failed probe: counted
                              defer=[(i.id, far) for i in rest])
    # parked: never due, until a probe of their subscription takes them, oldest first
    assert await store.claim_outbox(10, lease_seconds=-1) == []
    assert sorted((await store.sweep_parked(0.0))[1]) == [("t", "down"), ("u", "down")]
    probe = await store.claim_parked("t", "down", 2, lease_seconds=60)
    assert [(i.payload["n"], i.attempts) for i in probe] == [(0, 1), (1, 0)]
    # the others of that subscription, leased: no longer parked, nor another tenant's
    taken = await store.claim_parked("t", "down", 10, lease_seconds=60)
    assert [i.payload["n"] for i in taken] == [2, 3, 4]
    await store.settle_outbox([], defer=[(i.id, far) for i in probe])
    assert await store.claim_outbox(10, lease_seconds=-1) == []
    again = await store.claim_parked("t", "down", 10, lease_seconds=60)
    assert [(i.payload["n"], i.attempts) for i in again] == [(0, 1), (1, 0)]
    assert await store.claim_parked("t", "down", 10, lease_seconds=60) == []
    assert [i.payload["n"] for i in await store.claim_parked("u", "down", 10, 60)] == [7]
    assert await store.outbox_size() == 7


async def test_parked_messages_are_given_up_at_their_time(store: Store) -> None:
    await store.enqueue("t", [OutboxMessage("s", {"n": n}) for n in range(3)])
    items = await store.claim_outbox(10, lease_seconds=60)
    await store.settle_outbox([], defer=[(i.id, PARKED + 100.0 * n)
                                         for n, i in enumerate(items)])
    assert await store.sweep_parked(150.0) == (2, [("t", "s")])
    assert await store.sweep_parked(150.0) == (0, [("t", "s")])
    assert await store.sweep_parked(250.0) == (1, [])
    assert await store.outbox_size() == 0


# -- history -------------------------------------------------------------------------------------


def reading(n: int, level: float, observed: str) -> Edit:
    def fn(current: Entity | None) -> Entity:
        new = entity(n, level=level)
        new["attrs"][V + "level"][0]["observedAt"] = observed
        return new
    return Edit(f"urn:ngsi-ld:X:{n}", fn)


async def test_every_change_is_recorded_in_history(store: Store) -> None:
    for minute, level in enumerate([0.1, 0.2, 0.3]):
        await store.apply("", [reading(1, level, f"2026-01-01T00:0{minute}:00.000Z")])
    await store.apply("", [reading(2, 9.0, "2026-01-01T00:00:00.000Z")])
    result = await store.query_history("", HistoryQuery(ids=("urn:ngsi-ld:X:1",)))
    (te,) = result.entities
    assert te.id == "urn:ngsi-ld:X:1" and te.types == (T_LIGHT,)
    instances = te.attrs[V + "level"]
    assert isinstance(instances, list)
    assert [i["value"] for i in instances] == [0.1, 0.2, 0.3]
    assert len({i["instanceId"] for i in instances}) == 3


async def test_history_time_window_last_n_and_series(store: Store) -> None:
    for minute in range(6):
        await store.apply("", [reading(1, float(minute), f"2026-01-01T00:0{minute}:00.000Z")])
    window = HistoryQuery(ids=("urn:ngsi-ld:X:1",), start_ms=1767225660000,  # 00:01
                          end_ms=1767225840000)                                # 00:04
    (te,) = (await store.query_history("", window)).entities
    assert [i["value"] for i in te.attrs[V + "level"]] == [1.0, 2.0, 3.0]  # type: ignore[index]
    last = HistoryQuery(ids=("urn:ngsi-ld:X:1",), last_n=2)
    (te,) = (await store.query_history("", last)).entities
    assert [i["value"] for i in te.attrs[V + "level"]] == [4.0, 5.0]  # type: ignore[index]
    series = HistoryQuery(ids=("urn:ngsi-ld:X:1",), series=True)
    (te,) = (await store.query_history("", series)).entities
    s = te.attrs[V + "level"]
    assert isinstance(s, Series)
    assert s.values == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert s.times_ms[1] - s.times_ms[0] == 60_000


async def test_one_write_extends_known_and_new_entities_history(store: Store) -> None:
    """A write mixing an entity with history (a new attribute, a new type) and entities
    recorded for the first time keeps one series per attribute, in first-recorded order."""
    await store.apply("", [put(entity(1, level=1.0))])
    changed = entity(1, types=(T_SENSOR,), level=2.0)
    changed["attrs"][V + "other"] = [{"type": "Property", "value": "x"}]
    await store.apply("", [put(entity(3, level=30.0)), put(changed),
                           put(entity(2, level=20.0))])
    result = await store.query_history("", HistoryQuery())
    assert [te.id for te in result.entities] == ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:3",
                                                 "urn:ngsi-ld:X:2"]
    first = result.entities[0]
    assert [i["value"] for i in first.attrs[V + "level"]] == [1.0, 2.0]  # type: ignore[index]
    assert [i["value"] for i in first.attrs[V + "other"]] == ["x"]  # type: ignore[index]
    assert [i["value"] for i in result.entities[2].attrs[V + "level"]] == [20.0]  # type: ignore[index]
    by_type = await store.query_history("", HistoryQuery(type=T_SENSOR))
    assert [te.id for te in by_type.entities] == ["urn:ngsi-ld:X:1"]


async def test_history_selects_by_type_and_pattern_per_tenant(store: Store) -> None:
    await store.apply("", [put(entity(1, level=1.0)),
                           put(entity(2, types=(T_SENSOR,), level=2.0))])
    await store.apply("other", [put(entity(3, level=3.0))])
    by_type = await store.query_history("", HistoryQuery(type=T_SENSOR, count=True))
    assert [te.id for te in by_type.entities] == ["urn:ngsi-ld:X:2"] and by_type.count == 1
    by_pattern = await store.query_history("", HistoryQuery(id_pattern=r".*:X:[12]$"))
    assert [te.id for te in by_pattern.entities] == ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2"]
    other = await store.query_history("other", HistoryQuery())
    assert [te.id for te in other.entities] == ["urn:ngsi-ld:X:3"]


async def test_deleting_an_entity_records_deletion_markers(store: Store) -> None:
    await store.apply("", [put(entity(1, level=1.0))])
    await store.apply("", [Edit("urn:ngsi-ld:X:1", lambda current: None)])
    (te,) = (await store.query_history("", HistoryQuery())).entities
    first, marker = te.attrs[V + "level"]  # type: ignore[misc]
    assert "deletedAt" not in first and "deletedAt" in marker
    deleted = await store.query_history("", HistoryQuery(timeproperty="deletedAt"))
    assert len(deleted.entities[0].attrs[V + "level"]) == 1


async def test_history_delete_replace_and_purge(store: Store) -> None:
    for minute in range(3):
        await store.apply("", [reading(1, float(minute), f"2026-01-01T00:0{minute}:00.000Z")])
    (te,) = (await store.query_history("", HistoryQuery())).entities
    first = te.attrs[V + "level"][0]  # type: ignore[index]
    assert isinstance(first, dict)
    replacement = HistoryInstance(
        attr=V + "level", dataset_id=None, instance_id=first["instanceId"],
        observed_at="2026-01-01T00:00:00.000Z", modified_at="2026-01-02T00:00:00.000Z",
        deleted=False, instance={**first, "value": 42.0}, numeric=42.0)
    assert await store.replace_history_instance("", "urn:ngsi-ld:X:1", V + "level", replacement)
    (te,) = (await store.query_history("", HistoryQuery())).entities
    assert [i["value"] for i in te.attrs[V + "level"]] == [42.0, 1.0, 2.0]  # type: ignore[index]
    assert await store.delete_history("", "urn:ngsi-ld:X:1", V + "level",
                                      first["instanceId"]) == 1
    assert await store.purge_history(older_than_ms=2**62) == 2
    assert await store.delete_history("", "urn:ngsi-ld:X:1") == 1  # the entity, now empty
    assert await store.delete_history("", "urn:ngsi-ld:X:1") == 0
    assert (await store.query_history("", HistoryQuery())).entities == []


async def test_history_can_be_switched_off(database_url: str) -> None:
    s = open_store(database_url, synchronous="normal", history=False)
    await s.open()
    try:
        await s.apply("", [put(entity(1, level=1.0))])
        assert (await s.query_history("", HistoryQuery())).entities == []
    finally:
        await s.close()


async def test_last_n_reads_the_newest_in_recording_order_on_ties(store: Store) -> None:
    same = "2026-01-01T00:05:00.000Z"
    records = temporal_records({V + "level": [
        {"type": "Property", "value": float(n), "observedAt": same if n >= 2 else
         f"2026-01-01T00:0{n}:00.000Z"} for n in range(5)]}, "2026-01-02T00:00:00.000Z")
    await store.add_history("", "urn:ngsi-ld:X:1", [T_LIGHT], records)
    last = HistoryQuery(ids=("urn:ngsi-ld:X:1",), last_n=2)
    (te,) = (await store.query_history("", last)).entities
    instances = te.attrs[V + "level"]
    assert isinstance(instances, list)
    assert [i["value"] for i in instances] == [3.0, 4.0]
    series = HistoryQuery(ids=("urn:ngsi-ld:X:1",), last_n=4, series=True)
    (te,) = (await store.query_history("", series)).entities
    assert te.attrs[V + "level"] == Series([1767225660000] + [1767225900000] * 3,
                                           [1.0, 2.0, 3.0, 4.0])


# -- aggregation in the database against the Python definition ----------------------------------

_AGG_START = 1_767_225_600_000
_examples = itertools.count()
_numbers = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-10**6, 10**6))
_others = st.one_of(st.text(max_size=3), st.booleans())


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, Any]]:
    """(offset in ms, value) readings, mostly numbers, sometimes something else."""
    values = _numbers if draw(st.booleans()) else st.one_of(_numbers, _others)
    return draw(st.lists(st.tuples(st.integers(0, 3 * 86_400_000), values), max_size=40))


def _in_float_range(value: Any) -> bool:
    """A number whose square is neither too large nor too small for a float: PostgreSQL
    raises on overflow and underflow, and the store then aggregates in Python."""
    return type(value) is float and (value == 0 or 1e-150 < abs(value) < 1e150)


def _approx(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)
    return bool(got == want) and type(got) is type(want)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(readings=histories(),
       methods=st.lists(st.sampled_from(AGGR_METHODS), min_size=1, max_size=4, unique=True),
       period=st.sampled_from(["PT0S", "PT1H", "PT7M", "PT1.5S", "P1D", "P1M"]),
       window=st.tuples(st.none() | st.integers(-3_600_000, 86_400_000),
                        st.none() | st.integers(86_400_000, 4 * 86_400_000)),
       deleted=st.booleans())
async def test_aggregation_in_the_database_agrees_with_python(
        store: Store, readings: list[tuple[int, Any]], methods: list[str], period: str,
        window: tuple[int | None, int | None], deleted: bool) -> None:
    entity_id = f"urn:ngsi-ld:Agg:{next(_examples)}"
    now = "2026-03-01T00:00:00.000Z"
    records = temporal_records({V + "level": [
        {"type": "Property", "value": value, "observedAt": ms_to_iso(_AGG_START + offset)}
        for offset, value in readings] or [{"type": "Property", "value": 1.0}]}, now)
    if deleted:  # markers are in the history but never in a series
        records.append(deletion_record(V + "level", records[0].instance, now))
    await store.add_history("", entity_id, [T_LIGHT], records)
    start, end = (None if w is None else _AGG_START + w for w in window)
    aggregation = Aggregation(tuple(methods), parse_period(period))
    query = HistoryQuery(ids=(entity_id,), series=True, start_ms=start, end_ms=end)
    (plain,) = (await store.query_history("", query)).entities
    (te,) = (await store.query_history("", replace(query, aggregation=aggregation))).entities
    assert set(te.attrs) == set(plain.attrs)
    for attr, series in plain.attrs.items():
        assert isinstance(series, Series)
        want = aggregate(series.times_ms, series.values, methods, aggregation.period,
                         start, end)
        got = te.attrs[attr]
        if isinstance(got, Series):  # left to Python: only where the database cannot
            assert (period == "P1M" or "stddev" in methods
                    or not all(_in_float_range(v) for v in series.values))
            event("aggregated in Python")
            continue
        assert isinstance(got, Aggregated)
        event("aggregated by the database")
        assert list(got.values) == list(want)
        for method, entries in want.items():
            assert len(got.values[method]) == len(entries), method
            for (value, *bounds), (expected, *expected_bounds) in zip(
                    got.values[method], entries, strict=True):
                assert bounds == expected_bounds and _approx(value, expected), method


async def test_series_and_aggregations_follow_the_time_property(store: Store) -> None:
    recorded = ["2026-01-02T00:00:00.000Z", "2026-01-02T01:30:00.000Z",
                "2026-01-02T01:45:00.000Z"]
    for minute, now in enumerate(recorded):  # observed long before they were recorded
        await store.add_history("", "urn:ngsi-ld:X:1", [T_LIGHT], temporal_records({
            V + "level": [{"type": "Property", "value": float(minute),
                           "observedAt": f"2020-01-01T00:0{minute}:00.000Z"}]}, now))
    modified = [iso_to_ms(now) for now in recorded]
    by_modified = HistoryQuery(ids=("urn:ngsi-ld:X:1",), timeproperty="modifiedAt",
                               series=True)
    (te,) = (await store.query_history("", by_modified)).entities
    assert te.attrs[V + "level"] == Series(modified, [0.0, 1.0, 2.0])
    hourly = Aggregation(("totalCount", "max"), parse_period("PT1H"))
    (te,) = (await store.query_history("", replace(by_modified, aggregation=hourly))).entities
    got = te.attrs[V + "level"]
    assert isinstance(got, Aggregated)
    assert got.values == aggregate(modified, [0.0, 1.0, 2.0], hourly.methods, hourly.period)
    assert got.values["totalCount"] == [[1, recorded[0], "2026-01-02T01:00:00.000Z"],
                                        [2, "2026-01-02T01:00:00.000Z", recorded[0][:11]
                                         + "02:00:00.000Z"]]
