"""UrbanDataset unit names (ENEA's, Italian, symbols) → UN/CEFACT codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from sinergia.adapters.urbandataset.units import (
    property_unit_code,
    resolve_unit,
    unit_code,
    unit_for_code,
)

TEMPLATES = Path(__file__).parents[3] / "src/sinergia/data/urbandataset/templates"


@pytest.mark.parametrize(("written", "canonical", "code"), [
    ("kilowattHour", "kilowattHour", "KWH"),
    ("chilowattora", "kilowattHour", "KWH"),
    ("kWh", "kilowattHour", "KWH"),
    ("adimensionale", "dimensionless", None),
    ("dimensionless", "dimensionless", None),
    ("degreeCelsius", "degreeCelsius", "CEL"),
    ("°C", "degreeCelsius", "CEL"),
    ("gradi Celsius", "degreeCelsius", "CEL"),
    ("microgramPerCubicMeter", "microgramPerCubicMeter", "GQ"),
    ("µg/m3", "microgramPerCubicMeter", "GQ"),
    ("metrePerSecond-Time", "metrePerSecond-Time", "MTS"),
    ("m/s", "metrePerSecond-Time", "MTS"),
    ("kilovoltamperereactivePerHour", "kilovoltamperereactivePerHour", "K3"),
    ("hectopascal", "hectopascal", "A97"),
    ("ettopascal", "hectopascal", "A97"),
    ("Volt", "volt", "VLT"),
    ("lux", "lux", "LUX"),
    ("partsPerMillion", "partsPerMillion", "59"),
])
def test_unit_names(written: str, canonical: str, code: str | None) -> None:
    assert resolve_unit(written) == canonical
    assert unit_code(canonical) == code


def test_absent_unit_is_dimensionless_and_unknown_is_none() -> None:
    assert resolve_unit(None) == "dimensionless"
    assert resolve_unit("  ") == "dimensionless"
    assert resolve_unit("furlongPerFortnight") is None
    assert unit_code(None) is None


def test_every_unit_in_enea_templates_is_known() -> None:
    units = set()
    for path in TEMPLATES.glob("*-Template.json"):
        spec = orjson.loads(path.read_bytes())["UrbanDataset"]["specification"]
        for definition in spec.get("properties", {}).get("propertyDefinition", []):
            if "unitOfMeasure" in definition:
                units.add(definition["unitOfMeasure"])
    assert units  # the templates do declare units
    for unit in units:
        assert resolve_unit(unit) == unit, unit
        assert unit_code(unit) is not None or unit in ("dimensionless", "euro"), unit


def test_codes_map_back_to_names() -> None:
    assert unit_for_code("KWH") == "kilowattHour"
    assert unit_for_code("CEL") == "degreeCelsius"
    assert unit_for_code("nope") is None


def test_percentages_declared_dimensionless_carry_percent() -> None:
    assert property_unit_code("RelativeHumidity", "dimensionless") == "P1"
    assert property_unit_code("TotalCloudCoveragePercentage", "dimensionless") == "P1"
    assert property_unit_code("PowerFactor", "dimensionless") is None
