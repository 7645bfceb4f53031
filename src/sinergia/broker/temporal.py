"""Temporal use cases: read histories (instances, pages, aggregations) and write them directly.

History is recorded by the store in the same transaction as every entity change; this service
only reads it, and handles the temporal API's own writes (adding instances with their
``observedAt``, deleting and correcting instances). Writes through the temporal API also bring
the entity's current state up to date with the latest instance given, so that ``/entities`` and
``/temporal/entities`` never disagree about what the newest value is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sinergia.broker.entities import EntityService
from sinergia.ngsild import updates
from sinergia.ngsild.aggregation import Aggregation, aggregate
from sinergia.ngsild.errors import BadRequestData, ResourceNotFound, TooManyResults
from sinergia.ngsild.history import patch_record, temporal_records
from sinergia.ngsild.model import Entity, Instance, now_iso
from sinergia.ngsild.qlang import TypeExpr
from sinergia.ngsild.query import EntityQuery
from sinergia.ngsild.temporal import (
    AggregatedSeries,
    InstanceWindow,
    Page,
    TemporalEntity,
    TimeFilter,
    current_attrs,
    cut_page,
    instance_window,
    kept_instances,
    series_times,
)
from sinergia.storage.base import Aggregated, Edit, HistoryQuery, Series, Store
from sinergia.storage.base import TemporalEntity as StoredHistory


@dataclass(frozen=True, slots=True)
class Selection:
    """Which entities: ids, id pattern and type expression select among entities with
    history; ``current`` (q, geoQ, scopeQ) is evaluated on the entities' current state."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type: TypeExpr | None = None
    attrs: tuple[str, ...] | None = None
    current: EntityQuery | None = None


@dataclass(frozen=True, slots=True)
class TemporalResult:
    entities: list[TemporalEntity]
    aggregated: list[dict[str, list[AggregatedSeries]]] | None
    page: Page | None
    window: InstanceWindow | None
    count: int | None


