"""The names the lighting app reads and writes, and the @context that gives them their IRIs.

Streetlights, groups and cabinets use the Smart Data Models *Streetlighting* vocabulary and
traffic counts its *Transportation* one (the IRIs are those of the models' context.jsonld), so
the app understands any client that writes those models. The app's own results (type
``LightingEnergyReport`` and its attributes) are not in Smart Data Models: they are left out of
the context and expand with the NGSI-LD core context's default vocabulary.
"""

from __future__ import annotations

from typing import Final

_SDM = "https://smartdatamodels.org/"
_LIGHT = _SDM + "dataModel.Streetlighting/"
_TRANSPORT = _SDM + "dataModel.Transportation/"

STREETLIGHT = "Streetlight"
STREETLIGHT_GROUP = "StreetlightGroup"
CABINET = "StreetlightControlCabinet"
TRAFFIC_FLOW = "TrafficFlowObserved"
REPORT = "LightingEnergyReport"

# Attributes of Smart Data Models.
LEVEL = "illuminanceLevel"          # Streetlight: relative output 0-1 (what the app writes)
RATED_POWER = "powerRating"         # Streetlight: W
POWER = "powerConsumption"          # Streetlight: W drawn now (the app writes rated * level)
REF_GROUP = "refStreetlightGroup"
REF_CABINET = "refStreetlightControlCabinet"
ENERGY = "energyConsumed"           # kWh (StreetlightControlCabinet's name for it)
INTENSITY = "intensity"             # TrafficFlowObserved: vehicles in the observation period
OBSERVED_FROM = "dateObservedFrom"
OBSERVED_TO = "dateObservedTo"

# Attributes the app adds (default vocabulary).
DESIGN_CLASS = "designLightingClass"  # StreetlightGroup: EN 13201 class at full output, "M3"
OVERRIDE = "manualIlluminanceLevel"   # Streetlight or StreetlightGroup: a person's level 0-1

LIGHTING_CONTEXT: Final[dict[str, str]] = {
    STREETLIGHT: _LIGHT + "Streetlight",
    STREETLIGHT_GROUP: _LIGHT + "StreetlightGroup",
    CABINET: _LIGHT + "StreetlightControlCabinet",
    LEVEL: _LIGHT + "illuminanceLevel",
    RATED_POWER: _LIGHT + "powerRating",
    POWER: _LIGHT + "powerConsumption",
    REF_GROUP: _LIGHT + "refStreetlightGroup",
    REF_CABINET: _LIGHT + "refStreetlightControlCabinet",
    ENERGY: _LIGHT + "energyConsumed",
    "powerState": _LIGHT + "powerState",
    "controllingMethod": _LIGHT + "controllingMethod",
    "locationCategory": _LIGHT + "locationCategory",
    "lanternHeight": _LIGHT + "lanternHeight",
    "areaServed": _SDM + "areaServed",
    "name": _SDM + "name",
    "dataProvider": _SDM + "dataProvider",
    TRAFFIC_FLOW: _TRANSPORT + "TrafficFlowObserved",
    INTENSITY: _TRANSPORT + "intensity",
    OBSERVED_FROM: _TRANSPORT + "dateObservedFrom",
    OBSERVED_TO: _TRANSPORT + "dateObservedTo",
    "dateObserved": _SDM + "dateObserved",
}
