"""The NGSI-LD temporal API, pure part: time filters, temporal entities (input and output) and
the pagination of long histories. Storage keeps the instances; this module says which ones a
request wants and how they look.

Times. Every stored time is an ISO 8601 UTC string with milliseconds (``…T…:…:….mmmZ``, see
:func:`sinergia.ngsild.entity.parse_datetime`); storage indexes them as integer epoch
milliseconds (:func:`iso_to_ms` / :func:`ms_to_iso`), which sort and compare the same way.

Which time an instance has (``timeproperty``):

* ``observedAt`` (the default): its ``observedAt``, or its ``modifiedAt`` when it has none —
  every change is in the history, and one without an observation time is placed when the broker
  recorded it;
* ``createdAt``: the instant the attribute instance was created (only the history record of a
  creation carries it as a time, see :mod:`sinergia.ngsild.history`);
* ``modifiedAt``: the instant the change was recorded (or the instance last patched);
* ``deletedAt``: the instant of a deletion (only deletion markers have one).

Time relations are half-open intervals, as in Stellio, so that they compose without overlaps:
``before`` = ``t < timeAt``, ``after`` = ``t >= timeAt``, ``between`` = ``timeAt <= t <
endTimeAt``.

Representations (``format=`` or ``options=``): ``normalized`` (each attribute an array of
instances with ``instanceId``), ``concise`` (the same, ``type`` left out where inferable),
``temporalValues`` (``{"type": "Property", "values": [[value, time], …]}``; Relationship
``objects``, LanguageProperty ``languageMaps``, VocabProperty ``vocabs``, JsonProperty ``jsons``,
ListProperty ``valueLists``, ListRelationship ``objectLists``) and ``aggregatedValues``
(``{"type": …, "avg": [[value, start, end], …], …}``, see :mod:`sinergia.ngsild.aggregation`).
An attribute with instances of several datasetIds (or whose kind changed) renders, in the two
simplified forms, as an array of such objects, one per datasetId and kind. ``lang`` applies to
normalized and concise only; temporalValues keep whole languageMaps.

Pagination (the range approach of GS CIM 009 v1.8, as Stellio implements it): when an
attribute has more instances in the requested interval than the broker returns at once
(``max_instances``; all datasetIds of the attribute together), the response is
``206 Partial Content`` with
``Content-Range: date-time <start>-<end>/<size>`` (``size`` = ``lastN`` or ``*``). Without
``lastN`` pages go forwards (oldest first); with a ``lastN`` larger than a page they go
backwards (newest first). Every attribute of the page is cut at the same instant so that the
second timestamp of the range is exactly where the next page starts: ``timerel=after`` (or
``between`` with the same ``endTimeAt``) ``&timeAt=<end>`` going forwards, ``timerel=before``
(or ``between`` with the same ``timeAt`` and ``endTimeAt=<end>``) going backwards.
:func:`next_page_filter` builds that filter. Pages neither lose nor repeat an instance, at any
history size. Aggregated values are not paginated (a bucket needs all its instances).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Literal, TypeVar

from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import parse_attribute, parse_datetime, parse_entity
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import (
    ENTITY_MEMBERS,
    LIST_RELATIONSHIP,
    NULL_URI,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Instance,
)
from sinergia.ngsild.render import RenderOptions, render_entity

_T = TypeVar("_T", bound=str)
_Item = TypeVar("_Item")

TimeProperty = Literal["observedAt", "createdAt", "modifiedAt", "deletedAt"]
Timerel = Literal["before", "after", "between"]
TemporalFormat = Literal["normalized", "concise", "temporalValues", "aggregatedValues"]

TIME_PROPERTIES: Final[tuple[TimeProperty, ...]] = ("observedAt", "createdAt", "modifiedAt",
                                                     "deletedAt")
TIMERELS: Final[tuple[Timerel, ...]] = ("before", "after", "between")
TEMPORAL_FORMATS: Final[tuple[TemporalFormat, ...]] = ("normalized", "concise",
                                                       "temporalValues", "aggregatedValues")
# lastN above this is "all of them": it keeps the number a 32-bit integer for every backend.
MAX_LAST_N: Final = 2**31 - 1

# The member that holds the [value, time] pairs of each kind in the temporalValues form.
TEMPORAL_VALUES_MEMBER: Final[dict[str, str]] = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MS: Final = timedelta(milliseconds=1)
_MIN_MS: Final = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
_MAX_MS: Final = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _MS
_DIGITS = re.compile(r"[0-9]{1,30}")
_FORMAT_OPTIONS: Final = {"temporalValues": "temporalValues",
                          "aggregatedValues": "aggregatedValues",
                          "concise": "concise", "normalized": "normalized"}
_TEMPORAL_OPTIONS: Final = frozenset({"sysAttrs", *_FORMAT_OPTIONS})
_ENTITY_MEMBERS: Final = frozenset({"id", "type", "scope"})
_SKIPPED_MEMBERS: Final = frozenset({"@context", "createdAt", "modifiedAt"})
_RESERVED_NAMES: Final = ENTITY_MEMBERS | {"attrs"}


# --------------------------------------------------------------------------- times


def iso_to_ms(text: str) -> int:
    """A stored (normalised) ISO time → integer milliseconds since 1970-01-01T00:00:00Z."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _MS


@lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


# The pieces of a time of day, written once: joining them is a third of formatting numbers.
_MINUTES: Final = tuple(f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SECONDS: Final = tuple(f"{s:02d}." for s in range(60))
_MILLIS: Final = tuple(f"{m:03d}Z" for m in range(1000))


def ms_to_iso(ms: int) -> str:
    """Milliseconds since the epoch → ``YYYY-MM-DDTHH:MM:SS.mmmZ``, clamped to years
    0001…9999. Arithmetic rather than datetime formatting: aggregation writes two per bucket,
    and history reads one per instance."""
    ms = min(max(ms, _MIN_MS), _MAX_MS)
    days, rest = divmod(ms, 86_400_000)
    minute, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return _day(days) + _MINUTES[minute] + _SECONDS[seconds] + _MILLIS[millis]


def parse_time(value: Any, what: str) -> str:
    """A client's ISO 8601 date-time (``timeAt``…) → the stored form, or BadRequestData."""
    if not isinstance(value, str) or not value.isascii():
        raise BadRequestData(f"{what} must be an ISO 8601 date-time, not {_short(value)}")
    return parse_datetime(value, "", what)


def instance_time(instance: Instance, timeproperty: str) -> str | None:
    """The time an instance has for ``timeproperty`` (observedAt falls back to modifiedAt)."""
    if timeproperty == "observedAt":
        found = instance.get("observedAt") or instance.get("modifiedAt")
    else:
        found = instance.get(timeproperty)
    return found if isinstance(found, str) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- time filter


@dataclass(frozen=True, slots=True)
class TimeFilter:
    """What part of a history a request wants. Times are normalised ISO strings."""

    timerel: Timerel | None = None
    time_at: str | None = None
    end_time_at: str | None = None
    timeproperty: TimeProperty = "observedAt"
    last_n: int | None = None

    @property
    def start_ms(self) -> int | None:
        """Inclusive lower bound in epoch ms (None = unbounded)."""
        if self.timerel in ("after", "between") and self.time_at is not None:
            return iso_to_ms(self.time_at)
        return None

    @property
    def end_ms(self) -> int | None:
        """Exclusive upper bound in epoch ms (None = unbounded)."""
        if self.timerel == "before" and self.time_at is not None:
            return iso_to_ms(self.time_at)
        if self.timerel == "between" and self.end_time_at is not None:
            return iso_to_ms(self.end_time_at)
        return None

    def contains(self, ms: int) -> bool:
        start, end = self.start_ms, self.end_ms
        return (start is None or ms >= start) and (end is None or ms < end)

    def to_params(self) -> dict[str, str]:
        """The URL parameters that say this filter (for Link headers and next pages)."""
        params: dict[str, str] = {}
        if self.timerel is not None and self.time_at is not None:
            params["timerel"] = self.timerel
            params["timeAt"] = self.time_at
        if self.end_time_at is not None:
            params["endTimeAt"] = self.end_time_at
        if self.timeproperty != "observedAt":
            params["timeproperty"] = self.timeproperty
        if self.last_n is not None:
            params["lastN"] = str(self.last_n)
        return params


def parse_time_filter(params: Mapping[str, str], *, require_timerel: bool = False) -> TimeFilter:
    """``timerel``, ``timeAt``, ``endTimeAt``, ``timeproperty`` and ``lastN`` from URL
    parameters. Strict: a relation needs ``timeAt``, ``between`` needs an ``endTimeAt`` later
    than ``timeAt``, ``endTimeAt`` means nothing without ``between``, ``lastN`` is a positive
    whole number (values above :data:`MAX_LAST_N` mean "all"). ``require_timerel`` (query
    without lastN, as the standard asks) makes ``timerel``/``timeAt`` mandatory. Raises
    BadRequestData only."""
    timerel_raw = params.get("timerel")
    time_at_raw = params.get("timeAt")
    end_raw = params.get("endTimeAt")
    timeproperty_raw = params.get("timeproperty")
    last_n = _parse_last_n(params.get("lastN"))

    timeproperty: TimeProperty = "observedAt"
    if timeproperty_raw:
        timeproperty = _choice(timeproperty_raw, TIME_PROPERTIES, "timeproperty")
    timerel: Timerel | None = None
    if timerel_raw:
        timerel = _choice(timerel_raw, TIMERELS, "timerel")
    time_at = parse_time(time_at_raw, "timeAt") if time_at_raw else None
    end_time_at = parse_time(end_raw, "endTimeAt") if end_raw else None

    if timerel is None and time_at is not None:
        raise BadRequestData("timeAt needs timerel (before, after or between)")
    if timerel is not None and time_at is None:
        raise BadRequestData(f"timerel={timerel} needs timeAt")
    if timerel == "between":
        if end_time_at is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        if iso_to_ms(end_time_at) <= iso_to_ms(time_at or ""):
            raise BadRequestData("endTimeAt must be later than timeAt")
    elif end_time_at is not None:
        raise BadRequestData("endTimeAt is only used with timerel=between")
    if require_timerel and timerel is None and last_n is None:
        raise BadRequestData("A temporal query needs timerel and timeAt (or lastN)")
    return TimeFilter(timerel, time_at, end_time_at, timeproperty, last_n)


def parse_temporal_q(value: Any, params: Mapping[str, str] | None = None) -> TimeFilter:
    """The ``temporalQ`` member of a ``Query`` body (POST /temporal/entityOperations/query):
    an object with ``timerel``, ``timeAt``, ``endTimeAt``, ``timeproperty`` (and ``lastN``);
    ``lastN`` may also come from the URL ``params``."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadRequestData("'temporalQ' must be an object")
    flat: dict[str, str] = {}
    for key in ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"):
        item = value.get(key)
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise BadRequestData(f"temporalQ.{key} must be a string")
        flat[key] = str(item)
    if params is not None and "lastN" not in flat and params.get("lastN"):
        flat["lastN"] = params["lastN"]
    return parse_time_filter(flat)


def _parse_last_n(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if _DIGITS.fullmatch(raw) is None:
        raise BadRequestData(f"lastN must be a positive whole number, not {_short(raw)}")
    value = int(raw)
    if value == 0:
        raise BadRequestData("lastN must be a positive whole number, not 0")
    return min(value, MAX_LAST_N)


def _choice(raw: str, allowed: tuple[_T, ...], what: str) -> _T:
    for option in allowed:
        if raw == option:
            return option
    raise BadRequestData(f"Unknown {what} {_short(raw)}; use {', '.join(allowed)}")


def temporal_format(params: Mapping[str, str]) -> tuple[TemporalFormat, bool]:
    """``format=`` / ``options=`` of a temporal request → (representation, sysAttrs).
    ``format`` wins over a representation named in ``options``."""
    options = {part.strip() for part in (params.get("options") or "").split(",")
               if part.strip()}
    unknown = options - _TEMPORAL_OPTIONS
    if unknown:
        raise BadRequestData(f"Unknown options: {', '.join(sorted(unknown))}")
    raw = params.get("format")
    fmt: TemporalFormat = "normalized"
    if raw is not None:
        fmt = _choice(raw, TEMPORAL_FORMATS, "format")
    else:
        named = [f for f in TEMPORAL_FORMATS if f in options]
        if len(named) > 1:
            raise BadRequestData(f"options name more than one representation: {named}")
        if named:
            fmt = named[0]
    return fmt, "sysAttrs" in options


# --------------------------------------------------------------------------- temporal entities


@dataclass(frozen=True, slots=True)
class TemporalEntity:
    """An entity with the history of its attributes: ``attrs`` maps each expanded attribute
    IRI to its instances, oldest first (storage order), each an internal instance dict as
    :mod:`sinergia.ngsild.history` records it (``instanceId``, ``deletedAt`` on deletion
    markers). Parsed input has no ``instanceId`` yet."""

    id: str
    types: list[str]
    attrs: dict[str, list[Instance]]
    scope: list[str] | None = None
    created_at: str | None = None
    modified_at: str | None = None


@dataclass(frozen=True, slots=True)
class AggregatedSeries:
    """The aggregated values of one attribute (and one datasetId): ``values`` is what
    :func:`sinergia.ngsild.aggregation.aggregate` returns, method → [[value, start, end], …]."""

    kind: str
    values: Mapping[str, list[list[Any]]]
    dataset_id: str | None = None


def parse_temporal_entity(body: Any, ctx: Context, *, require_type: bool = True,
                          ) -> TemporalEntity:
    """POST /temporal/entities: ``id``, ``type`` (required unless ``require_type`` is False),
    ``scope`` and attributes whose values are arrays of instances (one object = one instance),
    each with an ``observedAt``. Raises BadRequestData saying what and where."""
    if not isinstance(body, dict):
        raise BadRequestData(f"a temporal entity must be a JSON object, not "
                             f"{type(body).__name__}")
    head = parse_entity({k: v for k, v in body.items() if k in _ENTITY_MEMBERS}, ctx,
                        require_type=require_type)
    attrs = parse_temporal_attrs({k: v for k, v in body.items() if k not in _ENTITY_MEMBERS},
                                 ctx)
    return TemporalEntity(id=head["id"], types=head.get("type", []), attrs=attrs,
                          scope=head.get("scope"))


def parse_temporal_attrs(body: Any, ctx: Context) -> dict[str, list[Instance]]:
    """POST /temporal/entities/{id}/attrs (and the attributes of a temporal entity): name →
    instances sorted by ``observedAt``. Several instances may share a datasetId (they are a
    history); NGSI-LD Null is refused (deletions are recorded by the broker, not sent)."""
    if not isinstance(body, dict):
        raise BadRequestData(f"attributes must be a JSON object, not {type(body).__name__}")
    attrs: dict[str, list[Instance]] = {}
    for name, value in body.items():
        if name in _SKIPPED_MEMBERS:
            continue
        if name in _ENTITY_MEMBERS:
            raise BadRequestData(f"'{name}' is not an attribute and cannot be set here")
        items = value if isinstance(value, list) else [value]
        if not items:
            raise BadRequestData(f"attribute {name!r} has no instance")
        instances = [parse_temporal_instance(name, item, ctx, where=f"{name}[{index}]")
                     for index, item in enumerate(items)]
        iri = ctx.expand(name)
        if iri in attrs:
            raise BadRequestData(f"attribute {name!r}: the name expands to {iri!r}, which "
                                 "another attribute of this body also uses")
        instances.sort(key=lambda instance: instance["observedAt"])
        attrs[iri] = instances
    return attrs


def parse_temporal_instance(name: str, body: Any, ctx: Context, *, where: str | None = None,
                            require_observed_at: bool = True) -> Instance:
    """One attribute instance of a history (an object; ``observedAt`` required unless
    ``require_observed_at`` is False, as for PATCH of one instance)."""
    where = where or name
    if not isinstance(body, dict):
        raise BadRequestData(f"attribute '{where}': each instance must be an object with "
                             f"observedAt, not {_short(body)}")
    parsed = parse_attribute(name, body, ctx)
    if len(parsed) != 1:
        raise BadRequestData(f"attribute '{where}': expected one instance")
    instance = parsed[0]
    observed = instance.get("observedAt")
    if observed == NULL_URI:  # parse_attribute lets a merge-patch null through
        raise BadRequestData(f"attribute '{where}': observedAt cannot be deleted here")
    if require_observed_at and observed is None:
        raise BadRequestData(f"attribute '{where}': every temporal instance needs observedAt")
    if instance.get(VALUE_MEMBER[instance["type"]]) == NULL_URI:
        raise BadRequestData(f"attribute '{where}': NGSI-LD Null is not a temporal value")
    return instance


def current_attrs(attrs: Mapping[str, list[Instance]]) -> dict[str, list[Instance]]:
    """The latest instance (by ``observedAt``; the later one given wins a tie) of each
    attribute and datasetId, default instance first: the current state a temporal write
    leaves the entity in."""
    current: dict[str, list[Instance]] = {}
    for iri, instances in attrs.items():
        latest: dict[str | None, Instance] = {}
        for instance in instances:
            key = instance.get("datasetId")
            kept = latest.get(key)
            if kept is None or (instance.get("observedAt") or "") >= (kept.get("observedAt")
                                                                        or ""):
                latest[key] = instance
        ordered = sorted(latest.items(), key=lambda item: item[0] is not None)
        current[iri] = [instance for _, instance in ordered]
    return current


# --------------------------------------------------------------------------- rendering


def render_temporal(te: TemporalEntity, ctx: Context, *,
                    format: TemporalFormat = "normalized",
                    attrs: frozenset[str] | None = None,
                    sys_attrs: bool = False,
                    timeproperty: str = "observedAt",
                    dataset_ids: frozenset[str] | None = None,
                    lang: str | None = None,
                    aggregated: Mapping[str, Sequence[AggregatedSeries]] | None = None,
                    ) -> dict[str, Any]:
    """The temporal representation of ``te`` (no ``@context``; the API adds it). ``attrs`` and
    ``dataset_ids`` select (expanded IRIs; ``@none`` = the default instance); ``timeproperty``
    says which time the temporalValues pairs carry; ``aggregated`` gives the aggregatedValues
    (``te.attrs`` is then not read). Attributes without instances are left out."""
    entity: dict[str, Any] = {"id": te.id, "type": te.types}
    if te.scope:
        entity["scope"] = te.scope
    if te.created_at is not None:
        entity["createdAt"] = te.created_at
    if te.modified_at is not None:
        entity["modifiedAt"] = te.modified_at
    concise = format == "concise"
    opts = RenderOptions(format="concise" if concise else "normalized", sys_attrs=sys_attrs,
                         lang=lang, dataset_ids=dataset_ids)
    out = render_entity(entity, ctx, opts)
    if format == "aggregatedValues":
        for iri, series in (aggregated or {}).items():
            if attrs is None or iri in attrs:
                _put(out, _attr_name(ctx, iri), _aggregated(series, dataset_ids))
        return out
    for iri, history in te.attrs.items():
        if attrs is not None and iri not in attrs:
            continue
        instances = history if dataset_ids is None else [
            i for i in history if i.get("datasetId", "@none") in dataset_ids]
        if not instances:
            continue
        if format == "temporalValues":
            _put(out, _attr_name(ctx, iri), _temporal_values(instances, timeproperty, ctx))
        else:
            name, rendered = _instances(iri, instances, ctx, opts)
            out[name] = rendered
    return out


def _attr_name(ctx: Context, iri: str) -> str:
    # As render.py: a name that would read as an entity member keeps its full IRI.
    name = ctx.compact(iri)
    return iri if name in _RESERVED_NAMES else name


def _put(out: dict[str, Any], name: str, groups: list[dict[str, Any]]) -> None:
    if groups:
        out[name] = groups[0] if len(groups) == 1 else groups


def _instances(iri: str, instances: list[Instance], ctx: Context,
               opts: RenderOptions) -> tuple[str, list[Any]]:
    """normalized/concise: always an array of instance objects, deletion markers with their
    ``deletedAt`` (render.py knows no deletion)."""
    rendered = render_entity({"id": "", "attrs": {iri: instances}}, ctx, opts)
    del rendered["id"]
    ((name, value),) = rendered.items()
    items = value if isinstance(value, list) else [value]
    for instance, item in zip(instances, items, strict=True):
        if "deletedAt" in instance and isinstance(item, dict):
            item["deletedAt"] = instance["deletedAt"]
    return name, items


def _temporal_values(instances: list[Instance], timeproperty: str,
                     ctx: Context) -> list[dict[str, Any]]:
    groups: dict[tuple[str | None, str], dict[str, Any]] = {}
    for instance in instances:
        time = instance_time(instance, timeproperty)
        if time is None:
            continue
        kind = instance["type"]
        key = (instance.get("datasetId"), kind)
        group = groups.get(key)
        if group is None:
            group = {"type": kind, TEMPORAL_VALUES_MEMBER[kind]: []}
            if key[0] is not None:
                group["datasetId"] = key[0]
            groups[key] = group
        value = instance[VALUE_MEMBER[kind]]
        if kind == VOCAB_PROPERTY:
            value = _compact_vocab(value, ctx)
        elif kind == LIST_RELATIONSHIP and isinstance(value, list):
            value = [{"object": target} for target in value]
        group[TEMPORAL_VALUES_MEMBER[kind]].append([value, time])
    return list(groups.values())


def _compact_vocab(value: Any, ctx: Context) -> Any:
    if isinstance(value, list):
        return [ctx.compact(v) if isinstance(v, str) else v for v in value]
    return ctx.compact(value) if isinstance(value, str) else value


def _aggregated(series: Sequence[AggregatedSeries],
                dataset_ids: frozenset[str] | None) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for item in series:
        if dataset_ids is not None and (item.dataset_id or "@none") not in dataset_ids:
            continue
        group: dict[str, Any] = {"type": item.kind}
        if item.dataset_id is not None:
            group["datasetId"] = item.dataset_id
        group.update(item.values)
        groups.append(group)
    return groups


# --------------------------------------------------------------------------- pagination


@dataclass(frozen=True, slots=True)
class InstanceWindow:
    """How storage reads each attribute's instances for one page (see the module doc).

    Storage reads, per attribute (all datasetIds together), the instances inside the filter's
    interval ordered by time — newest first when ``newest_first`` — at most ``fetch`` of them,
    plus any further instances with the same time as the last one read (ties: reading
    ``time <= time of the fetch-th``). ``fetch`` is one more than ``page_size`` when the
    history may be longer than a page, so that :func:`cut_page` can tell."""

    newest_first: bool
    page_size: int
    fetch: int


@dataclass(frozen=True, slots=True)
class Page:
    """What :func:`cut_page` decided: ``keep[i]`` = how many of series ``i``'s instances (in
    storage order) the page shows. ``partial`` = 206 with ``Content-Range``; ``start_ms`` and
    ``end_ms`` are then the range's two timestamps in paging order, the page covering the
    half-open interval between them: forwards ``[start, end)``, backwards ``[end, start)``.
    ``end_ms`` is where the next page starts."""

    keep: tuple[int, ...]
    partial: bool = False
    start_ms: int | None = None
    end_ms: int | None = None


def instance_window(tf: TimeFilter, max_instances: int) -> InstanceWindow:
    """The read plan for one page of at most ``max_instances`` instances per attribute."""
    if max_instances < 1:
        raise ValueError("max_instances must be positive")
    if tf.last_n is not None and tf.last_n <= max_instances:
        return InstanceWindow(newest_first=True, page_size=tf.last_n, fetch=tf.last_n)
    return InstanceWindow(newest_first=tf.last_n is not None, page_size=max_instances,
                          fetch=max_instances + 1)


def cut_page(series: Sequence[Sequence[int]], tf: TimeFilter,
             window: InstanceWindow) -> Page:
    """Cut what storage read (``series``: per attribute, epoch-ms times in storage order, as
    :class:`InstanceWindow` says) to one page, every attribute at the same instant.

    Going forwards the page keeps the times before the earliest time left unshown; going
    backwards, the times after the latest time left unshown. When more than a page of
    instances share the boundary time, that whole time is kept instead (storage read the ties),
    so every page moves on."""
    size = window.page_size
    if window.fetch == size or all(len(times) <= size for times in series):
        return Page(keep=tuple(min(len(times), size) for times in series))
    if window.newest_first:
        return _cut_backwards(series, tf, size)
    return _cut_forwards(series, tf, size)


def _cut_forwards(series: Sequence[Sequence[int]], tf: TimeFilter, size: int) -> Page:
    boundary = min(times[size] for times in series if len(times) > size)
    keep = tuple(bisect_left(times, boundary) for times in series)
    if not any(keep):  # more than a page at one instant: show that instant whole
        keep = tuple(bisect_right(times, boundary) for times in series)
        boundary += 1
    start = tf.start_ms
    if start is None:
        start = min(times[0] for times, kept in zip(series, keep, strict=True) if kept)
    return Page(keep=keep, partial=True, start_ms=start, end_ms=boundary)


def _cut_backwards(series: Sequence[Sequence[int]], tf: TimeFilter, size: int) -> Page:
    # Times are newest first: count those at or after the boundary with negated values.
    unshown = max(times[size] for times in series if len(times) > size)
    boundary = unshown + 1
    keep = tuple(bisect_right([-t for t in times], -boundary) for times in series)
    if not any(keep):
        boundary = unshown
        keep = tuple(bisect_right([-t for t in times], -boundary) for times in series)
    start = tf.end_ms
    if start is None:
        start = max(times[0] for times, kept in zip(series, keep, strict=True) if kept) + 1
    return Page(keep=keep, partial=True, start_ms=start, end_ms=boundary)


def content_range(page: Page, tf: TimeFilter) -> str | None:
    """The ``Content-Range`` header of a partial page (None for a whole one):
    ``date-time <start>-<end>/<lastN or *>``."""
    if not page.partial or page.start_ms is None or page.end_ms is None:
        return None
    size = str(tf.last_n) if tf.last_n is not None else "*"
    return f"date-time {ms_to_iso(page.start_ms)}-{ms_to_iso(page.end_ms)}/{size}"


def next_page_filter(page: Page, tf: TimeFilter, window: InstanceWindow) -> TimeFilter | None:
    """The time filter of the page after ``page`` (None when ``page`` was the last)."""
    if not page.partial or page.end_ms is None:
        return None
    boundary = ms_to_iso(page.end_ms)
    if window.newest_first:
        if tf.start_ms is None:
            return replace(tf, timerel="before", time_at=boundary, end_time_at=None)
        return replace(tf, timerel="between", end_time_at=boundary)
    if tf.end_ms is None:
        return replace(tf, timerel="after", time_at=boundary, end_time_at=None)
    end = tf.time_at if tf.timerel == "before" else tf.end_time_at
    return replace(tf, timerel="between", time_at=boundary, end_time_at=end)


def kept_instances(instances: Sequence[_Item], keep: int,
                   window: InstanceWindow) -> list[_Item]:
    """The instances a page shows of what storage read, oldest first."""
    shown = list(instances[:keep])
    if window.newest_first:
        shown.reverse()
    return shown


def series_times(instances: Iterable[Instance], timeproperty: str) -> list[int]:
    """The epoch-ms times of instances (as storage read them) for :func:`cut_page`."""
    return [iso_to_ms(instance_time(instance, timeproperty) or "1970-01-01T00:00:00Z")
            for instance in instances]
