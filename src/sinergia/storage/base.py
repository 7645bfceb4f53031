"""The Store protocol: what the broker needs from a storage backend, and nothing more.

Writes go through one door, :meth:`Store.apply`: the broker hands over *edits* — an entity id and
a pure function from the current stored entity (or ``None``) to the new one (or ``None`` to
delete) — and the backend runs them atomically against the current state. The merge rules of
NGSI-LD therefore live once, in the broker, and every backend (SQLite, PostgreSQL) only has to
provide atomic read-modify-write and group commit. An edit that raises an ``NgsiLdError`` fails
alone; the others in the same call still commit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sinergia.ngsild.errors import NgsiLdError
from sinergia.ngsild.model import Entity
from sinergia.ngsild.query import EntityQuery, QueryResult

EditFn = Callable[[Entity | None], Entity | None]


@dataclass(frozen=True, slots=True)
class Edit:
    """Change one entity: ``fn(current) -> new``; ``new is None`` deletes."""

    entity_id: str
    fn: EditFn


@dataclass(frozen=True, slots=True)
class EditResult:
    """The outcome of one edit: the entity before and after, or the error that stopped it."""

    entity_id: str
    before: Entity | None = None
    after: Entity | None = None
    error: NgsiLdError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class TypeInfo:
    type: str
    count: int
    attributes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttributeInfo:
    attribute: str
    count: int
    kinds: tuple[str, ...]
    types: tuple[str, ...]


@runtime_checkable
class Store(Protocol):
    """A storage backend. All names are expanded IRIs; all entities are in the internal form
    of :mod:`sinergia.ngsild.model`. ``tenant`` is ``""`` for the default tenant."""

    url: str

    async def open(self) -> None:
        """Connect and migrate the schema. Called once before any other method."""

    async def close(self) -> None:
        """Finish pending writes and release every resource."""

    async def apply(self, tenant: str, edits: Sequence[Edit]) -> list[EditResult]:
        """Run the edits atomically; return one result per edit, in order. Returns only after
        the successful edits are durably committed. Creates the tenant on its first write."""

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None:
        ...

    async def query_entities(self, tenant: str, query: EntityQuery) -> QueryResult:
        """Entities matching ``query`` in a stable order, ``offset``/``limit`` applied, and
        the total count when ``query.count``."""

    async def tenant_exists(self, tenant: str) -> bool:
        ...

    async def list_tenants(self) -> list[str]:
        ...

    async def entity_types(self, tenant: str) -> list[TypeInfo]:
        ...

    async def attributes(self, tenant: str) -> list[AttributeInfo]:
        ...

    async def put_context(self, tenant: str, context_id: str, record: dict[str, Any]) -> None:
        """Store a hosted or cached @context record (see ``sinergia.broker.contexts``)."""

    async def get_context(self, tenant: str, context_id: str) -> dict[str, Any] | None:
        ...

    async def list_contexts(self, tenant: str) -> list[dict[str, Any]]:
        ...

    async def delete_context(self, tenant: str, context_id: str) -> bool:
        ...


# URL scheme -> "module:Class". Drivers are imported only when their scheme is used.
BACKENDS: dict[str, str] = {
    "sqlite": "sinergia.storage.sqlite:SQLiteStore",
    "postgresql": "sinergia.storage.postgres:PostgresStore",
    "postgres": "sinergia.storage.postgres:PostgresStore",
}


def open_store(url: str, **options: Any) -> Store:
    """Instantiate (not yet open) the backend that ``url``'s scheme names."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    target = BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"Unknown database URL scheme {scheme!r} in {url!r}; known: {known}")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    store: Store = cls(url, **options)
    return store
