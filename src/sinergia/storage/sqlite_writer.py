"""The single SQLite writer: one thread, one connection, group commit.

Concurrent write requests are queued; the writer takes every job waiting (up to a limit), runs
them in one ``BEGIN IMMEDIATE`` transaction and commits once, so a burst of small writes costs
one fsync instead of one each. Only after the commit are the callers' futures resolved, so an
acknowledged write is durable. If the group's SQL fails, it is rolled back and every job is
retried alone, so one bad job can never fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Job = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Pending:
    job: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = field(default=False)


_STOP = object()


class Writer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], *, batch_max: int,
                 on_rollback: Callable[[], None] | None = None) -> None:
        self._connect = connect
        self._on_rollback = on_rollback
        self._batch_max = max(1, batch_max)
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sinergia-sqlite-writer",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    async def submit(self, job: Job) -> Any:
        """Run ``job(conn)`` inside a write transaction; return its result after COMMIT."""
        if self._thread is None:
            raise RuntimeError("the SQLite writer is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(job, loop, loop.create_future())
        self._queue.put(pending)
        return await pending.future

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group: list[_Pending] = [first]  # type: ignore[list-item]
                stop_after = False
                while len(group) < self._batch_max:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop_after = True
                        break
                    group.append(item)  # type: ignore[arg-type]
                self._commit_group(conn, group)
                if stop_after:
                    return
        finally:
            conn.close()

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Pending]) -> None:
        try:
            self._run_in_transaction(conn, group)
        except Exception:
            if len(group) == 1:
                log.exception("SQLite write failed")
                self._resolve_all(group)
                return
            # Retry alone: the failure belongs to one job, the others must not pay for it.
            for pending in group:
                pending.error = None
                pending.done = False
                try:
                    self._run_in_transaction(conn, [pending])
                except Exception:
                    log.exception("SQLite write failed")
        self._resolve_all(group)

    def _run_in_transaction(self, conn: sqlite3.Connection, group: list[_Pending]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for pending in group:
                pending.result = pending.job(conn)
                pending.done = True
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if self._on_rollback is not None:
                self._on_rollback()  # whatever the jobs cached about the database is void
            for pending in group:
                pending.error = exc
            raise

    @staticmethod
    def _resolve_all(group: list[_Pending]) -> None:
        for pending in group:
            pending.loop.call_soon_threadsafe(_settle, pending)


def _settle(pending: _Pending) -> None:
    if pending.future.done():  # the caller went away (cancelled); nothing to tell
        return
    if pending.error is not None:
        pending.future.set_exception(pending.error)
    else:
        pending.future.set_result(pending.result)
