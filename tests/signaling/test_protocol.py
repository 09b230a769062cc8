"""The protocol models on their own: every bad input is a ProtocolError with the right code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import protocol
from signaling.protocol import (
    MAX_SDP_LENGTH,
    PROTOCOL_VERSION,
    AdmitMessage,
    AnswerMessage,
    DenyMessage,
    EndMeetingMessage,
    ErrorCode,
    ErrorMessage,
    IceServerInfo,
    JoinedMessage,
    JoinMessage,
    LeaveMessage,
    LockMessage,
    MakeHostMessage,
    MediaState,
    MediaStateMessage,
    MuteMessage,
    OfferMessage,
    ParticipantInfo,
    ParticipantJoinedMessage,
    ParticipantLeftMessage,
    ParticipantUpdatedMessage,
    PingMessage,
    PongMessage,
    ProtocolError,
    RemoveMessage,
    RoomClosedMessage,
    RoomInfo,
    ServerMessage,
    SetLobbyMessage,
    TrackInfo,
    dump_server_message,
    parse_client_message,
)
from signaling.protocol_chat import ChatMessage, LowerHandMessage, RaiseHandMessage
from signaling.protocol_media import ScreenShareMessage
from signaling.protocol_netcheck import NetworkCheckAnswerMessage, NetworkCheckMessage

SESSION = "abcdefghijklmnop"  # 16 characters, the shortest allowed
CLIENT_TYPES = [
    "join",
    "answer",
    "media_state",
    "ping",
    "leave",
    "admit",
    "deny",
    "remove",
    "mute",
    "make_host",
    "lock",
    "set_lobby",
    "end_meeting",
    "screen_share",
    "network_check",
    "network_check_answer",
    "chat",
    "raise_hand",
    "lower_hand",
]
CLIENT_MODELS = (
    JoinMessage,
    AnswerMessage,
    MediaStateMessage,
    PingMessage,
    LeaveMessage,
    AdmitMessage,
    DenyMessage,
    RemoveMessage,
    MuteMessage,
    MakeHostMessage,
    LockMessage,
    SetLobbyMessage,
    EndMeetingMessage,
    ScreenShareMessage,
    NetworkCheckMessage,
    NetworkCheckAnswerMessage,
    ChatMessage,
    RaiseHandMessage,
    LowerHandMessage,
)
MAX_ERROR_LENGTH = 300


def test_every_client_type_is_listed_here() -> None:
    # The fuzz tests below judge "unknown type" by this list: a new message must be added to it.
    assert sorted(CLIENT_TYPES) == sorted(protocol._CLIENT_TYPES)
    assert {model.model_fields["type"].default for model in CLIENT_MODELS} == set(CLIENT_TYPES)


def dumps(**fields: Any) -> str:
    return json.dumps(fields)


def join(**overrides: Any) -> str:
    fields: dict[str, Any] = {"type": "join", "name": "Alex", "session": SESSION}
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


def answer(**overrides: Any) -> str:
    fields: dict[str, Any] = {"type": "answer", "revision": 1, "sdp": "v=0\r\n"}
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


MALFORMED = ErrorCode.MALFORMED
UNKNOWN = ErrorCode.UNKNOWN_TYPE
INVALID = ErrorCode.INVALID_MESSAGE

BAD_INPUTS = [
    # not JSON at all
    pytest.param("not json", MALFORMED, None, id="not-json"),
    pytest.param("", MALFORMED, None, id="empty-text"),
    pytest.param("{", MALFORMED, None, id="truncated-object"),
    pytest.param("{'type': 'ping'}", MALFORMED, None, id="single-quotes"),
    pytest.param('{"type": "ping"} {}', MALFORMED, None, id="two-objects"),
    pytest.param(b"\xff\xfe\x00", MALFORMED, None, id="bytes-not-utf8"),
    pytest.param(b'{"type": "join", "name": "\xc3"}', MALFORMED, None, id="bytes-cut-utf8"),
    # JSON, but not an object
    pytest.param("[]", MALFORMED, None, id="array"),
    pytest.param('[{"type": "ping"}]', MALFORMED, None, id="array-of-message"),
    pytest.param("42", MALFORMED, None, id="number"),
    pytest.param('"ping"', MALFORMED, None, id="string"),
    pytest.param("null", MALFORMED, None, id="null"),
    pytest.param("true", MALFORMED, None, id="bool"),
    # the type
    pytest.param("{}", UNKNOWN, None, id="missing-type"),
    pytest.param(dumps(name="Alex", session=SESSION), UNKNOWN, None, id="join-without-type"),
    pytest.param(dumps(type="subscribe"), UNKNOWN, "subscribe", id="unknown-type"),
    pytest.param(dumps(type="JOIN"), UNKNOWN, "JOIN", id="type-wrong-case"),
    pytest.param(dumps(type=""), UNKNOWN, None, id="type-empty"),
    pytest.param(dumps(type="joined"), UNKNOWN, "joined", id="server-type"),
    pytest.param(dumps(type=7), UNKNOWN, None, id="type-number"),
    pytest.param(dumps(type=None), UNKNOWN, None, id="type-null"),
    pytest.param(dumps(type=["join"]), UNKNOWN, None, id="type-list"),
    pytest.param(dumps(type={"join": 1}), UNKNOWN, None, id="type-object"),
    pytest.param(dumps(type=True), UNKNOWN, None, id="type-bool"),
    # join
    pytest.param(join(name=...), INVALID, "name", id="join-without-name"),
    pytest.param(join(name=""), INVALID, "name", id="join-empty-name"),
    pytest.param(join(name="x" * 257), INVALID, "name", id="join-name-257"),
    pytest.param(join(name=42), INVALID, "name", id="join-name-number"),
    pytest.param(join(name=["Alex"]), INVALID, "name", id="join-name-list"),
    pytest.param(join(name=None), INVALID, "name", id="join-name-null"),
    pytest.param(
        '{"type":"join","name":"\\ud800","session":"' + SESSION + '"}',
        INVALID,
        "name",
        id="join-name-lone-surrogate",
    ),
    pytest.param(join(session=...), INVALID, "session", id="join-without-session"),
    pytest.param(join(session="abcdefghijklmno"), INVALID, "session", id="join-session-15"),
    pytest.param(join(session="a" * 65), INVALID, "session", id="join-session-65"),
    pytest.param(join(session="abcdefghijklmno!"), INVALID, "session", id="join-session-bang"),
    pytest.param(join(session="abcdefgh ijklmnop"), INVALID, "session", id="join-session-space"),
    pytest.param(join(session="abcdefgh/ijklmnop"), INVALID, "session", id="join-session-slash"),
    pytest.param(join(session="abcdefghijklmnoé"), INVALID, "session", id="join-session-unicode"),
    pytest.param(join(session=SESSION + "\n"), INVALID, "session", id="join-session-newline"),
    pytest.param(join(session=1234567890123456), INVALID, "session", id="join-session-number"),
    pytest.param(join(extra=1), INVALID, "extra", id="join-extra-field"),
    pytest.param(join(room="x"), INVALID, "room", id="join-room-field"),
    pytest.param(join(audio="maybe"), INVALID, "audio", id="join-audio-string"),
    pytest.param(join(video=[True]), INVALID, "video", id="join-video-list"),
    pytest.param(join(audio=None), INVALID, "audio", id="join-audio-null"),
    pytest.param(join(version="one"), INVALID, "version", id="join-version-string"),
    pytest.param(join(version=1.5), INVALID, "version", id="join-version-fraction"),
    # answer
    pytest.param(answer(revision=0), INVALID, "revision", id="answer-revision-0"),
    pytest.param(answer(revision=-1), INVALID, "revision", id="answer-revision-negative"),
    pytest.param(answer(revision=...), INVALID, "revision", id="answer-without-revision"),
    pytest.param(answer(revision="abc"), INVALID, "revision", id="answer-revision-string"),
    pytest.param(answer(revision=1.5), INVALID, "revision", id="answer-revision-fraction"),
    pytest.param(answer(revision=None), INVALID, "revision", id="answer-revision-null"),
    pytest.param(answer(sdp=...), INVALID, "sdp", id="answer-without-sdp"),
    pytest.param(answer(sdp=""), INVALID, "sdp", id="answer-sdp-empty"),
    pytest.param(answer(sdp="x" * (MAX_SDP_LENGTH + 1)), INVALID, "sdp", id="answer-sdp-too-long"),
    pytest.param(answer(sdp={"type": "answer"}), INVALID, "sdp", id="answer-sdp-object"),
    pytest.param(answer(tracks={}), INVALID, "tracks", id="answer-extra-field"),
    # media_state
    pytest.param(dumps(type="media_state"), INVALID, "audio", id="media-state-empty"),
    pytest.param(dumps(type="media_state", audio=True), INVALID, "video", id="media-no-video"),
    pytest.param(dumps(type="media_state", video=True), INVALID, "audio", id="media-no-audio"),
    pytest.param(
        dumps(type="media_state", audio=True, video="loud"),
        INVALID,
        "video",
        id="media-video-string",
    ),
    pytest.param(
        dumps(type="media_state", audio=True, video=False, name="x"),
        INVALID,
        "name",
        id="media-extra-field",
    ),
    # ping / leave take no fields
    pytest.param(dumps(type="ping", id=1), INVALID, "id", id="ping-extra-field"),
    pytest.param(dumps(type="leave", reason="bye"), INVALID, "reason", id="leave-extra-field"),
]


@pytest.mark.parametrize(("text", "code", "mentioned"), BAD_INPUTS)
def test_bad_input_is_refused(text: str | bytes, code: ErrorCode, mentioned: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(text)
    error = caught.value
    assert error.code == code
    assert error.message and str(error) == error.message
    assert len(error.message) < MAX_ERROR_LENGTH
    assert not error.fatal  # parse errors leave the connection as it was
    if mentioned is not None:
        assert mentioned in error.message
    reply = error.to_message()
    assert isinstance(reply, ErrorMessage)
    assert (reply.code, reply.message, reply.fatal) == (code, error.message, False)


def test_unknown_type_is_named_when_short() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(dumps(type="x" * 32))
    assert "x" * 32 in caught.value.message


@pytest.mark.parametrize("length", [33, 100, 10_000])
def test_long_unknown_type_is_not_echoed(length: int) -> None:
    kind = "y" * length
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(dumps(type=kind))
    assert caught.value.code == ErrorCode.UNKNOWN_TYPE
    assert "y" * 33 not in caught.value.message
    assert len(caught.value.message) < MAX_ERROR_LENGTH


def test_error_for_long_extra_field_is_short() -> None:
    key = "k" * 5000
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(json.dumps({"type": "ping", key: 1}))
    assert caught.value.code == ErrorCode.INVALID_MESSAGE
    assert len(caught.value.message) < MAX_ERROR_LENGTH
    assert "k" * 33 not in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 100_000, id="open-arrays"),
        pytest.param('{"type": "ping", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", id="in-field"),
    ],
)
def test_deeply_nested_json_is_malformed(text: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(text)
    assert caught.value.code in (ErrorCode.MALFORMED, ErrorCode.INVALID_MESSAGE)


# ---------------------------------------------------------------- valid messages


def test_join_minimal_takes_defaults() -> None:
    parsed = parse_client_message(join())
    assert parsed == JoinMessage(name="Alex", session=SESSION)
    assert isinstance(parsed, JoinMessage)
    assert (parsed.version, parsed.audio, parsed.video) == (PROTOCOL_VERSION, True, True)


def test_join_full() -> None:
    text = join(version=1, name="  Zoë 🎉 ", session="A-_z" * 16, audio=False, video=True)
    parsed = parse_client_message(text)
    assert isinstance(parsed, JoinMessage)
    # The protocol keeps the name as sent; the room service trims and caps it.
    assert parsed.name == "  Zoë 🎉 "
    assert parsed.session == "A-_z" * 16
    assert (parsed.audio, parsed.video) == (False, True)


def test_join_other_version_parses() -> None:
    # Version checks belong to the connection (unsupported_version), not to parsing.
    parsed = parse_client_message(join(version=2))
    assert isinstance(parsed, JoinMessage) and parsed.version == 2


def test_join_boundaries() -> None:
    longest = parse_client_message(join(name="n" * 256, session="s" * 64))
    assert isinstance(longest, JoinMessage)
    assert (len(longest.name), len(longest.session)) == (256, 64)
    shortest = parse_client_message(join(name="n", session="s" * 16))
    assert isinstance(shortest, JoinMessage)
    assert (shortest.name, shortest.session) == ("n", "s" * 16)


def test_answer() -> None:
    parsed = parse_client_message(answer(revision=3, sdp="v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"))
    assert parsed == AnswerMessage(revision=3, sdp="v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n")


def test_answer_boundaries() -> None:
    parsed = parse_client_message(answer(revision=1, sdp="x" * MAX_SDP_LENGTH))
    assert isinstance(parsed, AnswerMessage)
    assert (parsed.revision, len(parsed.sdp)) == (1, MAX_SDP_LENGTH)


@pytest.mark.parametrize(("audio", "video"), [(True, True), (True, False), (False, True)])
def test_media_state(audio: bool, video: bool) -> None:
    parsed = parse_client_message(dumps(type="media_state", audio=audio, video=video))
    assert parsed == MediaStateMessage(audio=audio, video=video)


def test_ping_and_leave() -> None:
    assert parse_client_message(dumps(type="ping")) == PingMessage()
    assert parse_client_message(dumps(type="leave")) == LeaveMessage()


def test_bytes_input_parses_like_text() -> None:
    text = join(name="Zoë")
    assert parse_client_message(text.encode()) == parse_client_message(text)


def test_parsed_messages_are_frozen() -> None:
    parsed = parse_client_message(join())
    assert isinstance(parsed, JoinMessage)
    with pytest.raises(ValueError):
        parsed.name = "Mallory"


# ---------------------------------------------------------------- properties

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = ["name", "session", "version", "audio", "video", "revision", "sdp", "extra"]
junk_types = st.text(max_size=64) | json_scalars
# Half the time a real client type, so that plenty of examples get past the type check.
type_values = st.booleans().flatmap(
    lambda real: st.sampled_from(CLIENT_TYPES) if real else junk_types
)
field_values = (
    json_values
    | st.text(min_size=1, max_size=300)
    | st.from_regex(r"\A[A-Za-z0-9_-]{14,66}\Z")
    | st.integers(min_value=-2, max_value=5)
)
messages = st.builds(
    lambda kind, fields, drop_type: fields if drop_type else {**fields, "type": kind},
    type_values,
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=20), field_values, max_size=6),
    st.integers(min_value=0, max_value=9).map(lambda n: n == 0),
)


def check_outcome(text: str | bytes) -> None:
    """parse_client_message returns a client model or raises ProtocolError, nothing else."""
    try:
        parsed = parse_client_message(text)
    except ProtocolError as error:
        assert isinstance(error.code, ErrorCode)
        assert 0 < len(error.message) < MAX_ERROR_LENGTH
    else:
        assert isinstance(parsed, CLIENT_MODELS)


@QUICK
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    check_outcome(text)


@QUICK
@given(st.binary())
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    check_outcome(data)


@QUICK
@given(json_values)
def test_any_json_value_parses_or_is_refused(value: object) -> None:
    check_outcome(json.dumps(value))


@QUICK
@given(messages)
def test_any_message_like_object_parses_or_is_refused(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    try:
        parsed = parse_client_message(text)
    except ProtocolError as error:
        assert 0 < len(error.message) < MAX_ERROR_LENGTH
        kind = message.get("type")
        if isinstance(kind, str) and kind not in CLIENT_TYPES:
            assert error.code == ErrorCode.UNKNOWN_TYPE
            if len(kind) > 32:
                assert kind[:33] not in error.message
        elif "type" not in message or not isinstance(kind, str):
            assert error.code == ErrorCode.UNKNOWN_TYPE
        else:
            assert error.code == ErrorCode.INVALID_MESSAGE
    else:
        assert isinstance(parsed, CLIENT_MODELS)
        assert parsed.type == message["type"]


names = st.text(min_size=1, max_size=256)
sessions = st.from_regex(r"\A[A-Za-z0-9_-]{16,64}\Z")
valid_messages = st.one_of(
    st.builds(JoinMessage, name=names, session=sessions, audio=st.booleans(), video=st.booleans()),
    st.builds(
        AnswerMessage,
        revision=st.integers(min_value=1, max_value=2**31),
        sdp=st.text(min_size=1, max_size=500),
    ),
    st.builds(MediaStateMessage, audio=st.booleans(), video=st.booleans()),
    st.just(PingMessage()),
    st.just(LeaveMessage()),
)


@QUICK
@given(valid_messages)
def test_valid_messages_round_trip(message: Any) -> None:
    assert parse_client_message(message.model_dump_json()) == message
    assert parse_client_message(message.model_dump_json().encode()) == message


# ---------------------------------------------------------------- server messages

PARTICIPANT = ParticipantInfo(
    id="p1", name="Zoë <b>🎉</b>", media=MediaState(audio=True, video=False)
)
SERVER_MESSAGES: list[ServerMessage] = [
    JoinedMessage(
        participant_id="p2",
        room=RoomInfo(
            id="A" * 22, topic="Weekly sync", url="http://x/r/" + "A" * 22, max_participants=50
        ),
        participants=[PARTICIPANT],
        ice_servers=[
            IceServerInfo(urls=["stun:stun.example:3478"]),
            IceServerInfo(urls=["turn:turn.example:3478"], username="u", credential="c"),
        ],
    ),
    OfferMessage(
        revision=2,
        sdp="v=0\r\n",
        tracks={
            "0": TrackInfo(participant="p2", kind="audio", source="microphone"),
            "3": TrackInfo(participant="p1", kind="video", source="camera"),
        },
    ),
    ParticipantJoinedMessage(participant=PARTICIPANT),
    ParticipantUpdatedMessage(participant=PARTICIPANT),
    ParticipantLeftMessage(participant_id="p1"),
    PongMessage(),
    ErrorMessage(code=ErrorCode.ROOM_FULL, message="This meeting is full.", fatal=True),
    RoomClosedMessage(reason="server_shutdown"),
]
EXPECTED_TYPES = [
    "joined",
    "offer",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "pong",
    "error",
    "room_closed",
]


@pytest.mark.parametrize(
    ("message", "expected_type"), list(zip(SERVER_MESSAGES, EXPECTED_TYPES, strict=True))
)
def test_server_message_round_trip(message: Any, expected_type: str) -> None:
    wire = dump_server_message(message)
    data = json.loads(wire)
    assert isinstance(data, dict)
    assert data["type"] == expected_type
    assert data == json.loads(message.model_dump_json())
    assert type(message).model_validate_json(wire) == message


def test_server_message_wire_shapes() -> None:
    joined = json.loads(dump_server_message(SERVER_MESSAGES[0]))
    assert joined["version"] == PROTOCOL_VERSION
    assert joined["room"]["topic"] == "Weekly sync"
    assert joined["participants"] == [
        {
            "id": "p1",
            "name": "Zoë <b>🎉</b>",
            "media": {"audio": True, "video": False, "screen": False},
            "host": False,
            "muted_by_host": False,
            "hand_raised_at": None,
        }
    ]
    assert joined["ice_servers"][0] == {
        "urls": ["stun:stun.example:3478"],
        "username": None,
        "credential": None,
    }
    offer = json.loads(dump_server_message(SERVER_MESSAGES[1]))
    assert offer["tracks"]["3"] == {"participant": "p1", "kind": "video", "source": "camera"}
    error = json.loads(dump_server_message(SERVER_MESSAGES[6]))
    assert error == {
        "type": "error",
        "code": "room_full",
        "message": "This meeting is full.",
        "fatal": True,
    }


def test_protocol_error_becomes_error_message() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message("nope")
    wire = json.loads(dump_server_message(caught.value.to_message()))
    assert wire == {
        "type": "error",
        "code": "malformed",
        "message": caught.value.message,
        "fatal": False,
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_serializes_as_its_value(code: ErrorCode) -> None:
    wire = json.loads(dump_server_message(ErrorMessage(code=code, message="m")))
    assert wire["code"] == code.value
    assert wire["fatal"] is False


def test_room_closed_reasons_are_limited() -> None:
    for reason in ("expired", "ended", "server_shutdown"):
        wire = json.loads(dump_server_message(RoomClosedMessage(reason=reason)))
        assert wire == {"type": "room_closed", "reason": reason}
    with pytest.raises(ValueError):
        RoomClosedMessage(reason="bored")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "answer", "revision": true, "sdp": "v=0"}',
        '{"type": "answer", "revision": "1", "sdp": "v=0"}',
        '{"type": "media_state", "audio": "yes", "video": false}',
        '{"type": "media_state", "audio": 1, "video": 0}',
    ],
)
def test_client_fields_are_strictly_typed(text: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(text)
    assert caught.value.code == ErrorCode.INVALID_MESSAGE
