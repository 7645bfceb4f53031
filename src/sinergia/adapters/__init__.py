"""Adapters: one module or folder per external format or protocol (UrbanDataset, MQTT, …).

Each turns its format into NGSI-LD entities and back; none talks to a storage backend."""
