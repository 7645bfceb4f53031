"""Polling a GBFS system into the broker: what is written, when, and what happens to stations
that leave the feed. The feed is a directory of recorded files the tests edit between polls;
entities are read back through the NGSI-LD API with the adapter's @context hosted."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sinergia.adapters.gbfs.feed import GBFS_CONTEXT, GbfsError
from sinergia.adapters.gbfs.poller import GbfsPoller, PollResult
from sinergia.adapters.gbfs.source import DirectoryFeedSource
from sinergia.cli import app
from sinergia.settings import Settings

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "/ngsi-ld/v1"
PREFIX = "urn:ngsi-ld:BikeHireDockingStation:bikemi-"


class Feed:
    """A copy of a recorded feed that a test can change between polls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def edit(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.directory / f"{name}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(json.dumps(document), encoding="utf-8")

    def station(self, feed_name: str, sid: str, **values: Any) -> None:
        def change(document: dict[str, Any]) -> None:
            for station in document["data"]["stations"]:
                if station["station_id"] == sid:
                    station.update(values)
        self.edit(feed_name, change)

    def drop(self, sid: str) -> None:
        for name in ("station_information", "station_status"):
            self.edit(name, lambda d: d["data"].update(
                stations=[s for s in d["data"]["stations"] if s["station_id"] != sid]))


@pytest.fixture
def feed(tmp_path: Path) -> Feed:
    shutil.copytree(FIXTURES / "v2_3", tmp_path / "feed")
    return Feed(tmp_path / "feed")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def link(live_broker: Any) -> dict[str, str]:
    hosted = await live_broker.http.post(f"{BASE}/jsonldContexts",
                                         json={"@context": GBFS_CONTEXT})
    return {"Link": f'<{hosted.headers["Location"]}>; '
                    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


async def station(live_broker: Any, link: dict[str, str], sid: str) -> dict[str, Any]:
    response = await live_broker.http.get(f"{BASE}/entities/{PREFIX}{sid}", headers=link)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_first_poll_writes_every_station(feed: Feed, live_broker: Any,
                                               link: dict[str, str]) -> None:
    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process)
    result = await poller.poll_once()
    assert (result.stations, result.written, result.failed) == (4, 4, [])
    assert result.delay == 30.0  # station_status ttl, inside [10, 300]
    duomo = await station(live_broker, link, "001")
    assert duomo["type"] == "BikeHireDockingStation"
    assert duomo["name"]["value"] == "Duomo 1"
    assert duomo["dataProvider"]["value"] == "Clear Channel Italia"  # system_information
    assert duomo["availableBikeNumber"]["value"] == 7
    assert duomo["availableBikeNumber"]["observedAt"] == "2024-03-01T10:00:30.000Z"
    assert duomo["status"]["value"] == "working"
    near = await live_broker.http.get(f"{BASE}/entities", headers=link, params={
        "type": "BikeHireDockingStation", "q": "availableBikeNumber>0",
        "georel": "near;maxDistance==1500", "geometry": "Point",
        "coordinates": "[9.1900,45.4642]", "options": "keyValues", "attrs": "name"})
    # San Babila is as near as the others but has no bikes
    assert sorted(e["name"] for e in near.json()) == ["Cadorna 1", "Duomo 1", "Lanza"]


async def test_only_what_changed_is_written_again(feed: Feed, live_broker: Any,
                                                  link: dict[str, str]) -> None:
    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process)
    await poller.poll_once()
    assert (await poller.poll_once()).written == 0
    feed.station("station_status", "002", num_bikes_available=5, num_docks_available=19,
                 last_reported=1709287500)
    result = await poller.poll_once()
    assert result.written == 1
    san_babila = await station(live_broker, link, "002")
    assert san_babila["availableBikeNumber"]["value"] == 5
    assert san_babila["availableBikeNumber"]["observedAt"] == "2024-03-01T10:05:00.000Z"
    assert san_babila["status"]["value"] == "working"  # was "empty"
    assert san_babila["name"]["value"] == "San Babila"  # static attributes kept


async def test_station_information_is_reread_after_its_ttl(feed: Feed,
                                                           live_broker: Any,
                                                           link: dict[str, str]) -> None:
    clock = Clock()
    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process,
                        clock=clock)
    await poller.poll_once()
    feed.station("station_information", "004", name="Lanza (Brera)", capacity=30)
    # station_information's ttl (600 s) is clamped to max_interval (300 s)
    clock.now += 299
    assert (await poller.poll_once()).written == 0  # the cached copy is still good
    clock.now += 2
    assert (await poller.poll_once()).written == 1
    lanza = await station(live_broker, link, "004")
    assert lanza["name"]["value"] == "Lanza (Brera)"
    assert lanza["totalSlotNumber"]["value"] == 30
    assert lanza["status"]["value"] == "outOfService"  # live attributes untouched


