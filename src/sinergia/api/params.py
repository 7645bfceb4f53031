"""Query parameters → the broker's query and render objects, for GET requests and for the
``Query`` body of POST /entityOperations/query alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import is_uri
from sinergia.ngsild.errors import BadRequestData, InvalidRequest, TooComplexQuery
from sinergia.ngsild.geo import GeoQuery, parse_geoq, parse_geoq_object
from sinergia.ngsild.model import LOCATION
from sinergia.ngsild.qlang import (
    MAX_TERMS,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_q,
    resolve_types,
)
from sinergia.ngsild.query import EntityQuery, Selector
from sinergia.ngsild.render import Format, RenderOptions

_FORMATS: dict[str, Format] = {"normalized": "normalized", "concise": "concise",
                               "keyValues": "keyValues", "simplified": "keyValues"}
_OPTIONS = {"sysAttrs", "keyValues", "concise", "normalized", "simplified", "noOverwrite",
            "replace", "update"}
_ENTITY_MEMBERS = {"id", "type", "scope"}
_INTEGER = re.compile(r"-?[0-9]+")
MAX_INT64 = 2**63 - 1


# The URI parameters each operation defines (ETSI GS CIM 009 clause 6, one table per
# resource). Names the standard defines but we do not act on (``local``, ``join``, …) are
# accepted and ignored, as a broker without context sources may; any other name is a
# client error (6.3.4: InvalidRequest).
_DISTRIBUTION = frozenset({"local", "via"})
_RENDERING = frozenset({"attrs", "pick", "omit", "options", "format", "lang", "datasetId",
                        "geometryProperty", "join", "joinLevel", "entityMap", "collapse",
                        "containedBy"}) | _DISTRIBUTION
_SELECTION = frozenset({"id", "type", "idPattern", "q", "csf", "georel", "geometry",
                        "coordinates", "geoproperty", "scopeQ", "expandValues", "orderBy"})
_PAGING = frozenset({"limit", "offset", "count"})
QUERY_ENTITIES = _RENDERING | _SELECTION | _PAGING
RETRIEVE_ENTITY = _RENDERING | frozenset({"type"})
TEMPORAL_QUERY = QUERY_ENTITIES | frozenset({"timerel", "timeAt", "endTimeAt",
                                             "timeproperty", "lastN", "aggrMethods",
                                             "aggrPeriodDuration"})
WRITE = _DISTRIBUTION | frozenset({"options", "type"})
BATCH_QUERY = _PAGING | _DISTRIBUTION | frozenset({"options", "format", "lang", "join",
                                                   "joinLevel", "entityMap"})
DISCOVERY = _DISTRIBUTION | frozenset({"details", "type"})
LIST_SUBSCRIPTIONS = _PAGING | _DISTRIBUTION


def refuse_unknown(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Raise InvalidRequest when ``params`` names a parameter the operation does not define."""
    unknown = sorted(set(params.keys()) - allowed)
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise InvalidRequest(f"Unknown query parameter(s) for this operation: {shown}")


def split_list(raw: str | None) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else []


def options_of(params: Mapping[str, str]) -> set[str]:
    options = set(split_list(params.get("options")))
    unknown = options - _OPTIONS
    if unknown:
        raise BadRequestData(f"Unknown options: {', '.join(sorted(unknown))}")
    return options


_DEFAULT_RENDERING = RenderOptions()
# The parameters that shape the rendering; a request without any renders the default way.
_RENDER_PARAMS = frozenset({"options", "format", "attrs", "pick", "omit", "lang", "datasetId",
                            "geometryProperty"})


