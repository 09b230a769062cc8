"""What the server keeps and says (docs/security.md): its output holds nothing private, and nothing
we publish claims end-to-end encryption.

The log test runs the real ``meetnow serve`` (tests/support/serve_process.py) with its relay worker
processes, through a whole call with media, a lobby, a removal and a refusal, and reads every line
it and its workers printed until it exited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import pytest

from signaling.client import ParticipantClient
from signaling.rooms import new_room_id

from ..signaling.test_relay import receives_all, wait_until
from ..support.security import (
    CreatedRoom,
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    media_client,
    reply,
    round_trip,
)
from ..support.serve_process import meetnow_serve

ROOT = Path(__file__).resolve().parent.parent.parent

# ---------------------------------------------------------------------------------- 13. logs

TOPIC = "Zebra Quarterly Merger"
NAMES = {
    "host": "Hortensia Privatename",
    "guest": "Gwendolyn Secretname",
    "raw": "Rawleigh Hiddenname",
    "bomber": "Bartholomew Zoombomber",
    "denied": "Desdemona Turnedaway",
}


def private_strings(created: CreatedRoom, sessions: Iterable[str]) -> list[str]:
    """Everything about a call that must never reach the server's output."""
    return [
        *NAMES.values(),
        *(part for name in NAMES.values() for part in name.split()),
        TOPIC,
        "Zebra",
        created.id,
        created.url,
        created.host_url,
        created.host_token,
        *sessions,
        "/r/",
        "/ws/",
    ]


def leaks(output: str, private: Iterable[str]) -> list[str]:
    """The lines of ``output`` that hold one of the ``private`` strings, each with what it holds."""
    return [
        f"{secret!r} in {line!r}"
        for line in output.splitlines()
        for secret in private
        if secret in line
    ]


def test_the_leak_scan_finds_a_room_id_in_an_access_log_line() -> None:
    room_id = new_room_id()
    created = CreatedRoom(
        room_id, f"http://127.0.0.1:8080/r/{room_id}", "", "token-" + new_room_id()
    )
    created.host_url = f"{created.url}#host={created.host_token}"
    access_line = f'127.0.0.1 [01/Jan/2026:10:00:00 +0000] "GET /r/{room_id} HTTP/1.1" 200 913'
    found = leaks(f"meetnow is running\n{access_line}\n", private_strings(created, []))
    assert found and all(access_line in leak for leak in found)
    assert any(repr(room_id) in leak for leak in found)
    assert leaks("meetnow is running\n", private_strings(created, [])) == []


async def a_whole_call(base_url: str) -> tuple[CreatedRoom, list[str]]:
    """A call with everything that could end up in a log; returns the room and the sessions."""
    async with crowd() as clients, aiohttp.ClientSession() as http:
        created = await create_room(base_url, lobby=True, topic=TOPIC)
        for path in (f"/r/{created.id}", f"/ws/{created.id}", f"/r/{new_room_id()}"):
            async with http.get(base_url + path) as response:
                assert response.status in (200, 400, 404), (path, response.status)
        host = media_client(base_url, created.id, NAMES["host"])
        guest = media_client(base_url, created.id, NAMES["guest"])
        raw = SignalingOnly(base_url, created.id, name=NAMES["raw"])
        bomber = SignalingOnly(base_url, created.id, name=NAMES["bomber"])
        denied = SignalingOnly(base_url, created.id, name=NAMES["denied"])
        clients.extend([host, guest, raw, bomber, denied])
        assert (await enter(host, host_token=created.host_token))["host"] is True

        async def admit(client: ParticipantClient) -> str:
            mark = len(host.messages)
            assert (await enter(client))["type"] == "waiting"
            knock = await reply(host, {"knock"}, since=mark)
            await command(host, {"type": "admit", "participant_id": knock["participant"]["id"]})
            await reply(client, {"joined"}, since=0)
            assert client.participant_id is not None
            return client.participant_id

        guest_id = await admit(guest)
        await wait_until(lambda: receives_all(host, [guest], 10), 30, "host receiving guest")
        await wait_until(lambda: receives_all(guest, [host], 10), 30, "guest receiving host")
        mark = len(host.messages)
        await command(guest, {"type": "media_state", "audio": True, "video": True})
        await reply(host, {"participant_updated"}, since=mark)
        for muted in (True, False):
            mark = len(host.messages)
            await command(host, {"type": "mute", "participant_id": guest_id, "muted": muted})
            await reply(host, {"participant_updated"}, since=mark)

        # A participant whose SDP answer is garbage (with secrets in it): refused, logged safely.
        await admit(raw)
        offer = await reply(raw, {"offer"}, since=0)
        garbage = f"v=0\r\no={NAMES['raw']} {created.id} {created.host_token}\r\n"
        await raw.send({"type": "answer", "revision": offer["revision"], "sdp": garbage})
        error = await reply(raw, {"error"}, since=0)
        assert error["code"] == "negotiation_failed"

        bomber_id = await admit(bomber)
        await command(host, {"type": "remove", "participant_id": bomber_id})
        await bomber.wait_closed()

        mark = len(host.messages)
        assert (await enter(denied))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)
        await command(host, {"type": "deny", "participant_id": knock["participant"]["id"]})
        await denied.wait_closed()
        await round_trip(host)

        await command(host, {"type": "end_meeting"})
        for client in (host, guest):
            await client.wait_closed()
        for path in ("/r/", "/ws/"):
            async with http.get(base_url + path + created.id) as response:
                assert response.status == 410
        return created, [c.session for c in clients]


