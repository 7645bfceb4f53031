"""Apps: decision-support services built on the broker's public API.

An app is a *client* of the broker like any other: it subscribes to the entities it needs,
computes, and writes its results back as entities, so the dashboard and every other client read
them from the broker. No app touches a storage backend.
"""
