"""The one way adapters write: a :class:`BrokerClient` that upserts and deletes NGSI-LD entities
through the broker's public operations, never through a storage backend.

Two implementations share the protocol:

* :class:`InProcessBroker` runs the broker's own batch use case (``EntityService.batch``) on
  entities parsed with the same code as the HTTP API, for imports into a local database without
  a server;
* :class:`HttpBroker` posts to ``/ngsi-ld/v1/entityOperations/upsert`` (and ``/delete``) of a
  running ``sinergia serve`` or any NGSI-LD broker, in chunks, and reads its 207 reports.

Histories go through the temporal API: :meth:`BrokerClient.add_history` records instances with
their own ``observedAt`` (``POST /temporal/entities``, which also brings the current state up
to date with the latest instances) and :meth:`BrokerClient.temporal_query` reads every instance
of a type in a period back, following the broker's pages (entity pages by limit/offset, and
206 ``Content-Range`` pages within a long history) so that nothing is left out.

Entities are NGSI-LD, normalized or concise. Their @context is, in this order of precedence, the
entity's own ``@context`` member, the ``context`` argument of :meth:`BrokerClient.upsert`
(given once for all entities: a URL, a list, or an inline object), or the core context.
Either way the result is a :class:`BatchReport` naming every id that succeeded and every one
that failed with the broker's error title and detail: one bad entity never sinks the others.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Protocol, Self

import httpx
import orjson

from sinergia.broker.batch import parse_batch_items
from sinergia.broker.contexts import current_tenant
from sinergia.broker.entities import BatchOp, EntityService
from sinergia.broker.temporal import Selection, TemporalService
from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.errors import BadRequestData, NgsiLdError
from sinergia.ngsild.qlang import parse_type_expr, resolve_types
from sinergia.ngsild.temporal import (
    TimeFilter,
    next_page_filter,
    parse_temporal_entity,
    parse_time,
    render_temporal,
)

# A JSON-LD @context as an adapter gives it: a URL, a list of URLs/objects, an object, or None
# for the core context alone.
ContextSource = str | list[Any] | dict[str, Any] | None

DEFAULT_CHUNK = 1000
# Entities per page of a temporal query: within every NGSI-LD broker's maximum page size.
TEMPORAL_PAGE = 100
_BATCH_PATH = "/ngsi-ld/v1/entityOperations/"
_TEMPORAL_PATH = "/ngsi-ld/v1/temporal/entities"
_TEMPORAL_QUERY_PATH = "/ngsi-ld/v1/temporal/entityOperations/query"
_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
# "date-time 2026-11-20T00:00:00.000Z-2026-11-20T06:00:00.000Z/*": the first time ends at its Z
_CONTENT_RANGE: Final = re.compile(r"^\s*date-time\s+(.+?Z)-(.+?Z)\s*/")
_ENTITY_MEMBERS: Final = frozenset({"id", "type", "scope", "@context", "createdAt",
                                    "modifiedAt"})


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """One entity the broker refused, with the ProblemDetails it gave (``problem_type`` is
    the NGSI-LD error type URI, e.g. ``…/errors/BadRequestData``)."""

    entity_id: str
    title: str
    detail: str
    problem_type: str = ""

    @classmethod
    def of(cls, entity_id: str, error: NgsiLdError) -> BatchFailure:
        return cls(entity_id, error.title, error.detail, error.type_uri)


@dataclass(slots=True)
class BatchReport:
    """What a write did: the ids that succeeded, and a failure for each that did not."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[BatchFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, other: BatchReport) -> None:
        self.succeeded.extend(other.succeeded)
        self.failed.extend(other.failed)

    def fail_all(self, ids: Sequence[str], title: str, detail: str,
                 problem_type: str = "") -> None:
        self.failed.extend(BatchFailure(i, title, detail, problem_type) for i in ids)


