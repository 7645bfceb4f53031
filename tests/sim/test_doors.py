"""Each door against the real server, in process (lifespan and all): what goes in through
NGSI-LD, MQTT and the UrbanDataset gateway comes out of the NGSI-LD API, with the city's
vocabulary, units and observation times."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from sinergia.api.app import create_app
from sinergia.settings import Settings
from sinergia.sim.clock import Chance
from sinergia.sim.doors import MqttDoor, NgsiLdDoor, Sent, UrbanDatasetDoor, link_header
from sinergia.sim.verticals.base import Reading
from sinergia.sim.verticals.lighting import Lighting, milan_lighting
from sinergia.sim.verticals.meters import SPEC_ID, Meters
from sinergia.sim.verticals.traffic import Traffic
from sinergia.sim.vocabulary import CITY_CONTEXT_DOCUMENT

pytestmark = pytest.mark.anyio
T = TypeVar("T")
TRANSPORT = "https://smartdatamodels.org/dataModel.Transportation/"
AT = datetime(2024, 6, 3, 6, 45, tzinfo=UTC)
USER, PASSWORD = "meters", "s3cret-for-tests"
RESOURCE = f"SCP-015146_TestMeters-1_{SPEC_ID}_20240603000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {result!r})")
        await anyio.sleep(0.02)


@asynccontextmanager
async def server(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, str]]:
    """The real app, an ASGI client on it, and the URL of the city's hosted @context."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        hosted = await http.post("/ngsi-ld/v1/jsonldContexts", json=CITY_CONTEXT_DOCUMENT)
        assert hosted.status_code == 201, hosted.text
        yield app, http, hosted.headers["location"]


