"""Which subscriptions a change notifies: an index that finds the few candidates for a change
without looking at the others, and the exact test of each candidate.

Index, per tenant:

* subscriptions with ``entities`` are filed under the entity types their selectors require
  (a type name → that type; ``A|B`` → both; ``A;B`` → one of them is enough, since an entity
  must have all), then under their watched attributes, or "any attribute";
* subscriptions with only ``watchedAttributes`` are filed under those attributes;
* periodic subscriptions (``timeInterval``) are kept apart: changes never notify them.

A change to an entity of type T that touches attributes A1…An therefore looks at the
subscriptions filed under T and (A1…An or any attribute), plus the attribute-only ones filed
under A1…An, and nothing else: 10,000 subscriptions on other types cost nothing.

Triggers (ETSI GS CIM 009 v1.8 ``notificationTrigger``): creating an entity fires
``entityCreated``, deleting it ``entityDeleted`` (neither fires the attribute triggers);
an update fires ``attributeCreated`` / ``attributeUpdated`` / ``attributeDeleted`` per
instance (matched by datasetId) and ``entityUpdated`` for any change, type and scope
included. Only content counts: an instance whose members are the same apart from
``createdAt``/``modifiedAt`` did not change. q, geoQ and scopeQ are evaluated on the entity
after the change (before it, for a deletion).

Thread safety: :meth:`SubscriptionIndex.match` runs on the storage writer thread while the
event loop adds and removes subscriptions; one lock guards the index and the throttling clock,
and candidates are evaluated outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from sinergia.ngsild.entity import parse_datetime
from sinergia.ngsild.model import Entity, Instance
from sinergia.ngsild.qlang import TypeAnd, TypeExpr, evaluate_q, match_scope, match_types
from sinergia.ngsild.subscription import (
    ATTRIBUTE_CREATED,
    ATTRIBUTE_DELETED,
    ATTRIBUTE_UPDATED,
    ENTITY_CREATED,
    ENTITY_DELETED,
    ENTITY_UPDATED,
    EntitySelector,
    Subscription,
)
from sinergia.ngsild.updates import changed_instances

_ATTRIBUTE_TRIGGERS = (ATTRIBUTE_CREATED, ATTRIBUTE_UPDATED, ATTRIBUTE_DELETED)
_ANY = ""   # the attribute key of subscriptions that watch every attribute
_SYSTEM = frozenset({"createdAt", "modifiedAt"})


@dataclass(frozen=True, slots=True)
class Match:
    """A subscription to notify about a change: the trigger that fired and the attributes
    (IRIs) whose change fired it, in the entity's order."""

    subscription: Subscription
    trigger: str
    attributes: tuple[str, ...]


@dataclass(slots=True)
class MatchStats:
    """Counters for tests and metrics: how many changes were matched and how many candidate
    subscriptions were evaluated for them."""

    changes: int = 0
    evaluated: int = 0
    matched: int = 0


@dataclass(slots=True)
class _Bucket:
    """Subscriptions by watched attribute IRI (``_ANY`` = all attributes): id → sub."""

    by_attr: dict[str, dict[str, Subscription]] = field(default_factory=dict)

    def add(self, attrs: Iterable[str], sub: Subscription) -> None:
        for attr in attrs:
            self.by_attr.setdefault(attr, {})[sub.id] = sub

    def remove(self, attrs: Iterable[str], sub_id: str) -> None:
        for attr in attrs:
            subs = self.by_attr.get(attr)
            if subs is not None:
                subs.pop(sub_id, None)
                if not subs:
                    del self.by_attr[attr]

    def collect(self, attrs: Iterable[str], into: dict[str, Subscription]) -> None:
        """Add to ``into`` the subscriptions watching any of ``attrs`` or every attribute."""
        by_attr = self.by_attr
        if _ANY in by_attr:
            into.update(by_attr[_ANY])
        for attr in attrs:
            subs = by_attr.get(attr)
            if subs:
                into.update(subs)


@dataclass(slots=True)
class _Tenant:
    subs: dict[str, Subscription] = field(default_factory=dict)
    by_type: dict[str, _Bucket] = field(default_factory=dict)
    attribute_only: _Bucket = field(default_factory=_Bucket)
    periodic: dict[str, Subscription] = field(default_factory=dict)