class BrokerClient(Protocol):
    """Where adapters write. Implementations never raise for a refused entity (that is a
    failure in the report); they raise :class:`BrokerUnavailable` when the broker cannot be
    reached at all."""

    async def upsert(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                     context: ContextSource = None, update: bool = False) -> BatchReport:
        """Create or replace each entity (``update=True``: merge its attributes into the
        existing entity instead, keeping the others — NGSI-LD ``options=update``)."""

    async def delete(self, ids: Sequence[str], *, tenant: str = "") -> BatchReport:
        """Delete the entities with these ids."""

    async def add_history(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                          context: ContextSource = None) -> BatchReport:
        """Record temporal entities (each attribute an array of instances, each with its
        ``observedAt``) in the history, creating the entities that do not exist; each
        entity's current state becomes its latest instances (NGSI-LD
        ``POST /temporal/entities``)."""

    async def temporal_query(self, entity_type: str, start: datetime, end: datetime, *,
                             tenant: str = "", context: ContextSource = None
                             ) -> list[dict[str, Any]]:
        """Every instance observed in ``[start, end)`` (aware datetimes) of the entities of
        ``entity_type``: normalized temporal entities compacted with ``context``, each
        attribute an array of instances, oldest first. Entities without an instance in the
        period are left out. Raises :class:`QueryRefused` when the broker refuses the query."""


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached, or answered something that is not an NGSI-LD
    response; nothing can be said about which entities were written."""


class QueryRefused(RuntimeError):
    """The broker answered a query with an error (a bad type name, an unknown tenant, …)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail


def _entity_id(entity: Mapping[str, Any], position: int) -> str:
    raw = entity.get("id")
    return raw if isinstance(raw, str) and raw else f"item {position}"


def _context_key(source: ContextSource) -> str:
    if source is None or isinstance(source, str):
        return source or ""
    return orjson.dumps(source, option=orjson.OPT_SORT_KEYS).decode()


def _by_context(entities: Sequence[Mapping[str, Any]], default: ContextSource
                ) -> Iterator[tuple[ContextSource, list[Mapping[str, Any]]]]:
    """The entities grouped by the @context that applies to each (own member, else the
    default), in first-seen order. Usually there is exactly one group."""
    groups: dict[str, tuple[ContextSource, list[Mapping[str, Any]]]] = {}
    for entity in entities:
        source = entity.get("@context", default)
        key = _context_key(source)
        group = groups.get(key)
        if group is None:
            groups[key] = group = (source, [])
        group[1].append(entity)
    yield from groups.values()


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _aware_text(moment: datetime, what: str) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime (with a UTC offset)")
    return moment.isoformat()


