"""@context resolution (bundled core, context_map, hosted, remote fetch with cache/timeout)
and term expansion/compaction."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.ngsild import context as context_module
from sinergia.ngsild.context import (
    CORE_CONTEXT_URL,
    CORE_CONTEXT_URLS,
    MAX_DOCUMENT_BYTES,
    Context,
    ContextResolver,
)
from sinergia.ngsild.errors import InvalidLdContext, LdContextNotAvailable

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DATA = Path(__file__).resolve().parent.parent / "data" / "jsonld-contexts"
ENERGY = DATA / "sdm-EnergyCommunity-context.jsonld"
WEATHER = DATA / "sdm-Weather-context.jsonld"
ENERGY_URL = "https://smart-data-models.example/dataModel.EnergyCommunity/context.jsonld"
WEATHER_URL = "https://smart-data-models.example/dataModel.Weather/context.jsonld"
SDM_MAP = {ENERGY_URL: str(ENERGY), WEATHER_URL: str(WEATHER)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def core_document() -> dict[str, Any]:
    text = files("sinergia").joinpath("data/jsonld/ngsi-ld-core-context-v1.9.jsonld").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def defined_terms(document: dict[str, Any]) -> dict[str, str]:
    """term → IRI as written in a flat context, with its own prefixes substituted; keyword
    aliases (id, type) left out. Independent of the code under test."""
    ctx = document["@context"]
    prefixes = {k: v for k, v in ctx.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    out = {}
    for term, definition in ctx.items():
        if term.startswith("@"):
            continue
        iri = definition if isinstance(definition, str) else definition["@id"]
        if iri.startswith("@"):
            continue
        prefix, _, suffix = iri.partition(":")
        out[term] = prefixes[prefix] + suffix if prefix in prefixes else iri
    return out


CORE_TERMS = defined_terms(core_document())


class Explode:
    """Stands in for httpx.AsyncClient: any attempt to use the network fails the test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the network was used")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx, "AsyncClient", Explode)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def resolve_now(resolver: ContextResolver, source: Any) -> Context:
    return asyncio.run(resolver.resolve(source))


@functools.cache
def sdm_context() -> Context:
    resolver = ContextResolver(context_map=SDM_MAP, allow_remote=False)
    return resolve_now(resolver, [ENERGY_URL, WEATHER_URL])


