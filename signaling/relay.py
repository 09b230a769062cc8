"""The relay: one aiortc peer connection per participant, media forwarded between them.

:class:`Relay` holds a :class:`RoomMedia` per active room. Each participant has a
:class:`~signaling.peer_session.PeerSession`: the m-lines it publishes on (microphone, camera, and
a screen while it shares one) and one m-line per track of every other participant, bound to
:class:`~signaling.forwarding.Outbound` forwarders. The server is always the offerer; joins, leaves
and screen shares renegotiate, and never interrupt media already flowing. Each room also reads its
microphones' audio levels a few times a second to tell who is speaking
(:mod:`signaling.speaker`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from aiortc import RTCRtpReceiver

from .forwarding import Kind, Publication, kind_of, source_of
from .peer_session import (
    CODECS,
    KINDS,
    PeerSession,
    RelayConfig,
    SendOffer,
    _codec_preferences,
    announce_public_address,
    with_opus_fec,
)
from .protocol import ErrorCode, ProtocolError, Source
from .protocol_media import SCREEN_SOURCES
from .speaker import TICK_SECONDS, LevelCounter, SpeakerDetector, Speakers
from .tasks import spawn

__all__ = [
    "CODECS",
    "KINDS",
    "PeerSession",
    "Relay",
    "RelayBackend",
    "RelayConfig",
    "RoomMedia",
    "SendOffer",
    "SpeakersListener",
    "_codec_preferences",
    "announce_public_address",
    "with_opus_fec",
]

logger = logging.getLogger(__name__)

SpeakersListener = Callable[[str, Speakers], None]
"""Told (room id, speakers) whenever a room's speakers change (rate limited per room)."""


class RelayBackend(Protocol):
    """What the signaling side needs from the media side, wherever it runs: in this process
    (:class:`Relay`) or in relay worker processes (:class:`~signaling.workers.WorkerPool`)."""

    async def add_participant(
        self,
        room_id: str,
        participant_id: str,
        kinds: Iterable[Kind],
        send_offer: SendOffer,
        screen: Sequence[Source] = (),
    ) -> None: ...

    async def apply_answer(
        self, room_id: str, participant_id: str, revision: int, sdp: str
    ) -> None: ...

    async def remove_participant(self, room_id: str, participant_id: str) -> None: ...

    async def set_forwarding(
        self, room_id: str, participant_id: str, kind: Kind, enabled: bool
    ) -> None: ...

    async def set_screen_share(
        self, room_id: str, participant_id: str, sources: Sequence[Source]
    ) -> None:
        """Publish these screen sources (``screen``, ``screen_audio``), or stop sharing (empty)."""

    def set_speakers_listener(self, listener: SpeakersListener | None) -> None:
        """Where each room's speaker changes go (the main process's room hub)."""

    async def close(self) -> None: ...


