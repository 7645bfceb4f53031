"""Subscriptions: their lifecycle, the change listener that turns committed changes into outbox
messages, and the notifier that delivers those messages.

The path of a notification: an entity write commits in the store together with the outbox
messages that :meth:`SubscriptionService.on_changes` returned for it (matching is in memory,
indexed by type and watched attribute). The messages are written already leased to this
process's :class:`Notifier` and handed to it right after the commit, so the first attempt
waits for no claim; messages that are due again (retries, deferrals, another process's
expired leases) it claims from the outbox. Each subscription's messages queue in its own
backlog, sent by a few senders of its own: each takes as many queued messages as fit in one
notification, renders them with the subscription's @context and hands them to the
deliverer, which bounds concurrency per endpoint, so one slow receiver never holds up the
others, and the slower a receiver, the fuller its requests. Success or a final failure settles the
message; a retryable failure holds the subscription and parks its messages until a probe finds
the receiver back (:mod:`sinergia.broker.holds`); these writes are batched
(:mod:`sinergia.broker.settling`). A crash between commit and delivery leaves the
message in the outbox, its lease runs out and it is delivered after restart: at-least-once.

Several processes may share one database. Each keeps its own copy of the subscriptions (the
index); the store counts every change of them (a *generation*), checks in each write
transaction that the copy is current and has it refreshed first when not, so a change is
matched against every subscription made before it, whichever process made it. The copy is
also refreshed as soon as the store reports a change (on PostgreSQL, another process's too)
and, as a safety net, every ``refresh_seconds``. The processes share the outbox: claims are
leases, so each message is delivered by one of them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from uuid_utils import uuid4

from sinergia.broker.contexts import current_tenant
from sinergia.broker.delivery import Deliverer, RetryPolicy
from sinergia.broker.holds import Holds
from sinergia.broker.matching import SubscriptionIndex
from sinergia.broker.settling import Settler
from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.errors import AlreadyExists, NgsiLdError, ResourceNotFound
from sinergia.ngsild.model import Entity, now_iso
from sinergia.ngsild.notification import RenderCache, build_notification, previous_instances
from sinergia.ngsild.query import EntityQuery
from sinergia.ngsild.subscription import (
    ENTITY_DELETED,
    Subscription,
    apply_patch,
    from_record,
    parse_subscription,
    to_record,
)
from sinergia.storage.base import DeliveryStatus, EditResult, OutboxItem, OutboxMessage, Store

log = logging.getLogger(__name__)

KIND = "subscription"  # the store record kind


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    subscription: Subscription
    status: DeliveryStatus


class SubscriptionService:
    def __init__(self, store: Store, resolver: ContextResolver) -> None:
        self.store = store
        self.resolver = resolver
        self.index = SubscriptionIndex()
        self._known: dict[tuple[str, str], dict[str, Any]] = {}  # the records indexed
        # The store's view protocol (RecordsView): which records, and the generation of them
        # the index reflects (-1: not read yet).
        self.kind = KIND
        self.generation = -1
        self._refreshing = anyio.Lock()
        self._refreshes_begun = 0
        self._refreshes_done = 0  # the number of the last refresh that finished

    # -- start-up and the change listener --------------------------------------------------

    async def load(self) -> None:
        """Read every tenant's subscriptions into the index and start listening to changes."""
        await self.refresh()
        self.store.set_change_listener(self.on_changes, self)

    async def catch_up(self) -> None:
        """Refresh if any process changed a subscription since the index was read."""
        if await self.store.records_generation(KIND) != self.generation:
            await self.refresh()

    async def refresh(self) -> None:
        """Re-read the subscriptions (other server processes may have changed them). Callers
        that arrive while a refresh runs share the next one, which begins after they asked."""
        asked = self._refreshes_begun
        async with self._refreshing:
            if self._refreshes_done > asked:
                return  # a refresh that began after this call finished meanwhile
            self._refreshes_begun += 1
            number = self._refreshes_begun
            await self._read_all()
            self._refreshes_done = number

    async def _read_all(self) -> None:
        """Only records that changed are parsed again."""
        generation = await self.store.records_generation(KIND)  # before the records: safe
        known: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in await self.store.list_records(KIND):
            key = (rec.tenant, rec.id)
            if self._known.get(key) == rec.record:
                known[key] = rec.record
                continue
            try:
                sub = from_record(rec.record["subscription"])
            except (KeyError, NgsiLdError):
                log.exception("unreadable subscription record %s/%s", rec.tenant, rec.id)
                continue
            self.index.add(rec.tenant, sub)
            known[key] = rec.record
        for tenant, sub_id in self._known.keys() - known.keys():
            self.index.remove(tenant, sub_id)
        self._known = known
        self.generation = generation

    def on_changes(self, tenant: str, results: Sequence[EditResult]) -> list[OutboxMessage]:
        """Runs inside the write transaction: must be quick and must not do I/O."""
        now = now_iso()
        messages: list[OutboxMessage] = []
        for result in results:
            entity = result.after if result.after is not None else result.before
            # One payload object per trigger for the subscriptions without showChanges:
            # the store serialises it once, and the notifier renders the entity once.
            shared: dict[str, dict[str, Any]] = {}
            for match in self.index.match(tenant, result.before, result.after, now):
                if match.subscription.notification.show_changes and result.before is not None:
                    payload = {"trigger": match.trigger, "entities": [entity],
                               "previous": {result.entity_id: previous_instances(
                                   result.before, match.attributes)}}
                else:
                    payload = shared.get(match.trigger) or shared.setdefault(
                        match.trigger, {"trigger": match.trigger, "entities": [entity]})
                messages.append(OutboxMessage(match.subscription.id, payload))
        return messages

    # -- lifecycle (the /subscriptions API) -------------------------------------------------

    async def create(self, tenant: str, body: Any, ctx: Context) -> str:
        sub = parse_subscription(body, ctx, now=now_iso())
        record = {"subscription": to_record(sub)}
        if not await self.store.put_record(KIND, tenant, sub.id, record, only_if_absent=True):
            raise AlreadyExists(f"Subscription {sub.id!r} already exists")
        self._known[(tenant, sub.id)] = record
        self.index.add(tenant, sub)
        return sub.id

    async def get(self, tenant: str, sub_id: str) -> StoredSubscription:
        record = await self.store.get_record(KIND, tenant, sub_id)
        if record is None:
            raise ResourceNotFound(f"Subscription {sub_id!r} not found")
        return StoredSubscription(from_record(record["subscription"]),
                                  await self.store.delivery_status(tenant, sub_id))

    async def list(self, tenant: str, limit: int, offset: int) -> tuple[list[StoredSubscription],
                                                                        int]:
        records = await self.store.list_records(KIND, tenant)
        page = []
        for rec in records[offset:offset + limit]:
            page.append(StoredSubscription(from_record(rec.record["subscription"]),
                                           await self.store.delivery_status(tenant, rec.id)))
        return page, len(records)

    async def update(self, tenant: str, sub_id: str, patch: Any, ctx: Context) -> None:
        current = await self.get(tenant, sub_id)
        sub = apply_patch(current.subscription, patch, ctx, now_iso())
        record = {"subscription": to_record(sub)}
        await self.store.put_record(KIND, tenant, sub_id, record)
        self._known[(tenant, sub_id)] = record
        self.index.add(tenant, sub)

    async def delete(self, tenant: str, sub_id: str) -> None:
        if not await self.store.delete_record(KIND, tenant, sub_id):
            raise ResourceNotFound(f"Subscription {sub_id!r} not found")
        self.index.remove(tenant, sub_id)
        self._known.pop((tenant, sub_id), None)