# --- the core context ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_core_is_known_by_every_published_url_without_network(no_network: None) -> None:
    resolver = ContextResolver()
    core = await resolver.resolve(None)
    assert core is resolver.core and core.is_core and core.source is None
    urls = [
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.1.jsonld",
        *(f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{n}.jsonld" for n in range(10)),
        *(f"http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{n}.jsonld" for n in range(10)),
    ]
    for url in urls:
        assert url in CORE_CONTEXT_URLS
        ctx = await resolver.resolve(url)
        assert ctx.is_core and ctx.source == url
        assert ctx.expand("value") == NGSI_LD + "hasValue"
        assert await resolver.load_document(url) == core_document()
    listed = await resolver.resolve([urls[0], urls[5]])
    assert listed.is_core and listed.source == [urls[0], urls[5]]
    assert resolver.cached_entries() == []


def test_core_terms_expand_and_compact_back() -> None:
    core = ContextResolver().core
    assert len(CORE_TERMS) > 150
    for term, iri in CORE_TERMS.items():
        assert core.expand(term) == iri, term
        assert core.compact(iri) == term, iri
    assert core.key == CORE_CONTEXT_URL


def test_keyword_aliases_are_not_terms() -> None:
    core = ContextResolver().core
    assert "id" not in core.terms and "type" not in core.terms
    assert core.vocab == DEFAULT


def test_vocab_fallback_and_its_limits() -> None:
    core = ContextResolver().core
    assert core.expand("temperature") == DEFAULT + "temperature"
    assert core.compact(DEFAULT + "temperature") == "temperature"
    # A remainder with a delimiter would not expand back through @vocab: prefix form instead.
    assert core.compact(DEFAULT + "a/b") == "ngsi-ld:default-context/a/b"
    assert core.expand("ngsi-ld:default-context/a/b") == DEFAULT + "a/b"
    assert core.compact(DEFAULT + "a#b") == "ngsi-ld:default-context/a#b"


def test_compact_iris_and_absolute_iris() -> None:
    core = ContextResolver().core
    assert core.expand("ngsi-ld:foo") == NGSI_LD + "foo"
    assert core.compact(NGSI_LD + "foo") == "ngsi-ld:foo"
    assert core.expand("geojson:Thing") == "https://purl.org/geojson/vocab#Thing"
    assert core.compact("https://purl.org/geojson/vocab#Thing") == "geojson:Thing"
    for unchanged in ["urn:ngsi-ld:Thing:1", "https://example.org/x", "foo:bar", "_:b0", "@id"]:
        assert core.expand(unchanged) == unchanged
    assert core.compact("https://example.org/x") == "https://example.org/x"


def test_vocab_typed_terms_are_reported() -> None:
    core = ContextResolver().core
    assert core.is_vocab_term("attributeList") and core.is_vocab_term("objectType")
    assert not core.is_vocab_term("location") and not core.is_vocab_term("nope")


# --- user contexts ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ENERGY, WEATHER], ids=lambda p: p.name)
def test_smart_data_models_contexts_round_trip(path: Path) -> None:
    url = f"https://smart-data-models.example/{path.name}"
    ctx = resolve_now(ContextResolver(context_map={url: str(path)}, allow_remote=False), url)
    user_terms = defined_terms(json.loads(path.read_text()))
    iris = Counter(user_terms.values())
    assert len(user_terms) > 40
    for term, iri in user_terms.items():
        expected = CORE_TERMS.get(term, iri)  # the core context wins on its own terms
        assert ctx.expand(term) == expected, term
        back = ctx.compact(expected)
        assert ctx.expand(back) == expected
        if iris[iri] == 1 and term not in CORE_TERMS:
            assert back == term
    for term, iri in CORE_TERMS.items():
        assert ctx.expand(term) == iri


def test_list_of_user_contexts_combines_them() -> None:
    ctx = sdm_context()
    assert ctx.expand("communityType").startswith("https://smartdatamodels.org/dataModel.Energy")
    assert ctx.expand("atmosphericPressure").endswith("dataModel.Weather/atmosphericPressure")
    assert ctx.compact("https://smartdatamodels.org/name") == "name"
    assert ctx.expand("somethingElse") == DEFAULT + "somethingElse"


@pytest.mark.anyio
async def test_core_terms_win_without_error() -> None:
    resolver = ContextResolver(allow_remote=False)
    user = {
        "@protected": True,
        "location": "https://evil.example/location",
        "value": {"@id": "https://evil.example/value", "@type": "@id"},
        "@vocab": "https://mine.example/",
        "mine": "https://mine.example/mine",
    }
    ctx = await resolver.resolve([user, CORE_CONTEXT_URL])
    assert ctx.expand("location") == NGSI_LD + "location"
    assert ctx.expand("value") == NGSI_LD + "hasValue"
    assert ctx.vocab == DEFAULT and ctx.expand("other") == DEFAULT + "other"
    assert ctx.expand("mine") == "https://mine.example/mine"
    # core first, then a user redefinition of a protected term: still lenient
    ctx = await resolver.resolve([CORE_CONTEXT_URL, {"location": "https://evil.example/l"}])
    assert ctx.expand("location") == NGSI_LD + "location"


@pytest.mark.anyio
async def test_user_definitions_can_use_core_prefixes_and_null() -> None:
    resolver = ContextResolver(allow_remote=False)
    ctx = await resolver.resolve(
        {"foo": "ngsi-ld:foo", "bar": None, "baz": {"@type": "@id"}, "ex": "https://ex.org/"}
    )
    assert ctx.expand("foo") == NGSI_LD + "foo"
    assert ctx.compact(NGSI_LD + "foo") == "foo"  # a term beats a compact IRI
    assert ctx.expand("bar") == DEFAULT + "bar"  # null-mapped: kept, default vocabulary
    assert ctx.expand("baz") == DEFAULT + "baz"
    assert ctx.expand("ex:thing") == "https://ex.org/thing"
    assert ctx.compact("https://ex.org/thing") == "ex:thing"


@pytest.mark.anyio
async def test_compaction_choice_is_deterministic() -> None:
    resolver = ContextResolver(allow_remote=False)
    same = "https://ex.org/same"
    ctx = await resolver.resolve(
        [
            {"bbb": same, "a2": same, "abc": same, "ex": "https://ex.org/"},
            {"exlong": "https://ex.org/long/", "ex:same": same},
        ]
    )
    assert ctx.compact(same) == "a2"
    assert all(ctx.expand(t) == same for t in ("bbb", "a2", "abc"))
    assert ctx.compact("https://ex.org/long/x") == "exlong:x"  # shortest compact IRI
    assert ctx.compact("https://ex.org/other") == "ex:other"


@pytest.mark.anyio
async def test_same_object_in_any_key_order_is_one_cached_context() -> None:
    resolver = ContextResolver(allow_remote=False)
    first = await resolver.resolve({"a": "https://ex.org/a", "b": "https://ex.org/b"})
    second = await resolver.resolve({"b": "https://ex.org/b", "a": "https://ex.org/a"})
    assert first is second
    assert first.source == {"a": "https://ex.org/a", "b": "https://ex.org/b"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "source",
    [
        42,
        [42],
        "[1]",
        "relative.jsonld",
        {"x": {"@id": "https://ex.org/x", "@container": "@bogus"}},
        {"x": 5},
        {"@version": 2},
        [{"a": "https://ex.org/a"}, "urn:not:http"],
    ],
)
async def test_invalid_contexts_are_400(source: Any, no_network: None) -> None:
    with pytest.raises(InvalidLdContext):
        await ContextResolver().resolve(source)


@pytest.mark.anyio
async def test_scoped_contexts_and_reserved_names_need_no_network_nor_warn(
    no_network: None,
) -> None:
    resolver = ContextResolver()
    ctx = await resolver.resolve(
        {
            "proof": {"@id": "https://ex.org/proof", "@context": "https://remote.example/sc"},
            "@reserved": "https://ex.org/ignored",
            "odd": "@reserved",
            "fine": "https://ex.org/fine",
        }
    )
    assert ctx.expand("proof") == "https://ex.org/proof"
    assert ctx.expand("odd") == DEFAULT + "odd"
    assert ctx.expand("fine") == "https://ex.org/fine"
    # @import of the (bundled) core context, which declares "@version": 1.1
    imported = await resolver.resolve({"@import": CORE_CONTEXT_URL, "z": "https://ex.org/z"})
    assert imported.expand("z") == "https://ex.org/z"


@pytest.mark.anyio
async def test_processed_contexts_are_bounded(
    monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    monkeypatch.setattr(context_module, "MAX_CACHED_CONTEXTS", 3)
    resolver = ContextResolver()
    sources = [{"t": f"https://ex.org/{n}"} for n in range(4)]
    first = [await resolver.resolve(source) for source in sources]
    assert await resolver.resolve(sources[3]) is first[3]
    assert await resolver.resolve(sources[0]) is not first[0]  # evicted, rebuilt


# --- property-based: expand and compact are inverse ------------------------------------------

NAMES = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"),
    min_size=1,
    max_size=30,
)


@given(name=NAMES)
def test_property_names_round_trip(name: str) -> None:
    for ctx in (ContextResolver().core, sdm_context()):
        iri = ctx.expand(name)
        assert ctx.expand(ctx.compact(iri)) == iri
        if name not in ctx.terms and iri == DEFAULT + name:
            assert ctx.compact(iri) == name


@given(
    base=st.sampled_from(
        [
            NGSI_LD,
            DEFAULT,
            "https://purl.org/geojson/vocab#",
            "https://smartdatamodels.org/",
            "https://example.org/",
            "urn:ngsi-ld:",
        ]
    ),
    rest=st.text(alphabet=st.sampled_from("abcXYZ019_-/#:."), max_size=20),
)
def test_property_iris_round_trip(base: str, rest: str) -> None:
    iri = base + rest
    for ctx in (ContextResolver().core, sdm_context()):
        compacted = ctx.compact(iri)
        assert ctx.expand(compacted) == iri, compacted
        assert len(compacted) <= len(iri)


# --- context_map and hosted contexts -----------------------------------------------------------


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


@pytest.mark.anyio
async def test_context_map_files_load_lazily_and_can_be_forgotten(
    tmp_path: Path, no_network: None
) -> None:
    url = "https://ex.org/ctx.jsonld"
    path = write(tmp_path / "ctx.jsonld", {"@context": {"a": "https://ex.org/a"}})
    resolver = ContextResolver(context_map={url: path})
    assert resolver.cached_entries() == []  # nothing read before it is needed
    ctx = await resolver.resolve(url)
    assert ctx.expand("a") == "https://ex.org/a" and ctx.source == url
    assert await resolver.resolve(url) is ctx
    [entry] = resolver.cached_entries()
    assert entry["URL"] == url and entry["kind"] == "cached"
    assert entry["localId"] == resolver.cached_entries()[0]["localId"] != url  # stable id
    assert entry["extraInfo"] == {"origin": "file", "path": path}
    assert entry["numberOfHits"] == 2 and entry["createdAt"].endswith("Z")
    assert await resolver.load_document(url) == {"@context": {"a": "https://ex.org/a"}}

    write(tmp_path / "ctx.jsonld", {"@context": {"a": "https://ex.org/changed"}})
    assert await resolver.resolve(url) is ctx  # cached until forgotten
    assert resolver.forget(url)
    assert (await resolver.resolve(url)).expand("a") == "https://ex.org/changed"
    assert not resolver.forget("https://ex.org/never-seen")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content", [None, "not json", {"no": "context"}, [1, 2]], ids=["missing", "json", "ctx", "arr"]
)
async def test_broken_context_map_file_is_503_naming_url_and_path(
    tmp_path: Path, content: Any, no_network: None
) -> None:
    url = "https://ex.org/broken.jsonld"
    path = tmp_path / "broken.jsonld"
    if content is not None:
        write(path, content)
    resolver = ContextResolver(context_map={url: str(path)})
    with pytest.raises(LdContextNotAvailable) as caught:
        await resolver.resolve(url)
    assert url in caught.value.detail and str(path) in caught.value.detail