class RoomMedia:
    """The media side of one room: who publishes what, and who receives it."""

    session_class: type[PeerSession] = PeerSession
    """Made once per participant (a benchmark baseline swaps in another forwarding design)."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        self.sessions: dict[str, PeerSession] = {}
        """Peer sessions by participant id."""
        self.publications: dict[str, list[Publication]] = {}
        """Published tracks by participant id."""
        self.speakers = SpeakerDetector(time.monotonic)
        """Who speaks, from the microphones' audio levels."""
        self.on_speakers: Callable[[Speakers], None] | None = None
        """Told each change of :attr:`speakers` (set by :class:`Relay`)."""
        self._speaker_task: asyncio.Task[None] | None = None
        self._parked: dict[str, dict[RTCRtpReceiver, Publication]] = {}
        """Stopped shares' publications by participant, by receiver: a new share on the same
        m-line resumes the same publication (its receiver is tapped once, for good)."""

    async def add_participant(
        self,
        participant_id: str,
        kinds: Iterable[Kind],
        send_offer: SendOffer,
        screen: Sequence[Source] = (),
    ) -> PeerSession:
        """Create the participant's session, subscribe it to everyone, and everyone to it."""
        session = self.session_class(participant_id, self._config, send_offer)
        sources = [source_of(kind) for kind in kinds] + [s for s in screen if s in SCREEN_SOURCES]
        receivers = session.add_publish_transceivers(sources)
        for publications in self.publications.values():
            for publication in publications:
                session.subscribe(publication)
        mine = [self._publish(participant_id, source, receiver) for source, receiver in receivers]
        others = list(self.sessions.values())
        self.sessions[participant_id] = session
        self.publications[participant_id] = mine
        self._watch_speakers()
        # The newcomer's offer first: it binds its ICE socket, and if the port range is full it
        # is refused before anyone else is told to receive it.
        try:
            await session.negotiate()
        except ProtocolError:
            del self.sessions[participant_id], self.publications[participant_id]
            for publication in mine:
                publication.close()
            await session.close()
            raise
        except Exception as error:  # as for the others': logged, the call goes on
            logger.warning("negotiation failed: %s", type(error).__name__)
        for other in others:
            for publication in mine:
                other.subscribe(publication)
        await _all(*(other.negotiate() for other in others))
        return session

    def publish(self, participant_id: str, kind: Kind, receiver: RTCRtpReceiver) -> Publication:
        """Start forwarding what arrives on ``receiver``."""
        return Publication(participant_id, kind, receiver)

    def _publish(
        self, participant_id: str, source: Source, receiver: RTCRtpReceiver
    ) -> Publication:
        publication = self.publish(participant_id, kind_of(source), receiver)
        publication.source = source
        if source == "microphone":
            publication.levels = LevelCounter()
        return publication

    async def set_screen_share(self, participant_id: str, sources: Sequence[Source]) -> None:
        """Start publishing the participant's screen (``sources``: ``screen``, and
        ``screen_audio`` with tab audio) or stop (empty); the current state again does nothing."""
        session = self.sessions.get(participant_id)
        mine = self.publications.get(participant_id)
        if session is None or mine is None:
            return
        sharing = [p for p in mine if p.source in SCREEN_SOURCES]
        wanted = [s for s in SCREEN_SOURCES if s in sources]
        if bool(sharing) == bool(wanted):
            return
        others = [s for who, s in self.sessions.items() if who != participant_id]
        parked = self._parked.setdefault(participant_id, {})
        if wanted:
            heard = not any(p.paused for p in mine if p.source == "microphone")
            added: list[Publication] = []
            for source, receiver in session.add_publish_transceivers(wanted):
                publication = parked.pop(receiver, None) or self._publish(
                    participant_id, source, receiver
                )
                if publication.kind == "audio":
                    publication.paused = not heard  # a host's mute covers tab audio too
                added.append(publication)
            mine.extend(added)
            for other in others:
                for publication in added:
                    other.subscribe(publication)
        else:
            for publication in sharing:
                mine.remove(publication)
                parked[publication.receiver] = publication
            for other in others:
                other.release(sharing)
            session.stop_publishing(SCREEN_SOURCES)
        await _all(session.negotiate(), *(other.negotiate() for other in others))

    def set_heard(self, participant_id: str, heard: bool) -> None:
        """A host muted (or let through) the participant's audio (microphone and screen audio):
        a muted one is never speaking, from this moment on."""
        for publication in self.publications.get(participant_id, []):
            if publication.kind == "audio":
                publication.paused = not heard
        if not heard:
            self.speakers.forget(participant_id)

    async def remove_participant(self, participant_id: str) -> None:
        """Close the participant's session; the others' m-lines for it go idle."""
        session = self.sessions.pop(participant_id, None)
        publications = self.publications.pop(participant_id, [])
        publications += self._parked.pop(participant_id, {}).values()
        self.speakers.forget(participant_id)
        if session is None and not publications:
            return  # never added, or refused at its first offer: nobody to tell
        for publication in publications:
            publication.close()
        others = list(self.sessions.values())
        for other in others:
            other.release(publications)
        if session is not None:
            await session.close()
        if not self.sessions:
            self._stop_watching_speakers()
        await _all(*(other.negotiate() for other in others))

    async def close(self) -> None:
        for participant_id in list(self.sessions):
            await self.remove_participant(participant_id)
        self._stop_watching_speakers()

    def tick_speakers(self) -> None:
        """Read each microphone's level counters, and tell the listener of any change."""
        activity = [
            (participant_id, publication.levels.take())
            for participant_id, publications in self.publications.items()
            for publication in publications
            if publication.levels is not None and not publication.paused
        ]
        change = self.speakers.tick(activity)
        if change is not None and self.on_speakers is not None:
            self.on_speakers(change)

    def _watch_speakers(self) -> None:
        if self._speaker_task is None or self._speaker_task.done():
            self._speaker_task = spawn(self._speaker_loop(), what="speaker detection")

    def _stop_watching_speakers(self) -> None:
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            self._speaker_task = None

    async def _speaker_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick_speakers()
            except Exception:  # a listener's bug must not end the room's detection
                logger.exception("speaker detection failed")