@dataclass(slots=True)
class Backlog:
    """One subscription's messages waiting for a sender, and how many senders it has."""

    items: deque[OutboxItem] = field(default_factory=deque)
    senders: int = 0
    starting: bool = False   # a sender was started and has not taken its first messages


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    claim_batch: int = 200
    max_in_flight: int = 20_000  # messages held in memory (waiting for a sender or sent)
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    refresh_seconds: float = 2.0
    periodic_tick_seconds: float = 1.0
    busy_factor: int = 4  # notifications held per receiver slot before deferring the rest
    max_backlog: int = 2_000  # messages waiting in memory per subscription; the rest wait
    #                           in the outbox (a receiver that hangs must not fill memory)
    max_entities_per_notification: int = 100
    periodic_max_entities: int = 1000
    probe_tick_seconds: float = 0.25  # how often held subscriptions are looked at
    sweep_seconds: float = 30.0  # how often parked messages are given up or adopted


class Notifier:
    """Delivers outbox messages until cancelled. One per server process; several processes
    sharing a database share the outbox through its leases."""

    def __init__(self, service: SubscriptionService, deliverer: Deliverer,
                 settings: NotifierSettings | None = None) -> None:
        self.service = service
        self.store = service.store
        self.deliverer = deliverer
        self.settings = settings or NotifierSettings()
        self.settler = Settler(self.store)
        self.holds = Holds(self.settings.retry, grace=2 * deliverer.timeout + 1.0)
        # Subscriptions whose receiver answers again: the claim loop drains their parked
        # messages in bites their backlogs take, not in one long write.
        self._released: dict[tuple[str, str], None] = {}
        self._in_flight: set[int] = set()  # ids of the messages this notifier holds
        self._backlogs: dict[tuple[str, str], Backlog] = {}  # by (tenant, subscription)
        # The senders are plain asyncio tasks, not children of an anyio task group: a burst
        # of changes starts several per subscription, and anyio's start_soon costs several
        # times asyncio's create_task. run() cancels them when it ends.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._senders: set[asyncio.Task[None]] = set()
        self._rendered = RenderCache()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.settler.run)
            tg.start_soon(self._refresh_loop)
            tg.start_soon(self._periodic_loop)
            tg.start_soon(self._hold_loop)
            self._loop = asyncio.get_running_loop()
            self.store.set_outbox_consumer(self._dispatch, self.settings.lease_seconds)
            try:
                await self._claim_loop()
            finally:
                self.store.set_outbox_consumer(None)
                self._loop = None
                # Messages a sender still held stay leased in the outbox: delivered again
                # when the lease runs out (at-least-once).
                senders = list(self._senders)
                for task in senders:
                    task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.gather(*senders, return_exceptions=True)

    async def _claim_loop(self) -> None:
        failing = False
        while True:
            free = self.settings.max_in_flight - len(self._in_flight)
            try:
                items = [] if free <= 0 else await self.store.claim_outbox(
                    min(free, self.settings.claim_batch), self.settings.lease_seconds)
                if self._released and free > len(items):
                    items += await self._claim_released(free - len(items))
            except Exception as exc:
                # The database is away: the messages wait in it, try again shortly.
                if not failing:
                    log.warning("cannot claim notifications (%s); retrying", exc)
                failing, items = True, []
            else:
                failing = False
            if not self._dispatch(items):
                await self.store.wait_outbox(self.settings.poll_seconds)

    async def _claim_released(self, room: int) -> list[OutboxItem]:
        items: list[OutboxItem] = []
        now = time.time()
        for key in list(self._released):
            if self.holds.held(key, now):   # down again: its probes take over
                del self._released[key]
                continue
            backlog = self._backlogs.get(key)
            fits = min(room, self.settings.claim_batch,
                       self.settings.max_backlog - (len(backlog.items) if backlog else 0))
            if fits <= 0:
                continue
            got = await self.store.claim_parked(*key, fits, self.settings.lease_seconds)
            if len(got) < fits:
                del self._released[key]
            items += got
            room -= len(got)
            if room <= 0:
                break
        return items

    def _dispatch(self, items: list[OutboxItem]) -> bool:
        """Queue messages this notifier now holds (claimed, or handed over by the store after
        a commit) on their subscription's backlog and start its senders; False when none was
        new. Past ``max_in_flight`` in all, or ``max_backlog`` for one subscription, they go
        back to the outbox (due at once, or after a delivery timeout for a receiver that is
        behind)."""
        loop = self._loop
        if loop is None:
            return False
        now = time.time()
        room = self.settings.max_in_flight - len(self._in_flight)
        touched: dict[tuple[str, str], Backlog] = {}
        fresh = False
        holds = self.holds
        parked: list[tuple[int, float]] = []
        for item in items:
            if item.id in self._in_flight:
                continue
            fresh = True
            key = (item.tenant, item.subscription_id)
            if holds and holds.held(key, now):
                parked.append((item.id, holds.park_due(key, item.attempts, now)))
                continue
            if room <= 0:
                self.settler.defer([item.id], now)
                continue
            backlog = self._backlogs.get(key)
            if backlog is None:
                backlog = self._backlogs[key] = Backlog()
            if len(backlog.items) >= self.settings.max_backlog:
                # Its senders are stuck (a receiver that hangs holds each for a timeout):
                # look again when they may be free, not sooner.
                self.settler.defer([item.id], now + max(1.0, self.deliverer.timeout))
            else:
                room -= 1
                self._in_flight.add(item.id)
                backlog.items.append(item)
                touched[key] = backlog
        if parked:
            self.settler.defer_each(parked)
        for key, backlog in touched.items():
            self._more_senders(key, backlog)
        return fresh

    def _more_senders(self, key: tuple[str, str], backlog: Backlog) -> None:
        """Start one more sender for ``backlog`` if it has messages no sender will take
        soon: the running ones are all sending, and none is about to start. The new one
        starts the next if it leaves messages behind, so a burst gets as many senders as
        it fills notifications (at most the endpoint's slots), not one per message."""
        loop = self._loop
        if loop is None or backlog.starting or not backlog.items or \
                backlog.senders >= self.deliverer.per_endpoint:
            return
        backlog.senders += 1
        backlog.starting = True
        task = loop.create_task(self._send(key, backlog))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)

    async def _send(self, key: tuple[str, str], backlog: Backlog) -> None:
        """Deliver a subscription's backlog, as few notifications as it fits in: while a
        receiver is slow its messages gather, and the next request carries them all."""
        try:
            while backlog.items:
                group = take_batch(backlog.items, self.settings.max_entities_per_notification)
                backlog.starting = False
                self._more_senders(key, backlog)
                await self._deliver(group)
        finally:
            if backlog.starting and not backlog.items:
                backlog.starting = False   # it never took any: another sender did
            backlog.senders -= 1
            if not backlog.senders and not backlog.items and self._backlogs.get(key) is backlog:
                del self._backlogs[key]

    async def _refresh_loop(self) -> None:
        """Catch up as soon as the store reports a change of the subscriptions, and every
        ``refresh_seconds`` anyway (a report can be lost while the database is away)."""
        while True:
            await self.store.wait_records(KIND, self.settings.refresh_seconds)
            try:
                await self.service.catch_up()
            except Exception:
                log.exception("could not refresh subscriptions")

    async def _periodic_loop(self) -> None:
        """Periodic subscriptions (``timeInterval``): every interval, one notification with
        every entity the subscription selects."""
        last: dict[tuple[str, str], float] = {}
        while True:
            await anyio.sleep(self.settings.periodic_tick_seconds)
            now = time.monotonic()
            for tenant, sub in self.service.index.periodic():
                key = (tenant, sub.id)
                interval = sub.time_interval or 0.0
                if now - last.get(key, 0.0) < interval or not sub.is_live(now_iso()):
                    continue
                last[key] = now
                try:
                    entities = await self._select(tenant, sub)
                    if entities:
                        await self.store.enqueue(tenant, [OutboxMessage(
                            sub.id, {"trigger": "timeInterval", "entities": entities})])
                except Exception:
                    log.exception("periodic notification of %s failed", sub.id)

    async def _select(self, tenant: str, sub: Subscription) -> list[Entity]:
        found: dict[str, Entity] = {}
        selectors = sub.entities or (None,)
        for selector in selectors:
            query = EntityQuery(
                ids=(selector.id,) if selector is not None and selector.id else None,
                id_pattern=selector.id_pattern if selector is not None else None,
                type=selector.type if selector is not None else None,
                attrs=sub.watched_attributes or None,
                q=sub.q.expr if sub.q is not None else None,
                geo=sub.geo_q.query if sub.geo_q is not None else None,
                scope=sub.scope_q.expr if sub.scope_q is not None else None,
                limit=self.settings.periodic_max_entities)
            for entity in (await self.store.query_entities(tenant, query)).entities:
                found.setdefault(str(entity["id"]), entity)
        return list(found.values())

    async def _hold_loop(self) -> None:
        """Probe the held subscriptions whose retry time has come; sweep the parked messages
        at start (a restart finds its holds gone) and every ``sweep_seconds``."""
        swept = 0.0
        while True:
            now = time.time()
            if now - swept >= self.settings.sweep_seconds:
                swept = now
                await self._sweep(now)
            for key in self.holds.due(now, self._endpoint):
                task = asyncio.get_running_loop().create_task(self._probe(key))
                self._senders.add(task)
                task.add_done_callback(self._senders.discard)
            await anyio.sleep(self.settings.probe_tick_seconds)

    def _endpoint(self, key: tuple[str, str]) -> str | None:
        sub = self.service.index.get(*key)
        return None if sub is None else sub.notification.endpoint.uri

    async def _sweep(self, now: float) -> None:
        try:
            dropped, parked = await self.store.sweep_parked(now)
        except Exception as exc:
            log.warning("cannot sweep parked notifications (%s)", exc)
            return
        if dropped:
            log.warning("gave up %d notifications whose receivers stayed down", dropped)
        for key in parked:
            self.holds.adopt(key, now)

    async def _probe(self, key: tuple[str, str]) -> None:
        """One attempt for a held subscription, with a batch of its parked messages."""
        try:
            items = await self.store.claim_parked(
                *key, self.settings.max_entities_per_notification, self.settings.lease_seconds)
        except Exception as exc:
            log.warning("cannot claim parked notifications (%s)", exc)
            self.holds.probe_ended(key)
            return
        if not items:
            # Nothing is parked (given up, or delivered by another process): keeping the hold
            # would only probe an empty outbox again and again. Messages parked meanwhile are
            # adopted again by the next sweep.
            self.holds.reached(key)
            return
        pending = deque(items)
        group = take_batch(pending, self.settings.max_entities_per_notification)
        now = time.time()
        # Not in this notification: back to wait for its outcome.
        self.settler.defer_each([(item.id, self.holds.park_due(key, item.attempts, now))
                                 for item in pending])
        self._in_flight.update(item.id for item in group)
        await self._deliver(group, probe=True)

    async def _deliver(self, group: list[OutboxItem], probe: bool = False) -> None:
        ids = [item.id for item in group]
        try:
            await self._deliver_group(group, probe)
        except Exception:
            log.exception("notifications %s failed unexpectedly", ids)
            self.settler.retry(ids, time.time() + self.settings.retry.backoff_base)
        finally:
            self._in_flight.difference_update(ids)
            if probe:
                self.holds.probe_ended((group[0].tenant, group[0].subscription_id))

    def _park(self, key: tuple[str, str], group: list[OutboxItem], counted: bool) -> None:
        now = time.time()
        for item in group:
            attempts = item.attempts + counted
            if counted and attempts >= self.settings.retry.max_attempts:
                self.settler.done([item.id])
            elif counted:
                self.settler.retry([item.id], self.holds.park_due(key, attempts, now))
            else:
                self.settler.defer([item.id], self.holds.park_due(key, attempts, now))

    async def _deliver_group(self, group: list[OutboxItem], probe: bool = False) -> None:
        """One notification for a group of messages of one subscription (its ``data`` holds
        the entities of all of them): under load, a receiver gets fewer, fuller requests."""
        first = group[0]
        ids = [item.id for item in group]
        sub = self.service.index.get(first.tenant, first.subscription_id)
        now = now_iso()
        if sub is None or not sub.is_live(now):
            # Another process may have made or resumed it a moment ago: look before dropping.
            await self.service.catch_up()
            sub = self.service.index.get(first.tenant, first.subscription_id)
        if sub is None or not sub.is_live(now):
            self.settler.done(ids)  # deleted, paused or expired since
            return
        key = (first.tenant, first.subscription_id)
        if not probe and self.holds.held(key, time.time()):
            self._park(key, group, counted=False)   # its receiver is down: wait for a probe
            return
        endpoint = sub.notification.endpoint
        if self.deliverer.busy(endpoint.uri) >= self.settings.busy_factor * \
                self.deliverer.per_endpoint:
            # The receiver is not keeping up (or hangs): leave its backlog in the outbox
            # rather than in memory, so it cannot take the in-flight capacity of the others.
            self.settler.defer(ids, time.time() + 1.0)
            return
        # The subscription's @context may be hosted by its tenant, and hosted contexts are
        # looked up in the tenant of the current call.
        token = current_tenant.set(first.tenant)
        try:
            ctx = await self.service.resolver.resolve(sub.context_source)
        finally:
            current_tenant.reset(token)
        entities = [entity for item in group for entity in item.payload["entities"]]
        previous: dict[str, Any] = {}
        for item in group:
            previous.update(item.payload.get("previous") or {})
        outcome = await self.deliverer.deliver_rendered(
            endpoint.uri, functools.partial(
                build_notification, sub, entities, previous or None, ctx,
                notification_id=f"urn:ngsi-ld:Notification:{uuid4()}", now=now,
                tenant=first.tenant, trigger=first.payload.get("trigger"),
                cache=self._rendered),
            notifier_info=dict(endpoint.notifier_info))
        self.settler.note(first.tenant, first.subscription_id, outcome.ok, now)
        if outcome.retryable:
            # Down (or failing): hold the subscription; this group waits parked with the
            # rest, each message given up once its attempts are spent.
            self.holds.failed(key, time.time(), probe=probe, endpoint=endpoint.uri)
            if max(item.attempts for item in group) + 1 >= self.settings.retry.max_attempts:
                log.warning("giving up on notifications to %s after %d attempts: %s",
                            endpoint.uri, self.settings.retry.max_attempts, outcome.error)
            self._park(key, group, counted=True)
            return
        if self.holds.reached(key):
            self._released[key] = None   # it answers again: everything parked goes out
        if not outcome.ok:
            log.warning("giving up on notifications %s to %s: %s", ids, endpoint.uri,
                        outcome.error)
        self.settler.done(ids)


