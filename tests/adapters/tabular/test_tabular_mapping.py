"""The mapping file: valid mappings load; each kind of mistake is a MappingError naming where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sinergia.adapters.tabular.mapping import (
    MappingError,
    load_mapping,
    parse_mapping,
    template_columns,
)

FIXTURES = Path(__file__).parent / "fixtures"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"type": "WasteContainer", "id": "urn:ngsi-ld:WasteContainer:{codice}", **extra}


def test_the_fixture_mappings_load() -> None:
    air = load_mapping(FIXTURES / "qualita_aria.yaml")
    assert air.type == "AirQualityObserved"
    assert air.decimal == "," and air.thousands_separator == "."
    assert air.dates.timezone == "Europe/Rome"
    assert air.attributes["NO2"].unit_code == "GQ"
    assert air.attributes["name"].observed_at is False
    assert air.columns() >= {"stazione", "data", "no2", "lat", "lon"}
    parks = load_mapping(FIXTURES / "parcheggi.yaml")
    assert isinstance(parks.context, dict) and "totalSpotNumber" in parks.context


def test_an_id_without_a_scheme_gets_the_ngsi_ld_urn_prefix() -> None:
    assert parse_mapping(minimal(id="{codice}")).id_template == \
        "urn:ngsi-ld:WasteContainer:{codice}"
    assert parse_mapping(minimal()).id_template == "urn:ngsi-ld:WasteContainer:{codice}"


def test_templates_name_their_columns_and_escape_braces() -> None:
    assert template_columns("urn:x:{Codice via}-{n}") == ["Codice via", "n"]
    assert template_columns("{{literal}}-{a}") == ["a"]
    with pytest.raises(ValueError, match="unbalanced"):
        template_columns("urn:x:{a")


@pytest.mark.parametrize(("document", "where", "why"), [
    ({"id": "{a}"}, "type", "Field required"),
    (minimal(type="Waste Container"), "type", "not a valid entity type"),
    (minimal(attributes={"fill": {"column": "f", "kind": "Propperty"}}),
     "attributes.fill.kind", "Property"),
    (minimal(attributes={"fill": {"column": "f", "value": 3}}), "attributes.fill",
     "exactly one of"),
    (minimal(attributes={"fill": {}}), "attributes.fill", "exactly one of"),
    (minimal(attributes={"fill": {"column": "f", "parser": "float"}}),
     "attributes.fill.parser", "number"),
    (minimal(attributes={"fill": {"column": "f", "colour": "red"}}),
     "attributes.fill.colour", "Extra inputs"),
    (minimal(attributes={"n": {"column": "n", "kind": "LanguageProperty"}}),
     "attributes.n", "needs 'language'"),
    (minimal(geometry={"lat": "y"}), "geometry", "both 'lat' and 'lon'"),
    (minimal(geometry={"lat": "y", "lon": "x", "wkt": "g"}), "geometry", "only one"),
    (minimal(dates={"timezone": "Europe/Milano"}), "dates.timezone", "unknown time zone"),
    (minimal(dates={"formats": ["dd/mm/yyyy"]}), "dates.formats", "not a strptime"),
    (minimal(decimal=";"), "decimal", "','"),
    (minimal(decimal=",", thousands=","), "(top level)", "must differ"),
    (minimal(delimiter=";;"), "delimiter", "one character"),
    (minimal(id="urn:x:{codice"), "(top level)", "unbalanced"),
])
def test_mistakes_are_reported_with_their_place(document: dict[str, Any], where: str,
                                                 why: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(document, source="m.yaml")
    message = str(caught.value)
    assert message.startswith("m.yaml is invalid:")
    assert f"{where}:" in message and why in message


def test_tab_may_be_written_as_a_word() -> None:
    assert parse_mapping(minimal(delimiter="tab")).delimiter == "\t"


def test_files_that_are_not_mappings(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("type: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(MappingError, match="at least 'type' and 'id'"):
        load_mapping(listing)
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "absent.yaml")
