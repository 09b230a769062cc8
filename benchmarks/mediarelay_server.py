"""``meetnow serve`` with aiortc's MediaRelay design instead of packet forwarding: the baseline.

Run as ``python -m benchmarks.mediarelay_server --port P``. It installs, through the seams of
``signaling/relay.py`` (``Relay.room_media_class``, ``RoomMedia.session_class``,
``RoomMedia.publish``, ``PeerSession.new_outbound``), the design aiortc's own examples use: each
publisher's receiver decodes its track once (aiortc's decoder thread, no tap), the decoded track is
shared with ``aiortc.contrib.media.MediaRelay().subscribe(track)``, and every subscriber m-line gets
its own proxy through ``sender.replaceTrack``, so aiortc encodes once per subscriber. Codecs (VP8,
Opus), negotiation, signaling and everything else are the real server's, unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.contrib.media import MediaRelay
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from signaling.forwarding import Kind, Outbound, Publication
from signaling.relay import PeerSession, Relay, RoomMedia


class DecodedPublication(Publication):
    """A published track that aiortc decodes; subscribers share it through one MediaRelay."""

    def __init__(self, participant_id: str, kind: Kind, receiver: RTCRtpReceiver) -> None:
        # Deliberately not Publication.__init__: no tap, so aiortc's receiver decodes as usual.
        self.participant_id = participant_id
        self.kind = kind
        self.outbounds = []
        self._closed = False
        # aiortc creates the receiver's track when the answer arrives; subscribers need it before,
        # so create it now (aiortc then keeps it and its decoder fills it).
        internals: Any = receiver  # aiortc private state, only in this baseline
        if internals.track is None:
            internals._track = RemoteStreamTrack(kind=kind)
        self.track: MediaStreamTrack = internals.track
        self.relay = MediaRelay()

    def request_keyframe(self, *, urgent: bool = False) -> None:
        """aiortc's receiver asks the publisher for keyframes itself when its decoder needs one."""

    def close(self) -> None:
        self._closed = True
        for outbound in list(self.outbounds):
            outbound.unbind()


class EncodingOutbound(Outbound):
    """A subscriber m-line whose sender encodes a MediaRelay proxy of the decoded track."""

    def __init__(self, kind: Kind, transceiver: RTCRtpTransceiver) -> None:
        # Deliberately not Outbound.__init__: the sender keeps aiortc's own encoder and send loop.
        self.kind = kind
        self.publication = None
        self.idle_since = None
        self._transceiver = transceiver
        self._proxy: MediaStreamTrack | None = None

    def bind(self, publication: Publication) -> None:
        assert isinstance(publication, DecodedPublication)
        self.unbind()
        self.publication = publication
        publication.outbounds.append(self)
        self._proxy = publication.relay.subscribe(publication.track)
        self._transceiver.sender.replaceTrack(self._proxy)

    def unbind(self) -> None:
        if self.publication is not None:
            self.publication.outbounds.remove(self)
            self.publication = None
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
            self._transceiver.sender.replaceTrack(None)


class MediaRelaySession(PeerSession):
    """The real session (same m-lines, same negotiation); only what a subscription is differs."""

    def new_outbound(self, kind: Kind, transceiver: RTCRtpTransceiver) -> Outbound:
        return EncodingOutbound(kind, transceiver)


class MediaRelayRoomMedia(RoomMedia):
    session_class = MediaRelaySession

    def publish(self, participant_id: str, kind: Kind, receiver: RTCRtpReceiver) -> Publication:
        return DecodedPublication(participant_id, kind, receiver)


def install() -> None:
    Relay.room_media_class = MediaRelayRoomMedia


def main() -> int:
    install()
    from meetnow.cli import main as meetnow_main

    return meetnow_main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
