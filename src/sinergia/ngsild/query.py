"""What a query asks for, after parsing and @context expansion: the one object every storage
backend receives, whether the query came from GET /entities, POST /entityOperations/query, a
subscription or an app."""

from __future__ import annotations

from dataclasses import dataclass, field

from sinergia.ngsild.geo import GeoQuery
from sinergia.ngsild.qlang import QExpr, ScopeExpr, TypeExpr


@dataclass(frozen=True, slots=True)
class EntityQuery:
    """Entity selection. Every name in it (types, attributes) is an expanded IRI.

    ``ids``/``id_pattern``/``type``/``attrs``/``q``/``geo``/``scope`` are ANDed; ``attrs``
    selects entities that have at least one of the named attributes.
    """

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type: TypeExpr | None = None
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
        return not (self.ids or self.id_pattern or self.type is not None or self.attrs
                    or self.q is not None or self.geo is not None)


@dataclass(frozen=True, slots=True)
class QueryResult:
    entities: list[dict[str, object]]
    count: int | None = None
