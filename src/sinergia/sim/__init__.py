"""The demo city: Milan's real geography (``milano``) and, later, simulated verticals on it."""

from sinergia.sim.milano import MILANO_CONTEXT, city_entities

__all__ = ["MILANO_CONTEXT", "city_entities"]
