"""``sinergia demo``: a fresh embedded database, the broker, and the city of Milan loaded into it
through the same door any client uses (the NGSI-LD HTTP API, with a hosted @context)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sinergia.api.app import create_app
from sinergia.settings import Settings
from sinergia.sim.milano import MILANO_CONTEXT_DOCUMENT, city_entities

BATCH = 500
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


def fresh_database(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


async def load_city(base_url: str, console: Console) -> tuple[int, str]:
    """Host the Milan @context, then upsert the city's entities in batches. Returns the
    number of entities loaded and the Link header naming the context; raises if the broker
    reports any error."""
    entities = city_entities()
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        hosted = await client.post("/ngsi-ld/v1/jsonldContexts", json=MILANO_CONTEXT_DOCUMENT)
        hosted.raise_for_status()
        link = f'<{hosted.headers["Location"]}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        headers = {"Link": link}
        with Progress(TextColumn("Loading Milan"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:
            task = progress.add_task("load", total=len(entities))
            for start in range(0, len(entities), BATCH):
                chunk = entities[start:start + BATCH]
                response = await client.post("/ngsi-ld/v1/entityOperations/upsert",
                                             json=chunk, headers=headers)
                if response.status_code not in (201, 204):
                    raise RuntimeError(f"loading failed ({response.status_code}): "
                                       f"{response.text[:500]}")
                progress.advance(task, len(chunk))
    return len(entities), link


async def run_demo(settings: Settings, database: Path, console: Console) -> None:
    url = fresh_database(database)
    app = create_app(settings.replace(database_url=url))
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                           log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():  # failed to start (port taken…): surface the error
            await serving
            return
        await asyncio.sleep(0.05)
    base = f"http://{settings.host}:{settings.port}"
    try:
        count, link = await load_city(base, console)
    except Exception:
        server.should_exit = True
        await serving
        raise
    _welcome(console, base, count, link)
    await serving


def _welcome(console: Console, base: str, count: int, link: str) -> None:
    examples: list[tuple[str, Any]] = [
        ("Bike-sharing stations near the Duomo (500 m)",
         "/ngsi-ld/v1/entities?type=BikeHireDockingStation&georel=near;maxDistance==500"
         "&geometry=Point&coordinates=[9.1916,45.4641]&options=keyValues"),
        ("Car parks with more than 500 spaces",
         "/ngsi-ld/v1/entities?type=OffStreetParking&q=totalSpotNumber>500&options=keyValues"),
        ("Everything in Municipio 1 (count only)",
         "/ngsi-ld/v1/entities?type=BikeLane&scopeQ=/Milano/Municipio1&count=true&limit=0"),
    ]
    console.print(f"\n[bold green]Milan is live:[/bold green] {count} entities on {base}")
    console.print(f"  API docs:   {base}/docs")
    console.print("  Try (the Link header names the city's hosted @context):")
    for title, path in examples:
        console.print(f"  {title}:\n    curl -g -H '{link}' \\\n      '{base}{path}'",
                      soft_wrap=True, highlight=False)
    console.print("Press Ctrl+C to stop.")
