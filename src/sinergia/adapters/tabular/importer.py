"""``sinergia import table``: stream a CSV or GeoJSON file through a mapping into the broker.

Rows are converted and written in chunks through a :class:`BrokerClient`; the next chunk is
converted while the broker commits the previous one. A row that does not fit the mapping, or
whose entity the broker refuses, is reported with its line (or feature) number and the reason;
every good row is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sinergia.adapters.broker_client import BatchReport, BrokerClient
from sinergia.adapters.tabular.convert import CellError, RowConverter
from sinergia.adapters.tabular.mapping import TableMapping
from sinergia.adapters.tabular.reader import open_table

DEFAULT_CHUNK = 1000
MAX_KEPT_ERRORS = 1000

# Called after each chunk with (rows read so far, estimated total rows or None).
ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was not imported. ``row`` is the CSV line (header = line 1) or the
    GeoJSON feature number (from 1); ``label`` says which."""

    row: int
    message: str
    column: str | None = None
    entity_id: str | None = None
    label: str = "line"

    def __str__(self) -> str:
        where = f"{self.label} {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ImportReport:
    rows: int = 0            # data rows read
    written: int = 0         # entities the broker accepted
    error_count: int = 0     # rows not imported (all of them, even past MAX_KEPT_ERRORS)
    errors: list[RowError] = field(default_factory=list)  # the first MAX_KEPT_ERRORS
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)


async def import_table(path: Path, mapping: TableMapping, broker: BrokerClient, *,
                       tenant: str = "", chunk_size: int = DEFAULT_CHUNK, update: bool = False,
                       on_progress: ProgressFn | None = None) -> ImportReport:
    """Import every row of ``path``. Raises MappingError/TableError before any write when the
    mapping does not fit the file, and BrokerUnavailable when the broker cannot be reached
    (the chunks acknowledged until then stay committed)."""
    report = ImportReport()
    with open_table(path, delimiter=mapping.delimiter, encoding=mapping.encoding) as source:
        report.encoding, report.delimiter = source.encoding, source.delimiter
        converter = RowConverter(mapping, source)
        label = source.row_label
        pending: asyncio.Task[BatchReport] | None = None
        pending_rows: dict[str, list[int]] = {}
        chunk: list[dict[str, Any]] = []
        rows_of: dict[str, list[int]] = {}

        async def settle() -> None:
            nonlocal pending
            if pending is not None:
                _account(await pending, pending_rows, report, label)
                pending = None
                if on_progress is not None:
                    on_progress(report.rows, source.estimated_rows)

        def submit() -> None:
            nonlocal pending, pending_rows, chunk, rows_of
            pending = asyncio.ensure_future(broker.upsert(
                chunk, tenant=tenant, context=mapping.context, update=update))
            pending_rows, chunk, rows_of = rows_of, [], {}

        try:
            for number, row in source.rows:
                report.rows += 1
                try:
                    entity = converter.convert(row)
                except CellError as exc:
                    report.add_error(RowError(number, exc.message, exc.column, label=label))
                    continue
                chunk.append(entity)
                rows_of.setdefault(entity["id"], []).append(number)
                if len(chunk) >= chunk_size:
                    await settle()
                    submit()
            await settle()
            if chunk:
                submit()
                await settle()
            elif on_progress is not None:
                on_progress(report.rows, source.estimated_rows)
        finally:
            # An error while reading: do not leave a write running, nor its error unread.
            if pending is not None and not pending.done():
                pending.cancel()
            elif pending is not None and not pending.cancelled():
                pending.exception()
    return report


def _account(result: BatchReport, rows_of: dict[str, list[int]], report: ImportReport,
             label: str) -> None:
    """Count the broker's answer for one chunk, turning refused ids back into row numbers."""
    report.written += sum(len(rows_of.get(i, (0,))) for i in set(result.succeeded))
    for failure in result.failed:
        for number in rows_of.get(failure.entity_id, [0]):
            report.add_error(RowError(number, f"{failure.title}: {failure.detail}",
                                      entity_id=failure.entity_id, label=label))
