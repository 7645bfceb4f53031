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
from sinergia.settings import SETTINGS, Setting, load_settings, markdown_table

app = typer.Typer(
    help="Sinergia — an open-source Smart City Platform (NGSI-LD context broker).",
    no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
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
        table.add_row(s.flag, s.env, repr(getattr(current, s.name)), s.help)
    console.print(table)


@app.command()
def demo(
    port: int = typer.Option(1026, "--port", help="TCP port of the demo server."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    database: Path = typer.Option(Path("sinergia-demo.db"), "--database",
                                  help="SQLite file for the demo (recreated at each start)."),
) -> None:
    """Start the demo city: a fresh database, the broker, and Milan loaded through the API.

    Milan's real geography comes from the Comune di Milano open data (CC-BY 4.0)."""
    from sinergia.sim.demo import run_demo

    settings = load_settings(host=host, port=port)
    try:
        asyncio.run(run_demo(settings, database, console))
    except KeyboardInterrupt:
        console.print("Stopped.")


@db_app.command("upgrade")
def db_upgrade(
    database_url: str = typer.Option(None, "--database-url", help="Database URL to upgrade."),
) -> None:
    """Create the schema or migrate it to the latest version."""
    from sinergia.storage.base import open_store

    settings = load_settings(database_url=database_url)

    async def run() -> None:
        store = open_store(settings.database_url)
        await store.open()
        await store.close()

    asyncio.run(run())
    console.print(f"[green]Schema of {settings.database_url} is up to date.[/green]")


def _serve_parameter(setting: Setting) -> inspect.Parameter:
    help_text = f"{setting.help} [env: {setting.env}; default: {setting.default!r}]"
    if setting.type is bool:
        name = setting.flag[2:]
        option = typer.Option(None, f"--{name}/--no-{name}", help=help_text)
        annotation: Any = bool | None
    else:
        option = typer.Option(None, setting.flag, help=help_text)
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
