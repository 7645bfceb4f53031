"""Sending notifications: HTTP(S) POSTs and MQTT(S) publications, independent of storage.

:class:`Deliverer` makes one attempt per call and says whether it worked and whether trying
again may help; the outbox worker owns retries (:class:`RetryPolicy`, :func:`backoff`).
Isolation between receivers is the point of the design:

* each endpoint *origin* (scheme, host, port) has its own few slots (an anyio semaphore):
  a receiver that hangs fills only its own slots, and a call that finds them full for a whole
  timeout gives up with a retryable outcome instead of queueing without end;
* every attempt is bounded by the timeout, whatever the receiver does (slow connect, slow
  response, trickled bytes), so no call takes more than twice the timeout in all;
* HTTP goes through :class:`~sinergia.broker.http_post.HttpPoster` (keep-alive connections
  per origin, no global cap — the per-origin slots are the cap — so many slow receivers
  cannot starve a pool): a notifier makes thousands of small POSTs a second, and a general
  client (aiohttp, httpx) spends several times its CPU on each;
* MQTT keeps one connection per broker (and credentials), opened on first use and reopened
  when it breaks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

import aiomqtt
import anyio

from sinergia.broker.http_post import HttpPoster, HttpPostError, InvalidRequest

if TYPE_CHECKING:
    from sinergia.settings import Settings

log = logging.getLogger(__name__)

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}
# Answers after which the same request may well succeed later.
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})

Render = Callable[[], tuple[Mapping[str, str], bytes]]   # the headers and body to send


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One attempt: ``ok``; else the HTTP ``status`` or the ``error``, and whether another
    attempt may succeed (``retryable``: timeouts, unreachable receivers, 5xx, 408, 429)."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retryable: bool = False


# --- retries ------------------------------------------------------------------------------------


def backoff(attempt: int, *, base: float, cap: float, jitter: float = 0.5,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry): ``base``
    doubled each time, at most ``cap``, minus up to ``jitter`` of it at random so that
    receivers coming back are not hit by every retry at once."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    delay = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return delay * (1.0 - jitter * rand())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_cap: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.notification_max_attempts, settings.notification_backoff_base,
                   settings.notification_backoff_cap)

    def next_delay(self, attempts: int, outcome: DeliveryOutcome,
                   rand: Callable[[], float] = random.random) -> float | None:
        """Seconds until the next attempt after ``attempts`` attempts ended with ``outcome``,
        or None when the notification is done with (delivered, hopeless or out of tries)."""
        if outcome.ok or not outcome.retryable or attempts >= self.max_attempts:
            return None
        return backoff(attempts, base=self.backoff_base, cap=self.backoff_cap, rand=rand)

    def remaining(self, attempts: int) -> float:
        """Seconds the retries still due after ``attempts`` attempts would take at most
        (no jitter): how long a message whose receiver stays down is kept."""
        return sum(backoff(n, base=self.backoff_base, cap=self.backoff_cap, jitter=0.0)
                   for n in range(max(attempts, 1), self.max_attempts))


# --- endpoints ----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)   # endpoints are few; each notification asks again
def endpoint_origin(uri: str) -> str:
    """``scheme://host:port`` of an endpoint: what its concurrency slots are keyed by."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


async def _acquire(semaphore: asyncio.Semaphore, timeout: float) -> bool:
    """Take a slot, waiting at most ``timeout``; a free one costs no timer and no yield (the
    asyncio primitives rather than anyio's, which yield to the loop even then)."""
    if not semaphore.locked():
        await semaphore.acquire()
        return True
    try:
        async with asyncio.timeout(timeout):
            await semaphore.acquire()
    except TimeoutError:
        return False
    return True


@dataclass(slots=True)
class _Slots:
    semaphore: asyncio.Semaphore
    users: int = 0   # holding or waiting; the entry is dropped at 0 so the table stays small


