"""``sinergia demo``: a fresh embedded database, the broker with its apps, the city of Milan
loaded into it and the simulated city running on it — everything through the doors any client
uses (the NGSI-LD HTTP API with a hosted @context, MQTT, the UrbanDataset gateway).

Loading is staged so that live data flows as early as possible: the bike stations and car
parks first, and the simulator starts with the verticals that update them
(:meth:`DemoCity.first_stage`); each other vertical joins as soon as its own things (and MQTT
devices) are loaded; the bike lanes, many and static, come last
(:meth:`DemoCity.later_stages`). The lighting app starts once its lamps exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import anyio
import httpx
import uvicorn
from anyio.abc import TaskGroup
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sinergia.adapters.mqtt.ingest import IngestConfig
from sinergia.adapters.mqtt.service import ingest_config
from sinergia.api.app import create_app
from sinergia.apps.lighting import start_lighting
from sinergia.settings import Settings
from sinergia.sim.clock import SimClock, default_start, iso
from sinergia.sim.doors import Door, MqttDoor, NgsiLdDoor, UrbanDatasetDoor, link_header
from sinergia.sim.milano import city_entities
from sinergia.sim.runner import Simulator
from sinergia.sim.verticals import city_verticals
from sinergia.sim.verticals.base import DoorKind, Vertical
from sinergia.sim.verticals.meters import SPEC_ID
from sinergia.sim.vocabulary import CITY_CONTEXT_DOCUMENT

DEFAULT_DATABASE = Path("sinergia-demo.db")
STATUS_PATH: Final = "/sinergia/v1/demo/status"
METER_USER: Final = "milano-meters"
METER_PRODUCER: Final = "MilanoLightingMeters"
# Milan's places that verticals without entities of their own update, and those verticals:
# loaded and started first.
UPDATED_TYPES: Final = frozenset({"BikeHireDockingStation", "OffStreetParking"})
FIRST_VERTICALS: Final = frozenset({"bikes", "parking"})
# Verticals that read another's entities join with it: the meters read the lamps' dimming.
JOINS_WITH: Final = {"meters": "lighting"}
# Loaded last: many, and nothing live depends on them.
LATE_TYPES: Final = frozenset({"BikeLane"})


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    speed: float = 1.0          # simulated minutes per real second
    seed: int = 0
    start: datetime | None = None  # None: now


def fresh_database(path: Path, *, overwrite: bool) -> str:
    """The URL of a new, empty SQLite database at ``path``. A file already there is deleted
    (with its -wal/-shm companions) only when ``overwrite`` is set: FileExistsError
    otherwise, so the demo never wipes data it was pointed at by mistake."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; the demo starts from an empty database "
                              "and would delete it (add --fresh to allow that, or name "
                              "another file)")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _local_address(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((_local_address(host), port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((_local_address(host), 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class DemoSetup:
    settings: Settings
    mqtt: IngestConfig | None  # the broker the devices publish to; None: through NGSI-LD
    mqtt_note: str             # which broker, for the welcome
    password_generated: bool   # the gateway password was made up for this run


def demo_settings(settings: Settings) -> DemoSetup:
    """The demo's settings: the UrbanDataset gateway with a user for the meters (a password
    made up for this run unless one is set), and an MQTT broker the simulated devices can
    publish to — the one of ``mqtt_url`` if set (the devices connect to it as the ingester
    does), else the embedded one (on another port if its port is taken), none if amqtt is
    missing."""
    generated = not settings.scps_password
    settings = settings.replace(
        scps_username=settings.scps_username or METER_USER,
        scps_password=settings.scps_password or secrets.token_urlsafe(12))
    if settings.mqtt_url:
        return DemoSetup(settings, ingest_config(settings), f"MQTT broker {settings.mqtt_url}",
                         generated)
    if importlib.util.find_spec("amqtt") is None:
        return DemoSetup(settings, None, "", generated)
    port = settings.mqtt_embedded_port
    if not _port_free(settings.host, port):
        port = _free_port(settings.host)
    settings = settings.replace(mqtt_embedded_broker=True, mqtt_embedded_port=port)
    return DemoSetup(settings, ingest_config(settings), f"embedded MQTT broker on port {port}",
                     generated)


Stage = tuple[list[dict[str, Any]], list[Vertical]]  # entities to create, verticals then ready


class DemoCity:
    """What ``sinergia demo`` runs beside the server: the loading, then the simulator."""

    def __init__(self, setup: DemoSetup, options: SimulationOptions,
                 verticals: Sequence[Vertical], app: Starlette) -> None:
        self.app = app
        self.setup = setup
        self.settings = setup.settings
        self.options = options
        self.mqtt = setup.mqtt
        self.verticals = list(verticals)
        self.start = options.start or default_start()
        self.simulator: Simulator | None = None
        self.entities = 0
        self.link = ""
        self.live_after: float | None = None
        self._places: list[dict[str, Any]] = []

    async def status(self, request: Request) -> Response:
        if self.simulator is None:
            return JSONResponse({"running": False, "entities": self.entities})
        return JSONResponse({"running": True, "entities": self.entities,
                             **self.simulator.status()})

    def _doors(self, client: httpx.AsyncClient, ngsi: NgsiLdDoor,
               mqtt: MqttDoor | None) -> dict[DoorKind, Door]:
        started = self.start.strftime("%Y%m%d%H%M%S")
        ud = UrbanDatasetDoor(
            client, username=self.settings.scps_username,
            password=self.settings.scps_password, spec_id=SPEC_ID,
            resource_id=f"SCP-015146_{METER_PRODUCER}-1_{SPEC_ID}_{started}",
            producer_id=METER_PRODUCER)
        return {DoorKind.NGSI_LD: ngsi, DoorKind.MQTT: mqtt or ngsi,
                DoorKind.URBANDATASET: ud}

    def first_stage(self) -> Stage:
        """The bike stations and car parks, and the verticals that update them: what lets live
        data flow soonest (cheap to compute)."""
        self._places = city_entities()
        return ([e for e in self._places if e["type"] in UPDATED_TYPES],
                [v for v in self.verticals if v.name in FIRST_VERTICALS])

    def later_stages(self) -> list[Stage]:
        """The rest, in loading order: Milan's other places, then each vertical's own things
        (smallest first; a vertical that reads another's joins with it), the bike lanes last."""
        places = self._places or city_entities()
        rest = [e for e in places if e["type"] not in UPDATED_TYPES | LATE_TYPES]
        lanes = [e for e in places if e["type"] in LATE_TYPES]
        stages: list[Stage] = [(rest, [])]
        later = [v for v in self.verticals if v.name not in FIRST_VERTICALS]
        followers = {v.name: v for v in later if v.name in JOINS_WITH}
        own = [(v.inventory(self.start), v) for v in later if v.name not in followers]
        for entities, vertical in sorted(own, key=lambda item: len(item[0])):
            stages.append((entities, [vertical, *(f for f in followers.values()
                                                   if JOINS_WITH[f.name] == vertical.name)]))
        stages.append((lanes, []))
        return stages

    async def run(self, base: str, console: Console, began: float, first: Stage) -> None:
        """Load the city stage by stage, each vertical joining the running simulator as soon
        as its things exist; then run until cancelled."""
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as client, \
                contextlib.AsyncExitStack() as stack, anyio.create_task_group() as group:
            hosted = await client.post("/ngsi-ld/v1/jsonldContexts", json=CITY_CONTEXT_DOCUMENT)
            hosted.raise_for_status()
            context_url = hosted.headers["Location"]
            self.link = link_header(context_url)
            ngsi = NgsiLdDoor(client, context_url)
            mqtt = None
            if self.mqtt is not None:
                mqtt = MqttDoor(self.mqtt.host, self.mqtt.port, prefix=self.mqtt.prefix,
                                username=self.mqtt.username, password=self.mqtt.password,
                                tls=self.mqtt.tls, tls_ca=self.mqtt.tls_ca)
                stack.push_async_callback(mqtt.close)
            simulator = Simulator(SimClock(self.start, self.options.speed), [],
                                  self._doors(client, ngsi, mqtt), ngsi, seed=self.options.seed)
            self.simulator = simulator
            with Progress(TextColumn("Loading Milan"), BarColumn(), MofNCompleteColumn(),
                          console=console) as progress:
                task = progress.add_task("load", total=len(self._places))

                async def load(stage: Stage) -> None:
                    entities, verticals = stage
                    await ngsi.create(entities, lambda count: progress.advance(task, count))
                    self.entities += len(entities)
                    devices = [d for v in verticals for d in v.devices(context_url)]
                    if devices and mqtt is not None:
                        await ngsi.provision(devices)
                    for vertical in verticals:
                        simulator.add(vertical)
                        if vertical.name == "lighting":
                            self._start_lighting_app(group)

                await load(first)
                group.start_soon(self._announce_live, progress, base, began)
                group.start_soon(simulator.run)
                later = await anyio.to_thread.run_sync(self.later_stages)
                # the places are counted already; the verticals' own things are new
                own = sum(len(entities) for entities, verticals in later if verticals)
                progress.update(task, total=len(self._places) + own)
                for stage in later:
                    await load(stage)
            _welcome(console, base, self)

    def _start_lighting_app(self, group: TaskGroup) -> None:
        """The adaptive-lighting app, started once its lamps exist: started with the server,
        it would read the whole installation again at every lamp created. (Unless the
        settings already run it inside the server.)"""
        if self.settings.lighting_app:
            return
        lighting = start_lighting(self.app.state.runtime)
        self.app.router.routes.append(lighting.mount)
        group.start_soon(lighting.run, self.app)

    async def _announce_live(self, progress: Progress, base: str, began: float) -> None:
        assert self.simulator is not None
        await self.simulator.live.wait()
        self.live_after = time.monotonic() - began
        progress.console.print(f"[bold green]Live[/bold green] after {self.live_after:.1f} s: "
                               f"dashboard at {base}/dashboard", highlight=False)


async def run_demo(settings: Settings, database: Path, console: Console, *,
                   overwrite: bool, simulation: SimulationOptions | None = None) -> None:
    began = time.monotonic()
    _show_warnings(console)
    options = simulation or SimulationOptions()
    url = fresh_database(database, overwrite=overwrite)
    setup = demo_settings(settings.replace(database_url=url))
    settings = setup.settings
    app = create_app(settings)
    server = _DemoServer(uvicorn.Config(app, host=settings.host, port=settings.port,
                                        log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    # Laying out the city's lamps, bins and sensors takes a moment: meanwhile the server starts.
    verticals = await anyio.to_thread.run_sync(city_verticals, options.seed)
    city = DemoCity(setup, options, verticals, app)
    first = await anyio.to_thread.run_sync(city.first_stage)
    _add_status_route(app, city)
    while not server.started:
        if serving.done():  # failed to start (port taken…): surface the error
            await serving
            return
        await asyncio.sleep(0.02)
    if setup.mqtt is None:
        console.print("amqtt is not installed: the simulated MQTT devices send their readings "
                      "through NGSI-LD instead (pip install 'sinergia[embedded-mqtt]').",
                      style="yellow")
    running = asyncio.create_task(city.run(f"http://{_local_address(settings.host)}:"
                                           f"{settings.port}", console, began, first))
    server.city = running
    done, _ = await asyncio.wait({serving, running}, return_when=asyncio.FIRST_COMPLETED)
    if running in done and not running.cancelled():  # loading failed: stop, say why
        server.should_exit = True
        await serving
        try:
            running.result()
        except BaseExceptionGroup as group:  # the city's task group: one failure, say it
            raise group.exceptions[0] from None
        return
    await serving
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


class _DemoServer(uvicorn.Server):
    """On Ctrl+C, stops the simulated city first, then the server: the devices disconnect
    from the embedded MQTT broker before it closes (a second Ctrl+C forces the exit)."""

    city: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        city = self.city
        if city is None or city.done() or self.should_exit:
            super().handle_exit(sig, frame)
            return
        city.cancel()
        city.add_done_callback(lambda _: uvicorn.Server.handle_exit(self, sig, frame))


class _EmbeddedBrokerNoise(logging.Filter):
    """Drops the embedded broker's complaints about slow acknowledgements: the ingester
    acknowledges a message only once it is committed, which under the demo's start-up load
    can take longer than amqtt's fixed 5 s; the message is written all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("amqtt"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, TimeoutError) or "PUBACK" in record.getMessage())


def _show_warnings(console: Console) -> None:
    """Warnings and errors on the demo's console (the server's own loggers included)."""
    handler = RichHandler(console=console, show_path=False, level=logging.WARNING)
    handler.addFilter(_EmbeddedBrokerNoise())
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def _add_status_route(app: Starlette, city: DemoCity) -> None:
    app.router.routes.append(Route(STATUS_PATH, city.status, methods=["GET"]))


def _welcome(console: Console, base: str, city: DemoCity) -> None:
    link = city.link
    examples: list[tuple[str, Any]] = [
        ("Bike-sharing stations near the Duomo (500 m), with their bikes",
         "/ngsi-ld/v1/entities?type=BikeHireDockingStation&georel=near;maxDistance==500"
         "&geometry=Point&coordinates=[9.1916,45.4641]&options=keyValues"
         "&attrs=name,availableBikeNumber,freeSlotNumber"),
        ("Car parks more than 90 % full",
         "/ngsi-ld/v1/entities?type=OffStreetParking&q=occupancy>0.9&options=keyValues"
         "&attrs=name,occupancy"),
        ("Street lights out of order",
         "/ngsi-ld/v1/entities?type=Streetlight&q=status!=\"ok\"&options=keyValues"
         "&attrs=status"),
    ]
    speed = city.options.speed
    console.print(f"\n[bold green]Milan is live:[/bold green] {city.entities} entities on "
                  f"{base}, simulated from {iso(city.start)} at {speed:g} simulated "
                  f"minute{'s' if speed != 1 else ''} per second (seed {city.options.seed})")
    console.print(f"  Dashboard:  {base}/dashboard")
    console.print(f"  API docs:   {base}/docs")
    console.print(f"  Simulator:  {base}{STATUS_PATH}")
    if city.mqtt is not None:
        console.print(f"  Devices publish to the {city.setup.mqtt_note}")
    shown = (city.settings.scps_password if city.setup.password_generated
             else "(the one set)")
    console.print(f"  UrbanDataset gateway: {base}/scps/UrbanDatasetGateway, user "
                  f"{city.settings.scps_username}, password {shown}", highlight=False)
    console.print("  Try (the Link header names the city's hosted @context):")
    for title, path in examples:
        console.print(f"  {title}:\n    curl -g -H '{link}' \\\n      '{base}{path}'",
                      soft_wrap=True, highlight=False)
    console.print("Press Ctrl+C to stop.")
