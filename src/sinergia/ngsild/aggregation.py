"""Aggregated temporal values (NGSI-LD ``format=aggregatedValues``): ``aggrMethods`` over
periods of ``aggrPeriodDuration``, computed from one attribute's points.

Rules worth knowing:

* Periods (buckets) start at ``start_ms`` (the query's ``timeAt`` for ``after``/``between``)
  or, without one, at the first point, and follow each other without gaps: bucket ``k`` is
  ``[start + k·period, start + (k+1)·period)``. Fixed durations (weeks, days, hours, minutes,
  seconds; a day is 24 h, times being UTC) bucket by integer division; calendar ones (months,
  years) step by calendar months from the start, a day past a month's end being clamped to it
  (Jan 31 + P1M = Feb 28/29, + P2M = Mar 31). A bucket's end is not clipped to ``end_ms``.
* A zero duration (``PT0S``, ``P0D``) is one bucket over the whole requested interval (its end
  is ``end_ms``, or the last point's time without one), as the standard says.
* Empty buckets are left out, and so is a method's entry for a bucket where it has no value.
* ``totalCount`` counts every value and ``distinctCount`` the distinct ones (numbers compare by
  value, so ``1`` and ``1.0`` are one value; other JSON values by their canonical JSON text).
  ``sum``, ``avg``, ``min``, ``max``, ``stddev`` and ``sumsq`` use only the values that are
  JSON numbers (booleans are not numbers) and skip the others (Stellio also gives min/max of
  strings and counts booleans as 0/1; we keep these methods numeric).
* ``stddev`` is the *sample* standard deviation (n - 1 in the denominator), as Stellio computes
  it (PostgreSQL ``stddev_samp``); it needs two numbers, so a bucket with a single number has no
  ``stddev`` entry.
* Sums of integers stay exact integers; other sums are plain floating-point sums (stddev from
  the deviations to the mean, not from sumsq, so it stays accurate for large values). A result
  that is not a finite number (an overflow) is left out, as JSON has no infinity.

Speed: points arrive sorted by time as two parallel sequences; each bucket is found with one
binary search and reduced with C-level builtins over a slice, so cost grows with the number of
non-empty buckets, not with the length of the interval. Storage does better where it can: for a
fixed period over numbers only it groups by bucket in SQL (:func:`bucket_step`) and
:func:`from_buckets` turns its figures into the same result; :func:`aggregate` stays the one
definition, for every other case and as the reference the SQL is tested against.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import mul, sub
from typing import Any, Final

import isodate
import orjson

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.temporal import ms_to_iso

AGGR_METHODS: Final = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev",
                       "sumsq")

# NGSI-LD allows P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W (no alternative "P0003-06-04T…" form).
# Calendar units must be whole; the others may have a decimal fraction.
_NUMBER = r"[0-9]{1,12}(?:[.,][0-9]{1,9})?"
_PERIOD: Final = re.compile(
    rf"P(?=[0-9]|T[0-9])(?:[0-9]{{1,12}}Y)?(?:[0-9]{{1,12}}M)?(?:{_NUMBER}D)?"
    rf"(?:T(?=[0-9])(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
    rf"|P{_NUMBER}W",
    re.ASCII,
)
_MAX_MONTHS: Final = 12 * 10_000
_MAX_MILLIS: Final = 10_000 * 366 * 86_400_000
_MS: Final = timedelta(milliseconds=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BEYOND: Final = 253_402_300_800_000  # 10000-01-01T00:00:00Z: past every representable time
_AVERAGE_MONTH_MS: Final = 2_629_746_000
_NUMBER_TYPES: Final = frozenset({int, float})
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Period:
    """An ``aggrPeriodDuration``: ``months`` (calendar part) plus ``millis`` (fixed part)."""

    text: str
    months: int
    millis: int

    @property
    def whole_range(self) -> bool:
        """A zero duration: one bucket over the whole requested interval."""
        return self.months == 0 and self.millis == 0

    @property
    def calendar(self) -> bool:
        return self.months != 0


@dataclass(frozen=True, slots=True)
class Aggregation:
    """What ``format=aggregatedValues`` asks: ``aggrMethods`` over ``aggrPeriodDuration``."""

    methods: tuple[str, ...]
    period: Period


@dataclass(frozen=True, slots=True)
class BucketFigures:
    """One bucket of numbers as a database computed it: ``k`` = its index from the origin
    (``origin + k·step``), ``last_ms`` its latest time. A figure no method asked for is None.
    ``total`` (the sum) serves ``sum`` and ``avg``; ``stddev`` is the sample one."""

    k: int
    count: int
    last_ms: int | None
    distinct: int | None = None
    total: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    sumsq: float | None = None
    stddev: float | None = None


def parse_aggr_methods(text: str | None) -> tuple[str, ...]:
    """``aggrMethods``: a comma list of the NGSI-LD aggregation methods, in the order given,
    duplicates dropped. Raises BadRequestData for a missing, empty or unknown method."""
    if text is None or not text.strip():
        raise BadRequestData("aggregatedValues needs aggrMethods (one or more of "
                             f"{', '.join(AGGR_METHODS)})")
    methods: list[str] = []
    for part in text.split(","):
        method = part.strip()
        if method not in AGGR_METHODS:
            shown = repr(method[:40]) if method else "an empty name"
            raise BadRequestData(f"Unknown aggregation method {shown} in aggrMethods; use "
                                 f"{', '.join(AGGR_METHODS)}")
        if method not in methods:
            methods.append(method)
    return tuple(methods)


def parse_period(text: str | None) -> Period:
    """``aggrPeriodDuration`` (ISO 8601 duration in the NGSI-LD forms; absent = ``PT0S``, the
    whole interval). Raises BadRequestData for anything else, for fractions of a calendar
    unit or of a millisecond, and for durations over 10 000 years."""
    if text is None or text == "":
        return Period("PT0S", 0, 0)
    if len(text) > 120 or _PERIOD.fullmatch(text) is None:
        raise BadRequestData(f"aggrPeriodDuration {text[:60]!r} is not an ISO 8601 duration "
                             "of the form P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W")
    try:
        parsed = isodate.parse_duration(text)
    except (ValueError, OverflowError, ArithmeticError):
        raise BadRequestData(f"aggrPeriodDuration {text!r} is out of range") from None
    if isinstance(parsed, isodate.Duration):
        months = int(parsed.years) * 12 + int(parsed.months)
        fixed = parsed.tdelta
    else:
        months, fixed = 0, parsed
    millis, rest = divmod(fixed, _MS)
    if rest:
        raise BadRequestData(f"aggrPeriodDuration {text!r} is finer than a millisecond")
    if months > _MAX_MONTHS or millis > _MAX_MILLIS:
        raise BadRequestData(f"aggrPeriodDuration {text!r} is longer than 10000 years")
    return Period(text, months, int(millis))


def aggregate(times_ms: Sequence[int], values: Sequence[Any],  # noqa: PLR0917
              methods: Sequence[str], period: Period, start_ms: int | None = None,
              end_ms: int | None = None, *,
              numbers_only: bool = False) -> dict[str, list[list[Any]]]:
    """``{method: [[value, start, end], …]}`` for every method, buckets in time order.

    ``times_ms`` (epoch milliseconds, sorted ascending) and ``values`` are parallel; points
    outside ``[start_ms, end_ms)`` are ignored. Deletion markers should not be passed in.
    ``numbers_only=True`` promises that every value is a float (e.g. storage's numeric
    column), which saves a pass over the values.
    """
    result: dict[str, list[list[Any]]] = {method: [] for method in methods}
    lo = 0 if start_ms is None else bisect_left(times_ms, start_ms)
    hi = len(times_ms) if end_ms is None else bisect_left(times_ms, end_ms)
    if lo >= hi or not methods:
        return result
    origin = times_ms[lo] if start_ms is None else start_ms
    if numbers_only:
        reducer = _Reducer(result, methods, numbers_only=True, integers_only=False)
    else:
        types = set(map(type, values[lo:hi]))
        reducer = _Reducer(result, methods, numbers_only=types <= _NUMBER_TYPES,
                           integers_only=types == {int})

    if period.whole_range:
        end = end_ms if end_ms is not None else times_ms[hi - 1]
        reducer.add(values[lo:hi], ms_to_iso(origin), ms_to_iso(end))
        return result

    add = reducer.add
    calendar = _CalendarBounds(origin, period) if period.calendar else None
    step = period.millis
    previous_end, previous_end_iso = None, ""
    i = lo
    while i < hi:
        if calendar is None:
            bucket_start = origin + (times_ms[i] - origin) // step * step
            bucket_end = bucket_start + step
        else:
            bucket_start, bucket_end = calendar.bounds(times_ms[i])
        j = bisect_left(times_ms, bucket_end, i + 1, hi)
        start_iso = previous_end_iso if bucket_start == previous_end else ms_to_iso(bucket_start)
        previous_end, previous_end_iso = bucket_end, ms_to_iso(bucket_end)
        add(values[i:j], start_iso, previous_end_iso)
        i = j
    return result


def bucket_step(period: Period) -> int:
    """The bucket length in ms for grouping by ``(t - origin) / step`` in SQL (integer
    division, ``t >= origin``): the fixed duration, or for a zero one a length no two
    representable times are apart, so that everything falls in bucket 0. Calendar periods
    have no fixed length (ValueError)."""
    if period.calendar:
        raise ValueError("calendar periods have no fixed length")
    return period.millis if not period.whole_range else 2**62


def from_buckets(buckets: Sequence[BucketFigures], methods: Sequence[str], period: Period,
                 origin_ms: int, end_ms: int | None = None) -> dict[str, list[list[Any]]]:
    """What :func:`aggregate` returns for the same points, from the figures of their
    non-empty buckets (in ``k`` order) over values that are all numbers (floats)."""
    result: dict[str, list[list[Any]]] = {method: [] for method in methods}
    step = bucket_step(period)
    previous_end, end_iso = None, ""
    for bucket in buckets:
        if period.whole_range:
            end = end_ms if end_ms is not None else bucket.last_ms
            assert end is not None, "a whole-range bucket needs its latest time"
            start = origin_ms
        else:
            start = origin_ms + bucket.k * step
            end = start + step
        start_iso = end_iso if start == previous_end else ms_to_iso(start)
        previous_end, end_iso = end, ms_to_iso(end)
        for method in methods:
            value = _FIGURE[method](bucket)
            if _shown(value):
                result[method].append([value, start_iso, end_iso])
    return result


# A method's figure of a bucket (avg as _Reducer's: the plain sum over the count).
_FIGURE: Final[dict[str, Callable[[BucketFigures], Any]]] = {
    "totalCount": lambda b: b.count,
    "distinctCount": lambda b: b.distinct,
    "sum": lambda b: b.total,
    "avg": lambda b: None if b.total is None else b.total / b.count,
    "min": lambda b: b.minimum,
    "max": lambda b: b.maximum,
    "sumsq": lambda b: b.sumsq,
    "stddev": lambda b: b.stddev if b.count >= 2 else None,
}


def _shown(value: Any) -> bool:
    """JSON has no infinity: a figure that overflowed is left out."""
    return value is not None and (type(value) is not float or math.isfinite(value))


class _CalendarBounds:
    """Buckets ``origin + k·months + k·millis``; ``k`` found from the previous bucket's, with an
    estimate from the average month length and a few exact steps."""

    def __init__(self, origin: int, period: Period) -> None:
        self.origin = _EPOCH + timedelta(milliseconds=origin)
        self.period = period
        self.approx = period.months * _AVERAGE_MONTH_MS + period.millis
        self.k = 0
        self.starts: dict[int, int] = {}

    def start(self, k: int) -> int:
        found = self.starts.get(k)
        if found is None:
            try:
                moment = (self.origin + isodate.Duration(months=self.period.months * k)
                          + timedelta(milliseconds=self.period.millis * k))
                found = (moment - _EPOCH) // _MS
            except (OverflowError, ValueError):
                found = _BEYOND
            self.starts[k] = found
        return found

    def bounds(self, time: int) -> tuple[int, int]:
        k = self.k + max(0, (time - self.start(self.k)) // self.approx - 1)
        while self.start(k) > time:
            k -= 1
        while self.start(k + 1) <= time:
            k += 1
        self.k = k
        return self.start(k), self.start(k + 1)


class _Reducer:
    """Adds one bucket's entries to the result, for every method asked."""

    def __init__(self, result: dict[str, list[list[Any]]], methods: Sequence[str], *,
                 numbers_only: bool, integers_only: bool) -> None:
        self.result = result
        self.methods = tuple(methods)
        self.numbers_only = numbers_only
        self.integers_only = integers_only

    def add(self, chunk: Sequence[Any], start: str, end: str) -> None:
        numbers = chunk if self.numbers_only else [
            v for v in chunk if type(v) is int or type(v) is float]
        total: Any = None
        for method in self.methods:
            if method == "totalCount":
                value: Any = len(chunk)
            elif method == "distinctCount":
                value = len(set(chunk)) if self.numbers_only else len(
                    {_distinct_key(v) for v in chunk})
            elif not numbers:
                continue
            elif method == "min":
                value = min(numbers)
            elif method == "max":
                value = max(numbers)
            elif method == "sumsq":
                value = self._sum(map(mul, numbers, numbers))
            else:  # sum, avg, stddev: all need the sum
                if total is None:
                    total = self._sum(numbers)
                value = self._from_sum(method, total, numbers)
            if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                value = _as_float(value)  # JSON encoders stop at 64-bit integers
            if _shown(value):
                self.result[method].append([value, start, end])

    def _sum(self, numbers: Any) -> Any:
        # Plain sum: math.fsum is exact but ~5x slower, and buckets are short sums.
        return sum(numbers) if self.integers_only else sum(numbers, 0.0)

    def _from_sum(self, method: str, total: Any, numbers: Sequence[Any]) -> Any:
        if method == "sum":
            return total
        count = len(numbers)
        try:
            mean = total / count
            if method == "avg":
                return mean
            if count < 2 or not math.isfinite(mean):
                return None
            deviations = list(map(sub, numbers, repeat(mean)))
            return math.sqrt(sum(map(mul, deviations, deviations), 0.0) / (count - 1))
        except OverflowError:
            return None


def _as_float(value: int) -> float | None:
    try:
        return float(value)
    except OverflowError:
        return None


def _distinct_key(value: Any) -> Any:
    kind = type(value)
    if kind is int or kind is float or kind is str or value is None:
        return value
    if kind is bool:
        return ("bool", value)
    try:
        return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # integers beyond 64 bits, non-string keys: slower but total
        return ("json", json.dumps(value, sort_keys=True, default=repr))