class Relay:
    """All rooms' media in this process."""

    room_media_class: type[RoomMedia] = RoomMedia
    """Made once per active room."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.rooms: dict[str, RoomMedia] = {}
        """Room media by room id, while anyone is connected."""
        self._speakers_listener: SpeakersListener | None = None

    def room(self, room_id: str) -> RoomMedia:
        media = self.rooms.get(room_id)
        if media is None:
            media = self.rooms[room_id] = self.room_media_class(self.config)
            media.on_speakers = lambda speakers: self._speakers_changed(room_id, speakers)
        return media

    def set_speakers_listener(self, listener: SpeakersListener | None) -> None:
        self._speakers_listener = listener

    def _speakers_changed(self, room_id: str, speakers: Speakers) -> None:
        if self._speakers_listener is not None:
            self._speakers_listener(room_id, speakers)

    async def add_participant(
        self,
        room_id: str,
        participant_id: str,
        kinds: Iterable[Kind],
        send_offer: SendOffer,
        screen: Sequence[Source] = (),
    ) -> None:
        """Give a participant its peer connection; its offers go to ``send_offer``."""
        await self.room(room_id).add_participant(participant_id, kinds, send_offer, screen)

    async def apply_answer(
        self, room_id: str, participant_id: str, revision: int, sdp: str
    ) -> None:
        """Apply a participant's SDP answer; raises :class:`ProtocolError` if it cannot."""
        media = self.rooms.get(room_id)
        session = media.sessions.get(participant_id) if media else None
        if session is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "No offer is waiting for an answer.")
        await session.apply_answer(revision, sdp)

    async def set_forwarding(
        self, room_id: str, participant_id: str, kind: Kind, enabled: bool
    ) -> None:
        """Stop or resume forwarding one participant's camera or microphone (a host's mute)."""
        media = self.rooms.get(room_id)
        if media is None:
            return
        if kind == "audio":
            media.set_heard(participant_id, enabled)
            return
        for publication in media.publications.get(participant_id, []):
            if publication.source == source_of(kind):
                publication.paused = not enabled

    async def set_screen_share(
        self, room_id: str, participant_id: str, sources: Sequence[Source]
    ) -> None:
        media = self.rooms.get(room_id)
        if media is not None:
            await media.set_screen_share(participant_id, sources)

    async def remove_participant(self, room_id: str, participant_id: str) -> None:
        media = self.rooms.get(room_id)
        if media is None:
            return
        await media.remove_participant(participant_id)
        if not media.sessions:
            self.rooms.pop(room_id, None)

    def peer_connection_count(self) -> int:
        return sum(len(media.sessions) for media in self.rooms.values())

    async def close(self) -> None:
        """Close every peer connection (server shutdown)."""
        for media in list(self.rooms.values()):
            await media.close()
        self.rooms.clear()


async def _all(*coroutines: Awaitable[None]) -> None:
    """Run negotiations side by side; one participant's failure never stops the others'."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            logger.warning("negotiation failed: %s", type(result).__name__)
