"""Specification → NGSI-LD type and attribute names, and the Sinergia UrbanDataset @context."""

from __future__ import annotations

import asyncio
import importlib.resources
from pathlib import Path

import orjson
import pytest

from sinergia.adapters.urbandataset.mapping import (
    CONTEXT,
    SCPS_ONTOLOGY,
    STRUCTURAL_NAMES,
    URBANDATASET_CONTEXT_URL,
    attribute_name,
    context_document,
    known_property_names,
    lower_camel,
    mapping_for,
    render_context,
    spec_base_name,
    template,
    template_property_names,
)
from sinergia.ngsild.context import ContextResolver

CONTEXT_FILE = Path(str(importlib.resources.files("sinergia").joinpath(
    "data/jsonld/urbandataset-context.jsonld")))
TEMPLATES = sorted(path.name.removesuffix("-Template.json") for path in Path(str(
    importlib.resources.files("sinergia").joinpath("data/urbandataset/templates"))).iterdir())


@pytest.mark.parametrize(("name", "attribute"), [
    ("TotalActiveEnergy", "totalActiveEnergy"), ("PODID", "podId"), ("LocationID", "locationId"),
    ("ZIPCode", "zipCode"), ("CO2", "co2"), ("C6H6", "c6h6"), ("PMV", "pmv"),
    ("WSEndpoint", "wsEndpoint"), ("IndoorCO2Equivalent", "indoorCO2Equivalent"),
    ("PLHomogeneousAreaID", "plHomogeneousAreaId"), ("nomeSensore", "nomeSensore"),
])
def test_lower_camel_case(name: str, attribute: str) -> None:
    assert lower_camel(name) == attribute


def test_generic_names_are_distinct_for_every_template_property() -> None:
    names = known_property_names()
    assert len({attribute_name(name) for name in names}) == len(names)
    assert not names & STRUCTURAL_NAMES


def test_unknown_properties_keep_their_name_made_legal() -> None:
    assert attribute_name("valoremisurato") == "valoremisurato"
    assert attribute_name("Valore Misurato") == "Valore_Misurato"
    assert attribute_name("description") == "ud_description"  # the line's own description
    assert attribute_name("type") == "ud_type"


@pytest.mark.parametrize(("spec", "entity_type"), [
    ("AirMonitoring", "AirQualityObserved"),
    ("WeatherCondition", "WeatherObserved"),
    ("WeatherSolarMonitoring", "WeatherObserved"),
    ("CounterReading", "ThreePhaseAcMeasurement"),
    ("SinglePhaseCounterReading", "ThreePhaseAcMeasurement"),
    ("ElectricMeterReading", "ThreePhaseAcMeasurement"),
    ("BuildingRecords", "BuildingRecords"),
    ("Whatever", "Whatever"),
])
def test_entity_types(spec: str, entity_type: str) -> None:
    assert mapping_for(spec).entity_type == entity_type


def test_smart_data_model_attribute_names() -> None:
    air = mapping_for("AirMonitoring")
    assert air.target("PM2").attribute == "pm25"
    assert air.target("NO2").attribute == "no2"
    assert air.target("LocationID").attribute == "locationId"  # no SDM equivalent: generic
    meter = mapping_for("CounterReading")
    assert (meter.target("Phase2Voltage").attribute, meter.target("Phase2Voltage").component) \
        == ("phaseVoltage", "L2")
    assert meter.target("TotalActiveEnergy").attribute == "totalActiveEnergyImport"
    single = mapping_for("SinglePhaseCounterReading")
    assert (single.target("LineCurrent").attribute, single.target("LineCurrent").component) \
        == ("current", "L1")


def test_reverse_mapping_gives_every_template_property_back() -> None:
    for base in TEMPLATES:
        spec = spec_base_name(base)
        mapping = mapping_for(spec)
        reverse = mapping.reverse()
        for name in template_property_names(spec):
            target = mapping.target(name)
            assert reverse[(target.attribute, target.component)] == name


def test_spec_base_name() -> None:
    assert spec_base_name("CounterReading-2.0") == "CounterReading"
    assert spec_base_name("Whatever-1.0") == "Whatever"
    assert spec_base_name("CounterReading") == "CounterReading"


def test_all_templates_are_packaged() -> None:
    assert len(TEMPLATES) >= 30
    for base in TEMPLATES:
        assert template(spec_base_name(base)) is not None


def test_the_context_file_is_generated_from_the_mapping() -> None:
    # Regenerate with: python -c "from sinergia.adapters.urbandataset.mapping import
    #   render_context; print(render_context(), end='')"
    #   > src/sinergia/data/jsonld/urbandataset-context.jsonld
    assert CONTEXT_FILE.read_text() == render_context()
    assert context_document() == orjson.loads(render_context())


def test_context_defines_every_term_the_mapping_produces() -> None:
    terms = context_document()["@context"]
    for base in TEMPLATES:
        mapping = mapping_for(spec_base_name(base))
        assert mapping.entity_type in terms
        for name in template_property_names(spec_base_name(base)):
            assert mapping.target(name).attribute in terms
    for term in ("dateObservedFrom", "dateObservedTo", "dateObserved", "description", "name"):
        assert term in terms


def test_context_resolves_offline_with_the_broker_resolver() -> None:
    resolver = ContextResolver(context_map={URBANDATASET_CONTEXT_URL: str(CONTEXT_FILE)},
                               allow_remote=False)
    context = asyncio.run(resolver.resolve(list(CONTEXT)))
    assert context.expand("totalActiveEnergyImport") == \
        "https://smartdatamodels.org/dataModel.Energy/totalActiveEnergyImport"
    assert context.expand("no2") == "https://smartdatamodels.org/dataModel.Environment/no2"
    assert context.expand("temperature") == \
        "https://smartdatamodels.org/dataModel.Weather/temperature"
    assert context.expand("podId") == SCPS_ONTOLOGY + "PODID"
    assert context.expand("CounterRecords") == SCPS_ONTOLOGY + "CounterRecords"
    assert context.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
    assert context.compact(SCPS_ONTOLOGY + "BuildingID") == "buildingId"
    assert context.expand("totalActiveEnergy") == SCPS_ONTOLOGY + "TotalActiveEnergy"
