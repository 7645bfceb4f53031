"""Reading a stream of MQTT messages quickly with paho-mqtt (under aiomqtt).

paho spends more on each incoming message than the ingester itself does: it reads a packet's
header with one ``recv`` system call per byte, aiomqtt wakes it up once per packet, and every
MQTT 5 PUBLISH builds a fresh :class:`~paho.mqtt.properties.Properties`, whose constructor
rebuilds the whole table of property names and types. Two small adapters fix that without
changing what paho decodes:

* :class:`BufferedSocket` wraps the client's socket: ``recv`` is served from a 64 KiB buffer
  filled by one system call, and ``pending()`` tells aiomqtt (which loops while an SSL socket
  has pending bytes) to go on reading every packet already received before it yields;
* :func:`share_property_tables` makes paho's packet decoder build its ``Properties`` with the
  tables made once (they are constants), and skip the decoding when a packet has none.

Both rely on paho 2.x internals (``Client._sock``, ``paho.mqtt._packet.Properties``); they
check what they replace and leave paho alone when it is not what they expect.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

READ_BYTES: Final = 65_536
_TABLES: Final = ("types", "names", "properties")


class BufferedSocket:
    """A socket whose reads come from a buffer refilled with large ``recv`` calls; everything
    else goes to the socket it wraps."""

    def __init__(self, inner: socket.socket | ssl.SSLSocket) -> None:
        self._inner = inner
        self._buffer = b""
        self._offset = 0

    def recv(self, size: int) -> bytes:
        available = len(self._buffer) - self._offset
        if available <= 0:
            data = self._inner.recv(READ_BYTES)  # BlockingIOError, OSError: as the socket's
            if len(data) <= size:
                return data  # also b"" (the connection is closed)
            self._buffer, self._offset = data, size
            return data[:size]
        end = self._offset + min(size, available)
        chunk = self._buffer[self._offset:end]
        self._offset = end
        return chunk

    def pending(self) -> int:
        """Bytes already read and not yet handed to paho (plus an SSL socket's own)."""
        inner_pending = getattr(self._inner, "pending", None)
        own = len(self._buffer) - self._offset
        return own + (inner_pending() if inner_pending is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def buffer_reads(client: paho.Client) -> bool:
    """Wrap the connected client's socket in a :class:`BufferedSocket` (once); False when
    there is no socket to wrap. Call it from the event loop that reads the socket, after the
    connection is made: paho creates a new socket at each connection."""
    sock = getattr(client, "_sock", None)
    if isinstance(sock, BufferedSocket):
        return True
    if not isinstance(sock, socket.socket):
        return False
    client._sock = BufferedSocket(sock)
    return True


class _SharedTableProperties(Properties):
    """paho's Properties with its constant tables shared rather than rebuilt per packet."""

    _shared: dict[str, Any] = {}

    def __init__(self, packet_type: int) -> None:
        object.__setattr__(self, "packetType", packet_type)
        for name, table in self._shared.items():
            object.__setattr__(self, name, table)

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":  # no properties: nothing to clear or to read
            return self, 1
        result: tuple[Properties, int] = super().unpack(buffer)  # type: ignore[no-untyped-call]
        return result


def share_property_tables() -> bool:
    """Make paho's packet decoder use :class:`_SharedTableProperties` (idempotent); False
    when this paho is not the one it was written for."""
    current = getattr(_packet, "Properties", None)  # paho's decoder: it builds one per packet
    if current is _SharedTableProperties:
        return True
    if current is not Properties:
        log.debug("paho.mqtt._packet.Properties is not paho's Properties: left alone")
        return False
    template = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if not all(isinstance(getattr(template, name, None), list | dict) for name in _TABLES):
        return False
    _SharedTableProperties._shared = {name: getattr(template, name) for name in _TABLES}
    setattr(_packet, "Properties", _SharedTableProperties)  # noqa: B010 (not exported)
    return True
