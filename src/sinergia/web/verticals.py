"""Which vertical of the city an entity type belongs to: the map shows one layer group per
vertical. Types are matched by their short name (the last segment of the type's IRI), so the
same table serves whatever @context the data was written with; a type not listed goes to
"Other", so nothing the broker holds is ever hidden from the map. The matching itself is done
in the browser (``static/js/ngsi.js``), on the type names the broker answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Vertical:
    key: str
    label: str
    types: tuple[str, ...]
    shown: bool = True   # drawn when the page opens (areas are the backdrop, off at first)


VERTICALS: Final[tuple[Vertical, ...]] = (
    Vertical("lighting", "Public lighting", (
        "Streetlight", "StreetlightGroup", "StreetlightControlCabinet", "StreetlightModel",
        "LightingEnergyReport")),
    Vertical("mobility", "Mobility", (
        "BikeHireDockingStation", "BikeLane", "OffStreetParking", "OnStreetParking",
        "ParkingSpot", "ParkingGroup", "PublicTransportStop", "RestrictedTrafficArea",
        "TrafficFlowObserved", "EVChargingStation", "Vehicle", "ItemFlowObserved",
        "RoadSegment")),
    Vertical("environment", "Environment", (
        "AirQualityObserved", "WeatherObserved", "WeatherForecast", "NoiseLevelObserved",
        "WaterQualityObserved", "FloodMonitoring", "WaterObserved")),
    Vertical("waste", "Waste", ("WasteContainer", "WasteContainerIsle", "WasteContainerModel")),
    Vertical("energy", "Energy", (
        "EnergyCommunity", "PhotovoltaicDevice", "PhotovoltaicMeasurement", "ElectricityMeter",
        "EnergyMeter", "EnergyCommunityMember", "ThreePhaseAcMeasurement")),
    Vertical("devices", "Devices and sensors", ("Device", "DeviceModel", "DeviceMeasurement")),
    Vertical("citizens", "Citizen reports", ("ServiceRequest", "Open311:ServiceRequest")),
    Vertical("areas", "Districts and neighbourhoods", ("CityDistrict", "Neighbourhood"),
             shown=False),
)
OTHER: Final = Vertical("other", "Other", ())
# The types whose outlines are drawn behind everything, first found first used.
BACKDROP_TYPES: Final = ("Neighbourhood", "CityDistrict")


def page_config() -> list[dict[str, object]]:
    """The table as the dashboard's JavaScript reads it."""
    return [{"key": v.key, "label": v.label, "types": list(v.types), "shown": v.shown}
            for v in (*VERTICALS, OTHER)]
