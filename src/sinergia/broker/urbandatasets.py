"""UrbanDataset documents and gateway sessions, kept as the store's per-tenant records.

The SCPS gateway answers its requests with the very documents producers pushed, so each pushed
document is kept whole (kind ``urbandataset``), keyed by its resource id and its
``context.timestamp``; beside it a small summary (kind ``urbandataset-summary``) lets a search
pick documents without reading each one. Gateway logins are sessions (kind ``scps-session``)
keyed by a hash of their token, so every server process sees them, and a token is never
stored in a form that could be used.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sinergia.storage.base import Store

__all__ = ["GatewaySessions", "Session", "StoredSummary", "UrbanDatasetService"]

DOCUMENT_KIND: Final = "urbandataset"
SUMMARY_KIND: Final = "urbandataset-summary"
SESSION_KIND: Final = "scps-session"
_SESSIONS_TENANT: Final = ""  # a login is for the gateway, whichever tenant it then reads


@dataclass(frozen=True, slots=True)
class StoredSummary:
    resource_id: str
    timestamp: str
    summary: dict[str, Any]


def _key(resource_id: str, timestamp: str) -> str:
    # Resource ids have no spaces ("SCP-1_Solution-3_CounterReading-2.0_20260101000000").
    return f"{resource_id} {timestamp}"


class UrbanDatasetService:
    """The documents pushed to the gateway, per tenant, resource id and timestamp."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, tenant: str, resource_id: str, timestamp: str,
                  document: dict[str, Any], summary: dict[str, Any]) -> bool:
        """Keep a document; False (nothing changed) when one with this resource id and
        timestamp is already kept. The check and the write are one atomic step."""
        key = _key(resource_id, timestamp)
        stored = await self.store.put_record(
            DOCUMENT_KIND, tenant, key,
            {"resource_id": resource_id, "timestamp": timestamp, "summary": summary,
             "document": document}, only_if_absent=True)
        if not stored:
            await self.kept(tenant, resource_id, timestamp)
            return False
        await self._put_summary(tenant, key, resource_id, timestamp, summary)
        return True

    async def kept(self, tenant: str, resource_id: str, timestamp: str) -> bool:
        """Whether the document is kept. A crash between the two writes of ``add`` leaves a
        document without its summary: the summary is put back here."""
        key = _key(resource_id, timestamp)
        found = await self.store.get_record(DOCUMENT_KIND, tenant, key)
        if found is None:
            return False
        if await self.store.get_record(SUMMARY_KIND, tenant, key) is None:
            await self._put_summary(tenant, key, resource_id, timestamp, found["summary"])
        return True

    async def _put_summary(self, tenant: str, key: str, resource_id: str, timestamp: str,
                           summary: dict[str, Any]) -> None:
        await self.store.put_record(SUMMARY_KIND, tenant, key, {
            "resource_id": resource_id, "timestamp": timestamp, "summary": summary})

    async def get(self, tenant: str, resource_id: str, timestamp: str) -> dict[str, Any] | None:
        """The document as it was pushed, or None."""
        found = await self.store.get_record(DOCUMENT_KIND, tenant, _key(resource_id, timestamp))
        return None if found is None else dict(found["document"])

    async def summaries(self, tenant: str, resource_id: str) -> list[StoredSummary]:
        """The summaries of the resource's documents (in no particular order)."""
        return [StoredSummary(r.record["resource_id"], r.record["timestamp"],
                              r.record["summary"])
                for r in await self.store.list_records(SUMMARY_KIND, tenant)
                if r.record.get("resource_id") == resource_id]

    async def delete(self, tenant: str, resource_id: str, timestamp: str) -> bool:
        key = _key(resource_id, timestamp)
        await self.store.delete_record(SUMMARY_KIND, tenant, key)
        return await self.store.delete_record(DOCUMENT_KIND, tenant, key)


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    expires: float  # seconds since the epoch


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class GatewaySessions:
    """Opaque bearer tokens with an expiry. ``clock`` gives seconds since the epoch."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def open(self, username: str, ttl: float) -> tuple[str, Session]:
        """A new token for ``username``, valid for ``ttl`` seconds; expired sessions are
        cleared out on the way."""
        now = self.clock()
        for record in await self.store.list_records(SESSION_KIND, _SESSIONS_TENANT):
            if float(record.record.get("expires", 0)) <= now:
                await self.store.delete_record(SESSION_KIND, _SESSIONS_TENANT, record.id)
        token = secrets.token_urlsafe(32)
        session = Session(username, now + ttl)
        await self.store.put_record(SESSION_KIND, _SESSIONS_TENANT, _token_id(token),
                                    {"username": username, "expires": session.expires})
        return token, session

    async def find(self, token: str) -> Session | None:
        """The token's session, expired or not; None for a token never given or closed."""
        found = await self.store.get_record(SESSION_KIND, _SESSIONS_TENANT, _token_id(token))
        if found is None:
            return None
        return Session(str(found.get("username", "")), float(found.get("expires", 0)))

    def expired(self, session: Session) -> bool:
        return session.expires <= self.clock()

    async def close(self, token: str) -> bool:
        return await self.store.delete_record(SESSION_KIND, _SESSIONS_TENANT, _token_id(token))
