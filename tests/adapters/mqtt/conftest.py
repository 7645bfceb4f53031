"""MQTT fixtures (see mqtt_harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mqtt_harness import Ingesting, ingesting_server, mqtt_settings

from sinergia.settings import Settings


@pytest.fixture
def ingesting(settings: Settings) -> Iterator[Ingesting]:
    """A server ingesting from the test MQTT broker, on each storage backend."""
    with ingesting_server(mqtt_settings(settings)) as server:
        yield server
