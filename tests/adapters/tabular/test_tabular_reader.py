"""Reading tables: delimiter sniffing, encodings, line numbers, GeoJSON shapes and CRS."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.tabular.reader import (
    FEATURE_GEOMETRY,
    FEATURE_ID,
    TableError,
    open_table,
    sniff_delimiter,
)

FIXTURES = Path(__file__).parent / "fixtures"

# Cells as municipal tables have them: words, Italian decimals, dates, codes.
CELL = st.one_of(
    st.from_regex(r"[A-Za-zàèéìòù]{1,8}( [A-Za-z]{1,8})?", fullmatch=True),
    st.decimals(min_value=-1000, max_value=1000, places=2).map(lambda d: str(d).replace(".", ",")),
    st.from_regex(r"[0-3][0-9]/[01][0-9]/20[0-9]{2}", fullmatch=True),
)


@given(delimiter=st.sampled_from([";", ",", "\t", "|"]),
       width=st.integers(min_value=2, max_value=6),
       body=st.lists(st.lists(CELL, min_size=6, max_size=6), min_size=1, max_size=8))
def test_the_delimiter_is_found(delimiter: str, width: int, body: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([f"colonna_{i}" for i in range(width)])
    writer.writerows(row[:width] for row in body)
    assert sniff_delimiter(out.getvalue()) == delimiter


def test_a_single_column_file_falls_back_to_comma() -> None:
    assert sniff_delimiter("codice\nA1\nB2\n") == ","


def test_windows_1252_files_are_read(tmp_path: Path) -> None:
    with open_table(FIXTURES / "qualita_aria.csv") as source:
        assert source.encoding == "cp1252" and source.delimiter == ";"
        rows = list(source.rows)
    assert source.columns[:3] == ["stazione", "nome", "data"]
    assert rows[2] == (4, ["MI-CittaStudi", "Città Studi", "01/03/2024 10:00", "27,75", "31",
                           "-999", "45,4766", "9,2351", "no"])
    assert source.estimated_rows == 9


def test_utf8_with_bom_and_quoted_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "segnalazioni.csv"
    path.write_bytes("\ufeffid,descrizione,quartiere\n"
                     '1,"Buca in strada,\nlato civico 3",Brera\n'
                     "2,Lampione spento,Isola\n".encode())
    with open_table(path) as source:
        assert source.encoding == "utf-8-sig" and source.delimiter == ","
        assert source.columns == ["id", "descrizione", "quartiere"]  # no BOM in the name
        rows = list(source.rows)
    # numbers are the line where each record ends, as an editor shows them
    assert [number for number, _ in rows] == [3, 4]
    assert rows[0][1][1] == "Buca in strada,\nlato civico 3"


def test_declared_delimiter_and_encoding_win(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("a|b\n1;2|3\n".encode("latin-1"))
    with open_table(path, delimiter="|", encoding="latin-1") as source:
        assert list(source.rows) == [(2, ["1;2", "3"])]


def test_blank_lines_are_skipped_and_empty_files_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\n\na;b\n\n1;2\n", encoding="utf-8")
    with open_table(path) as source:
        assert source.columns == ["a", "b"]
        assert list(source.rows) == [(5, ["1", "2"])]
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TableError, match="empty"), open_table(empty):
        pass
    with pytest.raises(TableError, match="no such file"), open_table(tmp_path / "none.csv"):
        pass


def test_geojson_features_become_rows() -> None:
    with open_table(FIXTURES / "parcheggi.geojson") as source:
        assert source.kind == "geojson" and source.crs is None  # CRS84 is WGS84
        assert {"nome", "n_posti", FEATURE_ID, FEATURE_GEOMETRY} <= set(source.columns)
        rows = list(source.rows)
    assert [number for number, _ in rows] == [1, 2, 3, 4, 5]
    first = rows[0][1]
    assert isinstance(first, dict)
    assert first["nome"] == "Giulio Cesare" and first["n_posti"] == 116.0
    assert first[FEATURE_GEOMETRY]["type"] == "Point"


def test_geojson_declares_other_coordinate_systems(tmp_path: Path) -> None:
    path = tmp_path / "gb.geojson"
    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:3003"}},
        "features": [{"type": "Feature", "properties": {"a": 1},
                      "geometry": {"type": "Point", "coordinates": [1514000, 5034000]}}]}))
    with open_table(path) as source:
        assert source.crs == "EPSG:3003"


def test_not_geojson(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"type": "Topology"}')
    with pytest.raises(TableError, match="FeatureCollection"), open_table(path):
        pass
    path.write_text("{")
    with pytest.raises(TableError, match="not JSON"), open_table(path):
        pass
