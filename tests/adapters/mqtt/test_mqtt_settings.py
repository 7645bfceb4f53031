"""From settings to what the ingester connects to; settings that cannot work are refused
before the server starts."""

from __future__ import annotations

from typing import Any

import pytest

from sinergia.adapters.mqtt.service import ingest_config
from sinergia.api.app import create_app
from sinergia.settings import Settings, load_settings


def _config(**values: Any) -> Any:
    return ingest_config(Settings(**values))


def test_no_url_and_no_embedded_broker_means_no_mqtt() -> None:
    assert _config() is None


def test_a_plain_broker_url() -> None:
    config = _config(mqtt_url="mqtt://mosquitto.comune.example")
    assert (config.host, config.port, config.tls) == ("mosquitto.comune.example", 1883, False)
    assert config.subscription == "sinergia/+/+/+/attrs"
    assert config.protocol == "5" and config.persistent
    assert config.client_id == "sinergia-ingest"


def test_tls_credentials_and_prefix() -> None:
    config = _config(mqtt_url="mqtts://ingest:s%40cret@broker.example:8884",
                     mqtt_topic_prefix="/milano/devices/", mqtt_protocol="3.1.1")
    assert (config.host, config.port, config.tls, config.tls_ca) == (
        "broker.example", 8884, True, None)
    assert (config.username, config.password) == ("ingest", "s@cret")
    assert config.subscription == "milano/devices/+/+/+/attrs"
    assert "s@cret" not in repr(config) and "s@cret" not in config.broker_url
    explicit = _config(mqtt_url="mqtt://u:p@broker.example", mqtt_username="other",
                       mqtt_password="pw", mqtt_tls_ca="/etc/ssl/city-ca.pem")
    assert (explicit.username, explicit.password) == ("other", "pw")
    assert explicit.tls and explicit.tls_ca == "/etc/ssl/city-ca.pem"
    assert explicit.port == 1883


def test_several_workers_share_the_subscription() -> None:
    config = _config(mqtt_url="mqtt://broker.example", workers=3)
    assert config.subscription == "$share/sinergia-ingest/sinergia/+/+/+/attrs"
    assert config.client_id.startswith("sinergia-ingest-") and not config.persistent


def test_the_embedded_broker_is_reached_locally() -> None:
    config = _config(mqtt_embedded_broker=True, host="0.0.0.0", mqtt_embedded_port=11883)
    assert (config.host, config.port, config.protocol) == ("127.0.0.1", 11883, "3.1.1")


def test_settings_come_from_the_environment() -> None:
    settings = load_settings({"SINERGIA_MQTT_URL": "mqtt://broker.example",
                              "SINERGIA_MQTT_EMBEDDED_BROKER": "false",
                              "SINERGIA_MQTT_BATCH_MS": "2.5"})
    config = ingest_config(settings)
    assert config is not None and config.batch_ms == 2.5


@pytest.mark.parametrize(("values", "complaint"), [
    ({"mqtt_url": "http://broker.example"}, "mqtt://"),
    ({"mqtt_url": "mqtt://"}, "mqtt://"),
    ({"mqtt_url": "mqtt://b", "mqtt_protocol": "4"}, "mqtt_protocol"),
    ({"mqtt_url": "mqtt://b", "mqtt_topic_prefix": "city/#"}, "wildcards"),
    ({"mqtt_url": "mqtt://b", "mqtt_topic_prefix": "/"}, "mqtt_topic_prefix"),
    ({"mqtt_url": "mqtt://b", "mqtt_batch_max": 0}, "mqtt_batch_max"),
    ({"mqtt_url": "mqtt://b", "mqtt_embedded_broker": True}, "exclude each other"),
    ({"mqtt_embedded_broker": True, "workers": 2}, "workers = 1"),
])
def test_settings_that_cannot_work_are_refused(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        create_app(Settings(**values))
