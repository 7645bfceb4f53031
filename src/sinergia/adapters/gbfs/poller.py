"""Keep the broker in step with a GBFS system: poll ``station_status`` at the feed's ``ttl``
(clamped to [min_interval, max_interval]), re-read ``station_information`` and
``system_information`` when their own ``ttl`` has run out, and write only what changed.

Writes are NGSI-LD batch upserts with ``options=update`` (attributes merged into the existing
entity): a station's static attributes are sent when it is first seen or its information
changed, its live attributes when its status changed. Every live attribute carries
``observedAt`` = the station's ``last_reported``, so the broker's history is the station's
availability over time.

**Removed stations** (present in an earlier ``station_information``, absent now) are *marked*,
not deleted: ``status`` becomes ``outOfService`` with a ``reason`` sub-property
``removedFromFeed``. Their entity, last known counts and history stay queryable; a station
that comes back is written in full again. Removal is detected against the stations this
poller has written since it started, so a station removed while no poller ran stays as it was.

A write the broker refuses is retried at the next poll (the poller only remembers what was
acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from sinergia.adapters.broker_client import BatchFailure, BrokerClient, BrokerUnavailable
from sinergia.adapters.gbfs.feed import (
    ENTITY_TYPE,
    GBFS_CONTEXT,
    FeedDocument,
    GbfsError,
    SystemInfo,
    entity_id,
    information_attributes,
    make_entity,
    removed_attributes,
    stations_of,
    status_attributes,
    system_info,
)
from sinergia.adapters.gbfs.source import FeedSource

log = logging.getLogger(__name__)

STATION_INFORMATION = "station_information"
STATION_STATUS = "station_status"
SYSTEM_INFORMATION = "system_information"


@dataclass(slots=True)
class PollResult:
    stations: int = 0                 # stations in the feed
    written: int = 0                  # entities the broker acknowledged
    removed: list[str] = field(default_factory=list)   # entity ids marked as removed
    failed: list[BatchFailure] = field(default_factory=list)
    delay: float = 0.0                # seconds until the next poll


@dataclass(slots=True)
class _Cached:
    document: FeedDocument
    expires: float


class GbfsPoller:
    def __init__(self, source: FeedSource, broker: BrokerClient, *, tenant: str = "",
                 system_id: str | None = None, id_prefix: str | None = None,
                 language: str | None = None, min_interval: float = 10.0,
                 max_interval: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if min_interval <= 0 or max_interval < min_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        self.source = source
        self.broker = broker
        self.tenant = tenant
        self.system_id = system_id
        self.id_prefix = id_prefix
        self.language = language
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.clock = clock
        self.sleep = sleep
        self._cache: dict[str, _Cached] = {}
        self._feeds: dict[str, str] | None = None
        # What the broker acknowledged, per station id: the static and the live attributes
        # last written (serialized, to compare).
        self._info_sent: dict[str, bytes] = {}
        self._status_sent: dict[str, bytes] = {}

    def interval(self, ttl: int) -> float:
        return float(min(max(ttl, self.min_interval), self.max_interval))

    async def _cached(self, name: str) -> FeedDocument:
        entry = self._cache.get(name)
        if entry is not None and self.clock() < entry.expires:
            return entry.document
        document = await self.source.fetch(name)
        self._cache[name] = _Cached(document, self.clock() + self.interval(document.ttl))
        return document

    async def _system(self) -> SystemInfo:
        if self._feeds is None:
            self._feeds = await self.source.feeds()
        document = (await self._cached(SYSTEM_INFORMATION)
                    if SYSTEM_INFORMATION in self._feeds else None)
        info = system_info(document, self.system_id or "gbfs", self.language)
        return SystemInfo(self.system_id or info.system_id, info.provider)

    def _prefix(self, system: SystemInfo) -> str:
        return self.id_prefix or f"urn:ngsi-ld:{ENTITY_TYPE}:{system.system_id}-"

    async def poll_once(self) -> PollResult:
        """Fetch what is due, write what changed. Raises GbfsError when the feed cannot be
        read and BrokerUnavailable when the broker cannot be reached."""
        system = await self._system()
        information = await self._cached(STATION_INFORMATION)
        status = await self.source.fetch(STATION_STATUS)
        stations = stations_of(information)
        statuses = stations_of(status)
        prefix = self._prefix(system)

        entities: list[dict[str, Any]] = []
        pending_info: dict[str, bytes] = {}
        pending_status: dict[str, bytes] = {}
        station_of: dict[str, str] = {}
        for sid, station in stations.items():
            parts: list[dict[str, Any]] = []
            static = information_attributes(station, language=self.language,
                                            provider=system.provider,
                                            source=self.source.location)
            stamp = _stamp(static)
            is_new = sid not in self._info_sent
            if self._info_sent.get(sid) != stamp:
                parts.append(static)
                pending_info[sid] = stamp
            if sid in statuses:
                live = status_attributes(statuses[sid], status.last_updated)
                stamp = _stamp(live)
                # Unchanged live attributes are not written again: each write would be a
                # duplicate instant in the history.
                if is_new or self._status_sent.get(sid) != stamp:
                    parts.append(live)
                    pending_status[sid] = stamp
            if parts:
                eid = entity_id(prefix, sid)
                station_of[eid] = sid
                entities.append(make_entity(eid, *parts))
        gone = [sid for sid in self._info_sent if sid not in stations]
        removed_ids: dict[str, str] = {}
        for sid in gone:
            eid = entity_id(prefix, sid)
            removed_ids[eid] = sid
            entities.append(make_entity(eid, removed_attributes(status.last_updated)))

        result = PollResult(stations=len(stations), delay=self.interval(status.ttl))
        if not entities:
            return result
        report = await self.broker.upsert(entities, tenant=self.tenant, context=GBFS_CONTEXT,
                                          update=True)
        result.failed = report.failed
        for eid in set(report.succeeded):
            result.written += 1
            if eid in removed_ids:
                sid = removed_ids[eid]
                self._info_sent.pop(sid, None)
                self._status_sent.pop(sid, None)
                result.removed.append(eid)
                continue
            sid = station_of.get(eid, "")
            if sid in pending_info:
                self._info_sent[sid] = pending_info[sid]
            if sid in pending_status:
                self._status_sent[sid] = pending_status[sid]
        return result

    async def run(self, *, cycles: int | None = None,
                  on_result: Callable[[PollResult | Exception], None] | None = None) -> None:
        """Poll until cancelled (or ``cycles`` times). A feed or broker outage is reported
        to ``on_result`` and retried after a delay that doubles up to ``max_interval``."""
        done = 0
        backoff = self.min_interval
        while cycles is None or done < cycles:
            outcome: PollResult | Exception
            try:
                outcome = await self.poll_once()
                delay = outcome.delay
                backoff = self.min_interval
            except (GbfsError, BrokerUnavailable) as exc:
                log.warning("GBFS poll failed: %s", exc)
                outcome, delay = exc, backoff
                backoff = min(backoff * 2, self.max_interval)
            if on_result is not None:
                on_result(outcome)
            done += 1
            if cycles is None or done < cycles:
                await self.sleep(delay)


def _stamp(attrs: dict[str, Any]) -> bytes:
    return orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS)
