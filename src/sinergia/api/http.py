"""The NGSI-LD HTTP conventions every endpoint shares: tenant header, body reading with a size
limit, JSON-LD @context from the Link header or the body, content negotiation, and JSON
responses with the context as a Link header or an ``@context`` member."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.entity import is_uri
from sinergia.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    NgsiLdError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from sinergia.ngsild.model import CORE_CONTEXT_URL

JSON: Final = "application/json"
JSON_LD: Final = "application/ld+json"
GEO_JSON: Final = "application/geo+json"
MERGE_PATCH: Final = "application/merge-patch+json"
CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADER: Final = "ngsild-tenant"

# Far deeper than any NGSI-LD document, and shallow enough that what we store (the body
# wrapped a few levels deeper) stays within what orjson will serialise (254 levels).
MAX_JSON_DEPTH: Final = 100

_TENANT_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


@dataclass(frozen=True, slots=True)
class CallContext:
    """What every handler needs to know about the call, besides its own parameters."""

    tenant: str
    ctx: Context
    accept: str


def tenant_of(request: Request) -> str:
    return checked_tenant(request.headers.get(TENANT_HEADER, ""))


def checked_tenant(tenant: str) -> str:
    """The ``NGSILD-Tenant`` header's value (``""``: the default tenant), if well formed."""
    if tenant and not _TENANT_RE.match(tenant):
        raise BadRequestData(
            "NGSILD-Tenant must be 1-64 letters, digits, '_' or '-'; got " + repr(tenant[:80]))
    return tenant


def uri_param(request: Request, name: str, what: str) -> str:
    """The path parameter ``name``, which must be a URI (BadRequestData naming ``what``)."""
    value: str = request.path_params[name]
    if not is_uri(value):
        raise BadRequestData(f"{what} id {value[:200]!r} is not a URI")
    return value


def link_context_url(request: Request) -> str | None:
    """The @context URL of a ``Link`` header with the JSON-LD context relation, if any."""
    return context_url_of_link(request.headers.get("link"))


def context_url_of_link(header: str | None) -> str | None:
    """:func:`link_context_url` of the ``Link`` header's value."""
    if not header:
        return None
    for match in _LINK_RE.finditer(header):
        url, params = match.group(1).strip(), match.group(2)
        if CONTEXT_REL in params:
            if not url:
                raise BadRequestData("The Link header names an empty @context URL")
            return url
    return None


def negotiate(request: Request, *, geojson: bool = False) -> str:
    """The response media type from ``Accept`` (406 when nothing we produce is acceptable)."""
    return negotiate_accept(request.headers.get("accept"), geojson=geojson)


def negotiate_accept(header: str | None, *, geojson: bool = False) -> str:
    """:func:`negotiate` on the ``Accept`` header's value.

    ETSI GS CIM 009 6.3.4: of the representations the operation offers, in the order
    JSON, JSON-LD, GeoJSON, the first one the header accepts wins, unless weights decide
    otherwise. Each offer takes its weight from the most specific range naming it (RFC 9110
    5.3.2), so ``application/json;q=0, */*`` refuses JSON even though ``*/*`` would allow it.
    """
    if not header or not header.strip():
        return JSON
    offers = (JSON, JSON_LD, GEO_JSON) if geojson else (JSON, JSON_LD)
    ranges = [_media_range(part) for part in header.split(",") if part.strip()]
    best, best_q = None, 0.0
    for offer in offers:  # list order breaks ties: only a strictly higher weight wins
        quality = _weight_of(offer, ranges)
        if quality > best_q:
            best, best_q = offer, quality
    if best is None:
        raise NotAcceptable(f"Accept {header!r} names no representation this endpoint "
                            f"produces ({', '.join(offers)})")
    return best