def render_options(params: Mapping[str, str], ctx: Context) -> RenderOptions:
    if _RENDER_PARAMS.isdisjoint(params.keys()):
        return _DEFAULT_RENDERING
    options = options_of(params)
    fmt_raw = params.get("format")
    if fmt_raw is not None and fmt_raw not in _FORMATS:
        raise BadRequestData(f"Unknown format {fmt_raw!r}; use normalized, concise or "
                             "keyValues")
    chosen = [f for f in ("keyValues", "simplified", "concise", "normalized") if f in options]
    if fmt_raw is not None:
        fmt = _FORMATS[fmt_raw]
    elif chosen:
        fmt = _FORMATS[chosen[0]]
    else:
        fmt = "normalized"
    attrs = split_list(params.get("attrs"))
    # ETSI GS CIM 009 4.21: "," and "|" both separate projection terms
    pick = split_list(params.get("pick", "").replace("|", ","))
    omit = split_list(params.get("omit", "").replace("|", ","))
    if pick and omit:
        raise BadRequestData("pick and omit cannot be used together")
    if any("{" in term for term in (*pick, *omit)):
        if not params.get("join"):
            # 5.7.1.4 / 5.7.2.4: a Linked Entity term projects inside joined entities only
            raise BadRequestData("A pick/omit term with {…} needs Linked Entity retrieval "
                                 "(join)")
        # We never inline linked entities, so a term keeps its base Relationship only.
        pick = [term.split("{", 1)[0] for term in pick]
        omit = [term for term in omit if "{" not in term]
    dataset = split_list(params.get("datasetId"))
    geometry_property = params.get("geometryProperty")
    return RenderOptions(
        format=fmt,
        sys_attrs="sysAttrs" in options,
        attrs=frozenset(ctx.expand(a) for a in attrs) if attrs else None,
        pick=frozenset(_member(p, ctx) for p in pick) if pick else None,
        omit=frozenset(_member(o, ctx) for o in omit) if omit else None,
        lang=params.get("lang"),
        dataset_ids=frozenset(dataset) if dataset else None,
        geometry_property=ctx.expand(geometry_property) if geometry_property else LOCATION,
    )


def _member(name: str, ctx: Context) -> str:
    return name if name in _ENTITY_MEMBERS else ctx.expand(name)