class _Histories:
    """Temporal entities read page by page, merged per entity: the instances of one attribute
    may arrive over several pages."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}

    def add(self, rendered: Mapping[str, Any]) -> None:
        entity_id = str(rendered.get("id", ""))
        merged = self.entities.get(entity_id)
        if merged is None:
            merged = self.entities[entity_id] = {k: v for k, v in rendered.items()
                                                 if k in ("id", "type", "scope")}
        for name, value in rendered.items():
            if name in _ENTITY_MEMBERS:
                continue
            instances = value if isinstance(value, list) else [value]
            merged.setdefault(name, []).extend(
                i for i in instances if isinstance(i, dict) and "deletedAt" not in i)

    def result(self) -> list[dict[str, Any]]:
        return [entity for entity in self.entities.values()
                if any(name not in _ENTITY_MEMBERS for name in entity)]


class InProcessBroker:
    """A BrokerClient over the broker's use cases in this process (no HTTP). The caller owns
    the store's life cycle (open before use, close after)."""

    def __init__(self, entities: EntityService, contexts: ContextResolver, *,
                 chunk_size: int = DEFAULT_CHUNK,
                 temporal: TemporalService | None = None) -> None:
        self.entities = entities
        self.contexts = contexts
        self.chunk_size = max(1, min(chunk_size, entities.limits.max_batch_size))
        self.temporal = temporal or TemporalService(entities.store, entities)

    async def upsert(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                     context: ContextSource = None, update: bool = False) -> BatchReport:
        report = BatchReport()
        for source, group in _by_context(entities, context):
            for chunk in _chunks(group, self.chunk_size):
                report.add(await self._run(tenant, "upsert", chunk, source, replace=not update))
        return report

    async def delete(self, ids: Sequence[str], *, tenant: str = "") -> BatchReport:
        report = BatchReport()
        for chunk in _chunks(ids, self.chunk_size):
            report.add(await self._run(tenant, "delete", chunk, None, replace=True))
        return report

    async def add_history(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                          context: ContextSource = None) -> BatchReport:
        report = BatchReport()
        for source, group in _by_context(entities, context):
            try:
                ctx = await self._context(source, tenant)
            except NgsiLdError as exc:
                report.fail_all([_entity_id(e, i) for i, e in enumerate(group)],
                                exc.title, exc.detail, exc.type_uri)
                continue
            for position, entity in enumerate(group):
                entity_id = _entity_id(entity, position)
                try:
                    body = {k: v for k, v in entity.items() if k != "@context"}
                    await self.temporal.add(tenant, parse_temporal_entity(body, ctx))
                except NgsiLdError as exc:
                    report.failed.append(BatchFailure.of(entity_id, exc))
                else:
                    report.succeeded.append(entity_id)
        return report

    async def temporal_query(self, entity_type: str, start: datetime, end: datetime, *,
                             tenant: str = "", context: ContextSource = None
                             ) -> list[dict[str, Any]]:
        try:
            ctx = await self._context(context, tenant)
            whole = TimeFilter("between", parse_time(_aware_text(start, "start"), "start"),
                               parse_time(_aware_text(end, "end"), "end"))
            if whole.start_ms is not None and whole.end_ms is not None \
                    and whole.end_ms <= whole.start_ms:
                raise BadRequestData("the end of the period must be later than its start")
            selection = Selection(type=resolve_types(parse_type_expr(entity_type),
                                                     ctx.expand))
            histories = _Histories()
            offset = 0
            while True:
                found = await self._entity_page(tenant, selection, whole, ctx,
                                                offset=offset, histories=histories)
                if found < TEMPORAL_PAGE:
                    return histories.result()
                offset += TEMPORAL_PAGE
        except NgsiLdError as exc:
            raise QueryRefused(exc.title, exc.detail) from None

    async def _entity_page(self, tenant: str, selection: Selection, whole: TimeFilter,
                           ctx: Context, *, offset: int, histories: _Histories) -> int:
        """Read one page of entities, all of its instances in the period (following the
        history's own pages); return how many entities the page held."""
        time_filter: TimeFilter | None = whole
        found = 0
        while time_filter is not None:
            result = await self.temporal.query(tenant, selection, time_filter,
                                               limit=TEMPORAL_PAGE, offset=offset)
            # Entities of the page without instances in a later part of the history may be
            # left out of that part's answer: the page's size is the largest part.
            found = max(found, len(result.entities))
            for te in result.entities:
                histories.add(render_temporal(te, ctx))
            if result.page is None or result.window is None:
                break
            time_filter = next_page_filter(result.page, time_filter, result.window)
        return found

    async def _context(self, source: ContextSource, tenant: str) -> Context:
        # Hosted @contexts are per tenant: the resolver reads the tenant from this variable,
        # as it does when the HTTP layer serves a request.
        token = current_tenant.set(tenant)
        try:
            return await self.contexts.resolve(source)
        finally:
            current_tenant.reset(token)

    async def _run(self, tenant: str, op: BatchOp, body: Sequence[Any], source: ContextSource,
                   *, replace: bool) -> BatchReport:
        report = BatchReport()
        try:
            ctx = await self._context(source, tenant)
        except NgsiLdError as exc:
            ids = [b if isinstance(b, str) else _entity_id(b, i) for i, b in enumerate(body)]
            report.fail_all(ids, exc.title, exc.detail, exc.type_uri)
            return report
        items, errors = parse_batch_items(op, list(body), ctx)
        report.failed.extend(BatchFailure.of(i, e) for i, e in errors)
        if items:
            outcome = await self.entities.batch(tenant, op, items, replace=replace)
            report.succeeded.extend(outcome.success)
            report.failed.extend(BatchFailure.of(i, e) for i, e in outcome.errors)
        return report


