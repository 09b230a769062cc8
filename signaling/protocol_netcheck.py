"""The messages of the pre-join network check.

Before joining, the page opens a websocket of its own to the room and sends ``network_check``; the
server answers ``network_check_offer``, an SDP offer of a small peer connection with one data
channel and no media, made with the relay's ICE settings (host addresses, public address, port
range), so it reaches the ports media would. The page answers ``network_check_answer`` and judges
the result itself: the data channel opens (directly, or only through TURN) or it does not.
``protocol.py`` puts them in its unions; ``docs/protocol.md`` ("Network check") is their written
form.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .protocol_base import MAX_SDP_LENGTH, ClientWireMessage, IceServerInfo, WireMessage

__all__ = ["NetworkCheckAnswerMessage", "NetworkCheckMessage", "NetworkCheckOfferMessage"]


class NetworkCheckMessage(ClientWireMessage):
    """Start a network check. Only as the first message of a socket that will not join: a socket
    that sent it is a probe, and ``join`` on it is refused."""

    type: Literal["network_check"] = "network_check"


class NetworkCheckAnswerMessage(ClientWireMessage):
    """The SDP answer to ``network_check_offer``, every candidate in it (no trickle)."""

    type: Literal["network_check_answer"] = "network_check_answer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP_LENGTH)


class NetworkCheckOfferMessage(WireMessage):
    """Answer to ``network_check``: an offer with one data channel (``m=application``). The
    server closes its peer connection, and then the socket, ``seconds`` after sending it."""

    type: Literal["network_check_offer"] = "network_check_offer"
    sdp: str
    ice_servers: list[IceServerInfo]
    """What ``joined`` would give, with TURN credentials that expire within a minute."""
    ice_transport_policy: Literal["all", "relay"] = "all"
    """As in ``joined``: ``relay`` checks the path through TURN only, as media would take."""
    seconds: float
    """How long the server keeps the check's peer connection open."""
