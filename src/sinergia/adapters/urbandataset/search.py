"""Finding UrbanDatasets among kept documents: what the SCPS gateway's searches filter on.

A *context-level* filter looks at the document as a whole: its ``context.timestamp`` (when it
was produced) and ``context.coordinates``. A *line-level* filter looks at each line — its
period (or timestamp), its coordinates (else the document's), its property values — and keeps
only the lines that match. Times without an offset, in a filter as in a document, are read in
the document's own ``context.timeZone``; distances are geodesic metres on WGS84.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from sinergia.adapters.urbandataset.document import DEFAULT_TIME_ZONE, read_coordinates
from sinergia.adapters.urbandataset.timezone import (
    LocalTimes,
    format_time_zone,
    parse_local_datetime,
    parse_time_zone,
    parse_utc,
    to_local_text,
)

__all__ = [
    "Circle",
    "Filters",
    "Period",
    "PropertyMatch",
    "context_matches",
    "matching_lines",
    "parse_filters",
    "produced_at",
    "summarize",
    "timestamp_key",
    "with_lines",
]

_PERIOD_KEYS: Final = ("period_start", "period_end")
_CIRCLE_KEYS: Final = ("center_latitude", "center_longitude", "distance")


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end]``, either end open (None). Naive bounds are in each document's zone."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Circle:
    latitude: float
    longitude: float
    radius: float  # metres


@dataclass(frozen=True, slots=True)
class PropertyMatch:
    """A property of the line named ``name`` (any name when None) whose value is ``value``
    (any value when None)."""

    name: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    period: Period | None = None
    circle: Circle | None = None
    prop: PropertyMatch | None = None


# -- reading filters from a gateway request ----------------------------------------------------


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key} must be a string")
    return str(value).strip()


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    text = _text(body, key)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number, not {text!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{key} must be between {low:g} and {high:g}, not {text}")
    return number


def _moment(body: Mapping[str, Any], key: str) -> datetime | None:
    text = _text(body, key)
    if text is None:
        return None
    try:
        return parse_local_datetime(text)[0]
    except ValueError:
        raise ValueError(f"{key} must be a date and time such as 2026-11-20T00:00:00, "
                         f"not {text!r}") from None


def parse_filters(body: Mapping[str, Any], *, property_keys: tuple[str, str] | None = None,
                  property_required: bool = False) -> Filters:
    """The optional filters of a searching request: ``period_start``/``period_end``,
    ``center_latitude``/``center_longitude``/``distance`` (all three or none) and, with
    ``property_keys`` (e.g. ``("property_label", "property_value")``), a property. Values
    may be strings (as the gateway's clients send them) or numbers. Raises ValueError."""
    start, end = (_moment(body, key) for key in _PERIOD_KEYS)
    if start is not None and end is not None and (start.tzinfo is None) == (end.tzinfo is None) \
            and end < start:
        raise ValueError("period_end is before period_start")
    period = Period(start, end) if start is not None or end is not None else None
    latitude = _number(body, _CIRCLE_KEYS[0], -90.0, 90.0)
    longitude = _number(body, _CIRCLE_KEYS[1], -180.0, 180.0)
    radius = _number(body, _CIRCLE_KEYS[2], 0.0, 2.1e7)
    given = [value is not None for value in (latitude, longitude, radius)]
    if any(given) and not all(given):
        raise ValueError("center_latitude, center_longitude and distance go together")
    circle = None
    if latitude is not None and longitude is not None and radius is not None:
        circle = Circle(latitude, longitude, radius)
    prop = None
    if property_keys is not None:
        name, value = (_text(body, key) for key in property_keys)
        if property_required and (name is None or value is None):
            raise ValueError(f"{property_keys[0]} and {property_keys[1]} are required")
        if name is not None or value is not None:
            prop = PropertyMatch(name, value)
    return Filters(period, circle, prop)


# -- the document's context --------------------------------------------------------------------


def _context(ud: Mapping[str, Any]) -> Mapping[str, Any]:
    context = ud.get("context")
    return context if isinstance(context, dict) else {}


def _zone(ud: Mapping[str, Any]) -> tzinfo:
    written = _context(ud).get("timeZone")
    try:
        return parse_time_zone(written) if isinstance(written, str) else \
            parse_time_zone(DEFAULT_TIME_ZONE)
    except ValueError:
        return parse_time_zone(DEFAULT_TIME_ZONE)


def timestamp_key(text: Any) -> str:
    """A ``context.timestamp`` in one canonical spelling (``2026-11-21T00:05:00``), so that
    a request names the same document however its timestamp is written. Raises ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the UrbanDataset has no context.timestamp")
    moment, _ = parse_local_datetime(text)
    if moment.tzinfo is not None:
        return moment.isoformat()
    return to_local_text(moment.replace(tzinfo=UTC), UTC)


def summarize(ud: Mapping[str, Any]) -> dict[str, Any]:
    """What a context-level search needs of a document: when it was produced (UTC), its time
    zone, its coordinates and how many lines it has. Raises ValueError for a document whose
    timestamp cannot be read."""
    zone = _zone(ud)
    context = _context(ud)
    key = timestamp_key(context.get("timestamp"))
    produced, _ = LocalTimes(zone).to_utc(key)
    try:
        coordinates = read_coordinates(context.get("coordinates"))
    except ValueError:
        coordinates = None
    values = ud.get("values")
    lines = values.get("line") if isinstance(values, dict) else None
    try:
        zone_text = format_time_zone(zone)
    except ValueError:
        zone_text = DEFAULT_TIME_ZONE
    return {"produced": produced, "time_zone": zone_text,
            "coordinates": None if coordinates is None else list(coordinates[:2]),
            "lines": len(lines) if isinstance(lines, list) else 0}


def produced_at(summary: Mapping[str, Any]) -> datetime:
    return parse_utc(str(summary["produced"]))


def _absolute(moment: datetime, zone: tzinfo) -> datetime:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).astimezone(UTC)


@functools.cache
def _geod() -> Any:
    from pyproj import Geod  # imported on first use: a search with a distance

    return Geod(ellps="WGS84")


def _within(circle: Circle, latitude: float, longitude: float) -> bool:
    _, _, metres = _geod().inv(circle.longitude, circle.latitude, longitude, latitude)
    return bool(metres <= circle.radius)


def _in_period(period: Period, start: datetime, end: datetime | None, zone: tzinfo) -> bool:
    """An instant (``end`` None) inside ``[period.start, period.end]``, or a ``[start, end)``
    interval overlapping it."""
    low = None if period.start is None else _absolute(period.start, zone)
    high = None if period.end is None else _absolute(period.end, zone)
    if high is not None and start > high:
        return False
    if low is None:
        return True
    return start >= low if end is None else end > low


def context_matches(summary: Mapping[str, Any], filters: Filters) -> bool:
    """The document-level test: produced in the period, placed within the circle."""
    zone = parse_time_zone(str(summary.get("time_zone") or DEFAULT_TIME_ZONE))
    if filters.period is not None and not _in_period(filters.period, produced_at(summary),
                                                     None, zone):
        return False
    if filters.circle is not None:
        coordinates = summary.get("coordinates")
        if not coordinates or not _within(filters.circle, *coordinates):
            return False
    return True


# -- lines ------------------------------------------------------------------------------------


def _properties(items: Any) -> Iterator[tuple[Any, Any]]:
    """(name, val) of a line's properties, nested (aggregated) ones included."""
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            yield item.get("name"), item.get("val")
            yield from _properties(item.get("property"))


def _has_property(line: Mapping[str, Any], match: PropertyMatch) -> bool:
    for name, value in _properties(line.get("property")):
        if match.name is not None and name != match.name:
            continue
        if match.value is None:
            return True
        if isinstance(value, str | int | float) and str(value).strip() == match.value:
            return True
    return False


class _LineReader:
    def __init__(self, ud: Mapping[str, Any]) -> None:
        self.zone = _zone(ud)
        self.times = LocalTimes(self.zone)
        context = _context(ud)
        try:
            self.produced: datetime | None = parse_utc(
                self.times.to_utc(timestamp_key(context.get("timestamp")))[0])
        except ValueError:
            self.produced = None
        try:
            self.coordinates = read_coordinates(context.get("coordinates"))
        except ValueError:
            self.coordinates = None

    def utc(self, text: Any) -> datetime | None:
        if not isinstance(text, str):
            return None
        try:
            return parse_utc(self.times.to_utc(text)[0])
        except ValueError:
            return None

    def when(self, line: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
        period = line.get("period")
        if isinstance(period, dict):
            start = self.utc(period.get("start_ts"))
            if start is not None:
                return start, self.utc(period.get("end_ts"))
        return self.utc(line.get("timestamp")) or self.produced, None

    def where(self, line: Mapping[str, Any]) -> tuple[float, float, float | None] | None:
        try:
            found = read_coordinates(line.get("coordinates"))
        except ValueError:
            found = None
        return found if found is not None else self.coordinates


def matching_lines(ud: Mapping[str, Any], filters: Filters) -> list[Any]:
    """The document's lines that pass every line-level filter."""
    values = ud.get("values")
    lines = values.get("line") if isinstance(values, dict) else None
    if not isinstance(lines, list):
        return []
    reader = _LineReader(ud)
    kept = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        if filters.prop is not None and not _has_property(line, filters.prop):
            continue
        if filters.period is not None:
            start, end = reader.when(line)
            if start is None or not _in_period(filters.period, start, end, reader.zone):
                continue
        if filters.circle is not None:
            place = reader.where(line)
            if place is None or not _within(filters.circle, place[0], place[1]):
                continue
        kept.append(line)
    return kept


def with_lines(document: Mapping[str, Any], lines: list[Any]) -> dict[str, Any]:
    """A copy of a pushed document (``{"UrbanDataset": …}``) holding only ``lines``."""
    ud = dict(document["UrbanDataset"])
    ud["values"] = {**ud.get("values", {}), "line": lines}
    return {**document, "UrbanDataset": ud}
