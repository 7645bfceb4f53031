"""The dashboard in-process: its pages render and hold no outside links, every asset they name
is served (the libraries from their Python packages), the live feed's parts behave, and — with
the app served by a real uvicorn in a thread, so the broker can notify its own URL — the event
stream passes on an entity update and the dashboard's subscription is paused when nobody
listens any more."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
import uvicorn
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.settings import Settings
from sinergia.web.live import (
    LISTENER_BUFFER,
    SUBSCRIPTION_ID,
    TOKEN_HEADER,
    LiveFeed,
    RateCounter,
    Wanted,
    own_url,
)
from sinergia.web.routes import STATIC_DIR, content_security_policy

PAGES = ["/dashboard", "/dashboard/lighting", "/dashboard/status"]
NGSI = "/ngsi-ld/v1"
SUBSCRIPTION_URL = f"{NGSI}/subscriptions/{SUBSCRIPTION_ID}"
DEADLINE = 20.0  # seconds any awaited server state may take


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on SQLite only: the pages touch no storage, so other backends add nothing."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'pages.db'}",
                        sqlite_synchronous="normal", allow_remote_contexts=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="dashboard-config">(.*?)</script>',
                      html, re.DOTALL)
    assert match is not None
    config: dict[str, Any] = orjson.loads(match.group(1))
    return config


# -- pages and assets ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_with_navigation_config_and_a_strict_policy(client: TestClient,
                                                                  path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="en">' in html
    assert 'href="#main"' in html and '<main id="main"' in html
    for link in ("/dashboard", "/dashboard/lighting", "/dashboard/status"):
        assert f'href="{link}"' in html
    assert html.count('aria-current="page"') == 1
    config = _config(html)
    assert config["events"] == "/dashboard/events" and config["api"] == NGSI
    assert config["tiles"] == {"url": "", "attribution": ""}
    assert {v["key"] for v in config["verticals"]} >= {"lighting", "mobility", "other"}
    # Nothing is fetched from elsewhere: every script, style and image is the server's own.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy


def test_every_asset_a_page_names_is_served(client: TestClient) -> None:
    named: set[str] = set()
    for path in PAGES:
        html = client.get(path).text
        named |= {m.split("?")[0] for m in re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', html)}
    config = _config(client.get("/dashboard").text)
    named.add(config["plotly"])
    # the modules the pages load import others by relative path
    for script in STATIC_DIR.glob("js/*.js"):
        for imported in re.findall(r'from "\./([\w-]+\.js)"', script.read_text()):
            assert (STATIC_DIR / "js" / imported).exists(), f"{script.name} imports {imported}"
    assert {"/dashboard/vendor/leaflet/leaflet.js", "/dashboard/vendor/leaflet/leaflet.css",
            "/dashboard/vendor/plotly/plotly.min.js", "/dashboard/static/js/map.js",
            "/dashboard/static/css/dashboard.css"} <= named
    for asset in sorted(named - {"/dashboard", "/dashboard/lighting", "/dashboard/status"}):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset


def test_the_libraries_come_compressed_from_their_packages(client: TestClient) -> None:
    plotly = client.get("/dashboard/vendor/plotly/plotly.min.js",
                        headers={"Accept-Encoding": "gzip"})
    assert plotly.status_code == 200
    assert plotly.headers["content-encoding"] == "gzip"
    assert b"window.Plotly" in plotly.content  # httpx decompressed it
    leaflet = client.get("/dashboard/vendor/leaflet/leaflet.js")
    assert b"Leaflet" in leaflet.content[:2000]
    etag = leaflet.headers["etag"]
    again = client.get("/dashboard/vendor/leaflet/leaflet.js", headers={"If-None-Match": etag})
    assert again.status_code == 304  # browsers keep them


def test_a_tile_server_is_offered_to_the_map_and_allowed_for_images(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", sqlite_synchronous="normal",
                        dashboard_tile_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png",
                        dashboard_tile_attribution="© Example contributors")
    with TestClient(create_app(settings)) as client:
        response = client.get("/dashboard")
    assert _config(response.text)["tiles"] == {
        "url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
        "attribution": "© Example contributors"}
    assert "img-src 'self' data: https://*.tiles.example.org;" in \
        response.headers["content-security-policy"]


def test_the_content_security_policy() -> None:
    assert "img-src 'self' data:;" in content_security_policy("")
    assert "img-src 'self' data: http://tiles.local:8080;" in content_security_policy(
        "http://tiles.local:8080/{z}/{x}/{y}.png")
    assert "connect-src 'self'" in content_security_policy("https://t.example/{z}/{x}/{y}.png")


def test_notify_without_listeners_takes_nothing_and_the_events_route_is_get_only(
        client: TestClient) -> None:
    # Nobody listens: the notification is accepted (so the broker does not retry) and dropped.
    assert client.post("/dashboard/notify", json={"data": []}).status_code == 204
    assert client.post("/dashboard/events").status_code == 405


# -- the live feed's parts -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_counter_averages_the_last_minute() -> None:
    clock = FakeClock()
    counter = RateCounter(window=60, clock=clock)
    counter.add(30)
    assert counter.per_second() == 0.0  # the current second is not over yet
    clock.now += 1
    assert counter.per_second() == 0.5
    counter.add(90)
    clock.now += 1
    assert counter.per_second() == 2.0
    clock.now = 1060
    assert counter.per_second() == 2.0  # seconds 1000-1059
    clock.now = 1061
    assert counter.per_second() == 1.5  # the first second has left the window
    clock.now = 1062
    assert counter.per_second() == 0.0
    assert counter.total == 120


def test_publish_reaches_every_listener_and_drops_one_that_falls_behind() -> None:
    async def main() -> None:
        feed = LiveFeed(app=None, endpoint="http://127.0.0.1:1/dashboard/notify")  # type: ignore[arg-type]
        fast_send, fast = anyio.create_memory_object_stream[dict[str, Any]](LISTENER_BUFFER + 5)
        slow_send, slow = anyio.create_memory_object_stream[dict[str, Any]](1)
        feed._listeners |= {fast_send, slow_send}
        entity = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "powerState": "on"}
        feed.publish({"type": "Notification", "data": [entity]})
        feed.publish({"type": "Notification", "data": [entity, entity]})
        assert feed.listeners == 1 and feed.disconnected_slow == 1
        assert (await fast.receive())["entities"] == [entity]
        assert (await fast.receive())["entities"] == [entity, entity]
        assert (await slow.receive())["entities"] == [entity]
        with pytest.raises(anyio.EndOfStream):
            await slow.receive()  # the slow one's stream ends: its browser reconnects
        assert feed.counter.total == 3 and feed.notifications == 2
        feed.publish({"data": "not a list"})
        assert feed.notifications == 3 and feed.counter.total == 3
        for stream in (fast_send, fast, slow_send, slow):
            stream.close()

    anyio.run(main)


def test_only_the_token_of_the_subscription_is_accepted() -> None:
    feed = LiveFeed(app=None, endpoint="http://x/dashboard/notify")  # type: ignore[arg-type]
    assert not feed.accepts("anything")  # no subscription made yet: no token
    feed.token = "s3cret"
    assert feed.accepts("s3cret")
    assert not feed.accepts("s3cret2") and not feed.accepts(None)


def test_wanted_subscription_patches_only_what_differs() -> None:
    wanted = Wanted(("Streetlight", "WeatherObserved"), True, "http://127.0.0.1:1026/n", "tok")
    held = orjson.loads(orjson.dumps(wanted.body()))
    assert wanted.differences(held) == {}
    held["entities"] = [{"type": "Streetlight"}]
    held["isActive"] = False
    held["notification"]["endpoint"]["receiverInfo"] = [{"key": TOKEN_HEADER, "value": "old"}]
    assert set(wanted.differences(held)) == {"entities", "isActive", "notification"}
    assert wanted.differences(held)["entities"] == [{"type": "Streetlight"},
                                                    {"type": "WeatherObserved"}]


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:1026"), ("0.0.0.0", "http://127.0.0.1:1026"),
    ("::", "http://[::1]:1026"), ("192.0.2.7", "http://192.0.2.7:1026"),
    ("fd00::7", "http://[fd00::7]:1026")])
def test_own_url(host: str, url: str) -> None:
    assert own_url(host, 1026) == url


# -- the whole loop on a real server -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(tmp_path: Path) -> Iterator[str]:
    """The app on a real uvicorn in a thread of this process, on a free port (the notifier
    delivers the dashboard's notifications to it over HTTP)."""
    port = _free_port()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'live.db'}",
                        sqlite_synchronous="normal", allow_remote_contexts=False,
                        host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", ws="none",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    give_up = time.monotonic() + DEADLINE
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < give_up, "the server did not start"
        thread.join(timeout=0.02)  # the pause between looks
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE)


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event name, parsed data) of a text/event-stream, comments (pings) skipped."""
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield name, orjson.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def next_event(stream: Iterator[tuple[str, Any]], wanted: str) -> Any:
    for name, data in stream:
        if name == wanted:
            return data
    raise AssertionError(f"the stream ended before a {wanted!r} event")


def test_an_entity_update_streams_to_listeners_and_idle_pauses_the_subscription(
        tmp_path: Path) -> None:
    light = {"id": "urn:ngsi-ld:Streetlight:MI-0001", "type": "Streetlight",
             "powerState": {"type": "Property", "value": "on"}}
    with serving(tmp_path) as base, httpx.Client(base_url=base, timeout=DEADLINE) as api:
        assert api.post(f"{NGSI}/entities", json=light).status_code == 201
        with api.stream("GET", "/dashboard/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response.iter_lines())
            ready = next_event(stream, "ready")
            assert ready["subscribed"] is True and ready["listeners"] == 1
            assert ready["types"] == ["Streetlight"]

            held = api.get(SUBSCRIPTION_URL).json()
            assert held["isActive"] is True
            assert held["notification"]["endpoint"]["uri"] == f"{base}/dashboard/notify"
            assert held["notification"]["format"] == "keyValues"
            token = held["notification"]["endpoint"]["receiverInfo"][0]
            assert token["key"] == TOKEN_HEADER and len(token["value"]) >= 20
            # what the broker holds is what the feed wants: the next page changes nothing
            assert Wanted(("Streetlight",), True, f"{base}/dashboard/notify",
                          token["value"]).differences(held) == {}

            # Only the broker, with the token, can feed the browsers.
            forged = api.post("/dashboard/notify", json={"data": [{"id": "urn:x", "type": "X"}]},
                              headers={TOKEN_HEADER: "guess"})
            assert forged.status_code == 403

            changed = api.patch(f"{NGSI}/entities/{light['id']}/attrs",
                                json={"powerState": {"type": "Property", "value": "off"}})
            assert changed.status_code == 204
            change = next_event(stream, "change")
            assert change["entities"] == [{"id": light["id"], "type": "Streetlight",
                                           "powerState": "off"}]
        # The last listener left: the subscription is paused (the server does it as the
        # stream closes; polled, since that happens after the client let go).
        give_up = time.monotonic() + DEADLINE
        while api.get(SUBSCRIPTION_URL).json()["isActive"] is not False:
            assert time.monotonic() < give_up, "the dashboard subscription was not paused"
        delivered = api.get(SUBSCRIPTION_URL).json()["notification"]
        assert delivered["timesSent"] >= 1 and delivered["status"] == "ok"


def test_a_restarted_server_adopts_the_subscription_and_its_token(tmp_path: Path) -> None:
    light = {"id": "urn:ngsi-ld:Streetlight:MI-0002", "type": "Streetlight",
             "powerState": {"type": "Property", "value": "on"}}
    tokens = []
    for run in range(2):   # the same database, a new server (and port) each time
        with serving(tmp_path) as base, httpx.Client(base_url=base, timeout=DEADLINE) as api:
            if run == 0:
                assert api.post(f"{NGSI}/entities", json=light).status_code == 201
            with api.stream("GET", "/dashboard/events") as response:
                assert next_event(events(response.iter_lines()), "ready")["subscribed"]
                held = api.get(SUBSCRIPTION_URL).json()
            endpoint = held["notification"]["endpoint"]
            assert endpoint["uri"] == f"{base}/dashboard/notify"   # moved to the new port
            tokens.append(endpoint["receiverInfo"][0]["value"])
            listed = api.get(f"{NGSI}/subscriptions").json()
            assert [s["id"] for s in listed] == [SUBSCRIPTION_ID]   # one, not one per start
    assert tokens[0] == tokens[1]
