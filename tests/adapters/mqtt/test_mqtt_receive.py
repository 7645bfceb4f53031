"""The fast receive path under paho: a buffered socket and shared Properties tables must read
exactly what paho reads without them."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sinergia.adapters.mqtt.receive import BufferedSocket, buffer_reads, share_property_tables


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    right.setblocking(False)
    yield left, right
    left.close()
    right.close()


def test_buffered_reads_hand_out_the_bytes_in_order(
        pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    buffered = BufferedSocket(right)
    left.sendall(b"\x30\x05hello\x40")
    assert buffered.recv(1) == b"\x30"
    assert buffered.pending() == 7  # read at once, kept for paho's next calls
    assert buffered.recv(1) == b"\x05"
    assert buffered.recv(100) == b"hello\x40"  # never more than is there
    assert buffered.pending() == 0
    with pytest.raises(BlockingIOError):  # nothing left: the socket's own answer
        buffered.recv(1)
    left.sendall(b"ab")
    assert buffered.recv(5) == b"ab"
    left.close()
    assert buffered.recv(1) == b""  # closed: as the socket says it


def test_buffered_socket_passes_everything_else_through(
        pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    buffered = BufferedSocket(right)
    assert buffered.fileno() == right.fileno()
    buffered.send(b"ack")
    assert left.recv(10) == b"ack"


def test_buffer_reads_wraps_a_connected_client_once(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    assert not buffer_reads(client)  # not connected: nothing to wrap
    client._sock = pair[1]
    assert buffer_reads(client)
    wrapped = client._sock
    assert isinstance(wrapped, BufferedSocket)
    assert buffer_reads(client)
    assert client._sock is wrapped


def _publish_packet(props: Properties | None, payload: bytes) -> bytes:
    topic = b"sinergia//Room/r1/attrs"
    packed = props.pack() if props is not None else b"\x00"
    return len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + packed + payload


# MQTT strings are UTF-8 without U+0000 [MQTT-1.5.4-1, -2]: paho refuses others.
_MQTT_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=20)
_PROPERTIES = st.fixed_dictionaries({}, optional={
    "MessageExpiryInterval": st.integers(0, 2**32 - 1),
    "ContentType": _MQTT_TEXT,
    "ResponseTopic": _MQTT_TEXT.filter(bool),
    "PayloadFormatIndicator": st.integers(0, 1),
    "UserProperty": st.lists(st.tuples(_MQTT_TEXT, _MQTT_TEXT), min_size=1,
                             max_size=3),
})


@given(values=_PROPERTIES, payload=st.binary(max_size=64))
def test_shared_tables_decode_publish_as_paho_does(values: dict[str, object],
                                                    payload: bytes) -> None:
    props = None
    if values:
        props = Properties(PacketTypes.PUBLISH)
        for name, value in values.items():
            setattr(props, name, value)
    packet = _publish_packet(props, payload)
    original = _packet.Properties
    try:
        _packet.Properties = Properties  # type: ignore[misc]
        expected = _packet.decode_publish(0x32, packet, paho.MQTTv5)
        assert share_property_tables()
        got = _packet.decode_publish(0x32, packet, paho.MQTTv5)
    finally:
        _packet.Properties = original  # type: ignore[misc]
    assert got.properties is not None and expected.properties is not None
    assert got.properties.json() == expected.properties.json()
    assert (got.mid, got.topic, got.payload) == (expected.mid, expected.topic, expected.payload)
