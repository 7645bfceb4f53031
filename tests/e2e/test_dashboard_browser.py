"""The dashboard in a real browser: Debian's Chromium, driven by Playwright (no browser download),
against a real ``sinergia serve`` holding a slice of the Milan demo city, a weather station with
a history, and the lighting app's energy reports.

It opens the map, sees the entities, filters the layers, clicks the weather station on the map
and sees its history chart, watches a live update arrive, uses the accessible entity list from
the keyboard, reads a non-zero saving on the lighting page and the notification health on the
status page — and keeps screenshots of each page (in the test's temporary folder; also in
``docs/screenshots/`` when ``SINERGIA_UPDATE_SCREENSHOTS=1``).

Skipped only when ``/usr/bin/chromium`` is absent and ``SINERGIA_TEST_BROWSER`` is unset; CI
installs chromium and sets ``SINERGIA_TEST_BROWSER`` (the browser's path, or ``1``), so there a
missing browser fails the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from sinergia.apps.lighting.vocabulary import LIGHTING_CONTEXT
from sinergia.sim.milano import MILANO_CONTEXT_DOCUMENT, city_entities

from .conftest import ServerProcess, StartServer

pytestmark = pytest.mark.slow

DEFAULT_BROWSER = "/usr/bin/chromium"
BROWSER_ENV = "SINERGIA_TEST_BROWSER"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
NGSI = "/ngsi-ld/v1"
WAIT_MS = 20_000  # the longest any page state is waited for

STATION_ID = "urn:ngsi-ld:WeatherObserved:MI-Sempione"
STATION_NAME = "Stazione meteo Parco Sempione"
SLICE_TYPES = {"Neighbourhood", "OffStreetParking", "BikeHireDockingStation"}


def browser_path() -> str:
    chosen = os.environ.get(BROWSER_ENV, "")
    if chosen and chosen not in ("1", "true", "yes"):
        return chosen
    if not chosen and not Path(DEFAULT_BROWSER).exists():
        pytest.skip(f"no {DEFAULT_BROWSER} (apt-get install chromium) and {BROWSER_ENV} unset")
    return DEFAULT_BROWSER


# -- the data ----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _report(local_id: str, scope: str, used: float, baseline: float, lamps: int,
            observed: str, started: str, **extra: Any) -> dict[str, Any]:
    """A LightingEnergyReport shaped as the lighting app writes it
    (sinergia.apps.lighting.reports), with the app's @context inline."""
    def prop(value: Any, unit: str | None = None) -> dict[str, Any]:
        attribute: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
        if unit:
            attribute["unitCode"] = unit
        return attribute

    saved = baseline - used
    return {
        "id": f"urn:ngsi-ld:LightingEnergyReport:{local_id}", "type": "LightingEnergyReport",
        "reportScope": prop(scope),
        "energyConsumed": prop(round(used, 3), "KWH"),
        "baselineEnergy": prop(round(baseline, 3), "KWH"),
        "energySaved": prop(round(saved, 3), "KWH"),
        "energySavingPercentage": prop(round(100 * saved / baseline, 2), "P1"),
        "co2Avoided": prop(round(saved * 0.25, 3), "KGM"),
        "powerDemand": prop(round(lamps * 62.5, 1), "WTT"),
        "lampCount": prop(lamps),
        "dateAccountingStarted": prop({"@type": "DateTime", "@value": started}),
        **extra, "@context": LIGHTING_CONTEXT,
    }


