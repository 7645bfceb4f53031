"""The dashboard's live feed: one broker subscription, fanned out to browsers.

The dashboard is a client of the broker's public API, live updates included. While at least
one browser listens on ``/dashboard/events``, the server holds an NGSI-LD subscription
(:data:`SUBSCRIPTION_ID`) to every entity type the broker has, whose endpoint is the server's
own ``/dashboard/notify``; every notification that arrives there is handed to every listening
browser. The subscription is made and changed with ordinary NGSI-LD requests, sent through
``httpx.ASGITransport`` to the server's own app: no socket, and the same middleware and handlers
as any client's request.

Why a subscription rather than a hook inside the broker: the notifications go through the
outbox like everyone else's (so the status page's notification health covers the dashboard
too), and the web module needs nothing from the storage or broker internals.

* **Idle costs nothing.** When the last browser leaves, the subscription is paused
  (``isActive: false``) and changes stop producing notifications; the next browser resumes it.
  (With several worker processes the subscription stays active: another worker may still have
  listeners. Each browser then sees the notifications delivered to its own worker.)
* **New types are picked up.** The subscription lists the types ``GET /types`` names; the list
  is checked again every :data:`RESYNC_SECONDS` while browsers listen.
* **A slow browser never holds up the others.** Each listener has a small buffer; one that
  fills it is disconnected (its ``EventSource`` reconnects and reloads) instead of blocking.
* **Only the broker can feed the browsers.** The endpoint carries a secret token header
  (``receiverInfo``); a notification without it is refused. The token lives in the
  subscription itself, so every process and restart of the server adopts the same one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import anyio
import httpx
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

SUBSCRIPTION_ID: Final = "urn:ngsi-ld:Subscription:sinergia-dashboard"
TOKEN_HEADER: Final = "Sinergia-Dashboard-Token"
NOTIFY_PATH: Final = "/dashboard/notify"
LISTENER_BUFFER: Final = 64        # changes a browser may be behind before it is disconnected
RESYNC_SECONDS: Final = 30.0       # how often the type list is checked while browsers listen
RATE_WINDOW_SECONDS: Final = 60    # "changes per second" is the average over this window
SYNC_TIMEOUT_SECONDS: Final = 10.0
TRIGGERS: Final = ("entityCreated", "entityDeleted", "attributeCreated", "attributeUpdated",
                   "attributeDeleted")
_NGSI: Final = "/ngsi-ld/v1"
_INTERNAL_BASE: Final = "http://sinergia.internal"  # ASGITransport never resolves it

Change = dict[str, Any]   # what a listener receives: {"entities": [keyValues entities]}


def own_url(host: str, port: int) -> str:
    """The server's URL as the server itself reaches it (a wildcard address is loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class RateCounter:
    """Changes per second, averaged over the last ``window`` seconds (one bucket a second)."""

    def __init__(self, window: int = RATE_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.total = 0
        self._clock = clock
        self._buckets: dict[int, int] = {}

    def add(self, count: int) -> None:
        second = int(self._clock())
        self.total += count
        self._buckets[second] = self._buckets.get(second, 0) + count
        self._forget(second)

    def per_second(self) -> float:
        second = int(self._clock())
        self._forget(second)
        # the current second is still filling up: average over the whole seconds before it
        done = sum(n for s, n in self._buckets.items() if s < second)
        return done / self.window

    def _forget(self, second: int) -> None:
        for old in [s for s in self._buckets if s < second - self.window]:
            del self._buckets[old]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The subscription the feed needs the broker to hold."""

    types: tuple[str, ...]
    active: bool
    endpoint: str
    token: str

    def body(self) -> dict[str, Any]:
        return {
            "id": SUBSCRIPTION_ID, "type": "Subscription",
            "subscriptionName": "Sinergia dashboard",
            "description": ("The dashboard's live map and pages: every change is passed on "
                            "to the browsers watching. Paused while none is."),
            "entities": [{"type": t} for t in self.types],
            "notificationTrigger": list(TRIGGERS),
            "isActive": self.active,
            "notification": {
                "format": "keyValues",
                "endpoint": {"uri": self.endpoint, "accept": "application/json",
                             "receiverInfo": [{"key": TOKEN_HEADER, "value": self.token}]},
            },
        }

    def differences(self, held: Mapping[str, Any]) -> dict[str, Any]:
        """The members of a PATCH that turns ``held`` (as GET answers it) into this."""
        body = self.body()
        patch: dict[str, Any] = {}
        held_types = sorted(str(e.get("type")) for e in held.get("entities", ())
                            if isinstance(e, dict))
        if held_types != sorted(self.types):
            patch["entities"] = body["entities"]
        if held.get("isActive", True) != self.active:
            patch["isActive"] = self.active
        if sorted(held.get("notificationTrigger") or ()) != sorted(TRIGGERS):
            patch["notificationTrigger"] = body["notificationTrigger"]
        notification = held.get("notification") or {}
        endpoint = notification.get("endpoint") or {}
        if (endpoint.get("uri") != self.endpoint or _token_of(held) != self.token
                or notification.get("format") != "keyValues"):
            patch["notification"] = body["notification"]
        return patch


def _token_of(subscription: Mapping[str, Any]) -> str | None:
    endpoint = (subscription.get("notification") or {}).get("endpoint") or {}
    for pair in endpoint.get("receiverInfo") or ():
        if isinstance(pair, dict) and pair.get("key") == TOKEN_HEADER:
            value = pair.get("value")
            return value if isinstance(value, str) and value else None
    return None


class FeedError(RuntimeError):
    """The broker refused or could not answer a request about the dashboard's subscription."""


class _BrokerCalls:
    """The few NGSI-LD requests the feed makes, through the server's own ASGI app."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def types(self) -> tuple[str, ...]:
        answer = await self.client.get(f"{_NGSI}/types")
        if answer.status_code != 200:
            raise FeedError(f"GET /types answered {answer.status_code}: {answer.text[:200]}")
        names = answer.json().get("typeList", [])
        return tuple(sorted(str(name) for name in names))

    async def subscription(self) -> dict[str, Any] | None:
        answer = await self.client.get(f"{_NGSI}/subscriptions/{quote(SUBSCRIPTION_ID)}")
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise FeedError(f"reading the subscription answered {answer.status_code}: "
                            f"{answer.text[:200]}")
        held: dict[str, Any] = answer.json()
        return held

    async def create(self, body: dict[str, Any]) -> bool:
        """Create; False when another process created it first."""
        answer = await self.client.post(f"{_NGSI}/subscriptions", content=orjson.dumps(body),
                                        headers={"Content-Type": "application/json"})
        if answer.status_code == 409:
            return False
        if answer.status_code != 201:
            raise FeedError(f"creating the subscription answered {answer.status_code}: "
                            f"{answer.text[:200]}")
        return True

    async def patch(self, patch: dict[str, Any]) -> bool:
        """Patch; False when the subscription is gone."""
        answer = await self.client.patch(f"{_NGSI}/subscriptions/{quote(SUBSCRIPTION_ID)}",
                                         content=orjson.dumps(patch),
                                         headers={"Content-Type": "application/json"})
        if answer.status_code == 404:
            return False
        if answer.status_code != 204:
            raise FeedError(f"changing the subscription answered {answer.status_code}: "
                            f"{answer.text[:200]}")
        return True


class LiveFeed:
    """The browsers listening to one server process, and the subscription that feeds them."""

    def __init__(self, app: ASGIApp, endpoint: str, *, pause_when_idle: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.endpoint = endpoint
        self.pause_when_idle = pause_when_idle
        self.counter = RateCounter(clock=clock)
        self.notifications = 0
        self.disconnected_slow = 0
        self.error: str | None = None
        self.token: str | None = None
        self._clock = clock
        self._listeners: set[MemoryObjectSendStream[Change]] = set()
        self._lock = anyio.Lock()
        self._held: Wanted | None = None   # what the broker holds, as of our last sync
        self._synced_at = -RESYNC_SECONDS

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @property
    def subscribed(self) -> bool:
        """The broker holds an active subscription that feeds this process's listeners."""
        return self._held is not None and self._held.active and bool(self._held.types)

    # -- browsers ----------------------------------------------------------------------------

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[MemoryObjectReceiveStream[Change]]:
        """A listener for the time of the ``with``: the changes, until the feed drops it
        (then the stream ends). The subscription is active before this yields."""
        send, receive = anyio.create_memory_object_stream[Change](LISTENER_BUFFER)
        self._listeners.add(send)
        try:
            await self.sync()
            yield receive
        finally:
            self._listeners.discard(send)
            send.close()
            receive.close()
            # Runs while the response is being cancelled (the browser left): shielded, and
            # bounded, so a shutdown never waits long for it.
            with anyio.move_on_after(SYNC_TIMEOUT_SECONDS, shield=True):
                await self.sync()

    def accepts(self, token: str | None) -> bool:
        return (token is not None and self.token is not None
                and secrets.compare_digest(token.encode(), self.token.encode()))

    def publish(self, notification: Mapping[str, Any]) -> None:
        """Hand a notification's entities to every listener (no I/O: never waits)."""
        data = notification.get("data")
        entities = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
        self.notifications += 1
        self.counter.add(len(entities))
        if not entities:
            return
        change: Change = {"entities": entities}
        for send in list(self._listeners):
            try:
                send.send_nowait(change)
            except anyio.WouldBlock:
                # This browser is too far behind: end its stream rather than wait for it.
                # Its EventSource reconnects and reloads what it shows.
                self._listeners.discard(send)
                send.close()
                self.disconnected_slow += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.discard(send)

    def describe(self) -> dict[str, Any]:
        """What the status page shows about the feed."""
        return {"listeners": self.listeners, "subscribed": self.subscribed,
                "subscriptionId": SUBSCRIPTION_ID,
                "types": list(self._held.types) if self._held else [],
                "changesPerSecond": round(self.counter.per_second(), 3),
                "changesTotal": self.counter.total, "notifications": self.notifications,
                "slowListenersDisconnected": self.disconnected_slow, "error": self.error}

    # -- the subscription ----------------------------------------------------------------------

    async def refresh_if_due(self) -> None:
        """Sync again if the last sync is older than :data:`RESYNC_SECONDS` (new types)."""
        if self._clock() - self._synced_at >= RESYNC_SECONDS:
            await self.sync()

    async def sync(self) -> None:
        """Make the broker's subscription what the listeners need. Never raises: a failure is
        logged and kept in :attr:`error` (the status page shows it) and retried later."""
        async with self._lock:
            try:
                with anyio.fail_after(SYNC_TIMEOUT_SECONDS):
                    await self._sync()
                self.error = None
            except (FeedError, httpx.HTTPError, TimeoutError, ValueError) as exc:
                self.error = str(exc) or type(exc).__name__
                log.warning("dashboard live feed: %s", self.error)
            finally:
                self._synced_at = self._clock()

    async def _sync(self) -> None:
        want_active = bool(self._listeners) or not self.pause_when_idle
        if not want_active and (self._held is None or not self._held.active):
            return   # nothing this process made is running
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=_INTERNAL_BASE,
                                     timeout=SYNC_TIMEOUT_SECONDS) as client:
            calls = _BrokerCalls(client)
            types = await calls.types() if want_active else ()
            for _ in range(3):   # another process may create or delete it meanwhile
                held = await calls.subscription()
                if held is None:
                    if not want_active or not types:
                        self._held = None   # nothing to pause, or nothing to watch yet
                        return
                    self.token = self.token or secrets.token_urlsafe(24)
                    wanted = Wanted(types, True, self.endpoint, self.token)
                    if await calls.create(wanted.body()):
                        self._held = wanted
                        return
                    continue
                self.token = _token_of(held) or self.token or secrets.token_urlsafe(24)
                # A subscription names at least one type: with none left, keep the old list
                # and pause.
                kept = types or tuple(sorted(str(e.get("type")) for e in held.get("entities", ())
                                             if isinstance(e, dict)))
                wanted = Wanted(kept, want_active and bool(types), self.endpoint, self.token)
                patch = wanted.differences(held)
                if not patch or await calls.patch(patch):
                    self._held = wanted
                    return
        raise FeedError("the subscription kept changing under the dashboard")
