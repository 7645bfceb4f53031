"""The Store protocol: what the broker needs from a storage backend, and nothing more.

Writes go through one door, :meth:`Store.apply`: the broker hands over *edits* — an entity id and
a pure function from the current stored entity (or ``None``) to the new one (or ``None`` to
delete) — and the backend runs them atomically against the current state. The merge rules of
NGSI-LD therefore live once, in the broker, and every backend (SQLite, PostgreSQL) only has to
provide atomic read-modify-write and group commit. An edit that raises an ``NgsiLdError`` fails
alone; the others in the same call still commit.

The same transaction that commits a change also records it in the history (when the store was
opened with history on) and writes the notifications it causes to the outbox (whatever the
change listener returns), so a change is never visible without its history and notifications.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

import orjson

from sinergia.ngsild.aggregation import Aggregation
from sinergia.ngsild.errors import NgsiLdError
from sinergia.ngsild.model import Entity, Instance
from sinergia.ngsild.qlang import TypeExpr
from sinergia.ngsild.query import EntityQuery, QueryResult

if TYPE_CHECKING:
    from sinergia.ngsild.history import HistoryInstance

EditFn = Callable[[Entity | None], Entity | None]


@dataclass(frozen=True, slots=True)
class Edit:
    """Change one entity: ``fn(current) -> new``; ``new is None`` deletes. ``history=False``
    leaves the change out of the history (the temporal API records its instances itself)."""

    entity_id: str
    fn: EditFn
    history: bool = True


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


@dataclass(frozen=True, slots=True)
class Record:
    tenant: str
    id: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A notification to deliver: which subscription, and what the notifier needs to render
    it (plain JSON; the entity snapshots in internal form)."""

    subscription_id: str
    payload: dict[str, Any]


def payload_texts(messages: Sequence[OutboxMessage]) -> list[str]:
    """The JSON text of each message's payload. The messages a change causes often share one
    payload object (every subscription without showChanges gets the same entity), so each
    object is serialised once, inside the write transaction that is everyone's bottleneck."""
    texts: dict[int, str] = {}
    out = []
    for message in messages:
        text = texts.get(id(message.payload))
        if text is None:
            text = texts[id(message.payload)] = orjson.dumps(message.payload).decode()
        out.append(text)
    return out


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    tenant: str
    subscription_id: str
    payload: dict[str, Any]
    attempts: int


OutboxConsumer = Callable[[list[OutboxItem]], object]

# A *parked* outbox message waits for its receiver to come back (see broker/holds.py): its
# ``due`` is PARKED plus the time at which it is given up. PARKED lies far beyond any real
# time, so a claim (``due <= now``) never takes it, one range of the due index finds the ones
# to give up, and a partial index (``WHERE due >= 1e12``, the literal the SQL repeats so the
# planners can use it) finds one subscription's, while the healthy path writes nothing more.
PARKED: Final = 1e12


@dataclass(frozen=True, slots=True)
class DeliveryNote:
    """Attempts to add to one subscription's :class:`DeliveryStatus`: how many were made and
    how many failed, and the time of the latest success and failure among them."""

    tenant: str
    subscription_id: str
    sent: int
    failed: int
    last_success: str | None = None
    last_failure: str | None = None

    @property
    def last_notification(self) -> str | None:
        return max(self.last_success or "", self.last_failure or "") or None


class ChangeListener(Protocol):
    def __call__(self, tenant: str,
                 results: Sequence[EditResult]) -> Sequence[OutboxMessage]: ...


