"""Where GBFS files come from: a web system (served here by an httpx mock transport from the
recorded files) or a directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from sinergia.adapters.gbfs.feed import GbfsError
from sinergia.adapters.gbfs.poller import GbfsPoller
from sinergia.adapters.gbfs.source import (
    DirectoryFeedSource,
    HttpFeedSource,
    open_source,
)

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = "https://gbfs.example-bikemi.it/gbfs/2.3/gbfs.json"


def recorded_system(requests: list[str], broken: set[str] | None = None) -> httpx.AsyncClient:
    """Serves v2_3/<file> for any URL ending with that file name."""
    def serve(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        name = request.url.path.rsplit("/", 1)[-1]
        if broken and name in broken:
            return httpx.Response(200, content=b"<html>maintenance</html>")
        path = FIXTURES / "v2_3" / name
        if not path.is_file():
            return httpx.Response(404)
        return httpx.Response(200, content=path.read_bytes(),
                              headers={"content-type": "application/json"})

    return httpx.AsyncClient(transport=httpx.MockTransport(serve))


async def test_http_source_follows_discovery_in_the_chosen_language() -> None:
    requests: list[str] = []
    async with recorded_system(requests) as client:
        source = HttpFeedSource(ROOT, language="it", client=client)
        feeds = await source.feeds()
        assert feeds["station_status"].endswith("/2.3/it/station_status.json")
        status = await source.fetch("station_status")
        await source.aclose()  # the client is the caller's: left open
        assert not client.is_closed
    assert status.ttl == 30 and status.version == "2.3"
    assert requests == ["/gbfs/2.3/gbfs.json", "/gbfs/2.3/it/station_status.json"]


async def test_http_source_errors_are_gbfs_errors() -> None:
    requests: list[str] = []
    async with recorded_system(requests, broken={"station_status.json"}) as client:
        source = HttpFeedSource(ROOT, client=client)
        with pytest.raises(GbfsError, match="not JSON"):
            await source.fetch("station_status")
        with pytest.raises(GbfsError, match="lists no 'free_bike_status'"):
            await source.fetch("free_bike_status")
        missing = HttpFeedSource("https://gbfs.example-bikemi.it/nothing.json", client=client)
        with pytest.raises(GbfsError, match="HTTP 404"):
            await missing.feeds()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(GbfsError, match="ConnectTimeout"):
            await HttpFeedSource(ROOT, client=client).feeds()


async def test_polling_a_web_system(live_broker: Any) -> None:
    requests: list[str] = []
    async with recorded_system(requests) as client:
        source = open_source(ROOT, client=client)
        assert isinstance(source, HttpFeedSource)
        poller = GbfsPoller(source, live_broker.in_process)
        assert (await poller.poll_once()).written == 4
        await poller.poll_once()
    # discovery and the slow feeds once; station_status at every poll
    assert requests.count("/gbfs/2.3/en/station_status.json") == 2
    assert requests.count("/gbfs/2.3/en/station_information.json") == 1
    response = await live_broker.http.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:BikeHireDockingStation:bikemi-001",
        params={"options": "keyValues"})
    assert response.json()["https://smartdatamodels.org/source"] == ROOT


async def test_directory_without_discovery(tmp_path: Path) -> None:
    for name in ("station_information", "station_status"):
        shutil.copy(FIXTURES / "v2_3" / f"{name}.json", tmp_path)
    source = open_source(str(tmp_path))
    assert isinstance(source, DirectoryFeedSource)
    assert set(await source.feeds()) == {"station_information", "station_status"}
    assert (await source.fetch("station_information")).ttl == 600
    assert source.location.startswith("file://")
    with pytest.raises(GbfsError, match="no 'system_information' feed"):
        await source.fetch("system_information")


async def test_directory_with_a_3_0_discovery_of_extensionless_urls() -> None:
    source = DirectoryFeedSource(FIXTURES / "v3_0")
    feeds = await source.feeds()
    assert feeds["station_status"].endswith("v3_0/station_status.json")
    assert (await source.fetch("vehicle_types")).version == "3.0"


def test_a_missing_directory() -> None:
    with pytest.raises(GbfsError, match="not a directory"):
        open_source("/nonexistent/gbfs")
