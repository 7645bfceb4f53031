"""Traffic-adaptive street lighting: a broker client that dims Streetlight entities to the EN 13201
class the traffic allows, accounts the energy saved and publishes it as entities.

Modules: :mod:`classes` (the EN 13201 table), :mod:`policy` (the decision rule),
:mod:`assignment` (which sensors concern which group), :mod:`energy` (the accounts),
:mod:`controller` (state and decisions in memory), :mod:`inputs` / :mod:`reports` (reading and
writing entities), :mod:`client` / :mod:`service` (the broker client loop), :mod:`register`
(the plain-language description for citizens), :mod:`web` (endpoints and start-up),
:mod:`demo` (the demo city's lamps).
"""

from sinergia.apps.lighting.web import LightingApp, start_lighting

__all__ = ["LightingApp", "start_lighting"]
