"""Aggregated temporal values: aggrMethods, aggrPeriodDuration and the bucketing itself,
checked against a naive reference implementation."""

from __future__ import annotations

import calendar
import math
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.aggregation import (
    AGGR_METHODS,
    Period,
    aggregate,
    parse_aggr_methods,
    parse_period,
)
from sinergia.ngsild.errors import BadRequestData, NgsiLdError
from sinergia.ngsild.temporal import iso_to_ms, ms_to_iso

H = 3_600_000
T0 = iso_to_ms("2026-11-21T10:00:00Z")


def at(text: str) -> int:
    return iso_to_ms(text)


# --- aggrMethods ------------------------------------------------------------------------------

def test_methods_in_the_order_given_without_duplicates():
    assert parse_aggr_methods("max, avg,max,totalCount") == ("max", "avg", "totalCount")
    assert parse_aggr_methods(",".join(AGGR_METHODS)) == AGGR_METHODS


@pytest.mark.parametrize("text", [None, "", "  ", "avg,", "avg,,max", "mean", "AVG", "avg;max"])
def test_bad_methods(text: str | None):
    with pytest.raises(BadRequestData, match="aggrMethods"):
        parse_aggr_methods(text)


# --- aggrPeriodDuration -----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "months", "millis"), [
    ("PT1H", 0, H),
    ("PT15M", 0, 15 * 60_000),
    ("PT0.5S", 0, 500),
    ("PT1,5S", 0, 1500),
    ("P1D", 0, 24 * H),
    ("P1DT12H", 0, 36 * H),
    ("P1.5D", 0, 36 * H),
    ("P2W", 0, 14 * 24 * H),
    ("P1M", 1, 0),
    ("P1Y2M", 14, 0),
    ("P1Y2M3DT4H5M6S", 14, ((3 * 24 + 4) * 60 + 5) * 60_000 + 6000),
    ("PT0S", 0, 0),
    ("P0D", 0, 0),
])
def test_periods(text: str, months: int, millis: int):
    period = parse_period(text)
    assert (period.months, period.millis, period.text) == (months, millis, text)
    assert period.calendar is (months != 0)
    assert period.whole_range is (months == 0 and millis == 0)


def test_no_period_means_the_whole_range():
    assert parse_period(None).whole_range
    assert parse_period("").whole_range


@pytest.mark.parametrize("text", [
    "P", "PT", "P1DT", "1H", "PT1H ", " PT1H", "pt1h", "P1.5M", "P0.5Y", "-P1D", "P-1D",
    "P0003-06-04T12:30:05", "PT0.0001S", "P1W2D", "P1H", "PT1D", "P10001Y", "P1M1Y",
    "P1Y1Y", "PT1S1M", "P\uff11D", "P1DT1H1M1S1", "R5/PT1H",
])
def test_bad_periods(text: str):
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        parse_period(text)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=30),
                 st.from_regex(r"P[0-9.,YMWDTHS]{0,14}", fullmatch=True),
                 st.from_regex(r"PT?[0-9]{10,16}[YMWDHS]", fullmatch=True)))
def test_parse_period_raises_only_ngsi_ld_errors(text: str):
    try:
        period = parse_period(text)
    except NgsiLdError:
        return
    assert period.months >= 0
    assert period.millis >= 0


@given(st.integers(0, 20), st.integers(0, 11), st.integers(0, 400), st.integers(0, 48),
       st.integers(0, 120), st.integers(0, 7200))
def test_generated_durations_parse_to_their_parts(y: int, mo: int, d: int, h: int, mi: int,
                                                   s: int):
    text = f"P{y}Y{mo}M{d}DT{h}H{mi}M{s}S"
    assert parse_period(text) == Period(text, y * 12 + mo,
                                        ((d * 24 + h) * 60 + mi) * 60_000 + s * 1000)


# --- aggregate: examples ----------------------------------------------------------------------

