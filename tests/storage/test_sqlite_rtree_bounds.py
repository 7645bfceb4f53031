"""The SQLite geo-query drops candidates whose R*Tree box is provably out of reach
(``ngsild.geo.boxes_out_of_reach``), reasoning on the boxes the R*Tree gives back. That is
sound only if those boxes contain the boxes stored: SQLite keeps 32-bit floats and documents
rounding lower bounds down and upper bounds up -- except for magnitudes below float32's range,
which become 0 (a shortfall under 1e-38 degrees, far inside the filter's 1 m margin). This
checks it on the SQLite we run on."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

LON = st.floats(min_value=-180, max_value=180, allow_nan=False)
LAT = st.floats(min_value=-90, max_value=90, allow_nan=False)
SLACK = 1e-30  # degrees: what underflow may take off, some 1e-25 m


@given(st.tuples(LON, LON).map(sorted), st.tuples(LAT, LAT).map(sorted))
def test_rtree_boxes_read_back_contain_the_boxes_stored(xs: list[float],
                                                        ys: list[float]) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE geo_index USING rtree (gid, minx, maxx, miny, maxy)")
    conn.execute("INSERT INTO geo_index VALUES (1, ?, ?, ?, ?)", (xs[0], xs[1], ys[0], ys[1]))
    minx, maxx, miny, maxy = conn.execute(
        "SELECT minx, maxx, miny, maxy FROM geo_index").fetchone()
    assert minx <= xs[0] + SLACK and maxx >= xs[1] - SLACK
    assert miny <= ys[0] + SLACK and maxy >= ys[1] - SLACK
