"""Notification POSTs over lean keep-alive HTTP/1.1 connections.

A notifier makes thousands of small POSTs a second and needs nothing of a general HTTP client
but the status of each answer. Measured on the bench machine (one POST of a small
notification to a local receiver, CPU of the sending process): aiohttp ≈ 67 µs, httpx
several times that, an asyncio protocol that writes the request itself and lets httptools
(the maintained parser uvicorn uses) read the answer ≈ 12 µs. This module is that protocol:

* one connection per exchange at a time, kept per origin for reuse while the receiver keeps
  it open, and closed after :data:`IDLE_SECONDS` (to a third more) unused; the caller (the
  deliverer's per-origin slots) bounds how many are open at once;
* the whole answer is read (Content-Length, chunked, or until close) before the exchange
  counts as done and the connection is reused; ``Connection: close`` is honoured;
* a reused connection that the receiver had closed meanwhile (the request met a reset, or
  EOF before any byte of an answer) is replaced by a new one once: the receiver may then get
  the notification twice, which at-least-once delivery allows;
* no timeouts here: the caller bounds every exchange, and a cancelled exchange closes its
  connection, so a late answer can never be read as the answer to the next request;
* ``user:password@`` in the URL becomes Basic authorization, as aiohttp did; redirects are
  not followed (a 3xx is the answer).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final, cast
from urllib.parse import quote, unquote, urlsplit

import httptools

IDLE_SECONDS: Final = 15.0   # how long an unused connection is kept (aiohttp's default too)
_USER_AGENT: Final = "sinergia-notifier"
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"   # what may stay as it is in a request target
_QUERY_SAFE: Final = _PATH_SAFE + "?"


class HttpPostError(Exception):
    """The exchange failed before a complete answer arrived (whatever the receiver got)."""


class InvalidRequest(ValueError):
    """The request cannot be written (bad URL or header): trying again will not help."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and what to write for one endpoint URL; parsed once per URL."""

    origin: tuple[str, str, int]   # scheme, host, port: the pool key
    head: bytes                    # the request line and the headers fixed by the URL


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _header_text(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise InvalidRequest(f"a header may not contain a line break: {value!r}")
    return value


@lru_cache(maxsize=4096)
def parse_target(uri: str) -> Target:
    """The pool key and fixed part of the request of an ``http(s)://`` endpoint; cached per
    endpoint (bounded: the URLs come from users' subscriptions)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{uri!r} is not an http(s) URL with a host")
    host = parts.hostname
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    port = port or (443 if scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        shown = f"{shown}:{port}"
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    lines = [f"POST {target} HTTP/1.1", f"Host: {shown}", f"User-Agent: {_USER_AGENT}"]
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        lines.append("Authorization: Basic "
                     + base64.b64encode(credentials.encode()).decode("ascii"))
    return Target((scheme, host, port), ("\r\n".join(lines) + "\r\n").encode())


def request_bytes(target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"{_header_text(name)}: {_header_text(value)}\r\n"
             for name, value in headers.items()
             if name.lower() not in ("host", "content-length", "transfer-encoding")]
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return b"".join((target.head, "".join(lines).encode(), body))


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time."""

    def __init__(self, pool: HttpPoster, origin: tuple[str, str, int]) -> None:
        self.pool, self.origin = pool, origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[int] | None = None
        self.closed = False
        self.got_bytes = False       # any byte of the current answer
        self.headers_done = False
        self.until_close = True      # no length and not chunked: the answer ends at EOF
        self.idle_since = 0.0        # loop time it was last put back

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            self.close()   # nobody asked: the connection is out of step, never reuse it
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(HttpPostError(f"invalid HTTP answer: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        answer = self.answer
        if answer is None or answer.done():
            return
        if self.headers_done and self.until_close:
            answer.set_result(self.parser.get_status_code())   # EOF ends such an answer
        elif not self.got_bytes:
            answer.set_exception(ConnectionResetError("the receiver closed the connection"))
        else:
            answer.set_exception(HttpPostError("the receiver closed the connection in the "
                                               "middle of its answer"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.until_close = False

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:   # 100 Continue and the like: the answer follows
            self.headers_done, self.until_close = False, True
            return
        answer = self.answer
        if answer is not None and not answer.done():
            if not self.parser.should_keep_alive():
                self.close()
            answer.set_result(status)

    # -- use -------------------------------------------------------------------------------

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        self.answer = answer
        self.got_bytes = self.headers_done = False
        self.until_close = True
        self.transport.write(request)
        return await answer

    def _fail(self, exc: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        self.pool._forget(self)


class HttpPoster:
    """POSTs with connections kept per origin (see the module's notes)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls   # None: the system's trusted authorities
        # Per origin, oldest first; a sweep every third of IDLE_SECONDS closes the stale
        # ones (one timer for all, not one per exchange).
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def post(self, uri: str, headers: Mapping[str, str], body: bytes) -> int:
        """The status of the answer to a POST of ``body``. Raises :class:`InvalidRequest`,
        :class:`HttpPostError` or ``OSError`` (refused, reset, TLS, name resolution)."""
        return await self.post_rendered(uri, lambda: (headers, body))

    async def post_rendered(self, uri: str,
                            render: Callable[[], tuple[Mapping[str, str], bytes]]) -> int:
        """:meth:`post` the headers and body ``render`` makes once a connection is open."""
        target = parse_target(uri)
        connection = self._take_idle(target.origin)
        reused = connection is not None
        if connection is None:
            connection = await self._open(target.origin)
        try:
            headers, body = render()
            request = request_bytes(target, headers, body)
        except BaseException:
            self._keep(connection)   # unused, still good
            raise
        try:
            return await self._exchange(connection, request)
        except ConnectionError:
            if not reused or connection.got_bytes:
                raise
        # The receiver had closed this idle connection: once more on a new one.
        return await self._exchange(await self._open(target.origin), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> int:
        self._busy.add(connection)
        done = False
        try:
            status = await connection.exchange(request)
            done = True
            return status
        finally:
            self._busy.discard(connection)
            if done and not connection.closed:
                self._keep(connection)
            else:   # failed or cancelled half-way: its next bytes would be out of step
                connection.close()

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        connection = None
        while idle and connection is None:
            connection = idle.pop()   # the most recently used is the least likely closed
            if connection.closed:
                connection = None
        if idle is not None and not idle:
            del self._idle[origin]   # so that the sweeps stop when nothing is kept
        return connection

    def _keep(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.idle_since = loop.time()
        self._idle.setdefault(connection.origin, deque()).append(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(IDLE_SECONDS / 3, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        stale = loop.time() - IDLE_SECONDS
        for idle in list(self._idle.values()):
            while idle and idle[0].idle_since <= stale:
                idle[0].close()   # takes it out of the deque
        if self._idle:
            self._sweeper = loop.call_later(IDLE_SECONDS / 3, self._sweep)

    def _forget(self, connection: _Connection) -> None:
        idle = self._idle.get(connection.origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.origin]

    async def _open(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = (self._tls or _tls_context()) if scheme == "https" else None
        _, connection = await loop.create_connection(
            lambda: _Connection(self, origin), host, port, ssl=tls,
            server_hostname=host if tls is not None else None)
        return connection

    async def aclose(self) -> None:
        """Close every connection (an exchange still running fails)."""
        connections = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        for connection in connections:
            connection.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        self._busy.clear()