class TemporalService:
    def __init__(self, store: Store, entities: EntityService, *, max_instances: int = 1000,
                 max_limit: int = 1000) -> None:
        self.store = store
        self.entities = entities
        self.max_instances = max_instances
        self.max_limit = max_limit

    # -- reads ----------------------------------------------------------------------------

    async def query(self, tenant: str, sel: Selection, tf: TimeFilter, *, limit: int,
                    offset: int, count: bool = False,
                    aggregation: Aggregation | None = None) -> TemporalResult:
        if limit > self.max_limit:
            raise TooManyResults(f"limit={limit} is above the maximum of {self.max_limit}")
        result = await self._query(tenant, sel, tf, limit=limit, offset=offset, count=count,
                                   aggregation=aggregation)
        if not result.entities:  # a tenant without history may not exist: only then a look-up
            await self.entities.require_tenant(tenant)
        return result

    async def _query(self, tenant: str, sel: Selection, tf: TimeFilter, *, limit: int,
                     offset: int, count: bool,
                     aggregation: Aggregation | None) -> TemporalResult:
        ids = sel.ids
        if sel.current is not None:
            ids = await self._ids_in_current_state(tenant, sel)
            if not ids:
                return TemporalResult([], [] if aggregation else None, None, None,
                                      0 if count else None)
        base = HistoryQuery(ids=ids, id_pattern=sel.id_pattern, type=sel.type,
                            attrs=sel.attrs, timeproperty=tf.timeproperty,
                            start_ms=tf.start_ms, end_ms=tf.end_ms, limit=limit,
                            offset=offset, count=count)
        if aggregation is not None:
            return await self._aggregated(tenant, base, tf, aggregation)
        window = instance_window(tf, self.max_instances)
        query = _windowed(base, window)
        result = await self.store.query_history(tenant, query)
        stored = result.entities
        histories = [_instances_of(te, window.newest_first) for te in stored]
        series = [series_times(instances, tf.timeproperty)
                  for attrs in histories for instances in attrs.values()]
        page = cut_page(series, tf, window) if series else Page(keep=())
        keeps = iter(page.keep)
        entities = []
        for te, attrs in zip(stored, histories, strict=True):
            shown = {iri: kept_instances(instances, next(keeps), window)
                     for iri, instances in attrs.items()}
            entities.append(TemporalEntity(te.id, list(te.types),
                                           {iri: i for iri, i in shown.items() if i}))
        return TemporalResult(entities, None, page, window, result.count)

    async def retrieve(self, tenant: str, entity_id: str, tf: TimeFilter, *,
                       attrs: tuple[str, ...] | None,
                       aggregation: Aggregation | None = None) -> TemporalResult:
        result = await self.query(tenant, Selection(ids=(entity_id,), attrs=attrs), tf,
                                  limit=1, offset=0, aggregation=aggregation)
        if not result.entities:
            raise ResourceNotFound(f"No temporal entity {entity_id!r}")
        return result

    async def _ids_in_current_state(self, tenant: str, sel: Selection) -> tuple[str, ...]:
        assert sel.current is not None
        query = EntityQuery(ids=sel.ids, id_pattern=sel.id_pattern, type=sel.type,
                            selectors=sel.current.selectors, q=sel.current.q,
                            geo=sel.current.geo, scope=sel.current.scope,
                            limit=self.max_limit * 10)
        found = await self.store.query_entities(tenant, query)
        return tuple(str(e["id"]) for e in found.entities)

    async def _aggregated(self, tenant: str, base: HistoryQuery, tf: TimeFilter,
                          aggregation: Aggregation) -> TemporalResult:
        query = HistoryQuery(**{**_fields(base), "series": True, "last_n": tf.last_n,
                                "aggregation": aggregation})
        result = await self.store.query_history(tenant, query)
        entities, aggregated = [], []
        for te in result.entities:
            per_attr: dict[str, list[AggregatedSeries]] = {}
            for iri, series in te.attrs.items():
                if isinstance(series, Aggregated):  # the database did it
                    values = series.values
                else:
                    assert isinstance(series, Series)
                    values = aggregate(series.times_ms, series.values, aggregation.methods,
                                       aggregation.period, tf.start_ms, tf.end_ms)
                per_attr[iri] = [AggregatedSeries("Property", values)]
            entities.append(TemporalEntity(te.id, list(te.types), {}))
            aggregated.append(per_attr)
        return TemporalResult(entities, aggregated, None, None, result.count)

    # -- writes ---------------------------------------------------------------------------

    async def add(self, tenant: str, te: TemporalEntity) -> bool:
        """POST /temporal/entities: record the instances; create the entity (True) or bring
        its current state up to date with the latest instances (False)."""
        if not te.attrs:
            raise BadRequestData("A temporal entity needs at least one attribute instance")
        now = now_iso()
        latest: Entity = {"id": te.id, "type": te.types, "attrs": current_attrs(te.attrs)}
        if te.scope:
            latest["scope"] = te.scope

        def upsert(current: Entity | None) -> Entity:
            return updates.upsert_entity(current, _newer_only(latest, current), now,
                                         replace=False)

        # The current state follows the latest instances, without recording them a second
        # time: every instance given is recorded once, below, with its own observedAt.
        (result,) = await self.store.apply(tenant, [Edit(te.id, upsert, history=False)])
        if result.error is not None:
            raise result.error
        await self.store.add_history(tenant, te.id, te.types, temporal_records(te.attrs, now))
        return result.before is None

    async def add_attrs(self, tenant: str, entity_id: str,
                        attrs: dict[str, list[Instance]]) -> None:
        """POST /temporal/entities/{id}/attrs."""
        entity = await self.entities.retrieve(tenant, entity_id)
        await self.add(tenant, TemporalEntity(entity_id, list(entity["type"]), attrs))

    async def delete_entity(self, tenant: str, entity_id: str) -> None:
        if not await self.store.delete_history(tenant, entity_id):
            await self.entities.require_tenant(tenant)
            raise ResourceNotFound(f"No temporal entity {entity_id!r}")

    async def delete_attr(self, tenant: str, entity_id: str, attr: str) -> None:
        if not await self.store.delete_history(tenant, entity_id, attr):
            raise ResourceNotFound(f"No history of {attr!r} in {entity_id!r}")

    async def delete_instance(self, tenant: str, entity_id: str, attr: str,
                              instance_id: str) -> None:
        if not await self.store.delete_history(tenant, entity_id, attr, instance_id):
            raise ResourceNotFound(f"No instance {instance_id!r} of {attr!r} in {entity_id!r}")

    async def patch_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str,
                             new: Instance) -> None:
        old = await self._find_instance(tenant, entity_id, attr, instance_id)
        record = patch_record(attr, old, new, now_iso(), created_at=old.get("createdAt"))
        if not await self.store.replace_history_instance(tenant, entity_id, attr, record):
            raise ResourceNotFound(f"No instance {instance_id!r} of {attr!r} in {entity_id!r}")

    async def _find_instance(self, tenant: str, entity_id: str, attr: str,
                             instance_id: str) -> Instance:
        result = await self.store.query_history(tenant, HistoryQuery(
            ids=(entity_id,), attrs=(attr,), timeproperty="modifiedAt", limit=1))
        for te in result.entities:
            instances = te.attrs.get(attr)
            for instance in instances if isinstance(instances, list) else ():
                if instance.get("instanceId") == instance_id:
                    return instance
        raise ResourceNotFound(f"No instance {instance_id!r} of {attr!r} in {entity_id!r}")


def _newer_only(latest: Entity, current: Entity | None) -> Entity:
    """``latest`` without the instances that are older (by ``observedAt``) than the ones the
    entity already has: importing an old document must not move the current state back."""
    if current is None:
        return latest
    stored = current.get("attrs", {})
    kept: dict[str, list[Instance]] = {}
    for attr, instances in latest["attrs"].items():
        have = {i.get("datasetId"): i.get("observedAt") or "" for i in stored.get(attr, ())}
        newer = [i for i in instances
                 if (i.get("observedAt") or "") >= have.get(i.get("datasetId"), "")]
        if newer:
            kept[attr] = newer
    return {**latest, "attrs": kept}


def _fields(query: HistoryQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in HistoryQuery.__dataclass_fields__}


def _windowed(base: HistoryQuery, window: InstanceWindow) -> HistoryQuery:
    if window.newest_first:
        return HistoryQuery(**{**_fields(base), "last_n": window.fetch})
    return HistoryQuery(**{**_fields(base), "instance_limit": window.fetch})


def _instances_of(te: StoredHistory, newest_first: bool) -> dict[str, list[Instance]]:
    """The stored history in the order :func:`cut_page` expects (the store returns oldest
    first; a backwards page reads newest first)."""
    out: dict[str, list[Instance]] = {}
    for iri, instances in te.attrs.items():
        assert isinstance(instances, list)
        out[iri] = list(reversed(instances)) if newest_first else instances
    return out