class RecordsView(Protocol):
    """One process's in-memory copy of one kind of records, which its change listener decides
    by (the subscription index). ``generation`` is the :meth:`Store.records_generation` the
    copy reflects, read *before* the records; ``refresh`` reads them again (and updates it)."""

    kind: str
    generation: int

    async def refresh(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None

    @property
    def ok(self) -> bool:
        """The last attempt succeeded (or none was made yet)."""
        return self.last_failure is None or (self.last_success or "") >= self.last_failure


TimeProperty = Literal["observedAt", "createdAt", "modifiedAt", "deletedAt"]


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which history to read. Entities are selected by ``ids``/``id_pattern``/``type`` (ANDed,
    names expanded) among those that have history; instances by ``attrs`` and a half-open
    time window ``[start_ms, end_ms)`` on ``timeproperty`` (``None`` = unbounded).
    ``last_n`` keeps the newest N instances of each attribute (returned oldest first).
    With ``series`` each attribute comes back as a :class:`Series` of numbers-or-values,
    which is what aggregation needs and much cheaper than whole instances; with an
    ``aggregation`` too, the store may instead answer an attribute with its
    :class:`Aggregated` values, computed by the database (it does when it can: see
    :mod:`sinergia.ngsild.aggregation`), and the caller aggregates the others' series."""

    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    type: TypeExpr | None = None
    attrs: tuple[str, ...] | None = None
    timeproperty: TimeProperty = "observedAt"
    start_ms: int | None = None
    end_ms: int | None = None
    last_n: int | None = None
    instance_limit: int | None = None
    series: bool = False
    aggregation: Aggregation | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False


@dataclass(slots=True)
class Series:
    """An attribute's points in time order: times on the query's ``timeproperty``."""

    times_ms: list[int]
    values: list[Any]


@dataclass(frozen=True, slots=True)
class Aggregated:
    """An attribute's aggregated values as :func:`sinergia.ngsild.aggregation.aggregate`
    returns them: ``{method: [[value, start, end], …]}``."""

    values: dict[str, list[list[Any]]]


@dataclass(frozen=True, slots=True)
class TemporalEntity:
    """One entity's history: ``attrs`` maps attribute IRIs to instances (oldest first) — each
    an internal instance with ``instanceId`` and its time members — or, for a series query, to
    a :class:`Series` or :class:`Aggregated`."""

    id: str
    types: tuple[str, ...]
    attrs: dict[str, list[Instance]] | dict[str, Series | Aggregated]


@dataclass(frozen=True, slots=True)
class HistoryResult:
    entities: list[TemporalEntity]
    count: int | None = None


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

    # -- per-tenant documents: hosted @contexts, subscriptions, device registrations, ... --

    async def put_record(self, kind: str, tenant: str, record_id: str, record: dict[str, Any],
                         *, only_if_absent: bool = False) -> bool:
        """Store a document; with ``only_if_absent`` refuse (return False) when one exists."""

    async def get_record(self, kind: str, tenant: str, record_id: str) -> dict[str, Any] | None:
        ...

    async def list_records(self, kind: str, tenant: str | None = None) -> list[Record]:
        """Records of one kind, of one tenant or (``None``) of every tenant, by tenant and id."""

    async def delete_record(self, kind: str, tenant: str, record_id: str) -> bool:
        ...

    async def records_generation(self, kind: str) -> int:
        """A number that changes, in the same transaction, whenever any process puts or
        deletes a record of ``kind`` (counted from the first time anyone asked for the kind;
        subscriptions always). Cheap: compare it to know whether a cached copy is current."""

    async def wait_records(self, kind: str, timeout: float) -> bool:
        """Return True soon after a record of ``kind`` was put or deleted (by this process; on
        PostgreSQL by any process sharing the database), False after ``timeout``. Sticky
        and allowed to be spurious, like :meth:`wait_outbox`."""

    # -- change listener and outbox (notifications commit with the change that causes them) --

    def set_change_listener(self, listener: ChangeListener | None,
                            view: RecordsView | None = None) -> None:
        """Called inside every write transaction with its successful results; the messages it
        returns are written to the outbox in the same transaction.

        With the ``view`` the listener decides by, the transaction first compares the view's
        generation with the database's; when another process changed those records since,
        the store calls ``view.refresh()`` and runs the edits again. So a change that is
        acknowledged after a subscription was (in any process) is matched against it."""

    def set_outbox_consumer(self, consumer: OutboxConsumer | None,
                            lease_seconds: float = 0.0) -> None:
        """With a consumer, the messages this process commits are written already claimed
        (leased for ``lease_seconds``, like :meth:`claim_outbox` would) and handed to it
        right after the commit, on the event loop: the notifier of the committing process
        skips a claim transaction, and a crash before delivery still leaves them in the
        outbox to be claimed when the lease ends. Without one they are due at once."""

    async def enqueue(self, tenant: str, messages: Sequence[OutboxMessage]) -> None:
        """Write messages to the outbox outside an entity change (periodic notifications)."""

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Take up to ``limit`` due messages, oldest first, and hide them from other claimers
        for ``lease_seconds``: a crashed claimer's messages become due again by themselves."""

    async def settle_outbox(self, done: Sequence[int],
                            retry: Sequence[tuple[int, float]] = (),
                            defer: Sequence[tuple[int, float]] = (),
                            notes: Sequence[DeliveryNote] = ()) -> None:
        """In one transaction: remove delivered (or abandoned) messages; reschedule
        ``(id, not_before)`` ones: ``retry`` after a failed attempt (counted), ``defer``
        without an attempt (the receiver was busy; a ``not_before`` from PARKED on parks
        them); add ``notes`` to the subscriptions' delivery status (at most one note per
        subscription)."""

    async def claim_parked(self, tenant: str, subscription_id: str, limit: int,
                           lease_seconds: float) -> list[OutboxItem]:
        """Like :meth:`claim_outbox`, but up to ``limit`` of one subscription's parked
        messages, oldest first: what a probe of a receiver that was down carries, and, once
        it answers, the backlog it is given in bounded bites."""

    async def sweep_parked(self, now: float) -> tuple[int, list[tuple[str, str]]]:
        """Remove the parked messages whose give-up time is past ``now``; return how many,
        and the ``(tenant, subscription)`` pairs that still have parked messages."""

    async def outbox_size(self) -> int:
        ...

    async def wait_outbox(self, timeout: float) -> bool:
        """Return True soon after new outbox messages were committed (by this process; on
        PostgreSQL by any process sharing the database), False after ``timeout``. A commit
        while nobody waits is kept for the next wait; a spurious True is allowed."""

    async def delivery_status(self, tenant: str, subscription_id: str) -> DeliveryStatus:
        ...

    # -- history (the temporal API) ----------------------------------------------------------

    async def add_history(self, tenant: str, entity_id: str, types: Sequence[str],
                          instances: Sequence[HistoryInstance]) -> None:
        """Record instances given explicitly (temporal API writes); ``apply`` records the
        changes it makes by itself when history is on."""

    async def query_history(self, tenant: str, query: HistoryQuery) -> HistoryResult:
        ...

    async def delete_history(self, tenant: str, entity_id: str, attr: str | None = None,
                             instance_id: str | None = None) -> int:
        """Delete an entity's history, one attribute's, or one instance; return how many
        records (instances, and the entity or attribute itself) were deleted: 0 = none."""

    async def replace_history_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance: HistoryInstance) -> bool:
        """Replace the instance with ``instance.instance_id``; False if there is none."""

    async def purge_history(self, older_than_ms: int, limit: int = 10_000) -> int:
        """Delete up to ``limit`` instances recorded before ``older_than_ms``; return how many.
        Called repeatedly in the background so a large purge never blocks writers long."""


@runtime_checkable
class StoredText(Protocol):
    """What a backend that keeps each entity as JSON text may offer besides :class:`Store`:
    the text as stored, so that a reader that only serialises the entity can key a cache on
    it (as :attr:`QueryResult.documents` does for queries) instead of parsing it."""

    async def get_document(self, tenant: str, entity_id: str) -> str | None:
        """The stored JSON text of the entity (internal form), or None when there is none."""


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