def int_param(params: Mapping[str, str], name: str, default: int, *,
               maximum: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: int() would also take " 5", "1_000" and non-Latin digits.
    if _INTEGER.fullmatch(raw) is None:
        raise BadRequestData(f"{name} must be a whole number, got {raw[:40]!r}")
    value = int(raw)
    if value < 0:
        raise BadRequestData(f"{name} must not be negative")
    if maximum is not None and value > maximum:
        raise BadRequestData(f"{name} must be at most {maximum}")
    return value


def entity_query(params: Mapping[str, str], ctx: Context, *, default_limit: int,
                 require_selector: bool = True) -> EntityQuery:
    """GET /entities parameters. Raises BadRequestData when no selector is given (the
    standard forbids an unbounded query) unless ``require_selector`` is False."""
    ids = tuple(split_list(params.get("id"))) or None
    if ids:
        _check_uris(ids)
    type_raw = params.get("type")
    geo: GeoQuery | None = None
    if any(params.get(k) for k in ("georel", "geometry", "coordinates")):
        geoprop = params.get("geoproperty")
        geo = parse_geoq(params.get("georel"), params.get("geometry"),
                         params.get("coordinates"),
                         ctx.expand(geoprop) if geoprop else LOCATION)
    q_raw = params.get("q")
    scope_raw = params.get("scopeQ")
    attrs = split_list(params.get("attrs"))
    if len(attrs) > MAX_TERMS:
        # each name is one more OR'ed test in the selection
        raise TooComplexQuery(f"attrs names more than {MAX_TERMS} attributes")
    dataset = split_list(params.get("datasetId"))
    query = EntityQuery(
        ids=ids,
        id_pattern=_id_pattern(params.get("idPattern")),
        type=resolve_types(parse_type_expr(type_raw), ctx.expand) if type_raw else None,
        attrs=tuple(ctx.expand(a) for a in attrs) or None,
        # Strings compared with a VocabProperty are expanded as vocabulary terms too.
        q=resolve_q(parse_q(q_raw), ctx.expand, ctx.expand) if q_raw else None,
        geo=geo,
        scope=parse_scope_q(scope_raw) if scope_raw else None,
        dataset_id=tuple(dataset) or None,
        limit=int_param(params, "limit", default_limit),
        # Storage backends count rows in signed 64 bits; no page starts beyond that. (A
        # limit above the maximum page size is refused by the broker: TooManyResults.)
        offset=int_param(params, "offset", 0, maximum=MAX_INT64),
        count=params.get("count", "false").lower() == "true",
    )
    if require_selector and query.is_unbounded and query.scope is None:
        raise BadRequestData("A query needs at least one of id, idPattern, type, attrs, q or "
                             "a geo-query (georel, geometry, coordinates)")
    return query


def _id_pattern(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        re.compile(raw)
    except re.error as exc:
        raise BadRequestData(f"idPattern is not a valid regular expression: {exc}") from None
    return raw


def _selector(members: Mapping[str, str], ctx: Context) -> Selector:
    entity_id = members.get("id")
    if entity_id is not None:
        _check_uris((entity_id,))
    type_raw = members.get("type")
    return Selector(
        id=entity_id,
        id_pattern=_id_pattern(members.get("idPattern")),
        type=resolve_types(parse_type_expr(type_raw), ctx.expand) if type_raw else None)


def _check_uris(ids: tuple[str, ...]) -> None:
    for entity_id in ids:
        if not is_uri(entity_id):
            raise BadRequestData(f"id {entity_id[:200]!r} is not a URI")


def query_from_body(body: Any, ctx: Context, *, params: Mapping[str, str],
                    default_limit: int) -> EntityQuery:
    """The ``Query`` data type of POST /entityOperations/query, plus limit/offset/count from
    the URL."""
    if not isinstance(body, dict):
        raise BadRequestData("The query body must be a JSON object of type Query")
    if body.get("type", "Query") != "Query":
        raise BadRequestData("The query body must have type 'Query'")
    flat: dict[str, str] = {k: v for k, v in params.items() if k in ("limit", "offset", "count")}
    ids: list[str] = []
    patterns: list[str] = []
    types: list[str] = []
    selectors = body.get("entities") or []
    if not isinstance(selectors, list):
        raise BadRequestData("'entities' must be an array of entity selectors")
    given: list[dict[str, str]] = []
    for selector in selectors:
        if not isinstance(selector, dict):
            raise BadRequestData("Each member of 'entities' must be an object")
        members: dict[str, str] = {}
        for member, into in (("id", ids), ("idPattern", patterns), ("type", types)):
            if member in selector:
                if not isinstance(selector[member], str):
                    raise BadRequestData(f"'{member}' of an entity selector must be a string")
                into.append(selector[member])
                members[member] = selector[member]
        given.append(members)
    # The selectors are ORed, each ANDing its own members. As flat parameters (each member
    # ORed over the selectors, then ANDed) that is exact for one selector, or when every
    # selector has the same single member; otherwise the selectors are kept as they are.
    as_selectors = len(given) > 1 and not (
        len({frozenset(m) for m in given}) == 1 and len(given[0]) == 1)
    if ids and not as_selectors:
        flat["id"] = ",".join(ids)
    if patterns and not as_selectors:
        flat["idPattern"] = "|".join(f"(?:{p})" for p in patterns)
    if types and not as_selectors:
        flat["type"] = ",".join(f"({t})" if any(c in t for c in ",;|") else t for t in types)
    attrs = body.get("attrs")
    if attrs is not None:
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise BadRequestData("'attrs' must be a list of attribute names")
        flat["attrs"] = ",".join(attrs)
    for key in ("q", "scopeQ", "lang"):
        if key in body:
            if not isinstance(body[key], str):
                raise BadRequestData(f"'{key}' must be a string")
            flat[key] = body[key]
    query = entity_query(flat, ctx, default_limit=default_limit, require_selector=False)
    if as_selectors:
        query = replace(query, selectors=tuple(_selector(m, ctx) for m in given))
    if body.get("geoQ") is not None:
        if not isinstance(body["geoQ"], dict):
            raise BadRequestData("'geoQ' must be an object")
        query = replace(query, geo=parse_geoq_object(body["geoQ"], ctx.expand))
    return query
