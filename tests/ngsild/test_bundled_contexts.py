"""Contexts that ship inside the package are served from it, by one table of URL → file,
without any network: the core context under all its URLs, and the UrbanDataset context."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import httpx
import pytest

from sinergia.adapters.urbandataset import URBANDATASET_CONTEXT_URL
from sinergia.ngsild.context import BUNDLED_CONTEXTS, CORE_CONTEXT_URLS, ContextResolver

SCPS = "https://smartcityplatform.enea.it/specification/semantic/2.0/ontology/scps-ontology-2.0.owl#"


class NoNetwork:
    """Stands in for httpx.AsyncClient: any attempt to use the network fails the test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the network was used")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx, "AsyncClient", NoNetwork)


def package_file(name: str) -> dict[str, Any]:
    text = files("sinergia").joinpath("data/jsonld/" + name).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def test_the_table_holds_the_core_urls_and_the_urbandataset_context() -> None:
    assert BUNDLED_CONTEXTS.keys() >= CORE_CONTEXT_URLS
    assert BUNDLED_CONTEXTS[URBANDATASET_CONTEXT_URL] == "urbandataset-context.jsonld"
    for name in set(BUNDLED_CONTEXTS.values()):
        assert "@context" in package_file(name)


@pytest.mark.anyio
async def test_the_urbandataset_context_resolves_from_the_package() -> None:
    resolver = ContextResolver()   # remote fetching allowed: it must not be needed
    context = await resolver.resolve(URBANDATASET_CONTEXT_URL)
    assert context.expand("podId") == SCPS + "PODID"
    assert context.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
    assert await resolver.load_document(URBANDATASET_CONTEXT_URL) == package_file(
        "urbandataset-context.jsonld")
    both = await resolver.resolve([URBANDATASET_CONTEXT_URL,
                                   "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"])
    assert both.expand("CounterRecords") == SCPS + "CounterRecords"
    assert resolver.cached_entries() == []   # shipped, not cached


@pytest.mark.anyio
async def test_a_bundled_url_wins_over_the_file_map_and_remote_settings(tmp_path: Any) -> None:
    other = tmp_path / "other.jsonld"
    other.write_text(json.dumps({"@context": {"podId": "https://example.org/podId"}}))
    resolver = ContextResolver(context_map={URBANDATASET_CONTEXT_URL: str(other)},
                               allow_remote=False)
    context = await resolver.resolve(URBANDATASET_CONTEXT_URL)
    assert context.expand("podId") == SCPS + "PODID"