@pytest.mark.parametrize("arguments", [[], ["--verbose"]], ids=["default", "verbose"])
async def test_meetnow_serve_prints_no_name_topic_room_id_link_or_token(
    tmp_path: Path, arguments: list[str]
) -> None:
    with meetnow_serve(tmp_path, *arguments) as served:
        created, sessions = await a_whole_call(served.base_url)
        output = served.stop()  # every line, up to the process's exit
    assert served.process.returncode == 0, output
    assert "meetnow is running" in output
    private = private_strings(created, sessions)
    assert leaks(output, private) == []
    # The same scan finds the room id in a line that holds it, as an access log's would.
    assert leaks(output + f'"GET /r/{created.id} HTTP/1.1" 200\n', private) != []


# ------------------------------------------------------------------------ 14. honest encryption


CLAIM = re.compile(r"end[- ]to[- ]end|e2ee", re.IGNORECASE)
NEGATIONS = {"not", "no", "never", "without", "nor", "neither", "cannot"}
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
CLAUSE_BREAK = re.compile(r"[,;:]")
NEGATION_WINDOW = 4
"""A negation counts when it is among the few words before the mention, in the same clause."""


def encryption_claims(text: str) -> list[str]:
    """The sentences of ``text`` that mention end-to-end encryption without negating it."""
    text = re.sub(r"<[^>]*>", " ", text)  # HTML tags are not words
    claims = []
    for sentence in SENTENCE_BREAK.split(text):
        for match in CLAIM.finditer(sentence):
            clause = CLAUSE_BREAK.split(sentence[: match.start()])[-1]
            words = re.findall(r"[a-z0-9'-]+", clause.lower())[-NEGATION_WINDOW:]
            if not any(w in NEGATIONS or w.endswith("n't") for w in words):
                claims.append(" ".join(sentence.split()))
                break
    return claims


HONEST = [
    "The relay decrypts and forwards it, so whoever runs the server could see it: meetnow is not\n"
    "  end-to-end encrypted, and says so.",
    "meetnow is **not** end-to-end encrypted (E2EE): the relay sees the media.",
    "Calls aren't end-to-end encrypted yet.",
    "<p>This call is <strong>not</strong> end-to-end encrypted.</p>",
    "Encrypted in transit, never end to end.",
]
CLAIMS = [
    "Calls are end-to-end encrypted.",
    "Calls are end-to-end encrypted, not just in transit.",
    "Not only fast: every meeting is E2EE.",
    "Not everyone knows that calls are end-to-end encrypted.",
    "<p>Your call is <em>end-to-end</em> encrypted</p>",
    "No account, no download, and every call is end to end encrypted!",
]


@pytest.mark.parametrize("sentence", HONEST)
def test_the_claim_checker_lets_honest_sentences_through(sentence: str) -> None:
    assert encryption_claims(sentence) == []


@pytest.mark.parametrize("sentence", CLAIMS)
def test_the_claim_checker_catches_end_to_end_claims(sentence: str) -> None:
    assert encryption_claims(sentence) != []
    assert encryption_claims("Honest intro. " + sentence + " Honest outro.") != []


def test_neither_the_readme_nor_the_web_client_claims_end_to_end_encryption() -> None:
    files = [
        ROOT / "README.md",
        *sorted(p for p in (ROOT / "web_client").rglob("*") if p.is_file()),
    ]
    checked = set()
    found = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images
        checked.add(path.suffix)
        claims = encryption_claims(text)
        if claims:
            found[str(path.relative_to(ROOT))] = claims
    assert {".md", ".html", ".js"} <= checked
    assert found == {}, "meetnow is not end-to-end encrypted (the relay sees the media)"
    # The README does say what is encrypted, and that it is not end to end.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert CLAIM.search(readme) and "DTLS-SRTP" in readme
