"""A real HTTP notification receiver for tests: a threaded stdlib server on a free port that
records every POST and can be told to fail or to go away."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    inbox: queue.Queue[Received] = field(default_factory=queue.Queue)
    status: int = 200  # what the receiver answers; 500 simulates a broken receiver

    def next(self, timeout: float = 10.0) -> Received:
        """The next notification received; fails the test after ``timeout`` seconds."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no notification reached {self.url} in {timeout} s") from None

    def entities(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The entities of the next notifications until ``count`` have arrived (the broker
        may put several changes into one notification)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            found.extend(self.next(timeout).body["data"])
        return found

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.inbox.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            self.send_response(receiver.status)
            self.send_header("content-length", "0")
            self.end_headers()
            if receiver.status < 300:
                receiver.inbox.put(Received(self.path, {k.lower(): v for k, v in
                                                        self.headers.items()}, orjson.loads(raw)))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/notify")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
