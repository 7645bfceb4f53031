"""JSON-LD @context handling for NGSI-LD: resolve a request's context (bundled contexts,
configured URL→file map, hosted contexts, remote fetch with a short timeout and a cache),
process it once into term maps, and expand/compact names with plain dict look-ups.

PyLD processes each distinct context exactly once (in a worker thread); its document loader
only serves documents this module fetched beforehand, so PyLD itself never touches the network.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib.resources
import math
import ssl
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
import orjson
from pyld import iri_resolver, jsonld
from pyld.context_resolver import ContextResolver as _PyLdContextResolver

from sinergia.ngsild.errors import (
    InvalidLdContext,
    InvalidRemoteLdContext,
    LdContextNotAvailable,
    NgsiLdError,
)
from sinergia.ngsild.model import CORE_CONTEXT_URL

__all__ = [
    "BUNDLED_CONTEXTS",
    "CORE_CONTEXT_URL",
    "CORE_CONTEXT_URLS",
    "Context",
    "ContextResolver",
    "HostedLoader",
    "HostedScope",
]

# Returns the JSON document (a dict with "@context") stored for a URL this server hosts
# (POST /jsonldContexts), or None. Lets hosted contexts resolve without any HTTP request.
HostedLoader = Callable[[str], Awaitable[dict[str, Any] | None]]
# Names the partition (the tenant) the HostedLoader looks in for the current call: hosted
# documents differ per partition, so what is built from them is cached per partition.
HostedScope = Callable[[], str]
# A processed context's cache key: (partition, source key); partition None = built without any
# hosted document, so shared by every partition. A tuple, so no source string can forge one.
_CacheKey = tuple[str | None, str]


def _core_urls() -> frozenset[str]:
    names = ["ngsi-ld-core-context.jsonld"]
    for minor in range(10):
        names.append(f"ngsi-ld-core-context-v1.{minor}.jsonld")
        names.extend(f"ngsi-ld-core-context-v1.{minor}.{patch}.jsonld" for patch in range(10))
    return frozenset(
        f"{scheme}://uri.etsi.org/ngsi-ld/v1/{name}"
        for scheme in ("http", "https")
        for name in names
    )


# Every URL the core context has been published under; all served from the bundled v1.9 file.
CORE_CONTEXT_URLS = _core_urls()
_CORE_FILE = "ngsi-ld-core-context-v1.9.jsonld"

# The contexts that ship inside the package: URL → file in sinergia/data/jsonld/. They are
# always served from there (before hosted contexts, the file map or the network), never
# fetched and never listed as cached. The core context, applied last to every context, is
# also the base of all processing (see _core).
BUNDLED_CONTEXTS: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(sorted(CORE_CONTEXT_URLS), _CORE_FILE),
    # Sinergia's UrbanDataset (ENEA SCPS) vocabulary, named by the UrbanDataset adapter.
    "https://w3id.org/sinergia/urbandataset-context.jsonld": "urbandataset-context.jsonld",
})

MAX_DOCUMENT_BYTES = 1_000_000
MAX_CACHED_CONTEXTS = 1_000
MAX_CACHED_DOCUMENTS = 1_000
MAX_CACHED_FAILURES = 10_000
MAX_NESTED_URLS = 16
_MEMO_SIZE = 2_048
_ACCEPT = "application/ld+json, application/json;q=0.9, */*;q=0.1"
_KEYWORDS = frozenset(jsonld.KEYWORDS)
_GEN_DELIMS = (":", "/", "#")

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


# ---------------------------------------------------------------------------------------------
# Processed contexts


@dataclass(frozen=True, slots=True)
class _TermMaps:
    """What a processed context boils down to; shared by Contexts with the same meaning."""

    terms: dict[str, str]  # term → IRI (only terms mapped to an IRI, not keywords/null)
    inverse: dict[str, str]  # IRI → preferred term (shortest, then lexicographic)
    prefixes: tuple[tuple[str, str], ...]  # (prefix term, IRI) usable in compact IRIs
    prefix_map: dict[str, str]  # the same, for expansion
    vocab: str | None
    vocab_terms: frozenset[str]  # terms whose values are vocabulary IRIs (@type: @vocab)
    expand_memo: dict[str, str] = field(default_factory=dict)
    compact_memo: dict[str, str] = field(default_factory=dict)


def _maps_from_active(active: Mapping[str, Any]) -> _TermMaps:
    terms: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    vocab_terms: set[str] = set()
    for term, definition in active["mappings"].items():
        if not definition or definition.get("reverse"):
            continue
        iri = definition.get("@id")
        if not isinstance(iri, str) or iri.startswith("@"):
            continue  # null-mapped (falls back to @vocab) or a keyword alias like id/type
        terms[term] = iri
        if definition.get("_prefix") and ":" not in term:
            prefixes.append((term, iri))
        if definition.get("@type") == "@vocab":
            vocab_terms.add(term)
    inverse: dict[str, str] = {}
    for term in sorted(terms, key=lambda t: (len(t), t)):
        inverse.setdefault(terms[term], term)
    vocab = active.get("@vocab")
    return _TermMaps(
        terms=terms,
        inverse=inverse,
        prefixes=tuple(sorted(prefixes)),
        prefix_map=dict(prefixes),
        vocab=vocab if isinstance(vocab, str) else None,
        vocab_terms=frozenset(vocab_terms),
    )


def _memoize(memo: dict[str, str], key: str, value: str) -> str:
    if len(memo) >= _MEMO_SIZE:
        # Oldest first: plain dicts keep insertion order, which is good enough as an LRU here.
        memo.pop(next(iter(memo)), None)
    memo[key] = value
    return value


class Context:
    """A processed @context (always including the core context, whose terms win).

    ``source`` is what the client gave (URL string, list or dict; ``None`` = core only), kept to
    echo it back in ``@context``/``Link``. Expansion and compaction are dict look-ups cached
    per Context, so they are never the bottleneck.
    """

    source: Any
    key: str

    def __init__(self, source: Any, key: str, maps: _TermMaps, *, is_core: bool = False) -> None:
        self.source = source
        self.key = key
        self.is_core = is_core  # True when the context means exactly the core context
        self._maps = maps
        self._terms = maps.terms
        self._inverse = maps.inverse
        self._expand_memo = maps.expand_memo
        self._compact_memo = maps.compact_memo

    def __repr__(self) -> str:
        return f"Context({self.key!r}, {len(self._terms)} terms)"

    @property
    def vocab(self) -> str | None:
        """The effective ``@vocab`` (the core context's default vocabulary)."""
        return self._maps.vocab

    @property
    def terms(self) -> Mapping[str, str]:
        """Read-only view: every term this context defines → its IRI."""
        return MappingProxyType(self._terms)

    def is_vocab_term(self, term: str) -> bool:
        """Whether ``term`` is defined with ``@type: @vocab`` (its string values are IRIs)."""
        return term in self._maps.vocab_terms

    def expand(self, term: str) -> str:
        """Attribute name or type → IRI: a defined term, a compact IRI ``prefix:suffix``, an
        absolute IRI (unchanged), else ``@vocab`` + term."""
        iri = self._terms.get(term)
        if iri is not None:
            return iri
        iri = self._expand_memo.get(term)
        if iri is not None:
            return iri
        return _memoize(self._expand_memo, term, self._expand_uncached(term))

    def compact(self, iri: str) -> str:
        """IRI → the shortest name this context gives it (term, else ``prefix:suffix``, else
        the part after ``@vocab``, else the IRI itself)."""
        term = self._inverse.get(iri)
        if term is not None:
            return term
        term = self._compact_memo.get(iri)
        if term is not None:
            return term
        return _memoize(self._compact_memo, iri, self._compact_uncached(iri))

    def _expand_uncached(self, term: str) -> str:
        if term.startswith("@"):
            return term
        prefix, colon, suffix = term.partition(":")
        if colon:
            if prefix == "_" or suffix.startswith("//"):
                return term  # blank node or absolute IRI
            prefix_iri = self._maps.prefix_map.get(prefix)
            if prefix_iri is not None:
                return prefix_iri + suffix
            return term  # an IRI with an unknown scheme, e.g. urn:…
        vocab = self._maps.vocab
        return vocab + term if vocab is not None else term

    def _compact_uncached(self, iri: str) -> str:
        # JSON-LD order: the @vocab suffix is tried before compact IRIs, otherwise default-vocab
        # names would come back as "ngsi-ld:default-context/<name>".
        vocab = self._maps.vocab
        if vocab is not None and iri.startswith(vocab):
            rest = iri[len(vocab) :]
            if (
                rest
                and not rest.startswith("@")
                and not any(c in rest for c in _GEN_DELIMS)
                and rest not in self._terms
            ):
                return rest
        best: str | None = None
        for name, prefix_iri in self._maps.prefixes:
            if len(iri) <= len(prefix_iri) or not iri.startswith(prefix_iri):
                continue
            suffix = iri[len(prefix_iri) :]
            if suffix.startswith("//"):
                continue
            candidate = f"{name}:{suffix}"
            if candidate in self._terms:
                continue  # the candidate is itself a term meaning something else
            if best is None or (len(candidate), candidate) < (len(best), best):
                best = candidate
        return best if best is not None else iri


# ---------------------------------------------------------------------------------------------
# Preparing documents for PyLD


def _sanitize(value: Any) -> Any:
    """A fresh copy of a local context that PyLD can process without warnings or network:
    scoped contexts (``@context`` inside term definitions) are dropped — they only matter for
    nested values, which Sinergia never expands through JSON-LD — and so are terms PyLD would
    ignore with a warning (``@``-prefixed non-keywords)."""
    if isinstance(value, list):
        return [_sanitize(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, definition in value.items():
        if not isinstance(key, str):
            continue
        if key == "@context":
            out[key] = _sanitize(definition)
        elif key.startswith("@"):
            # "@version": 1.1 is implied (processing starts in 1.1 mode) and PyLD rejects it
            # inside an @import-ed context; any other value is left for PyLD to reject.
            if key in _KEYWORDS and not (key == "@version" and definition == 1.1):
                out[key] = definition
        elif isinstance(definition, str) and _reserved_non_keyword(definition):
            continue
        elif isinstance(definition, dict):
            target = definition.get("@id", definition.get("@reverse"))
            if isinstance(target, str) and _reserved_non_keyword(target):
                continue
            out[key] = {k: v for k, v in definition.items() if k != "@context"}
        else:
            out[key] = definition
    return out


def _reserved_non_keyword(value: str) -> bool:
    name = value[1:]
    return value.startswith("@") and name.isascii() and name.isalpha() and value not in _KEYWORDS


def _sanitize_document(document: dict[str, Any]) -> dict[str, Any]:
    return {"@context": _sanitize(document["@context"])}


def _referenced_urls(local: Any, base: str) -> Iterable[tuple[str, str]]:
    """(reference as written, absolute URL the way PyLD will ask for it) for every context URL
    a (sanitized) local context refers to directly: strings, list members, ``@import``."""
    items = local if isinstance(local, list) else [local]
    for item in items:
        if isinstance(item, str):
            yield item, _absolute(item, base)
        elif isinstance(item, dict):
            imported = item.get("@import")
            if isinstance(imported, str):
                # PyLD resolves @import against the processing base, not the document's URL.
                yield imported, _absolute(imported, "")


def _absolute(ref: str, base: str) -> str:
    try:
        return str(iri_resolver.resolve(ref, base))
    except ValueError:
        raise InvalidLdContext(
            f"the @context reference {ref!r} is not an absolute URL"
            + (f" (in the @context {base})" if base else "")
        ) from None


def _parse_document(url: str, body: bytes, where: str) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidLdContext(f"the @context {url} ({where}) is not valid JSON: {exc}") from None
    _check_document(url, document, where)
    return document  # type: ignore[no-any-return]


def _check_document(url: str, document: Any, where: str) -> None:
    if not isinstance(document, dict) or "@context" not in document:
        raise InvalidLdContext(
            f"the @context {url} ({where}) is not a JSON object with an @context member"
        )
    if not isinstance(document["@context"], str | list | dict):
        raise InvalidLdContext(
            f"the @context {url} ({where}) has an @context that is not a URL, array or object"
        )


# ---------------------------------------------------------------------------------------------
# PyLD processing (synchronous; runs in a worker thread)


class _MissingDocumentError(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _loader_for(documents: Mapping[str, dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def load(url: str, options: Any = None) -> dict[str, Any]:
        document = documents.get(url)
        if document is None:
            if url not in CORE_CONTEXT_URLS:
                raise _MissingDocumentError(url)
            document = _core().local
        # PyLD rewrites the documents it is given, so it always gets its own copy.
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": copy.deepcopy(document),
            "contentType": "application/ld+json",
        }

    return load


def _process(
    base_active: Any, locals_: list[Any], documents: Mapping[str, dict[str, Any]], label: str
) -> Any:
    """Apply local contexts in order on top of ``base_active`` and return the active context.

    ``override_protected`` makes PyLD lenient about protected core terms: a user context may
    (re)define them, and the core context, applied last, silently restores its own meaning."""
    loader = _loader_for(documents)
    processor = jsonld.JsonLdProcessor()
    options = {
        "base": "",
        "documentLoader": loader,
        "contextResolver": _PyLdContextResolver({}, loader),
    }
    active = base_active
    try:
        for local in locals_:
            active = processor._process_context(active, local, options, override_protected=True)
    except Exception as exc:
        missing = _find_cause(exc, _MissingDocumentError)
        if missing is not None:
            raise LdContextNotAvailable(
                f"the @context {missing.url} was needed while processing but not loaded"
            ) from None
        detail = f"the @context {label} is not a valid JSON-LD context: {_describe(exc)}"
        raise InvalidLdContext(detail) from None
    return active


def _find_cause(exc: BaseException, kind: type[T]) -> T | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, jsonld.JsonLdError):
        message = exc.args[0] if exc.args else "invalid context"
        code = getattr(exc, "code", None)
        details = getattr(exc, "details", None)
        term = details.get("term") if isinstance(details, dict) else None
        extra = f" (term {term!r})" if term else ""
        return f"{message}{extra}" + (f" [{code}]" if code else "")
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class _CoreState:
    document: dict[str, Any]  # the bundled file, as published
    local: dict[str, Any]  # sanitized, as given to PyLD
    active: Any  # PyLD's active context after the core context
    maps: _TermMaps
    context: Context


@functools.cache
def _bundled_document(name: str) -> dict[str, Any]:
    """A bundled file, parsed once. Shared: callers copy before changing anything."""
    resource = importlib.resources.files("sinergia").joinpath("data/jsonld/" + name)
    document = orjson.loads(resource.read_bytes())
    _check_document(name, document, "bundled")
    return document  # type: ignore[no-any-return]


@functools.cache
def _core() -> _CoreState:
    document = copy.deepcopy(_bundled_document(_CORE_FILE))
    local = _sanitize_document(document)
    loader = _loader_for({})
    processor = jsonld.JsonLdProcessor()
    options = {
        "base": "",
        "documentLoader": loader,
        "contextResolver": _PyLdContextResolver({}, loader),
    }
    active = processor.process_context(processor._get_initial_context(options), local, options)
    maps = _maps_from_active(active)
    context = Context(None, CORE_CONTEXT_URL, maps, is_core=True)
    return _CoreState(document, local, active, maps, context)


def _stable_key(source: list[Any] | dict[str, Any]) -> str:
    try:
        return orjson.dumps(source, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise InvalidLdContext(f"the @context is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The resolver


@dataclass(slots=True)
class _Document:
    url: str
    document: dict[str, Any]
    origin: str  # "remote", "file" (context_map), "hosted" or "bundled"
    created_at: float  # wall clock
    expires: float  # resolver clock; math.inf = until forgotten
    last_used: float  # wall clock
    hits: int = 0
    path: str | None = None


@dataclass(slots=True)
class _Entry:
    context: Context
    expires: float
    urls: frozenset[str]  # every context URL it was built from
    documents: tuple[_Document, ...]  # the cached ones among them, to count their use


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building one costs ~0.1 s (CA bundle); share it between the short-lived clients.
    return httpx.create_ssl_context()


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class ContextResolver:
    def __init__(
        self,
        *,
        context_map: dict[str, str] | None = None,
        fetch_timeout: float = 3.0,
        cache_ttl: float = 86_400.0,
        failure_ttl: float = 30.0,
        allow_remote: bool = True,
        hosted_loader: HostedLoader | None = None,
        hosted_scope: HostedScope | None = None,
    ) -> None:
        self._context_map = dict(context_map or {})
        # The clock used for cache expiry; tests replace it to step over TTLs without sleeping.
        self.clock: Callable[[], float] = time.monotonic
        self._fetch_timeout = fetch_timeout
        self._cache_ttl = cache_ttl
        self._failure_ttl = failure_ttl
        self._allow_remote = allow_remote
        self._hosted_loader = hosted_loader
        self._hosted_scope: HostedScope = hosted_scope or (lambda: "")  # one partition
        self._core_context = _core().context
        self._contexts: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        self._documents: OrderedDict[str, _Document] = OrderedDict()
        self._failures: dict[str, tuple[float, NgsiLdError]] = {}
        self._loading: dict[str, asyncio.Future[_Document]] = {}
        self._building: dict[_CacheKey, asyncio.Future[Context]] = {}

    @property
    def core(self) -> Context:
        return self._core_context

    async def resolve(self, source: Any) -> Context:
        """Process ``source`` (a URL, a list of URLs/objects, an object, or None = core).
        Raises LdContextNotAvailable (503) when a remote context cannot be had in time and
        InvalidLdContext (400) when it is not a valid JSON-LD context."""
        if source is None:
            return self._core_context
        if isinstance(source, str):
            if source.startswith(("[", "{")):
                raise InvalidLdContext(f"the @context {source[:100]!r} is not a URL")
            key = source
        elif isinstance(source, list | dict):
            key = _stable_key(source)
        else:
            raise InvalidLdContext(
                "the @context must be a URL, an array of URLs and objects, or an object"
            )
        scope = self._hosted_scope()
        for cache_key in ((scope, key), (None, key)):
            entry = self._contexts.get(cache_key)
            if entry is not None and entry.expires > self.clock():
                self._contexts.move_to_end(cache_key)
                if entry.documents:
                    now = time.time()
                    for document in entry.documents:
                        document.hits += 1
                        document.last_used = now
                return entry.context
        # One build per partition: a build loads hosted documents of the caller's partition.
        return await self._shared(self._building, (scope, key),
                                  lambda: self._build(source, key, scope))

    def cached_entries(self) -> list[dict[str, Any]]:
        """The remote (and context_map) documents currently cached, for GET /jsonldContexts
        with ``kind=cached``: URL, localId (stable per URL), kind, createdAt, lastUsage,
        numberOfHits, extraInfo. Times are ISO 8601 UTC strings."""
        now = self.clock()
        entries = []
        for document in self._documents.values():
            if document.expires <= now:
                continue
            extra: dict[str, Any] = {"origin": document.origin}
            if document.path is not None:
                extra["path"] = document.path
            if document.expires != math.inf:
                extra["expiresIn"] = round(document.expires - now, 3)
            entries.append(
                {
                    "URL": document.url,
                    "localId": str(uuid.uuid5(uuid.NAMESPACE_URL, document.url)),
                    "kind": "cached",
                    "createdAt": _iso(document.created_at),
                    "lastUsage": _iso(document.last_used),
                    "numberOfHits": document.hits,
                    "extraInfo": extra,
                }
            )
        return entries

    def cached_document(self, url: str) -> dict[str, Any] | None:
        """A copy of the document :meth:`cached_entries` lists for ``url``, or None."""
        document = self._documents.get(url)
        if document is None or document.expires <= self.clock():
            return None
        return copy.deepcopy(document.document)

    def forget(self, url: str) -> bool:
        """Drop ``url`` from every cache (document, failure, processed contexts built from it);
        the next resolve loads it afresh. Returns whether anything was cached."""
        dropped = self._documents.pop(url, None) is not None
        dropped = self._failures.pop(url, None) is not None or dropped
        stale = [
            key for key, entry in self._contexts.items() if url in entry.urls or key[1] == url
        ]
        for key in stale:
            del self._contexts[key]
        return dropped or bool(stale)

    async def load_document(self, url: str) -> dict[str, Any]:
        """The JSON document (with ``@context``) behind ``url``, loaded like ``resolve`` would
        (bundled core, context_map, hosted, cache, remote fetch). Returns a copy."""
        if url in CORE_CONTEXT_URLS:
            return copy.deepcopy(_core().document)
        document = await self._document(url)
        return copy.deepcopy(document.document)

    # -- building ---------------------------------------------------------------------------

    async def _build(self, source: Any, key: str, scope: str) -> Context:
        source = copy.deepcopy(source)
        local = _sanitize(source)
        if isinstance(local, list):
            for item in local:
                if item is not None and not isinstance(item, str | dict):
                    raise InvalidLdContext(
                        "the members of an @context array must be URLs, objects or null"
                    )
        core = _core()
        members = local if isinstance(local, list) else [local]
        if all(isinstance(url, str) and url in CORE_CONTEXT_URLS for url in members):
            # Only core URLs: nothing to process, share the core's maps (and memos).
            context = Context(source, key, core.maps, is_core=True)
            self._remember((None, key), _Entry(context, math.inf, frozenset(), ()))
            return context

        documents = await self._gather(local)
        sanitized = {url: _sanitize_document(doc.document) for url, doc in documents.items()}
        if isinstance(source, str):
            label = source
        else:
            label = "given in the request"
            if documents:
                label += " (with " + ", ".join(documents) + ")"
        active = await asyncio.to_thread(
            _process, core.active, [local, core.local], sanitized, label
        )
        context = Context(source, key, _maps_from_active(active))
        cached = tuple(doc for doc in documents.values() if doc.origin in ("remote", "file"))
        expires = min((doc.expires for doc in cached), default=math.inf)
        hosted = any(doc.origin == "hosted" for doc in documents.values())
        self._remember((scope if hosted else None, key),
                       _Entry(context, expires, frozenset(documents), cached))
        return context

    def _remember(self, key: _CacheKey, entry: _Entry) -> None:
        self._contexts[key] = entry
        self._contexts.move_to_end(key)
        while len(self._contexts) > MAX_CACHED_CONTEXTS:
            self._contexts.popitem(last=False)

    async def _gather(self, local: Any) -> dict[str, _Document]:
        """Load every document ``local`` refers to, transitively; siblings concurrently."""
        found: dict[str, _Document] = {}
        pending: list[tuple[Any, str]] = [(local, "")]
        while pending:
            wanted: list[str] = []
            for value, base in pending:
                for _, url in _referenced_urls(value, base):
                    if url not in CORE_CONTEXT_URLS and url not in found and url not in wanted:
                        wanted.append(url)
            if len(found) + len(wanted) > MAX_NESTED_URLS:
                raise InvalidLdContext(
                    f"the @context refers to more than {MAX_NESTED_URLS} other contexts"
                )
            loaded = await asyncio.gather(*(self._document(url) for url in wanted))
            pending = []
            for url, document in zip(wanted, loaded, strict=True):
                found[url] = document
                pending.append((_sanitize(document.document["@context"]), url))
        return found

    # -- loading documents ------------------------------------------------------------------

    async def _document(self, url: str) -> _Document:
        bundled = BUNDLED_CONTEXTS.get(url)
        if bundled is not None:
            now = time.time()
            return _Document(url, _bundled_document(bundled), "bundled", now, math.inf, now, 1)
        if self._hosted_loader is not None and url not in self._context_map:
            # Hosted documents belong to the caller's partition: looked up on every load,
            # ahead of (and never put in) the document, failure and single-flight tables,
            # which every partition shares.
            hosted = await self._hosted_loader(url)
            if hosted is not None:
                _check_document(url, hosted, "hosted")
                now = time.time()
                return _Document(url, hosted, "hosted", now, math.inf, now, 1)
        cached = self._documents.get(url)
        now = self.clock()
        if cached is not None:
            if cached.expires > now:
                cached.hits += 1
                cached.last_used = time.time()
                return cached
            del self._documents[url]
        failure = self._failures.get(url)
        if failure is not None:
            if failure[0] > now:
                error = failure[1]
                raise type(error)(error.detail)
            del self._failures[url]
        return await self._shared(self._loading, url, lambda: self._load(url))

    async def _load(self, url: str) -> _Document:
        if url in self._context_map:
            try:
                return self._store(self._read_mapped(url))
            except LdContextNotAvailable as error:
                self._remember_failure(url, error)
                raise
        if not url.startswith(("http://", "https://")):
            raise InvalidLdContext(f"the @context {url!r} is not an http(s) URL")
        if not self._allow_remote:
            raise LdContextNotAvailable(
                f"the @context {url} is not available locally and fetching remote "
                "@contexts is disabled"
            )
        try:
            document = await self._fetch(url)
        except (LdContextNotAvailable, InvalidLdContext) as error:
            # A burst of requests naming a dead or broken URL must not each wait for it.
            self._remember_failure(url, error)
            raise
        now = time.time()
        expires = self.clock() + self._cache_ttl
        return self._store(_Document(url, document, "remote", now, expires, now, 1))

    def _store(self, document: _Document) -> _Document:
        self._documents[document.url] = document
        while len(self._documents) > MAX_CACHED_DOCUMENTS:
            self._documents.popitem(last=False)
        return document

    def _remember_failure(self, url: str, error: NgsiLdError) -> None:
        if self._failure_ttl <= 0:
            return
        now = self.clock()
        if len(self._failures) >= MAX_CACHED_FAILURES:
            for stale in [u for u, (until, _) in self._failures.items() if until <= now]:
                del self._failures[stale]
            while len(self._failures) >= MAX_CACHED_FAILURES:
                self._failures.pop(next(iter(self._failures)))
        self._failures[url] = (now + self._failure_ttl, error)

    def _read_mapped(self, url: str) -> _Document:
        path = self._context_map[url]
        where = f"mapped to the file {path}"
        try:
            with open(path, "rb") as stream:
                body = stream.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise LdContextNotAvailable(
                f"the @context {url} is {where}, which cannot be read: {exc.strerror or exc}"
            ) from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise LdContextNotAvailable(f"the @context {url} is {where}, which is over 1 MB")
        try:
            document = _parse_document(url, body, where)
        except InvalidLdContext as exc:
            # A broken local file is the server's fault, not the client's.
            raise LdContextNotAvailable(exc.detail) from None
        now = time.time()
        return _Document(url, document, "file", now, math.inf, now, 1, path)

    async def _fetch(self, url: str) -> dict[str, Any]:
        tls = await asyncio.to_thread(_tls_context)
        try:
            async with asyncio.timeout(self._fetch_timeout):
                body = await self._download(url, tls)
        except TimeoutError:
            raise LdContextNotAvailable(
                f"the @context {url} could not be fetched within {self._fetch_timeout:g} s"
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise InvalidLdContext(f"the @context {url!r} is not a valid URL: {exc}") from None
        except (httpx.HTTPError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise LdContextNotAvailable(
                f"the @context {url} could not be fetched: {reason}"
            ) from None
        try:
            return _parse_document(url, body, "fetched")
        except InvalidLdContext as exc:
            raise InvalidRemoteLdContext(exc.detail) from None

    async def _download(self, url: str, tls: ssl.SSLContext) -> bytes:
        too_large = InvalidLdContext(
            f"the @context {url} is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
        async with (
            httpx.AsyncClient(
                timeout=self._fetch_timeout, follow_redirects=True, verify=tls
            ) as client,
            client.stream("GET", url, headers={"Accept": _ACCEPT}) as response,
        ):
            if response.status_code != 200:
                raise LdContextNotAvailable(
                    f"the @context {url} could not be fetched: HTTP {response.status_code}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
                raise too_large
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise too_large
            return bytes(body)

    # -- single flight ----------------------------------------------------------------------

    async def _shared(
        self,
        table: dict[K, asyncio.Future[T]],
        key: K,
        start: Callable[[], Coroutine[Any, Any, T]],
    ) -> T:
        """Run ``start()`` once for concurrent callers with the same key. The work runs as its
        own task, so a caller that is cancelled (client gone) does not cancel it for others."""
        task = table.get(key)
        if task is not None and task.get_loop() is not asyncio.get_running_loop():
            task = None  # left over from an event loop that is gone (tests, app restarts)
        if task is None:
            task = asyncio.ensure_future(start())
            table[key] = task

            def done(finished: asyncio.Future[T]) -> None:
                if table.get(key) is finished:
                    del table[key]
                if not finished.cancelled():
                    finished.exception()  # retrieved: no "never retrieved" noise if unawaited

            task.add_done_callback(done)
        try:
            return await asyncio.shield(task)
        except NgsiLdError as error:
            # Each caller gets its own exception object (tracebacks are per raise).
            raise type(error)(error.detail) from None
