"""What the SQLite and PostgreSQL history readers share: aggregating a series by period in the
database (``GROUP BY (t - origin) / step``) and when that gives what
:func:`sinergia.ngsild.aggregation.aggregate` would.

The database does it when the period has a fixed length (calendar months do not), every
method is one the dialect computes exactly enough (SQLite has no standard deviation, and one
from sums of squares loses precision), the request takes all the points of the interval (no
``lastN``), and every value in the interval is a number (the ``num`` column): the query counts
the rows and the numbers of each bucket, and :func:`figures` gives up when they differ, leaving
that attribute to the Python path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sinergia.ngsild.aggregation import Aggregation, BucketFigures
from sinergia.storage.base import HistoryQuery


def in_database(q: HistoryQuery, methods: frozenset[str]) -> bool:
    """Whether to try the database for ``q``, whose dialect computes ``methods``."""
    agg = q.aggregation
    return (agg is not None and q.series and q.last_n is None and q.instance_limit is None
            and not agg.period.calendar and methods.issuperset(agg.methods))


def figure_columns(agg: Aggregation, *, time: str, num: str, stddev: str) -> str:
    """The SELECT list of one bucket after its index, in :func:`figures` order; a figure no
    method needs is NULL (each aggregate costs time on every row). The latest time is the
    end of a whole-range bucket only."""
    wanted = set(agg.methods)

    def need(sql: str, *names: str) -> str:
        return sql if wanted.intersection(names) else "NULL"

    return ", ".join([
        "count(*)", f"count({num})", f"max({time})" if agg.period.whole_range else "NULL",
        need(f"count(DISTINCT {num})", "distinctCount"),
        need(f"sum({num})", "sum", "avg"),
        need(f"min({num})", "min"),
        need(f"max({num})", "max"),
        need(f"sum({num} * {num})", "sumsq"),
        need(stddev, "stddev")])


def figures(rows: Iterable[Sequence[Any]]) -> list[BucketFigures] | None:
    """Rows ``(k, count, numbers, last, distinct, sum, min, max, sumsq, stddev)`` in ``k``
    order as buckets; None when a bucket holds a value that is not a number."""
    out = []
    for k, count, numbers, last, distinct, total, low, high, sumsq, stddev in rows:
        if numbers != count:
            return None
        out.append(BucketFigures(k=k, count=count, last_ms=last, distinct=distinct,
                                 total=total, minimum=low, maximum=high, sumsq=sumsq,
                                 stddev=stddev))
    return out