def test_every_method_over_hourly_buckets():
    times = [T0, T0 + 10, T0 + 20, T0 + 2 * H + 5]
    values = [1, 2, 2, 10.5]
    result = aggregate(times, values, AGGR_METHODS, parse_period("PT1H"), T0, T0 + 3 * H)
    first, third = "2026-11-21T10:00:00.000Z", "2026-11-21T12:00:00.000Z"
    b1 = [first, "2026-11-21T11:00:00.000Z"]
    b3 = [third, "2026-11-21T13:00:00.000Z"]
    assert result == {
        "totalCount": [[3, *b1], [1, *b3]],
        "distinctCount": [[2, *b1], [1, *b3]],
        "sum": [[5.0, *b1], [10.5, *b3]],
        "avg": [[5 / 3, *b1], [10.5, *b3]],
        "min": [[1, *b1], [10.5, *b3]],
        "max": [[2, *b1], [10.5, *b3]],
        "stddev": [[statistics.stdev([1, 2, 2]), *b1]],  # one number: no stddev
        "sumsq": [[9.0, *b1], [110.25, *b3]],
    }


def test_integers_sum_exactly():
    big = 2**53 + 1
    result = aggregate([T0, T0 + 1], [big, 1], ("sum", "sumsq", "min"), parse_period("PT1H"))
    assert result["sum"][0][0] == big + 1
    assert isinstance(result["sum"][0][0], int)
    assert result["min"][0][0] == 1


def test_buckets_start_at_the_first_point_without_a_start():
    result = aggregate([T0 + 123, T0 + H + 200], [1.0, 2.0], ("avg",), parse_period("PT1H"))
    assert result["avg"] == [
        [1.0, ms_to_iso(T0 + 123), ms_to_iso(T0 + H + 123)],
        [2.0, ms_to_iso(T0 + H + 123), ms_to_iso(T0 + 2 * H + 123)],
    ]


def test_points_outside_the_interval_are_ignored_and_empty_buckets_left_out():
    times = [T0 - 1, T0, T0 + 5 * H, T0 + 6 * H]
    result = aggregate(times, [100, 1, 2, 300], ("totalCount", "max"), parse_period("PT1H"),
                       T0, T0 + 6 * H)
    assert [entry[:2] for entry in result["max"]] == [[1, ms_to_iso(T0)],
                                                      [2, ms_to_iso(T0 + 5 * H)]]
    assert [entry[0] for entry in result["totalCount"]] == [1, 1]


def test_nothing_to_aggregate():
    assert aggregate([], [], ("avg", "max"), parse_period("PT1H")) == {"avg": [], "max": []}
    assert aggregate([T0], [1], ("avg",), parse_period("PT1H"), T0 + 1) == {"avg": []}


def test_zero_duration_is_one_bucket_over_the_whole_interval():
    times = [T0, T0 + 5 * H]
    whole = parse_period("PT0S")
    assert aggregate(times, [1, 3], ("avg",), whole, T0 - H, T0 + 24 * H) == {
        "avg": [[2.0, ms_to_iso(T0 - H), ms_to_iso(T0 + 24 * H)]]}
    assert aggregate(times, [1, 3], ("avg",), whole) == {
        "avg": [[2.0, ms_to_iso(T0), ms_to_iso(T0 + 5 * H)]]}


def test_calendar_months_clamp_to_the_end_of_the_month():
    start = at("2024-01-31T00:00:00Z")
    times = [at("2024-02-01T00:00:00Z"), at("2024-03-30T00:00:00Z"),
             at("2024-03-31T00:00:00Z"), at("2025-01-01T00:00:00Z")]
    result = aggregate(times, [1, 2, 3, 4], ("totalCount",), parse_period("P1M"), start)
    assert result["totalCount"] == [
        [1, "2024-01-31T00:00:00.000Z", "2024-02-29T00:00:00.000Z"],
        [1, "2024-02-29T00:00:00.000Z", "2024-03-31T00:00:00.000Z"],
        [1, "2024-03-31T00:00:00.000Z", "2024-04-30T00:00:00.000Z"],
        [1, "2024-12-31T00:00:00.000Z", "2025-01-31T00:00:00.000Z"],
    ]