def index_types(expr: TypeExpr) -> frozenset[str]:
    """Types such that every entity matching ``expr`` has at least one of them."""
    if isinstance(expr, str):
        return frozenset({expr})
    if isinstance(expr, TypeAnd):
        return min((index_types(t) for t in expr.terms), key=len)
    return frozenset().union(*(index_types(t) for t in expr.terms))


def _filing(sub: Subscription) -> tuple[frozenset[str], tuple[str, ...]]:
    """(types it is filed under — empty for attribute-only —, attribute keys)."""
    types = frozenset().union(*(index_types(s.type) for s in sub.entities))
    return types, sub.watched_attributes or (_ANY,)


class SubscriptionIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self.stats = MatchStats()

    # -- maintenance (event loop) -------------------------------------------------------------

    def add(self, tenant: str, sub: Subscription) -> None:
        """Add ``sub``, or replace the subscription with its id."""
        with self._lock:
            state = self._tenants.setdefault(tenant, _Tenant())
            self._unfile(state, sub.id)
            state.subs[sub.id] = sub
            if sub.is_periodic:
                state.periodic[sub.id] = sub
                return
            types, attrs = _filing(sub)
            if not types:
                state.attribute_only.add(attrs, sub)
            for type_iri in types:
                state.by_type.setdefault(type_iri, _Bucket()).add(attrs, sub)

    replace = add

    def remove(self, tenant: str, sub_id: str) -> bool:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None or sub_id not in state.subs:
                return False
            self._unfile(state, sub_id)
            self._last_sent.pop((tenant, sub_id), None)
            if not state.subs:
                del self._tenants[tenant]
            return True

    def clear(self) -> None:
        with self._lock:
            self._tenants.clear()
            self._last_sent.clear()

    def _unfile(self, state: _Tenant, sub_id: str) -> None:
        old = state.subs.pop(sub_id, None)
        if old is None:
            return
        if state.periodic.pop(sub_id, None) is not None:
            return
        types, attrs = _filing(old)
        if not types:
            state.attribute_only.remove(attrs, sub_id)
        for type_iri in types:
            bucket = state.by_type.get(type_iri)
            if bucket is not None:
                bucket.remove(attrs, sub_id)
                if not bucket.by_attr:
                    del state.by_type[type_iri]

    # -- look-ups -------------------------------------------------------------------------------

    def get(self, tenant: str, sub_id: str) -> Subscription | None:
        with self._lock:
            state = self._tenants.get(tenant)
            return None if state is None else state.subs.get(sub_id)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(state.subs) for state in self._tenants.values())

    def periodic(self) -> list[tuple[str, Subscription]]:
        """Every periodic subscription, as (tenant, subscription)."""
        with self._lock:
            return [(tenant, sub) for tenant, state in self._tenants.items()
                    for sub in state.periodic.values()]

    # -- matching (storage writer thread) -----------------------------------------------------

    def match(self, tenant: str, before: Entity | None, after: Entity | None,
              now: str) -> list[Match]:
        """The subscriptions of ``tenant`` that the change ``before`` → ``after`` notifies
        (``before`` None = created, ``after`` None = deleted), with throttling applied: a
        subscription returned here counts as notified at ``now``."""
        if before is None and after is None:
            return []
        change = _Change.of(before, after)
        if change is None:
            return []
        with self._lock:
            self.stats.changes += 1
            state = self._tenants.get(tenant)
            if state is None:
                return []
            candidates: dict[str, Subscription] = {}
            touched = change.attrs
            for type_iri in change.entity.get("type", ()):
                bucket = state.by_type.get(type_iri)
                if bucket is not None:
                    bucket.collect(touched, candidates)
            state.attribute_only.collect(touched, candidates)
            self.stats.evaluated += len(candidates)
        if not candidates:
            return []
        stamp = parse_datetime(now, "now", "now")
        matches = [m for sub in candidates.values()
                   if (m := _evaluate(sub, change, stamp)) is not None]
        if not matches:
            return []
        return self._throttle(tenant, matches, stamp)

    def _throttle(self, tenant: str, matches: list[Match], stamp: str) -> list[Match]:
        seconds = datetime.fromisoformat(stamp).timestamp()
        kept: list[Match] = []
        with self._lock:
            for m in matches:
                sub = m.subscription
                key = (tenant, sub.id)
                if sub.throttling:
                    last = self._last_sent.get(key)
                    if last is not None and seconds < last + sub.throttling:
                        continue
                    self._last_sent[key] = seconds
                kept.append(m)
            self.stats.matched += len(kept)
        return kept


