"""What a query asks for, after parsing and @context expansion: the one object every storage
backend receives, whether the query came from GET /entities, POST /entityOperations/query, a
subscription or an app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from sinergia.ngsild.geo import GeoQuery
from sinergia.ngsild.qlang import QExpr, ScopeExpr, TypeExpr


@dataclass(frozen=True, slots=True)
class Selector:
    """One entity selector of a ``Query`` body (the standard's EntitySelector): its members
    are ANDed; a member that is None selects any entity."""

    id: str | None = None
    id_pattern: str | None = None
    type: TypeExpr | None = None


@dataclass(frozen=True, slots=True)
class EntityQuery:
    """Entity selection. Every name in it (types, attributes) is an expanded IRI.

    ``ids``/``id_pattern``/``type``/``selectors``/``attrs``/``q``/``geo``/``scope`` are ANDed;
    ``attrs`` selects entities that have at least one of the named attributes; an entity
    passes ``selectors`` when it passes any one of them.
    """

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type: TypeExpr | None = None
    selectors: tuple[Selector, ...] | None = None
    attrs: tuple[str, ...] | None = None
    q: QExpr | None = None
    geo: GeoQuery | None = None
    scope: ScopeExpr | None = None
    dataset_id: tuple[str, ...] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_unbounded(self) -> bool:
        """True when no selector is given (the standard asks for 400 on GET /entities)."""
        return not (self.ids or self.id_pattern or self.type is not None or self.selectors
                    or self.attrs or self.q is not None or self.geo is not None)


class QueryResult:
    """The entities a query selected, in order, and their total count when it was asked for.

    A backend that keeps entities as JSON text may hand over that text (``documents``) instead
    of parsed entities: ``entities`` parses it on first use, and a caller that only serialises
    the entities can key a cache on the text and never parse what it has seen before. A
    backend that had to parse the text anyway (to test it) hands over both, in the same
    order, so that neither is made twice."""

    __slots__ = ("_entities", "count", "documents")

    def __init__(self, entities: list[dict[str, object]] | None = None,
                 count: int | None = None, *, documents: Sequence[str] | None = None) -> None:
        if entities is not None and documents is not None and len(entities) != len(documents):
            raise ValueError("entities and documents must be the same entities")
        self._entities = entities
        self.count = count
        self.documents = documents

    @property
    def parsed(self) -> list[dict[str, object]] | None:
        """The entities if they are already parsed, else None (without parsing)."""
        return self._entities

    @property
    def entities(self) -> list[dict[str, object]]:
        if self._entities is None:
            self._entities = [orjson.loads(doc) for doc in self.documents or ()]
        return self._entities

    @property
    def size(self) -> int:
        """How many entities, without parsing any."""
        return len(self._entities if self._entities is not None else self.documents or ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryResult):
            return NotImplemented
        return self.entities == other.entities and self.count == other.count

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        return f"QueryResult({self.size} entities, count={self.count})"