def test_years_and_mixed_periods():
    start = at("2020-02-29T12:00:00Z")
    times = [at("2021-03-01T00:00:00Z")]
    assert aggregate(times, [1], ("sum",), parse_period("P1Y"), start)["sum"] == [
        [1, "2021-02-28T12:00:00.000Z", "2022-02-28T12:00:00.000Z"]]
    assert aggregate(times, [1], ("sum",), parse_period("P1M1D"), start)["sum"] == [
        [1, "2021-02-09T12:00:00.000Z", "2021-03-12T12:00:00.000Z"]]  # Feb 28 + 12 d


def test_non_numbers_count_but_do_not_add_up():
    times = [T0 + i for i in range(7)]
    values: list[Any] = ["on", "off", "on", True, 1, {"a": [1, 2]}, {"a": [1, 2]}]
    result = aggregate(times, values, AGGR_METHODS, parse_period("PT1H"), T0)
    bucket = [ms_to_iso(T0), ms_to_iso(T0 + H)]
    assert result["totalCount"] == [[7, *bucket]]
    assert result["distinctCount"] == [[5, *bucket]]  # "on", "off", True, 1, {"a": [1, 2]}
    assert result["sum"] == [[1.0, *bucket]]
    assert result["max"] == [[1, *bucket]]
    assert result["stddev"] == []


def test_only_strings_give_counts_only():
    result = aggregate([T0, T0 + 1], ["a", "b"], ("totalCount", "avg", "min"),
                       parse_period("PT1H"))
    assert result["totalCount"][0][0] == 2
    assert result["avg"] == result["min"] == []


def test_numbers_compare_by_value_for_distinct_count():
    result = aggregate([T0, T0 + 1, T0 + 2], [1, 1.0, 2], ("distinctCount",),
                       parse_period("PT1H"))
    assert result["distinctCount"][0][0] == 2


def test_results_that_overflow_are_left_out():
    result = aggregate([T0, T0 + 1], [1e308, 1e308], ("sum", "avg", "max", "sumsq"),
                       parse_period("PT1H"))
    assert result["sum"] == result["avg"] == result["sumsq"] == []
    assert result["max"][0][0] == 1e308


def test_bucket_ends_beyond_year_9999_are_clamped():
    start = at("9999-12-31T23:00:00Z")
    result = aggregate([start + 1], [1], ("sum",), parse_period("P1M"), start)
    assert result["sum"] == [[1, "9999-12-31T23:00:00.000Z", "9999-12-31T23:59:59.999Z"]]


def test_numbers_only_promise_gives_the_same_result():
    times = [T0 + i * 600_000 for i in range(50)]
    values = [float(i % 7) for i in range(50)]
    period = parse_period("PT1H")
    assert aggregate(times, values, AGGR_METHODS, period, T0, numbers_only=True) == \
        aggregate(times, values, AGGR_METHODS, period, T0)


# --- aggregate: against a naive reference -----------------------------------------------------

