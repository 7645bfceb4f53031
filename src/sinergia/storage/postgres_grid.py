"""A fixed lon/lat grid over the stored Points, so that a geo-query's page reads its Points in
rid order instead of all the Points in its box.

``entity_geo.cell`` (a generated column) numbers the grid cell of each Point, and the index
``entity_geo_cells`` keys the Points by ``(tenant, attr, cell, rid)``: within one cell they
come in rid order. A box covering a few cells is then read as the merge of one index range
a cell (a Merge Append), and the reading stops after the page's Points: in a neighbourhood of
a city of 1M entities that is a few hundred index entries, where the SP-GiST index of points
has to return every Point in the box (thousands) to sort them by rid.

Cells are 1/100 degree (about 1.1 km by 0.8 km at Milan's latitude): the blocks of a city's
neighbourhoods. A box much smaller than the cells it touches, or covering very many of them,
is better served by the SP-GiST index: :func:`cells_of` returns None for those. Points with
coordinates outside the lon/lat range have no cell (NULL), and are read with every box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from sinergia.ngsild.geo import Bbox

PER_DEGREE = 100
_ROW = 360 * PER_DEGREE + 1  # cells in a row of the grid: x index 0 … 360 * PER_DEGREE

# The cell of a Point geometry ``geom``; the same arithmetic as :func:`cells_of` (IEEE
# float8 products, then floor), so a Point in a box always lies in one of its cells.
CELL_SQL = (
    "CASE WHEN GeometryType(geom) = 'POINT' AND ST_X(geom) BETWEEN -180 AND 180 "
    "AND ST_Y(geom) BETWEEN -90 AND 90 "
    f"THEN (floor(ST_Y(geom) * {PER_DEGREE}) + {90 * PER_DEGREE})::bigint * {_ROW} "
    f"+ (floor(ST_X(geom) * {PER_DEGREE}) + {180 * PER_DEGREE})::bigint END")

# Planning the merge grows faster than the cells (measured: 110 cells 9 ms, once a statement
# and connection; 345 cells 77 ms), and each cell costs an index descent a read even where
# the data are sparse; the SP-GiST read of a box of 128 cells of a 1M-entity city costs
# several times more than the grid's, planning included.
MAX_CELLS = 128
# A box covering less than this share of its cells' area reads fewer Points from SP-GiST.
MIN_COVER = 0.25


def cell_number(ix: int, iy: int) -> int:
    """The number of the cell of column ``ix`` and row ``iy`` (floors of degrees x 100)."""
    return (iy + 90 * PER_DEGREE) * _ROW + ix + 180 * PER_DEGREE


def cells_of(box: Bbox, min_cover: float = MIN_COVER) -> list[int] | None:
    """The cells a lon/lat box touches, or None when the grid is not the cheaper read (too
    many cells, or the box covers less than ``min_cover`` of their area)."""
    minx, miny, maxx, maxy = (float(c) for c in box)
    if not all(math.isfinite(c) for c in (minx, miny, maxx, maxy)):
        return None
    x0, x1 = (min(max(math.floor(x * PER_DEGREE), -180 * PER_DEGREE), 180 * PER_DEGREE)
              for x in (minx, maxx))
    y0, y1 = (min(max(math.floor(y * PER_DEGREE), -90 * PER_DEGREE), 90 * PER_DEGREE)
              for y in (miny, maxy))
    count = (x1 - x0 + 1) * (y1 - y0 + 1)
    if count > MAX_CELLS or (maxx - minx) * (maxy - miny) * PER_DEGREE ** 2 < min_cover * count:
        return None
    return [cell_number(ix, iy) for iy in range(y0, y1 + 1) for ix in range(x0, x1 + 1)]


# The Points of the box in one cell (or in none: NULL), in rid order after a rid. Named
# parameters: each is sent once however many cells repeat it.
_CELL_POINTS = (
    "(SELECT rid, pt FROM entity_geo WHERE pt IS NOT NULL AND tenant = %(tenant)s "
    "AND attr = %(attr)s AND cell {} AND pt <@ box(point(%(minx)s, %(miny)s), "
    "point(%(maxx)s, %(maxy)s)) AND rid > %(after)s ORDER BY rid)")

Statement = tuple[str, Sequence[object] | Mapping[str, object]]


def points_after(cells: list[int], box: Bbox, tenant: str,
                 attr: str) -> Callable[[int, int], Statement]:
    """``(after, size) ->`` the statement of ``postgres_queries._BOX_POINTS_AFTER`` over
    ``cells``: each cell's range (its own ORDER BY lets PostgreSQL merge them) and the Points
    without a cell."""
    ranges = " UNION ALL ".join([_CELL_POINTS.format(f"= %(c{n})s") for n in range(len(cells))]
                                + [_CELL_POINTS.format("IS NULL")])
    sql = ("SELECT string_agg(int8send(rid), ''::bytea ORDER BY rid), "  # noqa: S608
           "string_agg(float8send(pt[0]), ''::bytea ORDER BY rid), "
           "string_agg(float8send(pt[1]), ''::bytea ORDER BY rid), count(*) FROM ("
           f"{ranges} ORDER BY rid LIMIT %(size)s) c")
    minx, miny, maxx, maxy = box
    fixed: dict[str, object] = {"tenant": tenant, "attr": attr, "minx": minx, "miny": miny,
                                "maxx": maxx, "maxy": maxy}
    fixed.update((f"c{n}", cell) for n, cell in enumerate(cells))
    return lambda after, size: (sql, {**fixed, "after": after, "size": size})