def _kind(item: OutboxItem) -> tuple[str, str, bool]:
    """Messages of one kind can share a notification: same tenant, subscription and kind of
    trigger (deletions render differently)."""
    return item.tenant, item.subscription_id, item.payload.get("trigger") == ENTITY_DELETED


def _entity_ids(item: OutboxItem) -> list[str]:
    return [str(entity["id"]) for entity in item.payload["entities"]]


def batches(items: Sequence[OutboxItem], max_entities: int) -> list[list[OutboxItem]]:
    """Group claimed messages that can share one notification: of one kind (:func:`_kind`),
    in claim order, at most ``max_entities`` entities and each entity at most once (so
    ``showChanges`` stays exact) per group."""
    groups: dict[tuple[str, str, bool], list[tuple[list[OutboxItem], set[str]]]] = {}
    for item in items:
        ids = _entity_ids(item)
        chunks = groups.setdefault(_kind(item), [([], set())])
        chunk, seen = chunks[-1]
        if chunk and (len(seen) + len(ids) > max_entities or not seen.isdisjoint(ids)):
            chunk, seen = [], set()
            chunks.append((chunk, seen))
        chunk.append(item)
        seen.update(ids)
    return [chunk for chunks in groups.values() for chunk, _ in chunks]


def take_batch(backlog: deque[OutboxItem], max_entities: int) -> list[OutboxItem]:
    """Remove from ``backlog`` the messages of its next notification: the group of its head
    that :func:`batches` would make (found in one pass, without grouping the rest)."""
    window = list(itertools.islice(backlog, max_entities))
    kind = _kind(window[0])
    group: list[OutboxItem] = []
    seen: set[str] = set()
    rest: list[OutboxItem] = []
    open_ = True
    for item in window:
        if open_ and _kind(item) == kind:
            ids = _entity_ids(item)
            if not group or (len(seen) + len(ids) <= max_entities and seen.isdisjoint(ids)):
                group.append(item)
                seen.update(ids)
                continue
            open_ = False   # later ones of this kind go to the next notification
        rest.append(item)
    for _ in window:
        backlog.popleft()
    if rest:  # a deletion or a repeated entity: the rest waits, in order
        backlog.extendleft(reversed(rest))
    return group
