"""Many small writes handed to the SQLite writer as one job.

The writer already commits a group of jobs at once; this goes one step further for entity
writes: every call that arrives while the previous job waits in the writer's queue joins one
*batch*, which runs as a single job, so that a burst of single-entity requests pays for one
entity look-up, one ``executemany`` per table and one history write instead of one each. The
batch is a job like any other: it is retried alone when its group fails, and its callers learn
their results only after the commit.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sinergia.storage.sqlite_writer import Writer

Call = TypeVar("Call")
Outcome = TypeVar("Outcome")


class _Batch(Generic[Call]):
    __slots__ = ("calls", "closed", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.calls: list[Call] = []
        self.closed = False
        self.loop = loop
        self.task: asyncio.Future[list[object]] | None = None


class Coalescer(Generic[Call, Outcome]):
    """``await submit(call)`` runs ``work(conn, calls)`` in the writer for the calls gathered
    meanwhile; ``work`` returns one outcome per call, in order."""

    def __init__(self, writer: Writer,
                 work: Callable[[sqlite3.Connection, list[Call]], list[Outcome]]) -> None:
        self._writer = writer
        self._work = work
        self._lock = threading.Lock()  # the batch is closed by the writer's thread
        self._open: _Batch[Call] | None = None

    async def submit(self, call: Call) -> Outcome:
        loop = asyncio.get_running_loop()
        with self._lock:
            batch = self._open
            if batch is None or batch.closed or batch.loop is not loop:
                batch = self._open = _Batch(loop)
                batch.task = asyncio.ensure_future(
                    self._writer.submit(functools.partial(self._run, batch=batch)))
            index = len(batch.calls)
            batch.calls.append(call)
        assert batch.task is not None
        # Shielded: one caller going away must not cancel the others' writes.
        outcomes = await asyncio.shield(batch.task)
        outcome: Outcome = outcomes[index]  # type: ignore[assignment]
        return outcome

    def _run(self, conn: sqlite3.Connection, batch: _Batch[Call]) -> list[Outcome]:
        with self._lock:
            batch.closed = True  # later calls start a new batch; a retry sees the same calls
            calls = list(batch.calls)
        return self._work(conn, calls)
