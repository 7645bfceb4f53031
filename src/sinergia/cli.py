"""The ``sinergia`` command line. The flags of ``serve`` are generated from the settings table,
so a new setting is a flag, an environment variable and a documented line at once."""

from __future__ import annotations

import asyncio
import inspect
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sinergia import __version__
from sinergia.adapters.cli import export_app, import_app
from sinergia.settings import (
    BY_NAME,
    SECRET_SETTINGS,
    SETTINGS,
    Setting,
    load_settings,
    markdown_table,
)

app = typer.Typer(
    help="Sinergia — an open-source Smart City Platform (NGSI-LD context broker).",
    no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
console = Console()


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"sinergia {__version__}")


@app.command("settings")
def show_settings(
    markdown: bool = typer.Option(False, "--markdown", help="Print the docs table (Markdown)."),
) -> None:
    """List every setting with its flag, environment variable, current value and meaning."""
    if markdown:
        print(markdown_table())
        return
    current = load_settings()
    table = Table(title="Sinergia settings")
    for column in ("flag", "environment variable", "value", "meaning"):
        table.add_column(column)
    for s in SETTINGS:
        value = getattr(current, s.name)
        shown = "'********'" if s.name in SECRET_SETTINGS and value else repr(value)
        table.add_row(", ".join((s.flag, *s.aliases)), s.env, shown, s.help)
    console.print(table)


def _help(setting: Setting) -> str:
    # Parentheses, not brackets: typer renders help as rich markup, where [..] is a style tag.
    return f"{setting.help} (env: {setting.env}; default: {setting.default!r})"


def _setting_option(name: str) -> Any:
    """The option of one setting, as ``serve`` has it: None when not given, so that the
    environment variable and then the default apply."""
    setting = BY_NAME[name]
    return typer.Option(None, setting.flag, help=_help(setting))


@app.command()
def demo(
    *,
    port: int | None = _setting_option("port"),
    host: str | None = _setting_option("host"),
    database: Path | None = typer.Option(
        None, "--database", help="SQLite file for the demo (default: sinergia-demo.db, "
        "recreated at each start). A file named here must not exist yet, unless --fresh."),
    fresh: bool = typer.Option(False, "--fresh",
                               help="Delete the --database file if it exists."),
    speed: float = typer.Option(1.0, "--speed", min=0.01, max=10_080.0,
                                help="Simulated minutes per real second."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation: the same seed and "
                             "--start give the same data."),
    start: str | None = typer.Option(None, "--start", help="Simulated start, ISO 8601 "
                                     "(Milan time unless an offset is given); default: now."),
) -> None:
    """Start the demo city: a fresh database, the broker and its apps, Milan loaded through the
    API, and the simulated city (lighting, traffic, bikes, parking, air, weather, waste,
    meters) feeding it through MQTT, NGSI-LD and the UrbanDataset gateway.

    Milan's real geography comes from the Comune di Milano open data (CC-BY 4.0)."""
    from sinergia.sim.clock import parse_start
    from sinergia.sim.demo import DEFAULT_DATABASE, SimulationOptions, run_demo

    settings = load_settings(host=host, port=port)
    try:
        simulation = SimulationOptions(speed, seed, parse_start(start) if start else None)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date-time: {start!r}",
                                 param_hint="--start") from None
    try:
        # The default file is the demo's own and is recreated at every start; a file the
        # user named is deleted only when asked to.
        asyncio.run(run_demo(settings, database or DEFAULT_DATABASE, console,
                             overwrite=fresh or database is None, simulation=simulation))
    except FileExistsError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("Stopped.")


@db_app.command("upgrade")
def db_upgrade(
    database_url: str = typer.Option(None, "--database-url", "--database",
                                     help="Database URL to upgrade."),
) -> None:
    """Create the schema or migrate it to the latest version."""
    from sinergia.storage.base import open_store

    settings = load_settings(database_url=database_url)

    async def run() -> None:
        # every pending migration, also those serve would refuse to run while serving
        store = open_store(settings.database_url, migrate="all")
        await store.open()
        await store.close()

    asyncio.run(run())
    console.print(f"[green]Schema of {settings.database_url} is up to date.[/green]")


def _serve_parameter(setting: Setting) -> inspect.Parameter:
    help_text = _help(setting)
    if setting.type is bool:
        name = setting.flag[2:]
        option = typer.Option(None, f"--{name}/--no-{name}", help=help_text)
        annotation: Any = bool | None
    else:
        option = typer.Option(None, setting.flag, *setting.aliases, help=help_text)
        annotation = {int: int, float: float}.get(setting.type, str) | None
    return inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=annotation)


def _serve(**values: Any) -> None:
    import uvicorn

    overrides = {k: v for k, v in values.items() if v is not None}
    settings = load_settings(**{k: _coerce(k, v) for k, v in overrides.items()})
    # Workers are separate processes: hand them the settings through the environment.
    for setting in SETTINGS:
        if setting.name in overrides:
            os.environ[setting.env] = str(overrides[setting.name])
    console.print(f"Sinergia {__version__} on http://{settings.host}:{settings.port}/ "
                  f"(docs at /docs), storage {settings.database_url}, "
                  f"{settings.workers} worker(s)")
    uvicorn.run("sinergia.api.asgi:app_factory", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level=settings.log_level,
                access_log=False, proxy_headers=False)


def _coerce(name: str, value: Any) -> Any:
    setting = next(s for s in SETTINGS if s.name == name)
    return setting.parse(value) if setting.type is dict and isinstance(value, str) else value


# The flags of `serve` are the settings table: typer reads this generated signature.
_serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_serve_parameter(s) for s in SETTINGS])
_serve.__doc__ = "Run the NGSI-LD broker (HTTP API on --host:--port, default 127.0.0.1:1026)."
app.command("serve")(_serve)


def main() -> None:
    app(prog_name="sinergia")


if __name__ == "__main__":
    main()