@dataclass(frozen=True, slots=True)
class _Broker:
    """What one MQTT connection is for."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None
    version: str


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Deliverer:
    def __init__(self, *, timeout: float = 10.0, per_endpoint: int = 4) -> None:
        if timeout <= 0 or per_endpoint < 1:
            raise ValueError("timeout must be positive and per_endpoint at least 1")
        self.timeout = timeout
        self.per_endpoint = per_endpoint
        self._slots: dict[str, _Slots] = {}
        self._http = HttpPoster()
        self._mqtt: dict[_Broker, aiomqtt.Client] = {}
        self._mqtt_locks: dict[_Broker, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Deliverer:
        return cls(timeout=settings.notification_timeout,
                   per_endpoint=settings.notification_endpoint_concurrency)

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and every MQTT connection."""
        await self._http.aclose()
        clients = list(self._mqtt.values())
        self._mqtt.clear()
        for client in clients:
            await _disconnect(client)

    def busy(self, endpoint_uri: str) -> int:
        """Calls holding or waiting for the slots of ``endpoint_uri``'s origin."""
        try:
            slots = self._slots.get(endpoint_origin(endpoint_uri))
        except ValueError:   # an invalid URI has no slots (deliver refuses it at once)
            return 0
        return 0 if slots is None else slots.users

    async def deliver(self, endpoint_uri: str, headers: Mapping[str, str], body: bytes, *,
                      notifier_info: Mapping[str, str] | None = None) -> DeliveryOutcome:
        """One attempt to deliver ``body``: an HTTP POST with ``headers``, or an MQTT
        publication of ``body`` (already the MQTT envelope) with the QoS of
        ``notifier_info`` (``MQTT-QoS``, default 1). Never raises for a receiver's fault."""
        return await self.deliver_rendered(endpoint_uri, lambda: (headers, body),
                                           notifier_info=notifier_info)

    async def deliver_rendered(self, endpoint_uri: str, render: Render, *,
                               notifier_info: Mapping[str, str] | None = None
                               ) -> DeliveryOutcome:
        """:meth:`deliver` the headers and body that ``render`` makes, called only once a
        connection to the receiver is open: a receiver that is down costs no rendering,
        however many times its notifications are retried."""
        try:
            origin = endpoint_origin(endpoint_uri)
        except ValueError as exc:
            return DeliveryOutcome(False, error=f"invalid endpoint: {exc}")
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = _Slots(asyncio.Semaphore(self.per_endpoint))
        slots.users += 1
        try:
            if not await _acquire(slots.semaphore, self.timeout):
                return DeliveryOutcome(False, retryable=True, error=(
                    f"{origin} is busy: {self.per_endpoint} notifications to it have been "
                    f"in flight for {self.timeout:g} s"))
            try:
                return await self._attempt(endpoint_uri, render, notifier_info or {})
            finally:
                slots.semaphore.release()
        finally:
            slots.users -= 1
            if slots.users == 0 and self._slots.get(origin) is slots:
                del self._slots[origin]

    async def _attempt(self, uri: str, render: Render,
                       notifier_info: Mapping[str, str]) -> DeliveryOutcome:
        scheme = uri.split(":", 1)[0].lower()
        try:
            async with asyncio.timeout(self.timeout):
                if scheme in ("http", "https"):
                    return await self._post(uri, render)
                if scheme in ("mqtt", "mqtts"):
                    return await self._publish(uri, render, notifier_info)
        except TimeoutError:
            return DeliveryOutcome(False, retryable=True,
                                   error=f"no answer within {self.timeout:g} s")
        return DeliveryOutcome(False, error=f"unsupported endpoint scheme {scheme!r}")

    # -- HTTP -----------------------------------------------------------------------------------

    async def _post(self, uri: str, render: Render) -> DeliveryOutcome:
        try:
            status = await self._http.post_rendered(uri, render)
        except InvalidRequest as exc:
            return DeliveryOutcome(False, error=f"invalid request: {exc}")
        except (HttpPostError, OSError) as exc:
            return DeliveryOutcome(False, retryable=True,
                                   error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        if 200 <= status < 300:
            return DeliveryOutcome(True, status=status)
        return DeliveryOutcome(False, status=status, error=f"HTTP {status}",
                               retryable=status >= 500 or status in _RETRYABLE_STATUS)

    # -- MQTT -----------------------------------------------------------------------------------

    async def _publish(self, uri: str, render: Render,
                       notifier_info: Mapping[str, str]) -> DeliveryOutcome:
        try:
            broker, topic = _mqtt_target(uri, notifier_info.get("MQTT-Version", "mqtt3.1.1"))
            qos = int(notifier_info.get("MQTT-QoS", "1"))
        except ValueError as exc:
            return DeliveryOutcome(False, error=f"invalid endpoint: {exc}")
        # A cached connection may have died since its last use (broker restarted): then
        # reconnect once and try again within the same attempt.
        for _ in range(2):
            reused = broker in self._mqtt
            try:
                client = await self._mqtt_client(broker)
                _, body = render()
                await client.publish(topic, body, qos=qos, timeout=self.timeout)
                return DeliveryOutcome(True)
            except aiomqtt.MqttError as exc:
                await self._forget(broker)
                if not reused:
                    return DeliveryOutcome(False, retryable=True, error=f"MQTT: {exc}")
        return DeliveryOutcome(False, retryable=True, error="MQTT: connection lost")

    async def _mqtt_client(self, broker: _Broker) -> aiomqtt.Client:
        client = self._mqtt.get(broker)
        if client is not None:
            return client
        lock = self._mqtt_locks.setdefault(broker, asyncio.Lock())
        async with lock:   # one connect per broker, the others wait for it
            client = self._mqtt.get(broker)
            if client is None:
                client = aiomqtt.Client(
                    broker.host, broker.port, username=broker.username,
                    password=broker.password, timeout=self.timeout,
                    protocol=(aiomqtt.ProtocolVersion.V5 if broker.version == "mqtt5.0"
                              else aiomqtt.ProtocolVersion.V311),
                    tls_context=_tls_context() if broker.tls else None)
                await client.__aenter__()
                self._mqtt[broker] = client
        return client

    async def _forget(self, broker: _Broker) -> None:
        client = self._mqtt.pop(broker, None)
        if client is not None:
            await _disconnect(client)


def _mqtt_target(uri: str, version: str) -> tuple[_Broker, str]:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    topic = unquote(parts.path[1:])
    if not parts.hostname or not topic:
        raise ValueError(f"{uri!r} is not mqtt(s)://host[:port]/topic")
    broker = _Broker(scheme == "mqtts", parts.hostname, parts.port or _DEFAULT_PORTS[scheme],
                     unquote(parts.username) if parts.username else None,
                     unquote(parts.password) if parts.password else None, version)
    return broker, topic


async def _disconnect(client: aiomqtt.Client) -> None:
    """Close an MQTT connection without waiting long for a broker that may be gone."""
    with anyio.move_on_after(1.0):
        try:
            await client.__aexit__(None, None, None)
        except aiomqtt.MqttError:
            pass   # already broken: nothing more to close
        except Exception:   # a library bug must not stop the others from closing
            log.exception("closing an MQTT connection failed")

