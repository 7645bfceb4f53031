"""``sinergia demo`` runs the simulated city: its settings, its loading order, and — end to end,
as a real process — every vertical reporting through its door while the lighting app dims."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from sinergia.cli import app
from sinergia.settings import Settings
from sinergia.sim import demo as demo_module
from sinergia.sim.demo import STATUS_PATH, DemoCity, SimulationOptions, demo_settings
from sinergia.sim.doors import NgsiLdDoor
from sinergia.sim.verticals import city_verticals
from sinergia.sim.verticals.base import DoorKind

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_demo_runs_an_embedded_broker_on_a_free_port_and_a_gateway_user() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        setup = demo_settings(Settings(mqtt_embedded_port=busy))
    assert setup.settings.mqtt_embedded_broker
    assert setup.mqtt is not None and setup.mqtt.port == setup.settings.mqtt_embedded_port
    assert setup.mqtt.port != busy and setup.mqtt.host == "127.0.0.1"
    assert setup.settings.scps_username and setup.settings.scps_password
    assert setup.password_generated


def test_the_demo_publishes_to_the_configured_broker_and_keeps_a_given_password() -> None:
    setup = demo_settings(Settings(mqtt_url="mqtts://devices:pw@broker.example:8884",
                                   scps_password="chosen"))
    assert not setup.settings.mqtt_embedded_broker
    assert setup.mqtt is not None
    assert (setup.mqtt.host, setup.mqtt.port, setup.mqtt.tls) == ("broker.example", 8884, True)
    assert (setup.mqtt.username, setup.mqtt.password) == ("devices", "pw")
    assert setup.settings.scps_password == "chosen" and not setup.password_generated


def test_without_amqtt_the_devices_readings_go_through_ngsi_ld(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "amqtt" else real(name, *a))
    setup = demo_settings(Settings())
    assert setup.mqtt is None and not setup.settings.mqtt_embedded_broker
    city = DemoCity(setup, SimulationOptions(), [], app=None)  # type: ignore[arg-type]
    ngsi = NgsiLdDoor(httpx.AsyncClient(), "http://example.org/context.jsonld")
    doors = city._doors(httpx.AsyncClient(), ngsi, None)
    assert doors[DoorKind.MQTT] is ngsi


def test_live_data_comes_first_and_the_bulk_last() -> None:
    setup = demo_settings(Settings())
    city = DemoCity(setup, SimulationOptions(), city_verticals(0), app=None)  # type: ignore[arg-type]
    first_entities, first_verticals = city.first_stage()
    assert {e["type"] for e in first_entities} == {"BikeHireDockingStation", "OffStreetParking"}
    assert {v.name for v in first_verticals} == {"bikes", "parking"}
    later = city.later_stages()
    assert {e["type"] for e in later[-1][0]} == {"BikeLane"}
    with_lamps = next(names for entities, verticals in later
                      if "lighting" in (names := [v.name for v in verticals]))
    assert with_lamps == ["lighting", "meters"]  # the meters read the lamps' dimming
    stages = [(first_entities, first_verticals), *later]
    joined = [v.name for _, verticals in stages for v in verticals]
    assert sorted(joined) == sorted(v.name for v in city.verticals)
    ids = [e["id"] for entities, _ in stages for e in entities]
    assert len(ids) == len(set(ids)) > 7_000


def test_the_simulation_options_reach_the_demo(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[SimulationOptions] = []

    async def run_demo(settings: Settings, database: Path, console: Any, *, overwrite: bool,
                       simulation: SimulationOptions) -> None:
        seen.append(simulation)

    monkeypatch.setattr(demo_module, "run_demo", run_demo)
    database = str(tmp_path / "d.db")
    result = CliRunner().invoke(app, ["demo", "--database", database, "--speed", "60",
                                      "--seed", "7", "--start", "2024-06-03T20:00"])
    assert result.exit_code == 0, result.output
    assert seen == [SimulationOptions(60.0, 7, datetime(2024, 6, 3, 18, 0, tzinfo=UTC))]
    wrong = CliRunner().invoke(app, ["demo", "--database", database, "--start", "tomorrow"])
    assert wrong.exit_code == 2 and "--start" in wrong.output
    slow = CliRunner().invoke(app, ["demo", "--database", database, "--speed", "0"])
    assert slow.exit_code == 2
    assert len(seen) == 1


def eventually(check: Callable[[], T], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {result!r})")
        time.sleep(0.2)


@pytest.mark.slow
def test_the_demo_city_comes_alive_through_every_door(tmp_path: Path) -> None:
    port = free_port()
    command = [str(Path(sys.executable).with_name("sinergia")), "demo", "--port", str(port),
               "--database", str(tmp_path / "demo.db"), "--speed", "30", "--seed", "1",
               "--start", "2024-06-03T21:20"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINERGIA_")}
    output = tmp_path / "demo.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def status() -> dict[str, Any] | None:
        try:
            answer = httpx.get(base + STATUS_PATH, timeout=5.0)
        except httpx.HTTPError:
            return None
        found: dict[str, Any] = answer.json()
        verticals = found.get("verticals", {})
        everyone = len(verticals) == 9 and all(v["readings"] > 0 for v in verticals.values())
        return found if everyone else None

    try:
        found = eventually(status, "every vertical reporting", timeout=180.0)
        assert found["seed"] == 1 and found["speed"] == 30.0
        assert set(found["doors"]) == {"ngsi-ld", "mqtt", "urbandataset"}
        assert found["doorsUsed"]["mqtt"] == "MqttDoor"
        for name, door in found["doors"].items():
            assert door["accepted"] > 0 and door["refused"] == 0, (name, door)
        lighting = eventually(
            lambda: (s := httpx.get(base + "/apps/lighting/status").json()).get("lamps") and s,
            "the lighting app managing the lamps", timeout=60.0)
        assert lighting["lamps"] > 3_000
    except AssertionError:
        print(output.read_text(errors="replace")[-5000:])
        raise
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Live" in output.read_text(errors="replace")