def _media_range(part: str) -> tuple[str, float]:
    fields = [f.strip() for f in part.split(";")]
    quality = 1.0
    for param in fields[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            # a malformed weight is ignored: the range keeps the default weight
            with contextlib.suppress(ValueError):
                quality = min(max(float(value), 0.0), 1.0)
    return fields[0].lower(), quality


def _weight_of(offer: str, ranges: list[tuple[str, float]]) -> float:
    """The weight of ``offer``: that of its most specific matching range, or 0."""
    kind = offer.split("/", 1)[0] + "/*"
    best_rank, weight = 0, 0.0
    for media, quality in ranges:
        rank = 3 if media == offer else 2 if media == kind else 1 if media == "*/*" else 0
        if rank > best_rank or (rank == best_rank and rank > 0 and quality > weight):
            best_rank, weight = rank, quality
    return weight


async def read_body(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge(f"The body has {length} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON document was expected")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if _nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise InvalidRequest(f"The request body nests arrays and objects deeper than "
                             f"{MAX_JSON_DEPTH} levels")
    return body


# Every byte but the structural ones the depth check needs, deleted by one bytes.translate.
_NOT_STRUCTURAL: Final = bytes(b for b in range(256) if b not in b'"[]{}')
_AS_PARENS: Final = bytes.maketrans(b"[]{}", b"()()")


def _nests_deeper_than(raw: bytes, limit: int) -> bool:
    """True when the JSON text ``raw`` (already known to be valid) has more than ``limit``
    levels of arrays/objects. Computed on the text with bytes methods, which run in C: a
    walk of the parsed value in Python cost half as much as parsing the body. The text is
    cut to its brackets (strings removed, as they may hold brackets), then innermost pairs
    are removed level by level: the levels it takes to empty it are the depth."""
    if b"\\" in raw:  # (a byte search: far cheaper than the replaces, which most bodies skip)
        # Escaped backslashes first (paired from the left, as JSON reads them), then escaped
        # quotes: what is left of the quotes opens and closes strings.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = raw.translate(None, _NOT_STRUCTURAL)
    # A string is now '"' + its brackets + '"': the empty ones go at C speed. Removing '""'
    # that closes one string and opens the next merges two strings into one, as good.
    text = text.replace(b'""', b"")
    if b'"' in text:  # strings holding brackets: keep what lies between them
        text = b"".join(text.split(b'"')[::2])
    brackets = text.translate(_AS_PARENS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


async def json_body(request: Request, resolver: ContextResolver, max_bytes: int
                    ) -> tuple[Any, Context]:
    """Read and parse a JSON body and find its @context per the NGSI-LD rules."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # ETSI GS CIM 009 6.3.4: every PATCH may also be sent as application/merge-patch+json
    allowed = (JSON, JSON_LD, MERGE_PATCH) if request.method == "PATCH" else (JSON, JSON_LD)
    if media not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not supported; use {' or '.join(allowed)}")
    body = parse_json(await read_body(request, max_bytes))
    link = link_context_url(request)
    if media == JSON_LD:
        if link is not None:
            raise BadRequestData("With Content-Type application/ld+json the @context goes in "
                                 "the body; a JSON-LD Link header is not allowed too")
        source = _body_context(body)
        if source is None:
            raise BadRequestData("Content-Type application/ld+json requires an @context "
                                 "member in the body")
    else:
        if _has_context_member(body):
            raise BadRequestData(f"With Content-Type {media} the @context goes in a Link "
                                 "header; an @context member in the body needs "
                                 "application/ld+json")
        source = link
    return body, await resolver.resolve(source)


async def batch_body(request: Request, resolver: ContextResolver, max_bytes: int
                     ) -> tuple[Any, list[Context | NgsiLdError]]:
    """The body of a batch operation and the @context of each of its items. With
    application/ld+json every entity carries its own @context (ETSI GS CIM 009 6.3.5), so
    one that is missing or cannot be had fails that entity alone (5.6.7.4: it is reported
    in the 207 errors), not the batch."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != JSON_LD:
        body, ctx = await json_body(request, resolver, max_bytes)
        return body, [ctx] * len(body) if isinstance(body, list) else []
    if link_context_url(request) is not None:
        raise BadRequestData("With Content-Type application/ld+json the @context goes in "
                             "the body; a JSON-LD Link header is not allowed too")
    body = parse_json(await read_body(request, max_bytes))
    if not isinstance(body, list):
        return body, []
    contexts: list[Context | NgsiLdError] = []
    for item in body:
        if not isinstance(item, dict):  # batch delete: ids, which need no @context
            contexts.append(await resolver.resolve(None))
            continue
        source = item.get("@context")
        if source is None:
            contexts.append(BadRequestData("Content-Type application/ld+json requires an "
                                           "@context member in each entity"))
            continue
        try:
            contexts.append(await resolver.resolve(source))
        except NgsiLdError as error:
            contexts.append(error)
    return body, contexts


def _has_context_member(body: Any) -> bool:
    if isinstance(body, dict):
        return "@context" in body
    return isinstance(body, list) and any(isinstance(i, dict) and "@context" in i
                                          for i in body)


def _body_context(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("@context")
    if isinstance(body, list) and body and all(isinstance(i, dict) for i in body):
        # batch bodies: every entity carries its own @context; they must agree to share one
        contexts = [item.get("@context") for item in body]
        first = contexts[0]
        if first is not None and all(c == first for c in contexts):
            return first
    return None


async def request_context(request: Request, resolver: ContextResolver) -> Context:
    """The @context of a request without a body (GET, DELETE): from the Link header."""
    return await resolver.resolve(link_context_url(request))


def context_url(ctx: Context) -> str:
    source = ctx.source
    if isinstance(source, str):
        return source
    if isinstance(source, list) and len(source) == 1 and isinstance(source[0], str):
        return str(source[0])
    return CORE_CONTEXT_URL


def link_header(ctx: Context) -> str:
    return f'<{context_url(ctx)}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"'


def with_context(body: Any, ctx: Context, accept: str) -> Any:
    """Add ``@context`` to each object of the body when the client accepts JSON-LD."""
    if accept != JSON_LD:
        return body
    source = ctx.source if ctx.source is not None else CORE_CONTEXT_URL
    if isinstance(body, dict):
        return {**body, "@context": source}
    if isinstance(body, list):
        return [{**item, "@context": source} if isinstance(item, dict) else item
                for item in body]
    return body


def json_response(body: Any, call: CallContext, *, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    payload = orjson.dumps(with_context(body, call.ctx, call.accept))
    return serialized_response(payload, call, status=status, headers=headers)


def serialized_response(payload: bytes, call: CallContext, *, status: int = 200,
                        headers: dict[str, str] | None = None) -> Response:
    """:func:`json_response` for a body already serialised (``@context`` members included)."""
    out_headers = dict(headers or {})
    if call.accept != JSON_LD:
        # One Link header may carry several links: the @context and the page links.
        page_links = out_headers.get("Link")
        out_headers["Link"] = link_header(call.ctx) + (f", {page_links}" if page_links else "")
    return Response(payload, status_code=status, headers=out_headers, media_type=call.accept)


def raw_json_headers(payload: bytes, call: CallContext) -> list[tuple[bytes, bytes]]:
    """The ASGI headers :func:`serialized_response` gives ``payload`` (no other headers),
    for a handler that answers without building a Response."""
    headers = ([] if call.accept == JSON_LD
               else [(b"link", link_header(call.ctx).encode("latin-1"))])
    headers += [(b"content-length", str(len(payload)).encode()),
                (b"content-type", call.accept.encode("latin-1"))]
    return headers


def plain_json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None,
               media_type: str = JSON) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type=media_type)


def no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)


def prefers_plain_json(request: Request) -> bool:
    """``Prefer: body=json`` (RFC 7240, ETSI GS CIM 009 6.3.6): the client wants the
    @context in a Link header rather than in a GeoJSON body."""
    for header in request.headers.getlist("prefer"):
        for preference in header.split(","):
            name, _, value = preference.strip().partition("=")
            if name.strip().lower() == "body" and value.strip().strip('"').lower() == "json":
                return True
    return False


def geojson_response(body: dict[str, Any], call: CallContext, request: Request, *,
                     headers: dict[str, str] | None = None) -> Response:
    """A GeoJSON answer. ETSI GS CIM 009 6.3.6: its body carries the @context, unless the
    client sent ``Prefer: body=json``; then the Link header does."""
    out_headers = dict(headers or {})
    if prefers_plain_json(request):
        page_links = out_headers.get("Link")
        out_headers["Link"] = link_header(call.ctx) + (f", {page_links}" if page_links else "")
        out_headers["Preference-Applied"] = "body=json"
    else:
        body = {**body, "@context": call.ctx.source if call.ctx.source is not None
                else CORE_CONTEXT_URL}
    return plain_json(body, headers=out_headers, media_type=GEO_JSON)