class HttpBroker:
    """A BrokerClient over HTTP to a running NGSI-LD broker. Use as an async context manager,
    or pass an ``httpx.AsyncClient`` you own (its base URL is the broker's root; tests pass
    one over ``httpx.ASGITransport``)."""

    def __init__(self, base_url: str = "http://127.0.0.1:1026", *,
                 client: httpx.AsyncClient | None = None, chunk_size: int = DEFAULT_CHUNK,
                 timeout: float = 60.0, headers: Mapping[str, str] | None = None,
                 concurrency: int = 4) -> None:
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.chunk_size = max(1, chunk_size)
        self.headers = dict(headers or {})
        # Temporal entities are written one request each: this many in flight at once.
        self.concurrency = max(1, concurrency)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def upsert(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                     context: ContextSource = None, update: bool = False) -> BatchReport:
        report = BatchReport()
        params = {"options": "update"} if update else None
        for source, group in _by_context(entities, context):
            for chunk in _chunks(group, self.chunk_size):
                body, headers = self._body(chunk, source, tenant)
                ids = [_entity_id(e, i) for i, e in enumerate(chunk)]
                report.add(await self._post("upsert", body, headers, ids, params))
        return report

    async def delete(self, ids: Sequence[str], *, tenant: str = "") -> BatchReport:
        report = BatchReport()
        for chunk in _chunks(ids, self.chunk_size):
            headers = self._headers(tenant, "application/json")
            report.add(await self._post("delete", list(chunk), headers, list(chunk), None))
        return report

    async def add_history(self, entities: Sequence[Mapping[str, Any]], *, tenant: str = "",
                          context: ContextSource = None) -> BatchReport:
        report = BatchReport()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(entity: Mapping[str, Any], position: int) -> BatchReport:
            async with gate:
                (body,), headers = self._body([entity], entity.get("@context", context),
                                              tenant)
                return await self._post_temporal(body, headers, _entity_id(entity, position))

        for outcome in await asyncio.gather(*(one(e, i) for i, e in enumerate(entities))):
            report.add(outcome)
        return report

    async def _post_temporal(self, body: Any, headers: dict[str, str],
                             entity_id: str) -> BatchReport:
        try:
            response = await self.client.post(_TEMPORAL_PATH, content=orjson.dumps(body),
                                              headers=headers)
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc!r}") from exc
        return _report_of(response, [entity_id])

    async def temporal_query(self, entity_type: str, start: datetime, end: datetime, *,
                             tenant: str = "", context: ContextSource = None
                             ) -> list[dict[str, Any]]:
        # POST …/temporal/entityOperations/query rather than GET: it carries any @context,
        # an inline one too, where GET can only name a URL in a Link header.
        query: dict[str, Any] = {"type": "Query", "entities": [{"type": entity_type}],
                                 "temporalQ": {"timerel": "between",
                                               "timeAt": _aware_text(start, "start"),
                                               "endTimeAt": _aware_text(end, "end")}}
        (body,), headers = self._body([query], context, tenant)
        histories = _Histories()
        offset = 0
        while True:
            found = 0
            page_body = body
            while page_body is not None:
                payload, following = await self._query_page(page_body, headers, offset)
                found = max(found, len(payload))
                for rendered in payload:
                    if isinstance(rendered, dict):
                        histories.add(rendered)
                page_body = None if following is None else {
                    **body, "temporalQ": {**body["temporalQ"], "timeAt": following}}
            if found < TEMPORAL_PAGE:
                return histories.result()
            offset += TEMPORAL_PAGE

    async def _query_page(self, body: dict[str, Any], headers: dict[str, str], offset: int
                          ) -> tuple[list[Any], str | None]:
        """One page: the entities, and where the next page of their history starts (None
        when the history was returned whole)."""
        try:
            response = await self.client.post(
                _TEMPORAL_QUERY_PATH, content=orjson.dumps(body), headers=headers,
                params={"limit": str(TEMPORAL_PAGE), "offset": str(offset)})
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc!r}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code not in (200, 206) or not isinstance(payload, list):
            if response.status_code >= 500 and not isinstance(payload, dict):
                raise BrokerUnavailable(f"the broker answered {response.status_code}: "
                                        f"{response.text[:300]}")
            problem = payload if isinstance(payload, dict) else {}
            raise QueryRefused(str(problem.get("title", f"HTTP {response.status_code}")),
                               str(problem.get("detail", response.text[:300])))
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None:
                raise BrokerUnavailable("the broker answered 206 without a date-time "
                                        "Content-Range: cannot read the rest of the history")
            return payload, match.group(2)
        return payload, None

    def _headers(self, tenant: str, content_type: str) -> dict[str, str]:
        headers = {**self.headers, "Content-Type": content_type}
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        return headers

    def _body(self, chunk: Sequence[Mapping[str, Any]], source: ContextSource, tenant: str
              ) -> tuple[list[Any], dict[str, str]]:
        """A URL context travels in a Link header with plain JSON; anything else (a list,
        an inline object) must be an ``@context`` member, on every entity of an ld+json
        batch."""
        if source is None or isinstance(source, str):
            body = [{k: v for k, v in e.items() if k != "@context"} if "@context" in e
                    else e for e in chunk]
            headers = self._headers(tenant, "application/json")
            if source:
                headers["Link"] = (f'<{source}>; rel="{_CONTEXT_REL}"; '
                                   'type="application/ld+json"')
            return body, headers
        return ([{**e, "@context": source} for e in chunk],
                self._headers(tenant, "application/ld+json"))

    async def _post(self, op: str, body: list[Any], headers: dict[str, str], ids: list[str],
                    params: dict[str, str] | None) -> BatchReport:
        try:
            response = await self.client.post(_BATCH_PATH + op, content=orjson.dumps(body),
                                              headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"cannot reach the broker: {exc!r}") from exc
        return _report_of(response, ids)


def _report_of(response: httpx.Response, ids: list[str]) -> BatchReport:
    """Read a batch response: 201/204 all succeeded, 207 per entity, anything else (400 for
    the whole body, 413, 503…) fails every entity of the chunk with that error."""
    report = BatchReport()
    if response.status_code in (200, 201, 204):
        report.succeeded.extend(ids)
        return report
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code == 207 and isinstance(payload, dict):
        report.succeeded.extend(str(i) for i in payload.get("success", []))
        for entry in payload.get("errors", []):
            error = entry.get("error", {}) if isinstance(entry, dict) else {}
            report.failed.append(BatchFailure(
                str(entry.get("entityId", "")) if isinstance(entry, dict) else "",
                str(error.get("title", "")), str(error.get("detail", "")),
                str(error.get("type", ""))))
        return report
    if response.status_code >= 500 and not isinstance(payload, dict):
        raise BrokerUnavailable(f"the broker answered {response.status_code}: "
                                f"{response.text[:300]}")
    problem = payload if isinstance(payload, dict) else {}
    report.fail_all(ids, str(problem.get("title", f"HTTP {response.status_code}")),
                    str(problem.get("detail", response.text[:300])),
                    str(problem.get("type", "")))
    return report
