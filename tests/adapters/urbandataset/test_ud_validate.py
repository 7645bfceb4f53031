"""validate(): ENEA's JSON schemas 1.0 and 2.0, for dicts, JSON and XML."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinergia.adapters.urbandataset import validate

TEMPLATES = Path(str(importlib.resources.files("sinergia").joinpath(
    "data/urbandataset/templates")))


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*-Template.json")),
                         ids=lambda path: path.name.removesuffix("-Template.json"))
def test_enea_templates_are_valid(path: Path) -> None:
    assert validate(orjson.loads(path.read_bytes())) == []


def test_errors_name_the_place(fixture_doc: Callable[[str], dict[str, Any]]) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    ud = document["UrbanDataset"]
    ud["values"]["line"][1]["property"][0]["val"] = 12
    ud["context"]["extra"] = "x"
    del ud["specification"]["uri"]
    errors = validate(document)
    assert "$.UrbanDataset.values.line[1].property[0].val: 12 is not of type 'string'" in errors
    # ENEA's schemas forbid extra members as additionalProperties {"enum": [false]}
    assert "$.UrbanDataset.context.extra: 'x' is not one of [False]" in errors
    assert "$.UrbanDataset.specification: 'uri' is a required property" in errors


def test_measurement_type_is_2_0_only(fixture_doc: Callable[[str], dict[str, Any]]) -> None:
    document = fixture_doc("air-monitoring-2.0.json")
    definitions = document["UrbanDataset"]["specification"]["properties"]["propertyDefinition"]
    definitions[1]["measurementType"] = "average"
    assert validate(document) == []
    document["UrbanDataset"]["specification"]["version"] = "1.0"
    assert any("measurementType" in error for error in validate(document))


def test_text_inputs(fixture_bytes: Callable[[str], bytes]) -> None:
    assert validate(fixture_bytes("weather-condition-2.0.xml")) == []
    assert validate(fixture_bytes("counter-reading-2.0.json").decode()) == []
    (error,) = validate(b"{oops")
    assert error.startswith("$: not valid JSON")
