"""Entity use cases: every way the API (and adapters and apps) change or read entities.

Each change is one or more store edits wrapping a pure update rule of
:mod:`sinergia.ngsild.updates`, so all backends share the rules and their atomicity. Inputs are
already parsed and expanded (internal form); outputs are internal entities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sinergia.ngsild import updates
from sinergia.ngsild.errors import (
    BadRequestData,
    NgsiLdError,
    NonexistentTenant,
    ResourceNotFound,
    TooManyResults,
)
from sinergia.ngsild.model import Attrs, Entity, Instance, now_iso
from sinergia.ngsild.query import EntityQuery, QueryResult
from sinergia.ngsild.updates import NotUpdated
from sinergia.storage.base import Edit, EditFn, EditResult, Store, StoredText

BatchOp = Literal["create", "upsert", "update", "merge", "delete"]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The per-entity result of a batch: ids that succeeded, and (id, error) for the rest."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    max_limit: int = 1000
    max_batch_size: int = 10_000


class EntityService:
    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        # checked once: isinstance against a protocol inspects the object every time
        self._texts = store if isinstance(store, StoredText) else None

    # -- reads ---------------------------------------------------------------------------

    async def require_tenant(self, tenant: str) -> None:
        if not await self.store.tenant_exists(tenant):
            raise NonexistentTenant(f"Tenant {tenant!r} does not exist")

    async def retrieve(self, tenant: str, entity_id: str) -> Entity:
        entity = await self.store.get_entity(tenant, entity_id)
        if entity is None:
            await self.require_tenant(tenant)
            raise ResourceNotFound(f"Entity {entity_id!r} not found")
        return entity

    async def retrieve_document(self, tenant: str, entity_id: str) -> str | None:
        """The entity's stored JSON text, when the store keeps text and the entity exists;
        None otherwise (then :meth:`retrieve` gives the entity, or the error)."""
        if self._texts is None:
            return None
        return await self._texts.get_document(tenant, entity_id)

    async def query(self, tenant: str, query: EntityQuery) -> QueryResult:
        if query.limit > self.limits.max_limit:
            raise TooManyResults(
                f"limit={query.limit} is above the maximum of {self.limits.max_limit}; "
                "page through the results with offset")
        if query.limit < 0 or query.offset < 0:
            raise BadRequestData("limit and offset must not be negative")
        await self.require_tenant(tenant)
        return await self.store.query_entities(tenant, query)

    # -- single-entity changes -----------------------------------------------------------

    async def _one(self, tenant: str, entity_id: str, fn: EditFn) -> EditResult:
        (result,) = await self.store.apply(tenant, [Edit(entity_id, fn)])
        if result.error is not None:
            raise result.error
        return result

    async def create(self, tenant: str, entity: Entity) -> None:
        now = now_iso()
        await self._one(tenant, entity["id"], lambda cur: updates.create_entity(cur, entity, now))

    async def replace(self, tenant: str, entity_id: str, entity: Entity) -> None:
        now = now_iso()
        await self._one(tenant, entity_id, lambda cur: updates.replace_entity(cur, entity, now))

    async def merge(self, tenant: str, entity_id: str, patch: Entity) -> None:
        now = now_iso()
        await self._one(tenant, entity_id, lambda cur: updates.merge_entity(cur, patch, now))

    async def delete(self, tenant: str, entity_id: str) -> None:
        await self._one(tenant, entity_id, _delete_existing)

    async def append_attrs(self, tenant: str, entity_id: str, attrs: Attrs, *,
                           no_overwrite: bool) -> list[NotUpdated]:
        now = now_iso()
        report: list[NotUpdated] = []

        def fn(cur: Entity | None) -> Entity:
            new, not_updated = updates.append_attrs(cur, attrs, now, no_overwrite=no_overwrite)
            report[:] = not_updated
            return new

        await self._one(tenant, entity_id, fn)
        return report

    async def update_attrs(self, tenant: str, entity_id: str, attrs: Attrs) -> list[NotUpdated]:
        now = now_iso()
        report: list[NotUpdated] = []

        def fn(cur: Entity | None) -> Entity:
            new, not_updated = updates.update_attrs(cur, attrs, now)
            report[:] = not_updated
            return new

        await self._one(tenant, entity_id, fn)
        return report

    async def patch_attr(self, tenant: str, entity_id: str, attr: str,
                         fragment: Instance) -> None:
        now = now_iso()
        await self._one(tenant, entity_id,
                        lambda cur: updates.patch_attr(cur, attr, fragment, now))

    async def replace_attr(self, tenant: str, entity_id: str, attr: str,
                           instances: list[Instance]) -> None:
        now = now_iso()
        await self._one(tenant, entity_id,
                        lambda cur: updates.replace_attr(cur, attr, instances, now))

    async def delete_attr(self, tenant: str, entity_id: str, attr: str, *,
                          dataset_id: str | None, delete_all: bool) -> None:
        now = now_iso()
        await self._one(tenant, entity_id, lambda cur: updates.delete_attr(
            cur, attr, now, dataset_id=dataset_id, delete_all=delete_all))

    # -- batches -------------------------------------------------------------------------

    async def batch(self, tenant: str, op: BatchOp, items: Sequence[Entity | str], *,
                    replace: bool = True, no_overwrite: bool = False) -> BatchOutcome:
        """Apply one operation to many entities; each succeeds or fails alone and the
        successes commit together. ``items`` are entities, or ids for ``delete``.
        Items that failed to parse are passed by the caller as errors separately."""
        if len(items) > self.limits.max_batch_size:
            raise BadRequestData(
                f"A batch may hold at most {self.limits.max_batch_size} entities; "
                f"got {len(items)}. Split it into several requests.")
        now = now_iso()
        edits = [Edit(item if isinstance(item, str) else item["id"],
                      _batch_rule(op, item, now, replace=replace, no_overwrite=no_overwrite))
                 for item in items]
        results = await self.store.apply(tenant, edits)
        outcome = BatchOutcome()
        for result in results:
            if result.error is not None:
                outcome.errors.append((result.entity_id, result.error))
            else:
                outcome.success.append(result.entity_id)
                if result.before is None and result.after is not None:
                    outcome.created.append(result.entity_id)
        return outcome


def _delete_existing(current: Entity | None) -> None:
    if current is None:
        raise ResourceNotFound("Entity not found")


def _batch_rule(op: BatchOp, item: Entity | str, now: str, *, replace: bool,
                no_overwrite: bool) -> Callable[[Entity | None], Entity | None]:
    if op == "delete":
        return _delete_existing
    assert not isinstance(item, str)
    if op == "create":
        return lambda cur: updates.create_entity(cur, item, now)
    if op == "upsert":
        return lambda cur: updates.upsert_entity(cur, item, now, replace=replace)
    if op == "update":
        return lambda cur: updates.batch_update(cur, item, now, no_overwrite=no_overwrite)
    return lambda cur: updates.merge_entity(cur, item, now)