@pytest.mark.anyio
async def test_nested_references_relative_urls_and_import(tmp_path: Path, no_network: None) -> None:
    base = "https://ex.org/ctx/"
    files_ = {
        "main.jsonld": {"@context": ["part.jsonld", {"m": "https://ex.org/m"}]},
        "part.jsonld": {"@context": {"@import": base + "imported.jsonld", "p": "https://ex.org/p"}},
        "imported.jsonld": {"@context": {"i": "https://ex.org/i", "p": "https://ex.org/old"}},
    }
    mapping = {base + name: write(tmp_path / name, doc) for name, doc in files_.items()}
    resolver = ContextResolver(context_map=mapping)
    ctx = await resolver.resolve(base + "main.jsonld")
    assert ctx.expand("m") == "https://ex.org/m"
    assert ctx.expand("p") == "https://ex.org/p"  # the importing context overrides the import
    assert ctx.expand("i") == "https://ex.org/i"
    assert {e["URL"] for e in resolver.cached_entries()} == set(mapping)
    assert resolver.forget(base + "imported.jsonld")
    assert await resolver.resolve(base + "main.jsonld") is not ctx  # rebuilt without stale part


@pytest.mark.anyio
async def test_hosted_contexts_resolve_through_the_loader(no_network: None) -> None:
    hosted = {
        "http://sinergia.local/ngsi-ld/v1/jsonldContexts/a": {
            "@context": [
                "http://sinergia.local/ngsi-ld/v1/jsonldContexts/b",
                {"a": "https://ex.org/a"},
            ]
        },
        "http://sinergia.local/ngsi-ld/v1/jsonldContexts/b": {
            "@context": {"b": "https://ex.org/b"}
        },
        "http://sinergia.local/ngsi-ld/v1/jsonldContexts/bad": {"nothing": "here"},
    }
    asked: list[str] = []

    async def loader(url: str) -> dict[str, Any] | None:
        asked.append(url)
        return hosted.get(url)

    resolver = ContextResolver(hosted_loader=loader, allow_remote=False)
    ctx = await resolver.resolve("http://sinergia.local/ngsi-ld/v1/jsonldContexts/a")
    assert ctx.expand("a") == "https://ex.org/a" and ctx.expand("b") == "https://ex.org/b"
    assert len(asked) == 2
    assert resolver.cached_entries() == []  # hosted ones are listed by the API, not as cached
    await resolver.resolve("http://sinergia.local/ngsi-ld/v1/jsonldContexts/a")
    assert len(asked) == 2
    with pytest.raises(InvalidLdContext):
        await resolver.resolve("http://sinergia.local/ngsi-ld/v1/jsonldContexts/bad")
    with pytest.raises(LdContextNotAvailable, match="disabled"):
        await resolver.resolve("http://sinergia.local/ngsi-ld/v1/jsonldContexts/gone")


