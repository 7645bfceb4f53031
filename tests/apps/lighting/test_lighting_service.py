"""The lighting app against the real broker, in process: traffic counts go in through the
NGSI-LD API, the service writes dimming levels on the Streetlight entities and energy reports
appear in the broker, with history. The last test runs the whole loop over HTTP: a real server,
the app's subscriptions, and the broker's notifications delivered to the app's endpoint."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette

from sinergia.api.app import create_app
from sinergia.apps.lighting import LightingApp
from sinergia.apps.lighting.client import BrokerApi
from sinergia.apps.lighting.demo import DemoGroup, demo_groups, demo_lighting_entities
from sinergia.apps.lighting.reports import CITY_REPORT_ID, report_id
from sinergia.apps.lighting.service import (
    TOKEN_HEADER,
    CycleResult,
    LightingConfig,
    LightingService,
)
from sinergia.apps.lighting.vocabulary import LIGHTING_CONTEXT
from sinergia.apps.lighting.web import own_url
from sinergia.settings import Settings
from sinergia.sim.traffic import TRAFFIC_CONTEXT, traffic_flow_entity

pytestmark = pytest.mark.anyio

BASE = "/ngsi-ld/v1"
NIGHT = datetime(2025, 11, 17, 22, 0, tzinfo=UTC)  # 23:00 in Milan: lamps lit, traffic falling
GROUPS = demo_groups()[:4]  # a small part of the demo city keeps the test quick
LD = {"Content-Type": "application/ld+json"}


def with_context(entities: list[dict[str, Any]], context: dict[str, str]) -> bytes:
    return orjson.dumps([{**e, "@context": context} for e in entities])


async def post_traffic(http: httpx.AsyncClient, groups: list[DemoGroup], end: datetime) -> None:
    flows = [traffic_flow_entity(g.sensor, end) for g in groups]
    answer = await http.post(f"{BASE}/entityOperations/upsert",
                             content=with_context(flows, TRAFFIC_CONTEXT), headers=LD)
    assert answer.status_code in (201, 204), answer.text


async def load_installation(http: httpx.AsyncClient) -> None:
    answer = await http.post(f"{BASE}/entityOperations/upsert", headers=LD,
                             content=with_context(demo_lighting_entities(GROUPS),
                                                  LIGHTING_CONTEXT))
    assert answer.status_code == 201, answer.text


async def get(http: httpx.AsyncClient, entity_id: str) -> dict[str, Any]:
    """An entity in key-values, with the app's short names."""
    answer = await http.post(f"{BASE}/entityOperations/query", headers=LD,
                             params={"options": "keyValues"}, content=orjson.dumps({
                                 "type": "Query", "entities": [{"id": entity_id,
                                                                "type": entity_id.split(":")[2]}],
                                 "@context": LIGHTING_CONTEXT}))
    assert answer.status_code == 200, answer.text
    (entity,) = answer.json()
    assert isinstance(entity, dict)
    return entity


