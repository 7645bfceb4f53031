"""The demo city's one @context: Milan's geography (:data:`~sinergia.sim.milano.MILANO_CONTEXT`)
and the simulated verticals' types and attributes, mapped to their Smart Data Models IRIs
(checked against each domain's context.jsonld).

One flat context has to choose where Smart Data Models domains disagree: ``occupancy`` is
Parking's (traffic sensors do not report it), ``temperature`` and ``relativeHumidity`` are
Weather's (the air-quality sensors leave them to the weather stations), ``refDevice`` is
Weather's; ``dateObservedFrom``/``dateObservedTo`` are Transportation's (the traffic counts'),
so on the meters, which the UrbanDataset gateway writes with Environment's, they show as full
IRIs. The lighting names are exactly the lighting app's (``apps/lighting/vocabulary``),
so the app reads the lamps the simulator creates; the tests check both agree.
"""

from __future__ import annotations

from typing import Any, Final

from sinergia.sim.milano import MILANO_CONTEXT
from sinergia.sim.traffic import TRAFFIC_CONTEXT

_SDM = "https://smartdatamodels.org/"
_LIGHT = _SDM + "dataModel.Streetlighting/"
_TRANSPORT = _SDM + "dataModel.Transportation/"
_PARKING = _SDM + "dataModel.Parking/"
_ENV = _SDM + "dataModel.Environment/"
_WEATHER = _SDM + "dataModel.Weather/"
_WASTE = _SDM + "dataModel.WasteManagement/"
_ENERGY = _SDM + "dataModel.Energy/"
_SCPS = "https://smartcityplatform.enea.it/specification/semantic/2.0/ontology/scps-ontology-2.0.owl#"

# Type names, used by the verticals and the dashboard.
STREETLIGHT: Final = "Streetlight"
STREETLIGHT_GROUP: Final = "StreetlightGroup"
CABINET: Final = "StreetlightControlCabinet"
TRAFFIC_FLOW: Final = "TrafficFlowObserved"
BIKE_STATION: Final = "BikeHireDockingStation"
CAR_PARK: Final = "OffStreetParking"
AIR_QUALITY: Final = "AirQualityObserved"
WEATHER: Final = "WeatherObserved"
WASTE_CONTAINER: Final = "WasteContainer"
METER: Final = "ThreePhaseAcMeasurement"

VERTICALS_CONTEXT: Final[dict[str, str]] = {
    # street lighting (the lighting app's names)
    STREETLIGHT: _LIGHT + "Streetlight",
    STREETLIGHT_GROUP: _LIGHT + "StreetlightGroup",
    CABINET: _LIGHT + "StreetlightControlCabinet",
    "illuminanceLevel": _LIGHT + "illuminanceLevel",
    "powerRating": _LIGHT + "powerRating",
    "powerConsumption": _LIGHT + "powerConsumption",
    "refStreetlightGroup": _LIGHT + "refStreetlightGroup",
    "refStreetlightControlCabinet": _LIGHT + "refStreetlightControlCabinet",
    "energyConsumed": _LIGHT + "energyConsumed",
    "powerState": _LIGHT + "powerState",
    "controllingMethod": _LIGHT + "controllingMethod",
    "locationCategory": _LIGHT + "locationCategory",
    "lanternHeight": _LIGHT + "lanternHeight",
    "workingMode": _LIGHT + "workingMode",
    "dateLastSwitchingOn": _LIGHT + "dateLastSwitchingOn",
    "dateLastSwitchingOff": _LIGHT + "dateLastSwitchingOff",
    "areaServed": _SDM + "areaServed",
    # traffic
    "averageVehicleSpeed": _TRANSPORT + "averageVehicleSpeed",
    "congested": _TRANSPORT + "congested",
    # bike sharing
    "availableBikeNumber": _TRANSPORT + "availableBikeNumber",
    "freeSlotNumber": _TRANSPORT + "freeSlotNumber",
    "outOfServiceSlotNumber": _TRANSPORT + "outOfServiceSlotNumber",
    # parking
    "availableSpotNumber": _PARKING + "availableSpotNumber",
    "occupiedSpotNumber": _PARKING + "occupiedSpotNumber",
    "occupancy": _PARKING + "occupancy",
    # air quality
    AIR_QUALITY: _ENV + "AirQualityObserved",
    "no2": _ENV + "no2",
    "pm10": _ENV + "pm10",
    "pm25": _ENV + "pm25",
    "o3": _ENV + "o3",
    "co": _ENV + "co",
    "airQualityIndex": _ENV + "airQualityIndex",
    "airQualityLevel": _ENV + "airQualityLevel",
    # weather
    WEATHER: _WEATHER + "WeatherObserved",
    "temperature": _WEATHER + "temperature",
    "relativeHumidity": _WEATHER + "relativeHumidity",
    "precipitation": _WEATHER + "precipitation",
    "windSpeed": _WEATHER + "windSpeed",
    "windDirection": _WEATHER + "windDirection",
    "solarRadiation": _WEATHER + "solarRadiation",
    "refDevice": _WEATHER + "refDevice",
    # waste
    WASTE_CONTAINER: _WASTE + "WasteContainer",
    "fillingLevel": _WASTE + "fillingLevel",
    "storedWasteKind": _WASTE + "storedWasteKind",
    "dateLastEmptying": _WASTE + "dateLastEmptying",
    "cargoVolume": _WASTE + "cargoVolume",
    # electricity meters, as the UrbanDataset gateway names them (adapters/urbandataset:
    # Smart Data Models where they have the quantity, ENEA's ontology for the codes)
    METER: _ENERGY + "ThreePhaseAcMeasurement",
    "totalActiveEnergyImport": _ENERGY + "totalActiveEnergyImport",
    "totalActivePower": _ENERGY + "totalActivePower",
    "totalReactivePower": _ENERGY + "totalReactivePower",
    "phaseVoltage": _ENERGY + "phaseVoltage",
    "current": _ENERGY + "current",
    "podId": _SCPS + "PODID",
    "electricPanelId": _SCPS + "ElectricPanelID",
    "townCode": _SCPS + "TownCode",
}


def _merged(*parts: dict[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in parts:
        for term, iri in part.items():
            if merged.setdefault(term, iri) != iri:
                raise ValueError(f"the city's @context maps {term!r} to two IRIs")
    return merged


CITY_CONTEXT: Final[dict[str, str]] = _merged(MILANO_CONTEXT, TRAFFIC_CONTEXT, VERTICALS_CONTEXT)
# The document to host (POST /jsonldContexts) so a Link header can name CITY_CONTEXT.
CITY_CONTEXT_DOCUMENT: Final[dict[str, Any]] = {"@context": CITY_CONTEXT}