def load_city(base_url: str) -> int:
    """A slice of Milan, one weather station with four temperatures, and three rounds of
    energy reports (the city and two cabinets). Returns how many entities have a location."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        hosted = client.post(f"{NGSI}/jsonldContexts", json=MILANO_CONTEXT_DOCUMENT)
        assert hosted.status_code == 201, hosted.text
        link = f'<{hosted.headers["location"]}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        city = [e for e in city_entities() if e["type"] in SLICE_TYPES]
        loaded = client.post(f"{NGSI}/entityOperations/upsert", json=city,
                             headers={"Link": link})
        assert loaded.status_code in (201, 204), loaded.text[:500]

        station = {"id": STATION_ID, "type": "WeatherObserved",
                   "name": {"type": "Property", "value": STATION_NAME},
                   "location": {"type": "GeoProperty", "value": {
                       "type": "Point", "coordinates": [9.1757, 45.4728]}},
                   "temperature": {"type": "Property", "value": 11.5, "unitCode": "CEL",
                                   "observedAt": _iso(start)}}
        created = client.post(f"{NGSI}/entities", json=station)
        assert created.status_code == 201, created.text
        for hour, value in ((1, 12.0), (2, 13.5), (3, 14.25)):
            patched = client.patch(
                f"{NGSI}/entities/{STATION_ID}/attrs",
                json={"temperature": {"type": "Property", "value": value, "unitCode": "CEL",
                                      "observedAt": _iso(start + timedelta(hours=hour))}})
            assert patched.status_code == 204, patched.text

        started = _iso(start - timedelta(days=1))
        for step in range(3):
            observed = _iso(start + timedelta(hours=step))
            hours = 10 + step
            reports = [
                _report("city", "city", 9.0 * hours, 15.0 * hours, 200, observed, started),
                _report("StreetlightControlCabinet:MI-C01", "cabinet", 5.0 * hours,
                        8.0 * hours, 100, observed, started, refStreetlightControlCabinet={
                            "type": "Relationship", "observedAt": observed,
                            "object": "urn:ngsi-ld:StreetlightControlCabinet:MI-C01"}),
                _report("StreetlightControlCabinet:MI-C02", "cabinet", 4.0 * hours,
                        7.0 * hours, 100, observed, started, refStreetlightControlCabinet={
                            "type": "Relationship", "observedAt": observed,
                            "object": "urn:ngsi-ld:StreetlightControlCabinet:MI-C02"}),
            ]
            written = client.post(f"{NGSI}/entityOperations/upsert?options=update",
                                  json=reports, headers={"Content-Type": "application/ld+json"})
            assert written.status_code in (201, 204), written.text[:500]
        return len(city) - sum(e["type"] == "Neighbourhood" for e in city) + 1


# -- the browser ---------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = browser_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watch:
    """What a page did that it must not: ask for anything outside the server, or fail."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", lambda route: self._route(route, base_url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.errors.append(message.text)
                if message.type == "error" else None)

    def _route(self, route: Any, base_url: str) -> None:
        url = route.request.url
        if url.startswith((base_url + "/", "data:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def check(self) -> None:
        assert self.outside == [], f"the dashboard asked for outside resources: {self.outside}"
        assert self.errors == [], f"errors in the page: {self.errors}"


def shoot(page: Page, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    """Keep a screenshot in the test's folder (and in docs/screenshots/ when asked)."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000, "an almost empty screenshot"
    if os.environ.get("SINERGIA_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(path.read_bytes())
    return path


def click_on_map(page: Page, longitude: float, latitude: float) -> None:
    """Click the map where a place is, as a person would (the symbols are drawn on a canvas)."""
    point = page.evaluate(
        "([lat, lon]) => { const p = window.sinergiaMap.latLngToContainerPoint([lat, lon]);"
        " return {x: p.x, y: p.y}; }", [latitude, longitude])
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def test_dashboard_map_history_live_lighting_and_status(
        start_server: StartServer, browser: Browser, tmp_path: Path) -> None:
    server: ServerProcess = start_server(f"sqlite:///{tmp_path / 'dashboard.db'}")
    located = load_city(server.base_url)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    watch = Watch(page, server.base_url)

    # The map with the city's entities on it, and live updates switched on.
    page.goto(f"{server.base_url}/dashboard")
    expect(page.locator("#map-summary")).to_contain_text(
        f"{located} entities on the map", timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert page.locator("#neighbourhood option").count() == 89  # the city + 88 NIL

    # Only the weather stations: the other layers off, then the station clicked on the map.
    for layer in ("OffStreetParking", "BikeHireDockingStation"):
        page.get_by_label(re.compile(rf"^{layer} \(\d+\)$")).uncheck()
    expect(page.locator("#map-summary")).to_contain_text("1 entity on the map")
    page.evaluate("() => { window.sinergiaMap.setView([45.4728, 9.1757], 15, {animate: false}); }")
    click_on_map(page, 9.1757, 45.4728)
    details = page.locator("#details")
    expect(details.locator(".entity-name")).to_have_text(STATION_NAME, timeout=WAIT_MS)
    chart = details.locator('.chart-box[data-attribute="temperature"]')
    expect(chart.locator(".js-plotly-plot")).to_be_visible(timeout=WAIT_MS)
    expect(chart.locator("summary")).to_have_text("Values as a table (4 rows)")
    expect(chart.locator(".chart")).to_have_attribute("aria-label", re.compile("latest 14.25 CEL"))

    # A new temperature reaches the open page by itself (subscription -> SSE -> page).
    changed = httpx.patch(f"{server.base_url}{NGSI}/entities/{STATION_ID}/attrs", json={
        "temperature": {"type": "Property", "value": 16.75, "unitCode": "CEL",
                        "observedAt": _iso(datetime.now(UTC))}})
    assert changed.status_code == 204, changed.text
    expect(chart.locator("summary")).to_have_text("Values as a table (5 rows)", timeout=WAIT_MS)
    expect(details.locator("table.attributes")).to_contain_text("16.75 CEL")
    for layer in ("OffStreetParking", "BikeHireDockingStation"):
        page.get_by_label(re.compile(rf"^{layer} \(\d+\)$")).check()
    expect(page.locator("#map-summary")).to_contain_text(f"{located} entities on the map")
    page.evaluate("() => { window.sinergiaMap.setZoom(14, {animate: false}); }")
    shoot(page, "dashboard-map.png", tmp_path)

    # The same entity from the keyboard, through the list that mirrors the map.
    page.locator("#search").fill("stazione meteo")
    expect(page.locator("#entity-list .entity-item")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(page.locator("#entity-list .entity-item")).to_be_focused()
    page.keyboard.press("Enter")
    expect(details).to_be_focused()

    # A neighbourhood as filter: the broker answers a geo-query for it.
    page.locator("#neighbourhood").select_option(index=1)
    expect(page.locator("#map-summary")).to_contain_text(" in ", timeout=WAIT_MS)

    # The lighting page: the city-wide saving read from the energy reports.
    page.goto(f"{server.base_url}/dashboard/lighting")
    saving = page.locator("#kpi-saving")
    expect(saving).to_have_text(re.compile(r"^\d+(\.\d+)? %$"), timeout=WAIT_MS)
    assert float(saving.inner_text().split()[0]) > 0
    expect(page.locator("#kpi-saved")).to_have_text("72 kWh")   # 15 * 12 h - 9 * 12 h
    expect(page.locator("#cabinet-rows tr")).to_have_count(2)
    expect(page.locator("#chart-energy .js-plotly-plot")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#chart-energy summary")).to_have_text("Values as a table (3 rows)")
    shoot(page, "dashboard-lighting.png", tmp_path)

    # The status page: the dashboard's own subscription, delivering.
    page.goto(f"{server.base_url}/dashboard/status")
    row = page.locator('#sub-rows tr[data-id="urn:ngsi-ld:Subscription:sinergia-dashboard"]')
    expect(row).to_contain_text("ok", timeout=WAIT_MS)
    expect(page.locator("#st-health")).to_have_text("All delivering")
    expect(page.locator("#st-types")).to_have_text("5", timeout=WAIT_MS)
    expect(page.locator("#st-entities")).to_have_text("425")  # 88 + 53 + 280 + 1 + 3
    shoot(page, "dashboard-status.png", tmp_path)
    watch.check()

    # A phone: one column, nothing wider than the screen.
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    phone_watch = Watch(phone, server.base_url)
    phone.goto(f"{server.base_url}/dashboard")
    expect(phone.locator("#map-summary")).to_contain_text("entities on the map", timeout=WAIT_MS)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(phone, "dashboard-phone.png", tmp_path, full_page=False)
    phone_watch.check()