# --- remote fetch, served by a local HTTP server ------------------------------------------------


class ContextServer:
    """A local HTTP server with counted routes; ``/gate/…`` routes hold the answer until the
    test sets ``release`` (and set ``arrived`` when a request comes in)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.routes: dict[str, Callable[[], tuple[int, bytes]]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.counts[self.path] += 1
                route = server.routes.get(self.path)
                if self.path.startswith("/gate/"):
                    server.arrived.set()
                    server.release.wait(30)
                status, body = route() if route else (404, b"not found")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/ld+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def json(self, path: str, document: Any) -> str:
        body = json.dumps(document).encode()
        self.routes[path] = lambda: (200, body)
        return self.base + path

    def raw(self, path: str, status: int, body: bytes) -> str:
        self.routes[path] = lambda: (status, body)
        return self.base + path


@pytest.fixture
def server() -> Iterator[ContextServer]:
    srv = ContextServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(5)


DOC = {"@context": {"remote": "https://ex.org/remote", "ex": "https://ex.org/"}}


@pytest.mark.anyio
async def test_remote_fetch_is_cached(server: ContextServer) -> None:
    url = server.json("/ctx.jsonld", DOC)
    resolver = ContextResolver(fetch_timeout=5)
    ctx = await resolver.resolve(url)
    assert (
        ctx.expand("remote") == "https://ex.org/remote"
        and ctx.compact("https://ex.org/zz") == "ex:zz"
    )
    assert await resolver.resolve(url) is ctx
    both = await resolver.resolve([url, {"x": "https://ex.org/x"}])
    assert both.expand("remote") == "https://ex.org/remote"
    assert await resolver.load_document(url) == DOC
    assert server.counts["/ctx.jsonld"] == 1
    [entry] = resolver.cached_entries()
    assert entry["URL"] == url and entry["extraInfo"]["origin"] == "remote"
    assert entry["numberOfHits"] >= 3

    assert resolver.forget(url)
    assert resolver.cached_entries() == []
    assert (await resolver.resolve(url)).expand("remote") == "https://ex.org/remote"
    assert server.counts["/ctx.jsonld"] == 2


@pytest.mark.anyio
async def test_remote_cache_expires_after_ttl(server: ContextServer) -> None:
    url = server.json("/ttl.jsonld", DOC)
    resolver = ContextResolver(fetch_timeout=5, cache_ttl=60)
    resolver.clock = clock = FakeClock()
    first = await resolver.resolve(url)
    clock.now += 59
    assert await resolver.resolve(url) is first
    assert server.counts["/ttl.jsonld"] == 1
    clock.now += 2
    assert await resolver.resolve(url) is not first
    assert server.counts["/ttl.jsonld"] == 2


@pytest.mark.anyio
async def test_timeout_fails_fast_is_remembered_then_recovers(server: ContextServer) -> None:
    url = server.json("/gate/slow.jsonld", DOC)
    resolver = ContextResolver(fetch_timeout=0.2, failure_ttl=30)
    resolver.clock = clock = FakeClock()
    started = time.perf_counter()
    with pytest.raises(LdContextNotAvailable) as caught:
        await resolver.resolve(url)
    assert time.perf_counter() - started < 10  # the server holds the answer for 30 s
    assert url in caught.value.detail and "0.2 s" in caught.value.detail
    assert server.arrived.is_set()

    # Within the failure TTL: answered from the failure cache, no new request.
    with pytest.raises(LdContextNotAvailable, match="within"):
        await resolver.resolve([url, {"x": "https://ex.org/x"}])
    assert server.counts["/gate/slow.jsonld"] == 1

    server.release.set()
    clock.now += 31
    ctx = await resolver.resolve(url)
    assert ctx.expand("remote") == "https://ex.org/remote"
    assert server.counts["/gate/slow.jsonld"] == 2


@pytest.mark.anyio
async def test_concurrent_resolves_share_one_fetch(server: ContextServer) -> None:
    url = server.json("/gate/shared.jsonld", DOC)
    resolver = ContextResolver(fetch_timeout=30)
    tasks = [asyncio.ensure_future(resolver.resolve(url)) for _ in range(10)]
    tasks += [asyncio.ensure_future(resolver.resolve([url, {"n": f"urn:n:{n}"}])) for n in range(3)]
    assert await anyio.to_thread.run_sync(server.arrived.wait, 30)
    server.release.set()
    contexts = await asyncio.gather(*tasks)
    assert server.counts["/gate/shared.jsonld"] == 1
    assert all(ctx is contexts[0] for ctx in contexts[:10])
    assert all(ctx.expand("remote") == "https://ex.org/remote" for ctx in contexts)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"{not json", InvalidLdContext),
        (200, b'{"no": "context"}', InvalidLdContext),
        (200, b'["https://ex.org/a"]', InvalidLdContext),
        (
            200,
            b'{"@context": {"x": {"@id": "https://ex.org/x", "@container": "@nope"}}}',
            InvalidLdContext,
        ),
        (200, b'{"@context": {"x": "' + b"y" * MAX_DOCUMENT_BYTES + b'"}}', InvalidLdContext),
        (404, b"not found", LdContextNotAvailable),
        (500, b"oops", LdContextNotAvailable),
    ],
    ids=["json", "no-context", "array", "bad-term", "too-big", "404", "500"],
)
async def test_bad_remote_documents(
    server: ContextServer, status: int, body: bytes, error: type[Exception]
) -> None:
    url = server.raw("/bad.jsonld", status, body)
    resolver = ContextResolver(fetch_timeout=5)
    with pytest.raises(error) as caught:
        await resolver.resolve(url)
    assert url in str(caught.value)
    with pytest.raises(error):
        await resolver.resolve(url)
    assert server.counts["/bad.jsonld"] == 1  # failures and fetched documents are remembered


@pytest.mark.anyio
async def test_nested_remote_contexts_use_the_same_path(server: ContextServer) -> None:
    server.json("/nested/inner.jsonld", {"@context": {"inner": "https://ex.org/inner"}})
    outer = server.json("/nested/outer.jsonld", {"@context": ["inner.jsonld", {"o": "urn:o"}]})
    resolver = ContextResolver(fetch_timeout=5)
    ctx = await resolver.resolve(outer)
    assert ctx.expand("inner") == "https://ex.org/inner" and ctx.expand("o") == "urn:o"
    assert {e["URL"] for e in resolver.cached_entries()} == {
        outer,
        server.base + "/nested/inner.jsonld",
    }


@pytest.mark.anyio
async def test_unreachable_and_disabled_remote(server: ContextServer) -> None:
    url = server.json("/ok.jsonld", DOC)
    with pytest.raises(LdContextNotAvailable, match="disabled"):
        await ContextResolver(allow_remote=False).resolve(url)
    assert server.counts["/ok.jsonld"] == 0

    dead = f"http://127.0.0.1:{closed_port()}/ctx.jsonld"
    with pytest.raises(LdContextNotAvailable) as caught:
        await ContextResolver(fetch_timeout=5).resolve(dead)
    assert dead in caught.value.detail


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["http://", "http://[::1", "https://"])
async def test_malformed_urls_are_400(url: str) -> None:
    with pytest.raises(InvalidLdContext):
        await ContextResolver(fetch_timeout=5).resolve(url)


@pytest.mark.anyio
async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(server: ContextServer) -> None:
    url = server.json("/gate/cancel.jsonld", DOC)
    resolver = ContextResolver(fetch_timeout=30)
    gone = asyncio.ensure_future(resolver.resolve(url))
    assert await anyio.to_thread.run_sync(server.arrived.wait, 30)
    gone.cancel()
    waiting = asyncio.ensure_future(resolver.resolve(url))
    server.release.set()
    ctx = await waiting
    assert gone.cancelled()
    assert ctx.expand("remote") == "https://ex.org/remote"
    assert server.counts["/gate/cancel.jsonld"] == 1
