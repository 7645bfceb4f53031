"""MQTT devices: measurements published on ``<prefix>/<tenant>/<type>/<device id>/attrs``
become NGSI-LD entities and their history (see docs/mqtt.md)."""
