"""``sinergia import …``: the adapters' command line (registered in :mod:`sinergia.cli`).

This is composition code: it picks the broker to write to — a running server over HTTP
(``--url``, the default) or a database opened in this process (``--database``) — and hands
it to an adapter, which only ever sees the :class:`BrokerClient` protocol. Heavy modules are
imported inside the commands, so ``sinergia --help`` stays fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sinergia.adapters.cli_urbandataset import (
    export_urbandataset_command,
    import_urbandataset_command,
)

if TYPE_CHECKING:
    from sinergia.adapters.broker_client import BrokerClient
    from sinergia.adapters.tabular.importer import ImportReport

import_app = typer.Typer(help="Bring data in: tables (CSV, GeoJSON), bike-sharing feeds and "
                              "UrbanDataset documents.", no_args_is_help=True)
export_app = typer.Typer(help="Send data out: UrbanDataset documents.", no_args_is_help=True)
console = Console()
SHOWN_ERRORS = 20

URL_OPTION = typer.Option("http://127.0.0.1:1026", "--url",
                          help="Root URL of the NGSI-LD broker to write to.")
DATABASE_OPTION = typer.Option(None, "--database",
                               help="Write to this database in-process instead of through a "
                                    "server (e.g. sqlite:///city.db).")
TENANT_OPTION = typer.Option("", "--tenant", help="NGSI-LD tenant to write to.")
# import table
FILE_ARGUMENT = typer.Argument(..., help="CSV or GeoJSON file (by extension: .csv, "
                                         ".geojson/.json).")
MAPPING_OPTION = typer.Option(..., "--mapping", help="YAML mapping: entity type, id template, "
                                                     "columns → attributes.")
UPDATE_OPTION = typer.Option(False, "--update", help="Merge attributes into existing entities "
                                                     "instead of replacing them.")
CHUNK_OPTION = typer.Option(1000, "--chunk-size", help="Entities per batch write.")
# import gbfs
SOURCE_ARGUMENT = typer.Argument(..., help="URL of the system's gbfs.json, or a directory of "
                                           "GBFS files.")
ONCE_OPTION = typer.Option(False, "--once", help="Poll once and exit.")
SYSTEM_ID_OPTION = typer.Option(None, "--system-id", help="System id used in entity ids "
                                "(default: system_information's, else 'gbfs').")
ID_PREFIX_OPTION = typer.Option(None, "--id-prefix", help="Entity id prefix, e.g. "
                                "urn:ngsi-ld:BikeHireDockingStation:MI- (overrides "
                                "--system-id).")
LANGUAGE_OPTION = typer.Option(None, "--language", help="Preferred language of names, e.g. it.")
MIN_INTERVAL_OPTION = typer.Option(10.0, "--min-interval", help="Shortest wait between polls "
                                                                "(seconds).")
MAX_INTERVAL_OPTION = typer.Option(300.0, "--max-interval", help="Longest wait between polls "
                                                                 "(seconds).")


@asynccontextmanager
async def open_broker(url: str, database: str | None) -> AsyncIterator[BrokerClient]:
    """The broker named on the command line, opened for the duration of the block."""
    from sinergia.adapters.broker_client import HttpBroker, InProcessBroker

    if database:
        from sinergia.api.app import build_runtime
        from sinergia.settings import load_settings

        runtime = build_runtime(load_settings(database_url=database))
        await runtime.store.open()
        try:
            yield InProcessBroker(runtime.entities, runtime.contexts,
                                  temporal=runtime.temporal)
        finally:
            await runtime.store.close()
    else:
        async with HttpBroker(url) as broker:
            yield broker


@import_app.command("table")
def import_table_command(file: Path = FILE_ARGUMENT, *, mapping: Path = MAPPING_OPTION,
                         url: str = URL_OPTION, database: str | None = DATABASE_OPTION,
                         tenant: str = TENANT_OPTION, update: bool = UPDATE_OPTION,
                         chunk_size: int = CHUNK_OPTION) -> None:
    """Import a table: every row becomes an entity; bad rows are listed, good rows committed.

    Exit status: 0 all rows imported, 1 some rows refused, 2 nothing could be done."""
    from sinergia.adapters.broker_client import BrokerUnavailable
    from sinergia.adapters.tabular.importer import import_table
    from sinergia.adapters.tabular.mapping import MappingError, load_mapping
    from sinergia.adapters.tabular.reader import TableError

    async def run() -> ImportReport:
        spec = load_mapping(mapping)
        async with open_broker(url, database) as broker:
            with Progress(TextColumn(f"Importing {escape(file.name)}"), BarColumn(),
                          MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=console) as progress:
                task = progress.add_task("rows", total=None)

                def advance(done: int, total: int | None) -> None:
                    progress.update(task, completed=done,
                                    total=max(total, done) if total is not None else None)

                report = await import_table(file, spec, broker, tenant=tenant,
                                            chunk_size=chunk_size, update=update,
                                            on_progress=advance)
                progress.update(task, total=report.rows, completed=report.rows)
                return report

    try:
        report = asyncio.run(run())
    except (MappingError, TableError, BrokerUnavailable) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: ImportReport) -> None:
    colour = "green" if report.ok else "yellow"
    console.print(f"[{colour}]{report.written} of {report.rows} rows imported"
                  f"{f', {report.error_count} refused' if report.error_count else ''}."
                  f"[/{colour}]", highlight=False)
    if report.errors:
        table = Table("where", "problem", title="Rows not imported")
        for error in report.errors[:SHOWN_ERRORS]:
            where = f"{error.label} {error.row}"
            if error.column:
                where += f", {error.column}"
            table.add_row(escape(where), escape(error.message))
        console.print(table)
        if report.error_count > SHOWN_ERRORS:
            console.print(f"… and {report.error_count - SHOWN_ERRORS} more.")


@import_app.command("gbfs")
def import_gbfs_command(source: str = SOURCE_ARGUMENT, *, once: bool = ONCE_OPTION,
                        url: str = URL_OPTION, database: str | None = DATABASE_OPTION,
                        tenant: str = TENANT_OPTION, system_id: str | None = SYSTEM_ID_OPTION,
                        id_prefix: str | None = ID_PREFIX_OPTION,
                        language: str | None = LANGUAGE_OPTION,
                        min_interval: float = MIN_INTERVAL_OPTION,
                        max_interval: float = MAX_INTERVAL_OPTION) -> None:
    """Keep bike-sharing stations up to date from a GBFS 2.x/3.0 feed, polling at its ttl."""
    from sinergia.adapters.broker_client import BrokerUnavailable
    from sinergia.adapters.gbfs.feed import GbfsError
    from sinergia.adapters.gbfs.poller import GbfsPoller, PollResult
    from sinergia.adapters.gbfs.source import HttpFeedSource, open_source

    def show(outcome: PollResult | Exception) -> None:
        if isinstance(outcome, Exception):
            console.print(f"[yellow]poll failed: {escape(str(outcome))}[/yellow]",
                          highlight=False)
            return
        console.print(f"{outcome.stations} stations, {outcome.written} written, "
                      f"{len(outcome.removed)} removed, {len(outcome.failed)} refused; "
                      f"next poll in {outcome.delay:g} s", highlight=False)
        for failure in outcome.failed[:SHOWN_ERRORS]:
            console.print(escape(f"  {failure.entity_id}: {failure.title}: "
                                 f"{failure.detail}"), highlight=False)

    async def run() -> int:
        feed = open_source(source, language=language)
        try:
            async with open_broker(url, database) as broker:
                poller = GbfsPoller(feed, broker, tenant=tenant, system_id=system_id,
                                    id_prefix=id_prefix, language=language,
                                    min_interval=min_interval, max_interval=max_interval)
                if once:
                    result = await poller.poll_once()
                    show(result)
                    return 1 if result.failed else 0
                await poller.run(on_result=show)
                return 0
        finally:
            if isinstance(feed, HttpFeedSource):
                await feed.aclose()

    try:
        code = asyncio.run(run())
    except (GbfsError, BrokerUnavailable, ValueError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("Stopped.")
        code = 0
    raise typer.Exit(code)


# UrbanDataset: commands of their own module, on both apps.
import_app.command("urbandataset")(import_urbandataset_command)
export_app.command("urbandataset")(export_urbandataset_command)