def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _bucket_start(origin: int, period: Period, k: int) -> int:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=origin)
    moment = _add_months(moment, period.months * k) + timedelta(milliseconds=period.millis * k)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reference(times: list[int], values: list[Any], period: Period,
               start: int | None, end: int | None) -> dict[str, list[list[Any]]]:
    points = [(t, v) for t, v in zip(times, values, strict=True)
              if (start is None or t >= start) and (end is None or t < end)]
    out: dict[str, list[list[Any]]] = {m: [] for m in AGGR_METHODS}
    if not points:
        return out
    origin = start if start is not None else points[0][0]
    buckets: dict[int, list[Any]] = {}
    for t, v in points:
        if not period.calendar:  # the definition: whole periods since the origin
            k = (t - origin) // period.millis
        else:  # walk the calendar
            k = 0
            while _bucket_start(origin, period, k + 1) <= t:
                k += 1
        buckets.setdefault(k, []).append(v)
    for k in sorted(buckets):
        chunk = buckets[k]
        bounds = [ms_to_iso(_bucket_start(origin, period, k)),
                  ms_to_iso(_bucket_start(origin, period, k + 1))]
        numbers = [v for v in chunk if _is_number(v)]
        keys = {repr(v) if not _is_number(v) else float(v) for v in chunk}
        out["totalCount"].append([len(chunk), *bounds])
        out["distinctCount"].append([len(keys), *bounds])
        if numbers:
            out["sum"].append([math.fsum(numbers), *bounds])
            out["avg"].append([statistics.fmean(numbers), *bounds])
            out["min"].append([min(numbers), *bounds])
            out["max"].append([max(numbers), *bounds])
            out["sumsq"].append([math.fsum(x * x for x in numbers), *bounds])
        if len(numbers) > 1:
            out["stddev"].append([statistics.stdev(numbers), *bounds])
    return out


def _close(got: dict[str, list[list[Any]]], want: dict[str, list[list[Any]]], *,
           tolerance: float = 1e-6) -> None:
    assert got.keys() == want.keys()
    for method, entries in want.items():
        assert len(got[method]) == len(entries), method
        for (value, *bounds), (expected, *expected_bounds) in zip(got[method], entries,
                                                                   strict=True):
            assert bounds == expected_bounds, method
            assert value == pytest.approx(expected, rel=1e-9, abs=tolerance), method


_PERIODS = st.one_of(
    st.integers(1, 5 * H).map(lambda ms: Period(f"{ms}ms", 0, ms)),
    st.tuples(st.integers(1, 14), st.integers(0, 3 * 24 * H)).map(
        lambda p: Period("calendar", p[0], p[1])),
)
_VALUES = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["on", "off", True, False, None, {"a": 1}, [1, 2]]),
)


@settings(max_examples=200, deadline=None)
@given(
    period=_PERIODS,
    offsets=st.lists(st.integers(0, 400 * 24 * H), max_size=60),
    values=st.lists(_VALUES, min_size=60, max_size=60),
    start_shift=st.one_of(st.none(), st.integers(-30 * 24 * H, 30 * 24 * H)),
    end_offset=st.one_of(st.none(), st.integers(0, 400 * 24 * H)),
)
def test_aggregate_agrees_with_the_naive_reference(period: Period, offsets: list[int],
                                                   values: list[Any], start_shift: int | None,
                                                   end_offset: int | None):
    base = at("2024-01-31T06:00:00Z")
    times = sorted(base + offset for offset in offsets)
    values = values[:len(times)]
    start = None if start_shift is None else base + start_shift
    end = None if end_offset is None else base + end_offset
    got = aggregate(times, values, AGGR_METHODS, period, start, end)
    _close(got, _reference(times, values, period, start, end))


@settings(max_examples=100, deadline=None)
@given(offsets=st.lists(st.integers(0, 10 * 24 * H), max_size=80),
       values=st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=80, max_size=80),
       step=st.integers(1, 48 * H))
def test_float_series_with_the_numbers_only_promise(offsets: list[int], values: list[float],
                                                    step: int):
    times = sorted(T0 + offset for offset in offsets)
    values = values[:len(times)]
    period = Period("fixed", 0, step)
    got = aggregate(times, values, AGGR_METHODS, period, T0, numbers_only=True)
    # plain float sums of up to 80 values of 1e9 may be off by ~80 ulps of 1e9
    _close(got, _reference(times, values, period, T0, None), tolerance=1e-4)


@given(st.text(max_size=60))
def test_parse_aggr_methods_raises_only_ngsi_ld_errors(text: str):
    try:
        methods = parse_aggr_methods(text)
    except NgsiLdError:
        return
    assert methods
    assert set(methods) <= set(AGGR_METHODS)
