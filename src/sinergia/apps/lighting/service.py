"""The lighting app as a broker client: subscribe, read, decide, write back.

**How it hears about traffic — subscriptions, with reconciliation.** At start the app reads the
whole installation (StreetlightGroup, Streetlight) and the latest counts (TrafficFlowObserved)
through the NGSI-LD query API, then creates two subscriptions whose notifications the broker
POSTs to the app's own endpoint (``/apps/lighting/notify``):

* traffic: every change of a TrafficFlowObserved's ``intensity`` — the counts themselves come
  in the notification, so the app reacts within one delivery, with no extra read;
* installation: lamps and groups created, deleted, or changed in what the app depends on
  (rated power, group, design class, manual override) — the app then reads the installation
  again.

Subscriptions are the standard's way for one service to follow another's data, they cost the
broker nothing between changes, and the notifier's outbox delivers them at least once, with
retries. What they cannot cover — the app down while something changed, a lost endpoint — a
slow periodic reconciliation covers: every ``reconcile_seconds`` the app re-reads everything.
Where the broker cannot reach the app (no URL for it, another network), the same loop simply
runs every ``poll_seconds`` instead: polling is the fallback, not the design.

Notifications carry a secret header (``receiverInfo``) that the endpoint checks, so nobody but
the broker can feed the app made-up traffic.

**What it writes.** The new level of every lamp whose level changed (Streetlight
``illuminanceLevel`` and ``powerConsumption``, one batch update), and every ``report_every``
of traffic time the energy reports (:mod:`reports`), with history.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio

from sinergia.apps.lighting.assignment import AssignmentRule
from sinergia.apps.lighting.client import BrokerApi, BrokerError
from sinergia.apps.lighting.controller import Controller, ControllerOptions, LampSetting
from sinergia.apps.lighting.energy import ITALY_GRID_KG_CO2_PER_KWH
from sinergia.apps.lighting.inputs import parse_installation, parse_traffic
from sinergia.apps.lighting.policy import PolicyLimits
from sinergia.apps.lighting.reports import iso, lamp_updates, report_entities
from sinergia.apps.lighting.vocabulary import (
    DESIGN_CLASS,
    INTENSITY,
    OVERRIDE,
    RATED_POWER,
    REF_GROUP,
    STREETLIGHT,
    STREETLIGHT_GROUP,
    TRAFFIC_FLOW,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_PREFIX = "urn:ngsi-ld:Subscription:sinergia-lighting"
TOKEN_HEADER = "X-Sinergia-Lighting-Token"


@dataclass(slots=True)
class LightingConfig:
    tenant: str = ""
    limits: PolicyLimits = field(default_factory=PolicyLimits)
    assignment: AssignmentRule = field(default_factory=AssignmentRule)
    max_age: timedelta = timedelta(minutes=45)      # older counts are not "the traffic"
    report_every: timedelta = timedelta(minutes=15)  # of traffic time, between reports
    reconcile_seconds: float = 300.0  # re-read everything this often with subscriptions
    poll_seconds: float = 15.0        # … and this often without them
    co2_kg_per_kwh: float = ITALY_GRID_KG_CO2_PER_KWH

    def controller_options(self) -> ControllerOptions:
        return ControllerOptions(self.limits, self.assignment, self.max_age)


@dataclass(frozen=True, slots=True)
class CycleResult:
    at: datetime | None          # the traffic time decided at (None: no count yet)
    changed: list[LampSetting]   # lamps whose level was written
    reported: bool               # whether energy reports were published


class LightingService:
    def __init__(self, api: BrokerApi, config: LightingConfig | None = None) -> None:
        self.api = api
        self.config = config or LightingConfig()
        self.controller: Controller | None = None
        self.token = secrets.token_urlsafe(24)
        self.listeners: list[Callable[[CycleResult], None]] = []
        self._pending: list[Mapping[str, Any]] = []
        self._stale = True  # the installation must be read (again)
        self._wake: anyio.Event | None = None  # made in run(): an Event needs the event loop
        self._last_report: datetime | None = None

    # -- subscriptions and notifications ----------------------------------------------------

    @property
    def traffic_subscription_id(self) -> str:
        return f"{SUBSCRIPTION_PREFIX}:traffic"

    @property
    def installation_subscription_id(self) -> str:
        return f"{SUBSCRIPTION_PREFIX}:installation"

    async def subscribe(self, notify_url: str) -> None:
        """Create (or update) the app's two subscriptions, notifying ``notify_url``."""
        endpoint = {"uri": notify_url, "accept": "application/json",
                    "receiverInfo": [{"key": TOKEN_HEADER, "value": self.token}]}
        await self.api.ensure_subscription({
            "id": self.traffic_subscription_id, "type": "Subscription",
            "description": "Sinergia lighting app: traffic counts drive street-light dimming",
            "entities": [{"type": TRAFFIC_FLOW}], "watchedAttributes": [INTENSITY],
            "notification": {"format": "normalized", "endpoint": endpoint}})
        await self.api.ensure_subscription({
            "id": self.installation_subscription_id, "type": "Subscription",
            "description": "Sinergia lighting app: changes to the lighting installation",
            "entities": [{"type": STREETLIGHT}, {"type": STREETLIGHT_GROUP}],
            "watchedAttributes": [OVERRIDE, RATED_POWER, REF_GROUP, DESIGN_CLASS, "location"],
            "notificationTrigger": ["entityCreated", "entityDeleted", "attributeCreated",
                                    "attributeUpdated", "attributeDeleted"],
            "notification": {"format": "normalized", "attributes": [OVERRIDE],
                             "endpoint": endpoint}})

    def accepts(self, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token, self.token)

    def notify(self, notification: Mapping[str, Any]) -> None:
        """Take a notification the broker sent (no I/O here: the loop does the work)."""
        data = notification.get("data")
        entities = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
        if notification.get("subscriptionId") == self.traffic_subscription_id:
            self._pending.extend(entities)
        else:
            self._stale = True
        if self._wake is not None:
            self._wake.set()

    # -- one pass ---------------------------------------------------------------------------

    async def reload(self) -> None:
        """Read the installation and the latest counts from the broker."""
        groups = await self.api.query(STREETLIGHT_GROUP)
        lamps = await self.api.query(STREETLIGHT)
        flows = await self.api.query(TRAFFIC_FLOW)
        installation = parse_installation(groups, lamps)
        counts = [c for e in flows if (c := parse_traffic(e)) is not None]
        sensors = dict(self.controller.sensors) if self.controller else {}
        sensors.update({c.sensor_id: c.location for c in counts if c.location is not None})
        if self.controller is None:
            self.controller = Controller(installation, sensors, self.config.controller_options())
        else:
            self.controller.reconfigure(installation, sensors)
        for count in counts:
            self.controller.observe(count.sensor_id, count.vehicles_per_hour, count.at)
        self._stale = False
        log.info("lighting: %d groups, %d lamps, %d traffic sensors",
                 len(installation.groups), len(installation.lamps), len(sensors))

    def _ingest(self, controller: Controller) -> None:
        pending, self._pending = self._pending, []
        new_sensors = {}
        for entity in pending:
            count = parse_traffic(entity)
            if count is None:
                continue
            if count.location is not None and count.sensor_id not in controller.sensors:
                new_sensors[count.sensor_id] = count.location
            controller.observe(count.sensor_id, count.vehicles_per_hour, count.at)
        if new_sensors:
            controller.reconfigure(controller.installation,
                                   {**controller.sensors, **new_sensors})

    async def cycle(self, *, refresh: bool = False) -> CycleResult:
        """Read what changed (everything with ``refresh``, as polling does), decide at the
        newest traffic time, write what changed."""
        if refresh or self._stale or self.controller is None:
            await self.reload()
        controller = self.controller
        assert controller is not None
        self._ingest(controller)
        at = controller.latest
        if at is None:
            return self._done(CycleResult(None, [], False))
        changed = controller.decide(at)
        if changed:
            await self.api.update(lamp_updates(changed, at))
        reported = False
        if self._last_report is None or at >= self._last_report + self.config.report_every:
            await self.api.upsert(report_entities(controller, at,
                                                  co2_kg_per_kwh=self.config.co2_kg_per_kwh))
            self._last_report = at
            reported = True
        return self._done(CycleResult(at, changed, reported))

    def _done(self, result: CycleResult) -> CycleResult:
        for listener in self.listeners:
            listener(result)
        return result

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, notify_url: str | None = None) -> None:
        """Serve until cancelled: with ``notify_url``, on notifications (and a reconciliation
        every ``reconcile_seconds``); without, by polling every ``poll_seconds``."""
        subscribed = False
        self._wake = anyio.Event()
        while True:
            try:
                if notify_url is not None and not subscribed:
                    await self.subscribe(notify_url)
                    subscribed = True
                await self.cycle()
            except BrokerError as exc:
                log.warning("lighting: %s; trying again later", exc)
                self._stale = True
            except Exception:
                log.exception("lighting: a cycle failed; trying again later")
                self._stale = True
            period = self.config.reconcile_seconds if subscribed else self.config.poll_seconds
            with anyio.move_on_after(period):
                await self._wake.wait()
            if self._wake.is_set() or self._pending:
                self._wake = anyio.Event()
            else:
                self._stale = True  # nothing heard for a while: read everything again

    def describe(self) -> dict[str, Any]:
        """A summary for the app's status endpoint."""
        controller = self.controller
        if controller is None:
            return {"started": False}
        totals = controller.totals()
        return {
            "started": True, "groups": len(controller.installation.groups),
            "lamps": len(controller.installation.lamps), "sensors": len(controller.sensors),
            "trafficTime": iso(controller.latest) if controller.latest else None,
            "energyKWh": round(totals.energy_kwh, 3),
            "baselineKWh": round(totals.baseline_kwh, 3),
            "savedPercentage": round(100.0 * totals.saved_share, 2),
        }
