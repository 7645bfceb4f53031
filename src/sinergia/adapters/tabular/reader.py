"""Reading municipal tables: CSV (any delimiter, sniffed; UTF-8 with or without BOM, else
Windows-1252, as Italian spreadsheets are often saved) and GeoJSON feature collections.

Both become a :class:`TableSource`: column names, an estimate of the number of rows (for the
progress bar) and a stream of ``(number, row)``. CSV rows are lists of strings and their number
is the line where the record ends, as a spreadsheet shows it; GeoJSON rows are the feature's
properties plus ``@id`` (the feature id) and ``@geometry``, numbered from 1.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import orjson

Row = list[str] | dict[str, Any]
FEATURE_ID = "@id"
FEATURE_GEOMETRY = "@geometry"
CANDIDATE_DELIMITERS = ";,\t|"
FALLBACK_ENCODING = "cp1252"
_SAMPLE_BYTES = 64 * 1024
_CHUNK_BYTES = 1024 * 1024
# WGS84 longitude/latitude under the names GeoJSON files use for it.
WGS84_NAMES = frozenset({"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84",
                         "OGC:CRS84", "CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326",
                         "WGS84"})


class TableError(ValueError):
    """The file cannot be read as a table at all (as opposed to one bad row)."""


@dataclass(slots=True)
class TableSource:
    kind: Literal["csv", "geojson"]
    columns: list[str]
    rows: Iterator[tuple[int, Row]]
    estimated_rows: int | None
    crs: str | None = None           # GeoJSON: the file's declared CRS name, if any
    encoding: str | None = None      # CSV: the encoding used
    delimiter: str | None = None     # CSV: the delimiter used

    @property
    def row_label(self) -> str:
        return "line" if self.kind == "csv" else "feature"

    def getter(self, column: str) -> Callable[[Any], Any]:
        """A fast accessor for one column of this source's rows (None when absent)."""
        if self.kind == "geojson":
            return lambda row: row.get(column)
        try:
            index = self.columns.index(column)
        except ValueError:
            raise TableError(f"no column {column!r}") from None
        return itemgetter(index)

    def column_index(self, column: str) -> int:
        return self.columns.index(column) if self.kind == "csv" else -1


def is_geojson(path: Path) -> bool:
    return path.suffix.lower() in (".geojson", ".json")


@contextmanager
def open_table(path: Path, *, delimiter: str | None = None,
               encoding: str | None = None) -> Iterator[TableSource]:
    """Open a CSV or GeoJSON file (chosen by extension) as a :class:`TableSource`."""
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if is_geojson(path):
        yield read_geojson(path)
        return
    lines, detected = _scan(path, encoding)
    with path.open(encoding=detected, newline="") as handle:
        sample = handle.read(_SAMPLE_BYTES)
        handle.seek(0)
        chosen = delimiter or sniff_delimiter(sample)
        reader = csv.reader(handle, delimiter=chosen)
        header = next((row for row in reader if row), None)
        if header is None:
            raise TableError(f"{path}: the file is empty")
        columns = [name.strip() for name in header]
        header_line = reader.line_num

        def rows() -> Iterator[tuple[int, Row]]:
            for row in reader:
                if row:  # blank lines are not records
                    yield reader.line_num, row

        yield TableSource("csv", columns, rows(), max(lines - header_line, 0),
                          encoding=detected, delimiter=chosen)


def _scan(path: Path, encoding: str | None) -> tuple[int, str]:
    """One fast pass over the bytes: the number of lines (for the progress bar) and the
    encoding — UTF-8 (``utf-8-sig`` drops a BOM) if every byte decodes, else Windows-1252."""
    decoder = None if encoding else codecs.getincrementaldecoder("utf-8")()
    lines = 0
    last = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk
            if decoder is not None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    decoder = None
                    encoding = FALLBACK_ENCODING
    if last and not last.endswith(b"\n"):
        lines += 1
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
            encoding = "utf-8-sig"
        except UnicodeDecodeError:
            encoding = FALLBACK_ENCODING
    assert encoding is not None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TableError(f"unknown encoding {encoding!r}") from None
    return lines, encoding


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: csv.Sniffer restricted to ``; , TAB |``, checked
    against the header line; when the sniffer cannot tell, the candidate the header line uses
    most (a header rarely holds decimal commas)."""
    sample = sample.lstrip("\ufeff")
    cut = sample.rfind("\n")
    if cut > 0:
        sample = sample[:cut + 1]  # whole lines only
    header = next((line for line in io.StringIO(sample) if line.strip()), "")
    try:
        found = csv.Sniffer().sniff(sample, delimiters=CANDIDATE_DELIMITERS).delimiter
        if found in header:
            return found
    except csv.Error:
        pass
    counts = {d: header.count(d) for d in CANDIDATE_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_geojson(path: Path) -> TableSource:
    """A FeatureCollection, a single Feature, or an array of Features."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise TableError(f"{path} is not JSON: {exc}") from None
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise TableError(f"{path} is not a GeoJSON FeatureCollection")
    crs = None
    if isinstance(document, dict):
        crs_member = document.get("crs")
        if isinstance(crs_member, dict):
            name = (crs_member.get("properties") or {}).get("name")
            crs = name if isinstance(name, str) and name not in WGS84_NAMES else None
    columns: dict[str, None] = {FEATURE_ID: None, FEATURE_GEOMETRY: None}
    for feature in features:
        if isinstance(feature, dict) and isinstance(feature.get("properties"), dict):
            columns.update(dict.fromkeys(feature["properties"]))

    def rows() -> Iterator[tuple[int, Row]]:
        for number, feature in enumerate(features, start=1):
            if not isinstance(feature, dict):
                yield number, {}
                continue
            properties = feature.get("properties")
            row: dict[str, Any] = dict(properties) if isinstance(properties, dict) else {}
            row[FEATURE_ID] = feature.get("id")
            row[FEATURE_GEOMETRY] = feature.get("geometry")
            yield number, row

    return TableSource("geojson", list(columns), rows(), len(features), crs=crs)
