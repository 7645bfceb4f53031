"""The notifier's lean HTTP/1.1 client against scripted receivers: every way an answer can end,
connection reuse, and what must never be reused."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from sinergia.broker import http_post
from sinergia.broker.http_post import HttpPoster, HttpPostError, InvalidRequest

pytestmark = pytest.mark.anyio

HEADERS = {"Content-Type": "application/json", "X-Auth": "secret"}

# What the scripted receiver writes for the n-th request it reads (None: close at once).
Script = Callable[[int], bytes | None]


@dataclass
class Scripted:
    port: int
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)  # (head, body)
    connections: int = 0
    eofs: int = 0   # connections the client closed
    got_request: asyncio.Event = field(default_factory=asyncio.Event)
    got_eof: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/notify") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@pytest.fixture
async def scripted(request: pytest.FixtureRequest) -> AsyncIterator[Scripted]:
    script: Script = request.param
    state = Scripted(0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        while True:
            got = await _read_request(reader)
            if got is None:
                state.eofs += 1
                state.got_eof.set()
                break
            state.requests.append(got)
            state.got_request.set()
            answer = script(len(state.requests))
            if answer is None:
                break
            if answer == HANG:
                continue
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer.lower() or b"HTTP/1.0" in answer:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


HANG = b"hang"   # answer nothing, keep reading
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n0\r\n\r\n")


@pytest.mark.parametrize("scripted", [lambda n: OK if n % 2 else CHUNKED], indirect=True)
async def test_answers_with_a_length_or_chunks_keep_the_connection(scripted: Scripted) -> None:
    poster = HttpPoster()
    statuses = [await poster.post(scripted.url(), HEADERS, b'{"n": %d}' % n) for n in range(4)]
    await poster.aclose()
    assert statuses == [200, 202, 200, 202]
    assert scripted.connections == 1
    assert [body for _, body in scripted.requests] == [b'{"n": %d}' % n for n in range(4)]


@pytest.mark.parametrize("scripted", [lambda n: b"HTTP/1.0 201 Created\r\n\r\nthe end"],
                         indirect=True)
async def test_an_answer_without_a_length_ends_at_close(scripted: Scripted) -> None:
    poster = HttpPoster()
    assert [await poster.post(scripted.url(), HEADERS, b"{}") for _ in range(2)] == [201, 201]
    assert scripted.connections == 2
    await poster.aclose()


@pytest.mark.parametrize(
    "scripted", [lambda n: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"],
    indirect=True)
async def test_connection_close_is_honoured(scripted: Scripted) -> None:
    poster = HttpPoster()
    assert [await poster.post(scripted.url(), HEADERS, b"{}") for _ in range(3)] == [200] * 3
    assert scripted.connections == 3
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: OK if n != 2 else None], indirect=True)
async def test_a_kept_connection_the_receiver_closed_is_replaced_once(scripted: Scripted) -> None:
    poster = HttpPoster()
    assert await poster.post(scripted.url(), HEADERS, b"1") == 200
    # Request 2 finds the receiver closing the kept connection without answering: it is
    # sent again (request 3) on a new connection.
    assert await poster.post(scripted.url(), HEADERS, b"2") == 200
    assert [body for _, body in scripted.requests] == [b"1", b"2", b"2"]
    assert scripted.connections == 2
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: None], indirect=True)
async def test_a_new_connection_closed_without_an_answer_fails(scripted: Scripted) -> None:
    poster = HttpPoster()
    with pytest.raises(ConnectionError):
        await poster.post(scripted.url(), HEADERS, b"{}")
    assert len(scripted.requests) == 1   # not sent twice: the connection was new
    await poster.aclose()


@pytest.mark.parametrize(("scripted", "error"), [
    (lambda n: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc",
     "in the middle of its answer"),
    (lambda n: b"NOT HTTP AT ALL\r\n\r\n", "invalid HTTP answer"),
], indirect=["scripted"])
async def test_an_answer_cut_short_or_garbled_fails(scripted: Scripted, error: str) -> None:
    poster = HttpPoster()
    with pytest.raises(HttpPostError, match=error):
        await poster.post(scripted.url(), HEADERS, b"{}")
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: HANG], indirect=True)
async def test_a_cancelled_exchange_closes_its_connection(scripted: Scripted) -> None:
    poster = HttpPoster()
    task = asyncio.ensure_future(poster.post(scripted.url(), HEADERS, b"{}"))
    await scripted.got_request.wait()
    task.cancel()   # the caller's timeout: a late answer must never meet the next request
    with pytest.raises(asyncio.CancelledError):
        await task
    await scripted.got_eof.wait()
    assert scripted.eofs == 1
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: OK], indirect=True)
async def test_the_request_line_and_headers(scripted: Scripted) -> None:
    poster = HttpPoster()
    url = f"http://us%40er:p%3Ass@127.0.0.1:{scripted.port}/a b/ü?x=1 2&y=ä#frag"
    assert await poster.post(url, HEADERS, b"{}") == 200
    ((head, _),) = scripted.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /a%20b/%C3%BC?x=1%202&y=%C3%A4 HTTP/1.1"
    assert f"Host: 127.0.0.1:{scripted.port}" in lines
    assert "X-Auth: secret" in lines and "Content-Length: 2" in lines
    assert f"Authorization: Basic {base64.b64encode(b'us@er:p:ss').decode()}" in lines
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: OK], indirect=True)
async def test_a_header_with_a_line_break_is_refused_unsent(scripted: Scripted) -> None:
    poster = HttpPoster()
    with pytest.raises(InvalidRequest):
        await poster.post(scripted.url(), {"X-Evil": "a\r\nX-Injected: 1"}, b"{}")
    with pytest.raises(InvalidRequest):
        await poster.post("ftp://127.0.0.1/x", HEADERS, b"{}")
    # The request is made once a connection is open; that one stays good for the next.
    assert await poster.post(scripted.url(), HEADERS, b"{}") == 200
    assert len(scripted.requests) == 1 and scripted.connections == 1
    await poster.aclose()
    await scripted.got_eof.wait()


@pytest.mark.parametrize("scripted", [lambda n: OK], indirect=True)
async def test_nothing_is_rendered_without_a_connection(scripted: Scripted) -> None:
    poster = HttpPoster()
    calls: list[int] = []

    def render() -> tuple[dict[str, str], bytes]:
        calls.append(1)
        return HEADERS, b"{}"

    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    with pytest.raises(OSError):
        await poster.post_rendered(f"http://127.0.0.1:{port}/", render)
    assert calls == []
    assert await poster.post_rendered(scripted.url(), render) == 200
    assert calls == [1]
    await poster.aclose()


@pytest.mark.parametrize("scripted", [lambda n: OK], indirect=True)
async def test_an_unused_connection_is_closed_after_a_while(
        scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_post, "IDLE_SECONDS", 0.06)
    poster = HttpPoster()
    assert await poster.post(scripted.url(), HEADERS, b"{}") == 200
    await scripted.got_eof.wait()   # closed by the sweep, not by aclose
    assert scripted.eofs == 1 and poster._idle == {}
    assert await poster.post(scripted.url(), HEADERS, b"{}") == 200
    assert scripted.connections == 2
    await poster.aclose()


async def test_https_checks_the_receivers_certificate() -> None:
    authority = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(served)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _read_request(reader) is not None:
            writer.write(OK)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/notify"
    async with server:
        trusting = ssl.create_default_context()
        authority.configure_trust(trusting)
        poster = HttpPoster(tls=trusting)
        assert await poster.post(url, HEADERS, b"{}") == 200
        await poster.aclose()
        with pytest.raises(ssl.SSLError):   # the system does not know this authority
            await HttpPoster().post(url, HEADERS, b"{}")
