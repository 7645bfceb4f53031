"""``sinergia import urbandataset`` and ``sinergia export urbandataset`` (registered by
:mod:`sinergia.adapters.cli`). Heavy modules are imported inside the commands, so that
``sinergia --help`` stays fast.

Import reads each file as ENEA's adapter reads it (1.0 or 2.0, JSON or XML, repairing what it
can) and writes its lines as the history and current state of entities; export reads a type's
history over a period back and writes one valid UrbanDataset 2.0 document.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from sinergia.adapters.urbandataset.pipeline import WriteReport
    from sinergia.adapters.urbandataset.report import ImportResult

SHOWN = 20

FILES_ARGUMENT = typer.Argument(..., help="UrbanDataset documents (.json or .xml, 1.0 or 2.0).")
URL_OPTION = typer.Option("http://127.0.0.1:1026", "--url",
                          help="Root URL of the NGSI-LD broker to write to (or read from).")
DATABASE_OPTION = typer.Option(None, "--database",
                               help="Use this database in-process instead of a server "
                                    "(e.g. sqlite:///city.db).")
TENANT_OPTION = typer.Option("", "--tenant", help="NGSI-LD tenant.")
PRODUCER_OPTION = typer.Option(None, "--producer-id",
                               help="Producer that names the entities, instead of the "
                                    "document's (e.g. for placeholder producers).")
TYPE_OPTION = typer.Option(None, "--type", help="Entity type to export, e.g. "
                                                "ThreePhaseAcMeasurement.")
FROM_OPTION = typer.Option(..., "--from", help="Start of the period (included), ISO 8601; "
                                               "without an offset, in --time-zone.")
TO_OPTION = typer.Option(..., "--to", help="End of the period (excluded), ISO 8601.")
SPEC_OPTION = typer.Option(None, "--spec-id", help="UrbanDataset specification, e.g. "
                                                   "CounterReading-2.0 (default: the "
                                                   "type's).")
EXPORT_PRODUCER_OPTION = typer.Option("Sinergia", "--producer-id",
                                      help="context.producer.id of the document.")
ZONE_OPTION = typer.Option("UTC+1", "--time-zone", help="context.timeZone of the document: "
                                                        "UTC+1, UTC+5:30, UTC…")
OUT_OPTION = typer.Option(None, "--out", help="Write the document to this file (default: "
                                              "standard output).")


def import_urbandataset_command(files: list[Path] = FILES_ARGUMENT, *,
                                url: str = URL_OPTION, database: str | None = DATABASE_OPTION,
                                tenant: str = TENANT_OPTION,
                                producer_id: str | None = PRODUCER_OPTION) -> None:
    """Import UrbanDataset documents: every line's values become the history and current
    state of NGSI-LD entities; repairs and skipped lines are reported.

    Exit status: 0 every line imported, 1 some lines skipped or entities refused, 2 a file
    could not be read as an UrbanDataset or the broker could not be reached."""
    from sinergia.adapters.broker_client import BrokerUnavailable
    from sinergia.adapters.cli import open_broker
    from sinergia.adapters.urbandataset import UrbanDatasetError, import_document
    from sinergia.adapters.urbandataset.pipeline import write_import

    console = Console()

    async def run() -> int:
        worst = 0
        async with open_broker(url, database) as broker:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("entities"), TimeElapsedColumn(),
                          console=console) as progress:
                for file in files:
                    task = progress.add_task(escape(file.name), total=None)
                    try:
                        result = import_document(file.read_bytes(), producer_id=producer_id)
                    except (OSError, UrbanDatasetError) as exc:
                        progress.console.print(f"[red]{escape(str(file))}: "
                                               f"{escape(str(exc))}[/red]", highlight=False)
                        worst = 2
                        continue

                    def advance(done: int, total: int, task: TaskID = task) -> None:
                        progress.update(task, completed=done, total=total)

                    written = await write_import(result, broker, tenant=tenant,
                                                 on_progress=advance)
                    entities = len(result.entities)
                    progress.update(task, completed=entities, total=entities)
                    _print_report(progress.console, file, result, written)
                    clean = written.ok and not result.report.skipped
                    worst = max(worst, 0 if clean else 1)
        return worst

    try:
        code = asyncio.run(run())
    except BrokerUnavailable as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _print_report(console: Console, file: Path, result: ImportResult,
                  written: WriteReport) -> None:
    report = result.report
    counts = report.counts
    entities = counts.get("entities", 0)
    ok = written.ok and not report.skipped
    colour = "green" if ok else "yellow"
    console.print(
        f"[{colour}]{escape(file.name)}: {result.spec_id} from {escape(result.producer_id)}: "
        f"{counts.get('imported', 0)} of {counts.get('lines', 0)} lines imported into "
        f"{entities} {result.entity_type} {'entity' if entities == 1 else 'entities'}; "
        f"{written.instances} values written"
        + (f", {written.already_recorded} already recorded" if written.already_recorded
           else "") + f".[/{colour}]", highlight=False)
    if report.repairs:
        table = Table("times", "repaired", title="Repairs")
        for message, times in report.summary()[:SHOWN]:
            table.add_row(str(times), escape(message))
        console.print(table)
    for _, message in report.warnings[:SHOWN]:
        console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)
    if report.skipped:
        table = Table("line", "left out because", title="Skipped")
        for line, reason in report.skipped[:SHOWN]:
            table.add_row("—" if line is None else str(line), escape(reason))
        console.print(table)
        if len(report.skipped) > SHOWN:
            console.print(f"… and {len(report.skipped) - SHOWN} more.")
    for failure in written.broker.failed[:SHOWN]:
        console.print(escape(f"refused by the broker: {failure.entity_id}: {failure.title}: "
                             f"{failure.detail}"), highlight=False)


def _moment(text: str, zone_text: str, option: str) -> datetime:
    from sinergia.adapters.urbandataset.timezone import parse_time_zone

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date and time",
                                 param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=parse_time_zone(zone_text))
    return moment


def export_urbandataset_command(*, entity_type: str | None = TYPE_OPTION,
                                start: str = FROM_OPTION, end: str = TO_OPTION,
                                spec_id: str | None = SPEC_OPTION,
                                producer_id: str = EXPORT_PRODUCER_OPTION,
                                time_zone: str = ZONE_OPTION, out: Path | None = OUT_OPTION,
                                url: str = URL_OPTION, database: str | None = DATABASE_OPTION,
                                tenant: str = TENANT_OPTION) -> None:
    """Export the history of an entity type over a period as one UrbanDataset 2.0 document,
    valid against ENEA's schema.

    Exit status: 0 written, 1 nothing was observed in the period (nothing written), 2 bad
    options or the broker could not be reached."""
    from sinergia.adapters.broker_client import BrokerUnavailable, QueryRefused
    from sinergia.adapters.cli import open_broker
    from sinergia.adapters.urbandataset import EmptyExport, validate
    from sinergia.adapters.urbandataset.pipeline import (
        export_history,
        spec_ids_for_type,
        type_for_spec,
    )
    from sinergia.adapters.urbandataset.timezone import format_time_zone, parse_time_zone

    errors = Console(stderr=True)
    try:
        format_time_zone(parse_time_zone(time_zone))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--time-zone") from None
    period = (_moment(start, time_zone, "--from"), _moment(end, time_zone, "--to"))
    if period[1] <= period[0]:
        raise typer.BadParameter("the end of the period must be after its start",
                                 param_hint="--to")
    if spec_id is None:
        if entity_type is None:
            raise typer.BadParameter("give --type, --spec-id or both", param_hint="--type")
        candidates = spec_ids_for_type(entity_type)
        if len(candidates) > 1:
            raise typer.BadParameter(f"{entity_type} comes from several specifications "
                                     f"({', '.join(candidates)}): choose one with --spec-id",
                                     param_hint="--spec-id")
        spec_id = candidates[0]
    chosen_type = entity_type or type_for_spec(spec_id)

    async def run() -> dict[str, Any]:
        async with open_broker(url, database) as broker:
            return await export_history(broker, entity_type=chosen_type, spec_id=spec_id,
                                        start=period[0], end=period[1],
                                        producer_id=producer_id, time_zone=time_zone,
                                        tenant=tenant)

    try:
        document = asyncio.run(run())
    except EmptyExport as exc:
        errors.print(f"[yellow]{escape(str(exc))}; nothing written.[/yellow]", highlight=False)
        raise typer.Exit(1) from None
    except (BrokerUnavailable, QueryRefused, ValueError) as exc:
        errors.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    problems = validate(document)
    if problems:  # never expected: export writes valid documents; refuse to pass one on
        errors.print("[red]the exported document does not validate:[/red]\n"
                     + escape("\n".join(problems[:SHOWN])), highlight=False)
        raise typer.Exit(2)
    import orjson

    text = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    lines = len(document["UrbanDataset"]["values"]["line"])
    if out is None:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    else:
        out.write_bytes(text)
    errors.print(f"[green]{spec_id}: {lines} lines of {chosen_type} written"
                 f"{f' to {escape(str(out))}' if out else ''}.[/green]", highlight=False)
