"""What the app publishes: the dimming it decided (on the Streetlight entities) and its energy
accounts as ``LightingEnergyReport`` entities, one per group, one per control cabinet and one
for the whole city.

Every attribute carries ``observedAt`` — the traffic's time the figures refer to — so the
broker's history (the temporal API) holds a series a dashboard can chart. Energies are totals
since the app started accounting (``dateAccountingStarted``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sinergia.apps.lighting.controller import Controller, LampSetting
from sinergia.apps.lighting.energy import EnergyTotals
from sinergia.apps.lighting.vocabulary import (
    ENERGY,
    LEVEL,
    POWER,
    REF_CABINET,
    REF_GROUP,
    REPORT,
    STREETLIGHT,
)

CITY_REPORT_ID = f"urn:ngsi-ld:{REPORT}:city"
_URN = "urn:ngsi-ld:"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_id(entity_id: str) -> str:
    """The report about an entity: ``urn:ngsi-ld:StreetlightGroup:X`` is reported on by
    ``urn:ngsi-ld:LightingEnergyReport:StreetlightGroup:X``."""
    local = entity_id[len(_URN):] if entity_id.startswith(_URN) else entity_id
    return f"{_URN}{REPORT}:{local}"


def lamp_updates(settings: Iterable[LampSetting], at: datetime) -> list[dict[str, Any]]:
    """Batch-update bodies writing each lamp's new level and the power it draws when lit."""
    observed = iso(at)
    return [{"id": s.lamp_id, "type": STREETLIGHT,
             LEVEL: {"type": "Property", "value": round(s.level, 4), "observedAt": observed},
             POWER: {"type": "Property", "value": round(s.power_w, 1), "unitCode": "WTT",
                     "observedAt": observed}}
            for s in settings]


def _prop(value: Any, observed: str, unit: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
    if unit is not None:
        attribute["unitCode"] = unit
    return attribute


def _accounts(totals: EnergyTotals, power_w: float, lamps: int, observed: str, *,
              started: str, co2_kg_per_kwh: float) -> dict[str, Any]:
    return {
        ENERGY: _prop(round(totals.energy_kwh, 3), observed, "KWH"),
        "baselineEnergy": _prop(round(totals.baseline_kwh, 3), observed, "KWH"),
        "energySaved": _prop(round(totals.saved_kwh, 3), observed, "KWH"),
        "energySavingPercentage": _prop(round(100.0 * totals.saved_share, 2), observed, "P1"),
        "co2Avoided": _prop(round(totals.co2_avoided_kg(co2_kg_per_kwh), 3), observed, "KGM"),
        "powerDemand": _prop(round(power_w, 1), observed, "WTT"),
        "lampCount": _prop(lamps, observed),
        "dateAccountingStarted": _prop({"@type": "DateTime", "@value": started}, observed),
    }


def report_entities(controller: Controller, at: datetime, *,
                    co2_kg_per_kwh: float) -> list[dict[str, Any]]:
    """Reports for every group, every cabinet and the city, as of ``at``."""
    if controller.ledger is None:
        return []
    observed = iso(at)
    started = iso(controller.ledger.started)
    installation = controller.installation
    reports: list[dict[str, Any]] = []
    by_cabinet: dict[str, list[str]] = {}
    every_lamp: list[str] = []
    for group_id, group in installation.groups.items():
        lamp_ids = [lamp.id for lamp in installation.lamps_of(group_id)]
        every_lamp += lamp_ids
        if group.cabinet_id:
            by_cabinet.setdefault(group.cabinet_id, []).extend(lamp_ids)
        report: dict[str, Any] = {
            "id": report_id(group_id), "type": REPORT,
            "reportScope": _prop("group", observed),
            REF_GROUP: {"type": "Relationship", "object": group_id, "observedAt": observed},
            **_accounts(controller.totals(lamp_ids), controller.power_w(lamp_ids, at),
                        len(lamp_ids), observed, started=started,
                        co2_kg_per_kwh=co2_kg_per_kwh),
        }
        if group.name:
            report["name"] = _prop(group.name, observed)
        geometry = installation.geometry_of(group_id)
        if geometry is not None:
            report["location"] = {"type": "GeoProperty", "value": dict(geometry)}
        status = controller.status.get(group_id)
        if status is not None:
            decision = status.decision
            report[LEVEL] = _prop(round(decision.level, 4), observed)
            report["controlMode"] = _prop(decision.reason.value, observed)
            report["designLightingClass"] = _prop(group.design.name, observed)
            report["requiredLightingClass"] = _prop(decision.required_class.name, observed)
            if decision.provided_class is not None:
                report["lightingClass"] = _prop(decision.provided_class.name, observed)
            if status.traffic_vph is not None:
                report["trafficFlow"] = _prop(round(status.traffic_vph, 1), observed)
        reports.append(report)
    for cabinet_id, lamp_ids in by_cabinet.items():
        reports.append({
            "id": report_id(cabinet_id), "type": REPORT,
            "reportScope": _prop("cabinet", observed),
            REF_CABINET: {"type": "Relationship", "object": cabinet_id,
                          "observedAt": observed},
            **_accounts(controller.totals(lamp_ids), controller.power_w(lamp_ids, at),
                        len(lamp_ids), observed, started=started,
                        co2_kg_per_kwh=co2_kg_per_kwh),
        })
    reports.append({
        "id": CITY_REPORT_ID, "type": REPORT,
        "reportScope": _prop("city", observed),
        **_accounts(controller.totals(every_lamp), controller.power_w(every_lamp, at),
                    len(every_lamp), observed, started=started,
                    co2_kg_per_kwh=co2_kg_per_kwh),
    })
    return reports
