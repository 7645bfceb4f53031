"""The algorithm register entry served by the app, and how the app is started in a server."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.apps.lighting import LightingApp, start_lighting
from sinergia.apps.lighting.classes import TRAFFIC_BANDS
from sinergia.apps.lighting.policy import PolicyLimits
from sinergia.apps.lighting.register import Language, register_html, register_json
from sinergia.apps.lighting.service import LightingConfig
from sinergia.apps.lighting.web import own_url
from sinergia.settings import Settings

SECTIONS = ["purpose", "inputs", "rule", "limits", "oversight", "results"]


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def served(settings: Settings) -> TestClient:
    lighting = LightingApp(LightingConfig(limits=PolicyLimits(safe_minimum=0.25)))
    app = create_app(settings)
    app.router.routes.append(lighting.mount)
    return TestClient(app)


@pytest.mark.parametrize("language", ["it", "en"])
def test_json_has_every_section_and_the_running_parameters(language: Language) -> None:
    entry = register_json(language, LightingConfig(limits=PolicyLimits(safe_minimum=0.25)))
    assert entry["language"] == language
    assert [s["key"] for s in entry["sections"]] == SECTIONS
    assert all(s["title"] and all(s["text"]) for s in entry["sections"])
    assert entry["parameters"]["safeMinimumLevel"] == 0.25
    limits = next(s for s in entry["sections"] if s["key"] == "limits")
    assert "25%" in " ".join(limits["text"])  # the text says the floor the app really uses
    assert [row["class"] for row in entry["trafficClasses"]] == [b.needs.name
                                                                 for b in TRAFFIC_BANDS]
    assert any("EN 13201-2" in source for source in entry["sources"])


def test_html_is_plain_and_complete() -> None:
    page = register_html("it")
    parser = Text()
    parser.feed(page)
    text = " ".join(parser.text)
    assert page.startswith("<!doctype html>") and '<html lang="it">' in page
    assert parser.ids == SECTIONS
    assert "Controllo umano" in text and "manualIlluminanceLevel" in text
    for band in TRAFFIC_BANDS:
        assert f"<td>{band.needs.name}</td>" in page
    assert "<script" not in page  # nothing to run, nothing fetched


def test_served_in_both_languages_and_formats(served: TestClient) -> None:
    with served:
        html = served.get("/apps/lighting/algorithm")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert html.headers["content-language"] == "it"
        english = served.get("/apps/lighting/algorithm", headers={
            "Accept-Language": "en-GB,en;q=0.9"})
        assert english.headers["content-language"] == "en" and "Human oversight" in english.text
        as_json = served.get("/apps/lighting/algorithm?lang=en",
                             headers={"Accept": "application/json"})
        assert as_json.json()["title"] == "Traffic-adaptive street lighting"
        assert served.get("/apps/lighting/algorithm?format=json").json()["language"] == "it"
        assert "25%" in served.get("/apps/lighting/algorithm?lang=en").text


def test_start_lighting_notifies_the_server_itself(settings: Settings) -> None:
    app = create_app(settings.replace(host="0.0.0.0", port=8080))
    lighting = start_lighting(app.state.runtime)
    assert lighting.notify_url == "http://127.0.0.1:8080/apps/lighting/notify"
    assert own_url("::", 1026) == "http://[::1]:1026"
    assert own_url("10.0.0.5", 1026) == "http://10.0.0.5:1026"