@asynccontextmanager
async def broker(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The real app (lifespan and all) and an ASGI client on it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield app, http


async def test_traffic_drives_dimming_and_energy_reports(settings: Settings) -> None:
    async with broker(settings) as (_, http):
        await load_installation(http)
        await post_traffic(http, GROUPS, NIGHT)
        service = LightingService(BrokerApi(http))
        first = await service.cycle()
        assert first.at == NIGHT and first.reported
        assert len(first.changed) == 10 * len(GROUPS)  # every lamp gets its first level
        controller = service.controller
        assert controller is not None
        for group in GROUPS:
            decision = controller.status[group.entity_id].decision
            lamp = await get(http, group.lamp_id(0))
            assert lamp["illuminanceLevel"] == pytest.approx(decision.level, abs=1e-4)
            assert lamp["powerConsumption"] == pytest.approx(group.rated_w * decision.level,
                                                             abs=0.1)
        assert any(s.decision.level < 1.0 for s in controller.status.values())  # it dims

        # a quiet quarter of an hour later: energy accrued, the reports say so
        later = NIGHT + timedelta(minutes=15)
        await post_traffic(http, GROUPS, later)
        second = await service.cycle(refresh=True)  # as polling does
        assert second.at == later and second.reported
        city = await get(http, CITY_REPORT_ID)
        assert city["reportScope"] == "city" and city["lampCount"] == 10 * len(GROUPS)
        full_kwh = sum(g.rated_w * 10 for g in GROUPS) / 1000 * 0.25
        assert city["baselineEnergy"] == pytest.approx(full_kwh, rel=1e-3)
        assert 0 < city["energyConsumed"] < city["baselineEnergy"]
        assert city["energySavingPercentage"] == pytest.approx(
            100 * (1 - city["energyConsumed"] / city["baselineEnergy"]), abs=0.1)
        assert city["co2Avoided"] > 0
        group_report = await get(http, report_id(GROUPS[0].entity_id))
        assert group_report["refStreetlightGroup"] == GROUPS[0].entity_id
        assert group_report["designLightingClass"] == GROUPS[0].design.name
        assert group_report["lightingClass"] <= group_report["requiredLightingClass"]  # M1<M6
        assert group_report["trafficFlow"] >= 0
        cabinet = await get(http, report_id(GROUPS[0].cabinet_id))
        assert cabinet["reportScope"] == "cabinet"

        # the reports have a history the dashboard can chart, on the traffic's time
        history = await http.get(f"{BASE}/temporal/entities/{CITY_REPORT_ID}", params={
            "attrs": "energySavingPercentage", "options": "temporalValues"})
        assert history.status_code == 200, history.text
        series = history.json()["energySavingPercentage"]["values"]
        assert [moment for _, moment in series] == ["2025-11-17T22:00:00.000Z",
                                                    "2025-11-17T22:15:00.000Z"]

        # the same counts again change nothing and publish nothing new
        again = await service.cycle(refresh=True)
        assert again.changed == [] and not again.reported


async def test_a_manual_override_wins(settings: Settings) -> None:
    async with broker(settings) as (_, http):
        await load_installation(http)
        await post_traffic(http, GROUPS, NIGHT)
        service = LightingService(BrokerApi(http))
        await service.cycle()
        group, lamp_group = GROUPS[0], GROUPS[1]
        override = {"manualIlluminanceLevel": {"type": "Property", "value": 0.9},
                    "@context": LIGHTING_CONTEXT}
        for entity_id in (group.entity_id, lamp_group.lamp_id(3)):
            answer = await http.post(f"{BASE}/entities/{entity_id}/attrs", headers=LD,
                                     content=orjson.dumps(override))
            assert answer.status_code == 204, answer.text
        service.notify({"subscriptionId": service.installation_subscription_id, "data": []})
        result = await service.cycle()
        changed = {s.lamp_id: s.level for s in result.changed}
        assert {group.lamp_id(i) for i in range(10)} <= changed.keys()
        assert (await get(http, group.lamp_id(5)))["illuminanceLevel"] == 0.9
        assert (await get(http, lamp_group.lamp_id(3)))["illuminanceLevel"] == 0.9
        controller = service.controller
        assert controller is not None
        other = (await get(http, lamp_group.lamp_id(4)))["illuminanceLevel"]
        decided = controller.status[lamp_group.entity_id].decision.level
        assert other == pytest.approx(decided, abs=1e-4) and decided < 0.9
        # deleting the override gives the group back to the traffic rule
        answer = await http.delete(f"{BASE}/entities/{group.entity_id}/attrs/"
                                   "manualIlluminanceLevel")
        assert answer.status_code == 204, answer.text
        service.notify({"subscriptionId": service.installation_subscription_id, "data": []})
        await service.cycle()
        automatic = controller.status[group.entity_id].decision
        assert automatic.reason.value == "traffic" and automatic.level < 0.9
        assert (await get(http, group.lamp_id(5)))["illuminanceLevel"] == pytest.approx(
            automatic.level, abs=1e-4)


async def test_notifications_need_the_token(settings: Settings) -> None:
    lighting = LightingApp(LightingConfig())
    app = create_app(settings)
    app.router.routes.append(lighting.mount)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        note = {"type": "Notification", "subscriptionId": "urn:x", "data": []}
        assert (await http.post("/apps/lighting/notify", json=note)).status_code == 503
        lighting.service = LightingService(BrokerApi(http))
        assert (await http.post("/apps/lighting/notify", json=note)).status_code == 403
        ok = await http.post("/apps/lighting/notify", json=note,
                             headers={TOKEN_HEADER: lighting.service.token})
        assert ok.status_code == 204
        status = await http.get("/apps/lighting/status")
        assert status.json() == {"started": False}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_whole_loop_over_http(settings: Settings) -> None:
    """A real server; the app subscribes; a traffic update reaches the app as a notification
    from the broker's outbox and the lamps are dimmed, with no call from the test to the app."""
    port = free_port()
    settings = settings.replace(host="127.0.0.1", port=port)
    app = create_app(settings)
    lighting = LightingApp(LightingConfig(reconcile_seconds=3600),
                           notify_url=own_url("127.0.0.1", port) + "/apps/lighting/notify")
    app.router.routes.append(lighting.mount)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws="none",
                                           log_level="warning", lifespan="on"))
    cycles, results = anyio.create_memory_object_stream[CycleResult](100)
    async with anyio.create_task_group() as serving, results, cycles:
        serving.start_soon(server.serve)
        with anyio.fail_after(20):
            while not server.started:  # uvicorn's own start-up flag; bounded by fail_after
                await anyio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http, \
                anyio.create_task_group() as running:
            await load_installation(http)
            lighting.listeners.append(cycles.send_nowait)
            running.start_soon(lighting.run, app)
            with anyio.fail_after(20):
                first = await results.receive()  # subscribed, read the installation
            assert first.at is None
            assert lighting.service is not None
            subs = await http.get(f"{BASE}/subscriptions")
            assert {s["id"] for s in subs.json()} == {
                lighting.service.traffic_subscription_id,
                lighting.service.installation_subscription_id}
            await post_traffic(http, GROUPS, NIGHT)
            with anyio.fail_after(30):
                result = await results.receive()
                while result.at != NIGHT or not result.changed:
                    result = await results.receive()
            controller = lighting.service.controller
            assert controller is not None
            decided = controller.status[GROUPS[0].entity_id].decision.level
            lamp = await get(http, GROUPS[0].lamp_id(0))
            assert lamp["illuminanceLevel"] == pytest.approx(decided, abs=1e-4)
            assert decided < 1.0  # an arterial at 23:00 is dimmed
            status = (await http.get("/apps/lighting/status")).json()
            assert status["started"] and status["lamps"] == 10 * len(GROUPS)
            register = await http.get("/apps/lighting/algorithm",
                                      headers={"Accept-Language": "en"})
            assert "Human oversight" in register.text
            running.cancel_scope.cancel()  # the app stops; then the server, gracefully
        server.should_exit = True