# --- the exact test ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Change:
    event: str                          # entityCreated, entityUpdated or entityDeleted
    entity: Entity                      # the one filters are evaluated on
    attrs: tuple[str, ...]              # attribute IRIs touched, in order, no duplicates
    kinds: dict[str, frozenset[str]]    # attribute → attribute triggers it fires (updates)
    entity_members_changed: bool        # type or scope changed (updates)

    @staticmethod
    def of(before: Entity | None, after: Entity | None) -> _Change | None:
        if before is None:
            assert after is not None
            return _Change(ENTITY_CREATED, after, tuple(after.get("attrs", {})), {}, False)
        if after is None:
            return _Change(ENTITY_DELETED, before, tuple(before.get("attrs", {})), {}, False)
        kinds: dict[str, set[str]] = {}
        for attr, old, new in changed_instances(before, after):
            if old is None:
                kind = ATTRIBUTE_CREATED
            elif new is None:
                kind = ATTRIBUTE_DELETED
            elif _same_content(old, new):
                continue
            else:
                kind = ATTRIBUTE_UPDATED
            kinds.setdefault(attr, set()).add(kind)
        members = (before.get("type") != after.get("type")
                   or before.get("scope") != after.get("scope"))
        if not kinds and not members:
            return None   # modifiedAt alone is not a change
        return _Change(ENTITY_UPDATED, after, tuple(kinds),
                       {attr: frozenset(k) for attr, k in kinds.items()}, members)


def _same_content(old: Instance, new: Instance) -> bool:
    """Equal as JSON (1 is not 1.0 nor true), system timestamps aside."""
    def content(instance: Instance) -> bytes:
        return orjson.dumps({k: v for k, v in instance.items() if k not in _SYSTEM},
                            option=orjson.OPT_SORT_KEYS)
    return content(old) == content(new)


def _selects(selector: EntitySelector, entity: Entity) -> bool:
    if selector.id is not None and selector.id != entity["id"]:
        return False
    if selector.id_regex is not None and selector.id_regex.search(entity["id"]) is None:
        return False
    return match_types(selector.type, entity.get("type", []))


def _fired(sub: Subscription, change: _Change) -> tuple[str, tuple[str, ...]] | None:
    """(trigger, attributes) when ``change`` fires one of ``sub``'s triggers."""
    watched = sub.watched_attributes
    relevant = [a for a in change.attrs if a in watched] if watched else list(change.attrs)
    triggers = sub.triggers
    if change.event != ENTITY_UPDATED:
        if change.event not in triggers or (watched and not relevant):
            return None
        return change.event, tuple(relevant)
    for trigger in _ATTRIBUTE_TRIGGERS:
        if trigger in triggers:
            fired = tuple(a for a in relevant if trigger in change.kinds[a])
            if fired:
                return trigger, fired
    if ENTITY_UPDATED in triggers and (relevant or (change.entity_members_changed
                                                     and not watched)):
        return ENTITY_UPDATED, tuple(relevant)
    return None


def _evaluate(sub: Subscription, change: _Change, stamp: str) -> Match | None:
    if not sub.is_active or (sub.expires_at is not None and sub.expires_at <= stamp):
        return None
    entity = change.entity
    if sub.entities and not any(_selects(s, entity) for s in sub.entities):
        return None
    fired = _fired(sub, change)
    if fired is None:
        return None
    if sub.q is not None and not evaluate_q(sub.q.expr, entity):
        return None
    if sub.geo_q is not None and not _geo_matches(sub, entity):
        return None
    if sub.scope_q is not None and not match_scope(sub.scope_q.expr, entity.get("scope")):
        return None
    return Match(sub, *fired)


def _geo_matches(sub: Subscription, entity: Entity) -> bool:
    assert sub.geo_q is not None
    predicate = sub.geo_q.predicate
    instances: list[dict[str, Any]] = entity.get("attrs", {}).get(
        sub.geo_q.query.geoproperty, [])
    return any(isinstance(i.get("value"), dict) and predicate(i["value"]) for i in instances)