async def entity(http: httpx.AsyncClient, entity_id: str, context_url: str | None
                 ) -> dict[str, Any]:
    headers = {"Link": link_header(context_url)} if context_url else {}
    response = await http.get(f"/ngsi-ld/v1/entities/{entity_id}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_ngsi_ld_door_merges_readings_into_the_entities(settings: Settings) -> None:
    async with server(settings) as (_, http, context_url):
        door = NgsiLdDoor(http, context_url)
        created: list[int] = []
        await door.create([{"id": "urn:ngsi-ld:OffStreetParking:T1", "type": "OffStreetParking",
                            "totalSpotNumber": {"type": "Property", "value": 100}}],
                          created.append)
        assert created == [1]
        sent = await door.send([
            Reading("OffStreetParking", "T1", AT, {"occupiedSpotNumber": 40}),
            Reading("OffStreetParking", "T1", AT, {"occupancy": 0.4, "status": ["open"]}),
            Reading("WeatherObserved", "W1", AT, {"temperature": 21.5}, {"temperature": "CEL"}),
        ])
        assert sent == Sent(2)
        park = await entity(http, "urn:ngsi-ld:OffStreetParking:T1", context_url)
        assert park["totalSpotNumber"]["value"] == 100  # merged, not replaced
        assert park["occupiedSpotNumber"] == {"type": "Property", "value": 40,
                                              "observedAt": "2024-06-03T06:45:00.000Z"}
        assert park["occupancy"]["value"] == 0.4
        weather = await entity(http, "urn:ngsi-ld:WeatherObserved:W1", context_url)
        assert weather["temperature"]["unitCode"] == "CEL"
        found = await door.query("OffStreetParking", ["occupancy"])
        assert [e["id"] for e in found] == ["urn:ngsi-ld:OffStreetParking:T1"]


async def test_ngsi_ld_door_reports_what_the_broker_refuses(settings: Settings) -> None:
    async with server(settings) as (_, http, context_url):
        door = NgsiLdDoor(http, context_url)
        sent = await door.send([Reading("OffStreetParking", "T1", AT, {"bad name": 1}),
                                Reading("OffStreetParking", "T2", AT, {"occupancy": 0.1})])
        assert sent.accepted == 1 and sent.refused == 1
        assert sent.error is not None and "T1" in sent.error
        with pytest.raises(RuntimeError, match="creating entities failed"):
            await door.create([{"id": "not a uri", "type": "Thing"}])


async def test_mqtt_door_devices_update_their_entities(settings: Settings) -> None:
    port = free_port()
    prefix = f"sinergia-test/{uuid.uuid4().hex[:12]}"
    settings = settings.replace(mqtt_embedded_broker=True, mqtt_embedded_port=port,
                                mqtt_topic_prefix=prefix, mqtt_batch_ms=5.0)
    traffic = Traffic(Chance(0))
    traffic.sensors = traffic.sensors[:3]
    async with server(settings) as (_, http, context_url):
        ngsi = NgsiLdDoor(http, context_url)
        await ngsi.create(traffic.inventory(AT))
        await ngsi.provision(traffic.devices(context_url))

        async def subscribed() -> bool:
            status = (await http.get("/sinergia/v1/mqtt/status")).json()
            return bool(status["connected"])

        await eventually(subscribed, "the ingester subscribed")
        door = MqttDoor("127.0.0.1", port, prefix=prefix)
        try:
            readings = traffic.readings(AT)
            assert await door.send(readings) == Sent(3)
        finally:
            await door.close()
        first = readings[0]

        async def counted() -> dict[str, Any] | None:
            found = await entity(http, first.entity_id, None)
            return found if TRANSPORT + "intensity" in found else None

        # Read without the city's @context: the device's provisioned context gave the payload's
        # names their Smart Data Models IRIs.
        raw = await eventually(counted, "the count written")
        assert raw[TRANSPORT + "intensity"]["value"] == first.values["intensity"]
        assert raw[TRANSPORT + "intensity"]["observedAt"] == "2024-06-03T06:45:00.000Z"
        assert raw[TRANSPORT + "averageVehicleSpeed"]["unitCode"] == "KMH"
        short = await entity(http, first.entity_id, context_url)
        assert short["dateObservedTo"]["value"] == {"@type": "DateTime",
                                                    "@value": "2024-06-03T06:45:00Z"}
        assert short["name"]["value"] == traffic.sensors[0].name  # the inventory's, kept


async def test_mqtt_door_without_a_broker_reports_instead_of_raising() -> None:
    door = MqttDoor("127.0.0.1", free_port())
    reading = Reading("TrafficFlowObserved", "X", AT, {"intensity": 1})
    sent = await door.send([reading])
    assert sent.accepted == 0 and sent.refused == 1
    assert sent.error is not None and "MQTT broker" in sent.error


def meter_readings(at: datetime) -> list[Reading]:
    """The readings of the first three cabinets' meters."""
    layout = milan_lighting()
    lighting = Lighting(Chance(0), replace(layout, cabinets=layout.cabinets[:3]))
    return Meters(Chance(0), lighting).readings(at)


async def test_urbandataset_door_pushes_meter_readings(settings: Settings) -> None:
    settings = settings.replace(scps_username=USER, scps_password=PASSWORD)
    async with server(settings) as (_, http, context_url):
        door = UrbanDatasetDoor(http, username=USER, password=PASSWORD, resource_id=RESOURCE,
                                spec_id=SPEC_ID, producer_id="TestMeters")
        readings = meter_readings(AT)
        assert await door.send(readings) == Sent(3)
        door._token = "forgotten-by-the-server"  # as after a restart: log in again
        later = meter_readings(datetime(2024, 6, 3, 7, 0, tzinfo=UTC))
        assert await door.send(later) == Sent(3)
        pod = readings[0].values["podId"]
        meter = await entity(
            http, f"urn:ngsi-ld:ThreePhaseAcMeasurement:TestMeters:CounterReading:{pod}",
            context_url)
        assert meter["electricPanelId"]["value"] == readings[0].values["electricPanelId"]
        energy = meter["totalActiveEnergyImport"]
        assert energy["unitCode"] == "KWH"
        assert energy["value"] == later[0].values["totalActiveEnergyImport"]
        history = await http.get(
            f"/ngsi-ld/v1/temporal/entities/{meter['id']}",
            params={"attrs": "totalActiveEnergyImport"},
            headers={"Link": link_header(context_url)})
        assert history.status_code == 200, history.text
        assert len(history.json()["totalActiveEnergyImport"]) == 2


async def test_urbandataset_door_reports_a_refused_login(settings: Settings) -> None:
    settings = settings.replace(scps_username=USER, scps_password=PASSWORD)
    async with server(settings) as (_, http, _context):
        door = UrbanDatasetDoor(http, username=USER, password="wrong", resource_id=RESOURCE,
                                spec_id=SPEC_ID, producer_id="TestMeters")
        sent = await door.send(meter_readings(AT))
        assert sent.accepted == 0 and sent.refused == 3
        assert sent.error is not None and "login refused" in sent.error
