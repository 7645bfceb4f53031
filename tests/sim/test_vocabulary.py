"""The city's one @context names what the verticals write the way their readers read it: the
lighting app, the traffic sensors' model, the UrbanDataset gateway."""

from __future__ import annotations

from datetime import UTC, datetime

from sinergia.adapters.urbandataset.mapping import context_terms
from sinergia.apps.lighting.vocabulary import LIGHTING_CONTEXT
from sinergia.sim.milano import MILANO_CONTEXT
from sinergia.sim.traffic import TRAFFIC_CONTEXT
from sinergia.sim.verticals import city_verticals
from sinergia.sim.vocabulary import CITY_CONTEXT

# Names left to the NGSI-LD core context, and Sinergia's own names (default vocabulary, as the
# lighting app and sim.milano write them too).
CORE = {"id", "type", "scope", "location", "status", "description"}
DEFAULT_VOCABULARY = {"designLightingClass", "refNeighbourhood"}


def test_the_lighting_apps_names_mean_the_same() -> None:
    for term, iri in LIGHTING_CONTEXT.items():
        assert CITY_CONTEXT.get(term, iri) == iri, term


def test_the_geography_and_traffic_names_are_kept() -> None:
    for term, iri in {**MILANO_CONTEXT, **TRAFFIC_CONTEXT}.items():
        assert CITY_CONTEXT[term] == iri, term


def test_the_meters_names_are_the_gateways() -> None:
    gateway = context_terms()
    for term in ("ThreePhaseAcMeasurement", "totalActiveEnergyImport", "totalActivePower",
                 "totalReactivePower", "phaseVoltage", "current", "podId", "electricPanelId",
                 "townCode"):
        assert CITY_CONTEXT[term] == gateway[term], term


def test_every_name_the_verticals_write_is_defined() -> None:
    at = datetime(2024, 6, 3, 20, 0, tzinfo=UTC)
    names: set[str] = set()
    for vertical in city_verticals(0):
        for entity in vertical.inventory(at):
            names |= set(entity) | {entity["type"]}
        for moment in (datetime(2024, 6, 3, 21, 0, tzinfo=UTC),
                       datetime(2024, 6, 4, 12, 0, tzinfo=UTC)):
            for reading in vertical.readings(moment):
                names |= set(reading.values) | {reading.entity_type}
    undefined = names - set(CITY_CONTEXT) - CORE - DEFAULT_VOCABULARY
    assert not undefined
