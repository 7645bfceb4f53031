"""The demo city: Milan's real geography (``milano``) and the simulated verticals living on it
(``verticals``, run by ``runner`` through ``doors`` on ``clock``'s time; ``demo`` starts it all)."""

from sinergia.sim.milano import MILANO_CONTEXT, city_entities

__all__ = ["MILANO_CONTEXT", "city_entities"]
