"""Municipal tables (CSV, GeoJSON) → NGSI-LD entities, through a YAML mapping."""
