"""Energy accounting: what each lamp used, against what it would have used at full power.

For each lamp, between two moments at a constant dimming level::

    energy   = rated power * level * lit hours
    baseline = rated power * 1     * lit hours

*Lit hours* are the hours of the interval between sunset and sunrise at the installation's
place (astral's solar calculation): the cabinets' twilight switches turn the lamps on and off,
the dimming app only sets how bright they are while lit, so daylight hours count for neither
the energy nor the baseline. Power is taken as proportional to the level, as LED drivers
nearly are above ~20 % output (see :mod:`classes`).

CO₂ avoided is the energy saved times the emission factor of electricity consumed in Italy.
ISPRA (Istituto Superiore per la Protezione e la Ricerca Ambientale) publishes it every year in
"Fattori di emissione atmosferica di gas a effetto serra nel settore elettrico nazionale e nei
principali Paesi europei"; its recent values for *consumption* (which includes grid losses) are
around 0.25-0.27 kg CO₂/kWh. :data:`ITALY_GRID_KG_CO2_PER_KWH` is that order of magnitude
rounded; a municipality should set the figure of the latest edition for its reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final

from astral import Observer
from astral.sun import sunrise, sunset

# kg CO2 per kWh of electricity consumed in Italy (ISPRA series, rounded; see the docstring).
ITALY_GRID_KG_CO2_PER_KWH: Final = 0.26
MILAN: Final = (45.4642, 9.1900)  # latitude, longitude of Piazza del Duomo


class NightClock:
    """The hours the lamps are lit (sun below the horizon) at one place."""

    def __init__(self, latitude: float = MILAN[0], longitude: float = MILAN[1]) -> None:
        self.observer = Observer(latitude=latitude, longitude=longitude)
        self._night = lru_cache(maxsize=64)(self._night_uncached)

    def _night_uncached(self, evening: date) -> tuple[datetime, datetime]:
        """Sunset of ``evening`` (UTC date) to the next sunrise, aware UTC datetimes."""
        return (sunset(self.observer, evening),
                sunrise(self.observer, evening + timedelta(days=1)))

    def lit_hours(self, start: datetime, end: datetime) -> float:
        """Hours of ``[start, end)`` (aware datetimes) during which the lamps are lit."""
        if end <= start:
            return 0.0
        start, end = start.astimezone(UTC), end.astimezone(UTC)  # astral's dates are UTC dates
        total = 0.0
        evening = start.date() - timedelta(days=1)
        while evening <= end.date():
            dusk, dawn = self._night(evening)
            overlap = (min(end, dawn) - max(start, dusk)).total_seconds()
            if overlap > 0:
                total += overlap
            evening += timedelta(days=1)
        return total / 3600.0

    def is_lit(self, moment: datetime) -> bool:
        return self.lit_hours(moment, moment + timedelta(seconds=1)) > 0


@dataclass(slots=True)
class EnergyTotals:
    """Energy used and the full-power baseline over the same lit hours, in kWh."""

    energy_kwh: float = 0.0
    baseline_kwh: float = 0.0

    @property
    def saved_kwh(self) -> float:
        return self.baseline_kwh - self.energy_kwh

    @property
    def saved_share(self) -> float:
        """Share of the baseline saved (0-1); 0 before anything was lit."""
        return self.saved_kwh / self.baseline_kwh if self.baseline_kwh > 0 else 0.0

    def co2_avoided_kg(self, kg_per_kwh: float = ITALY_GRID_KG_CO2_PER_KWH) -> float:
        return self.saved_kwh * kg_per_kwh

    def add(self, other: EnergyTotals) -> None:
        self.energy_kwh += other.energy_kwh
        self.baseline_kwh += other.baseline_kwh


@dataclass(slots=True)
class _LampMeter:
    rated_w: float
    level: float
    since: datetime
    totals: EnergyTotals = field(default_factory=EnergyTotals)


class EnergyLedger:
    """Per-lamp meters. Each lamp runs at its level from the moment it was set; :meth:`set`
    and :meth:`advance` first account the time since, then move on."""

    def __init__(self, clock: NightClock, started: datetime) -> None:
        self.clock = clock
        self.started = started
        self._lamps: dict[str, _LampMeter] = {}

    def set(self, lamp_id: str, rated_w: float, level: float, at: datetime) -> None:
        """From ``at`` on, ``lamp_id`` (``rated_w`` watts) runs at ``level``."""
        meter = self._lamps.get(lamp_id)
        if meter is None:
            self._lamps[lamp_id] = _LampMeter(rated_w, level, max(at, self.started))
            return
        self._accrue(meter, at)
        meter.rated_w = rated_w
        meter.level = level

    def forget(self, lamp_id: str) -> None:
        """A lamp removed from the installation: its past stays out of future totals."""
        self._lamps.pop(lamp_id, None)

    def advance(self, at: datetime) -> None:
        """Account every lamp up to ``at``."""
        lit_since: dict[datetime, float] = {}  # most lamps share the moment they were set
        for meter in self._lamps.values():
            if meter.since not in lit_since:
                lit_since[meter.since] = self.clock.lit_hours(meter.since, at)
            self._accrue(meter, at, lit_since[meter.since])

    def _accrue(self, meter: _LampMeter, at: datetime, lit: float | None = None) -> None:
        if at <= meter.since:
            return
        if lit is None:
            lit = self.clock.lit_hours(meter.since, at)
        meter.totals.energy_kwh += meter.rated_w * meter.level * lit / 1000.0
        meter.totals.baseline_kwh += meter.rated_w * lit / 1000.0
        meter.since = at

    def lamp(self, lamp_id: str) -> EnergyTotals:
        meter = self._lamps.get(lamp_id)
        return EnergyTotals() if meter is None else EnergyTotals(meter.totals.energy_kwh,
                                                                 meter.totals.baseline_kwh)

    def total(self, lamp_ids: Iterable[str] | None = None) -> EnergyTotals:
        """The sum over ``lamp_ids`` (every lamp when None)."""
        ids = self._lamps.keys() if lamp_ids is None else lamp_ids
        totals = EnergyTotals()
        for lamp_id in ids:
            totals.add(self.lamp(lamp_id))
        return totals

    def power_w(self, lamp_ids: Iterable[str], at: datetime) -> float:
        """What the lamps draw at ``at``: rated * level while lit, nothing by day."""
        if not self.clock.is_lit(at):
            return 0.0
        return sum(m.rated_w * m.level for i in lamp_ids if (m := self._lamps.get(i)))

    def level(self, lamp_id: str) -> float | None:
        meter = self._lamps.get(lamp_id)
        return None if meter is None else meter.level

    def setting(self, lamp_id: str) -> tuple[float, float] | None:
        """(rated W, level) of a lamp, None if it has no meter yet."""
        meter = self._lamps.get(lamp_id)
        return None if meter is None else (meter.rated_w, meter.level)

    def levels(self) -> Mapping[str, float]:
        return {lamp_id: meter.level for lamp_id, meter in self._lamps.items()}
