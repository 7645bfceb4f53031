"""The dashboard: a map of the city with a layer per vertical, the lighting energy page and the
platform status page, served by the broker's own server under ``/dashboard``.

It is a client of the broker's public NGSI-LD API like any other (the browser reads
``/ngsi-ld/v1/…``; live updates come from a broker subscription, :mod:`sinergia.web.live`), and
works offline: the map and chart libraries come from Python packages, base-map tiles are
optional (setting ``dashboard_tile_url``).
"""