async def test_removed_stations_are_marked_and_come_back(feed: Feed, live_broker: Any,
                                                         link: dict[str, str]) -> None:
    clock = Clock()
    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process,
                        clock=clock, min_interval=1)
    await poller.poll_once()
    saved = {name: (feed.directory / f"{name}.json").read_text(encoding="utf-8")
             for name in ("station_information", "station_status")}
    feed.drop("003")
    clock.now += 600  # past station_information's ttl
    result = await poller.poll_once()
    assert result.removed == [PREFIX + "003"] and result.stations == 3
    cadorna = await station(live_broker, link, "003")
    assert cadorna["status"] == {"type": "Property", "value": "outOfService",
                                 "observedAt": "2024-03-01T10:01:00.000Z",
                                 "reason": {"type": "Property", "value": "removedFromFeed"}}
    assert cadorna["availableBikeNumber"]["value"] == 21  # the last known count stays
    assert (await poller.poll_once()).removed == []  # marked once

    for name, text in saved.items():
        (feed.directory / f"{name}.json").write_text(text, encoding="utf-8")
    clock.now += 600
    back = await poller.poll_once()
    assert back.written == 1 and back.removed == []
    cadorna = await station(live_broker, link, "003")
    assert cadorna["status"] == {"type": "Property", "value": "full",
                                 "observedAt": "2024-03-01T10:00:45.000Z"}


async def test_refused_stations_are_retried(feed: Feed, live_broker: Any) -> None:
    feed.station("station_information", "002", lat=245.0)
    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process)
    first = await poller.poll_once()
    assert first.written == 3
    assert [f.entity_id for f in first.failed] == [PREFIX + "002"]
    assert "latitude" in first.failed[0].detail
    second = await poller.poll_once()  # not remembered as written: tried again
    assert [f.entity_id for f in second.failed] == [PREFIX + "002"] and second.written == 0


async def test_gbfs_3_0_over_http_with_ids_of_our_choosing(tmp_path: Path,
                                                           live_broker: Any) -> None:
    poller = GbfsPoller(DirectoryFeedSource(FIXTURES / "v3_0", language="it"),
                        live_broker.over_http(), tenant="comune_milano",
                        id_prefix="urn:ngsi-ld:BikeHireDockingStation:MI-",
                        min_interval=15, max_interval=60)
    result = await poller.poll_once()
    assert result.written == 3
    assert result.delay == 15.0  # ttl 0 ("changes constantly"): the minimum interval
    response = await live_broker.http.get(
        f"{BASE}/entities/urn:ngsi-ld:BikeHireDockingStation:MI-005",
        headers={"NGSILD-Tenant": "comune_milano"})
    assert response.status_code == 200
    cattolica = response.json()
    bikes = cattolica["https://smartdatamodels.org/dataModel.Transportation/availableBikeNumber"]
    assert bikes["value"] == 4 and bikes["observedAt"] == "2024-03-01T09:00:45.000Z"


async def test_run_waits_for_the_ttl_and_backs_off_on_failures(feed: Feed,
                                                               live_broker: Any) -> None:
    waits: list[float] = []
    outcomes: list[PollResult | Exception] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:  # the feed breaks after the first poll
            (feed.directory / "station_status.json").write_text("{", encoding="utf-8")

    poller = GbfsPoller(DirectoryFeedSource(feed.directory), live_broker.in_process,
                        min_interval=5, max_interval=12, sleep=sleep)
    await poller.run(cycles=4, on_result=outcomes.append)
    assert waits == [12, 5, 10]  # ttl 30 clamped to 12; then the back-off: 5, 10, …
    assert isinstance(outcomes[0], PollResult) and outcomes[0].written == 4
    assert all(isinstance(o, GbfsError) for o in outcomes[1:])
    assert "not JSON" in str(outcomes[1])


def test_intervals_must_make_sense() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        GbfsPoller(DirectoryFeedSource(FIXTURES / "v2_3"), None,  # type: ignore[arg-type]
                   min_interval=0)


def test_command_line_once(tmp_path: Path, settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the command opens its own store")
    database = f"sqlite:///{tmp_path / 'city.db'}"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "gbfs", str(FIXTURES / "v2_3"), "--once",
                                 "--database", database, "--language", "it"])
    assert result.exit_code == 0, result.output
    assert "4 stations, 4 written, 0 removed, 0 refused; next poll in 30 s" in result.output
    missing = runner.invoke(app, ["import", "gbfs", str(tmp_path / "nowhere"), "--once",
                                  "--database", database])
    assert missing.exit_code == 2 and "not a directory" in " ".join(missing.output.split())
