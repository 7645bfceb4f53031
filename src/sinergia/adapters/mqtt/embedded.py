"""An MQTT broker inside the server process, for the one-machine setup: devices (and the demo)
publish to Sinergia itself, with no Mosquitto to install.

It is amqtt (pure Python, MQTT 3.1.1; a default dependency, also named by the
``embedded-mqtt`` extra), imported only when asked for. It accepts anonymous clients on the
address it is bound to and keeps nothing on disk: a production deployment uses a real broker
(Mosquitto, EMQX, ...) through ``mqtt_url``.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'sinergia[embedded-mqtt]'"


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker cannot run: amqtt is missing, or the port is taken."""


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    async def start(self) -> None:
        try:
            from amqtt.broker import Broker
            from amqtt.errors import BrokerError
        except ImportError as exc:
            raise EmbeddedBrokerError(
                f"The embedded MQTT broker needs amqtt: {INSTALL_HINT}") from exc
        broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only what a local broker needs: no $SYS topics, no packet logging.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        })
        try:
            await broker.start()
        except BrokerError as exc:
            raise EmbeddedBrokerError(
                f"The embedded MQTT broker cannot listen on {self.host}:{self.port}: "
                f"{exc.__cause__ or exc}") from exc
        self._broker = broker
        log.info("Embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        # Called while the server shuts down (often from a cancelled task): finish anyway,
        # but never wait long for clients that do not say goodbye.
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            await broker.shutdown()
