"""Road traffic: vehicle counts every 15 minutes from the cameras of the Area C gates and from
counting loops on the main roads (one per arterial or district road lit by the lighting
installation, at its middle, at least :data:`MIN_SPACING_M` from any other sensor).

The counts are :func:`sinergia.sim.traffic.vehicles_per_hour` (daily and weekly profiles of
Milan's traffic, seeded noise); the average speed follows from the flow with the Bureau of
Public Roads curve, and the period is flagged ``congested`` above nine tenths of the road's
capacity. The devices publish over MQTT, as key-value JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any, Final

from sinergia.sim.clock import Chance
from sinergia.sim.traffic import (
    PEAK_FLOW,
    SLOT,
    RoadClass,
    TrafficSensor,
    milan_traffic_sensors,
    traffic_flow_entity,
)
from sinergia.sim.verticals.base import (
    DoorKind,
    Reading,
    StaticVertical,
    mqtt_device,
    point,
    prop,
)
from sinergia.sim.verticals.lighting import milan_lighting
from sinergia.sim.verticals.places import distance_m
from sinergia.sim.vocabulary import TRAFFIC_FLOW

MIN_SPACING_M: Final = 300.0
FREE_SPEED_KMH: Final[dict[RoadClass, float]] = {
    RoadClass.ARTERIAL: 50.0, RoadClass.DISTRIBUTOR: 40.0, RoadClass.LOCAL: 30.0}
# The peak hour runs at this share of capacity (busy, not jammed).
PEAK_SATURATION: Final = 0.85
UNITS: Final = {"averageVehicleSpeed": "KMH"}


@cache
def milan_sensors() -> tuple[TrafficSensor, ...]:
    """The Area C gates, then the main-road loops (same list every call)."""
    sensors = list(milan_traffic_sensors())
    for group in milan_lighting().groups:
        if group.road not in (RoadClass.ARTERIAL, RoadClass.DISTRIBUTOR):
            continue
        longitude, latitude = group.line[len(group.line) // 2]
        if any(distance_m((longitude, latitude), (s.longitude, s.latitude)) < MIN_SPACING_M
               for s in sensors):
            continue
        suffix = group.id.rsplit(":", 1)[1].removeprefix("MI-L")
        sensors.append(TrafficSensor(
            entity_id=f"urn:ngsi-ld:{TRAFFIC_FLOW}:MI-Road-{suffix}", name=group.name,
            longitude=longitude, latitude=latitude, road=RoadClass(group.road),
            seed=f"road-{suffix}"))
    return tuple(sensors)


def average_speed(road: RoadClass, vehicles_per_hour: float) -> float:
    """km/h at a flow, by the BPR curve: free speed / (1 + 0.15 (flow / capacity)^4)."""
    capacity = PEAK_FLOW[road] / PEAK_SATURATION
    return round(FREE_SPEED_KMH[road] / (1.0 + 0.15 * (vehicles_per_hour / capacity) ** 4), 1)


def _device_id(sensor: TrafficSensor) -> str:
    return sensor.entity_id.rsplit(":", 1)[1]


class Traffic(StaticVertical):
    name = "traffic"
    door = DoorKind.MQTT
    period = SLOT

    def __init__(self, chance: Chance, sensors: tuple[TrafficSensor, ...] | None = None) -> None:
        self.chance = chance
        self.sensors = sensors if sensors is not None else milan_sensors()

    def inventory(self, start: datetime) -> list[dict[str, Any]]:
        entities = []
        for sensor in self.sensors:
            gate = "-AreaC-" in sensor.entity_id
            entities.append({
                "id": sensor.entity_id, "type": TRAFFIC_FLOW,
                "name": prop(sensor.name),
                "description": prop(
                    "Area C entry gate: vehicles counted by the gate's camera" if gate
                    else f"Counting loop on an {sensor.road.value} road"
                    if sensor.road == RoadClass.ARTERIAL
                    else f"Counting loop on a {sensor.road.value} road"),
                "location": point(sensor.longitude, sensor.latitude),
            })
        return entities

    def devices(self, context_url: str) -> list[dict[str, Any]]:
        return [mqtt_device(TRAFFIC_FLOW, _device_id(s), context_url, UNITS)
                for s in self.sensors]

    def reading(self, sensor: TrafficSensor, at: datetime,
                period: timedelta = SLOT) -> Reading:
        flow = traffic_flow_entity(sensor, at, period=period, seed=self.chance.seed)
        vehicles = int(flow["intensity"]["value"])
        per_hour = vehicles * 3600.0 / period.total_seconds()
        capacity = PEAK_FLOW[sensor.road] / PEAK_SATURATION
        return Reading(TRAFFIC_FLOW, _device_id(sensor), at, {
            "intensity": vehicles,
            "averageVehicleSpeed": average_speed(sensor.road, per_hour),
            "congested": per_hour > 0.9 * capacity,
            "dateObservedFrom": flow["dateObservedFrom"]["value"],
            "dateObservedTo": flow["dateObservedTo"]["value"],
            "dateObserved": flow["dateObserved"]["value"],
        }, UNITS)

    def readings(self, at: datetime) -> list[Reading]:
        return [self.reading(sensor, at) for sensor in self.sensors]
