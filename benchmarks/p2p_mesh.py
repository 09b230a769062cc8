"""The peer-to-peer baseline of the network benchmark: a page that connects every Chromium that
opens it to every other in a mesh (one ``RTCPeerConnection`` per pair, the newcomer offers), and a
websocket that passes their offers, answers and candidates along. Nothing else: no STUN, no
TURN, the browsers' default encoder settings, so it is what Chromium does on its own.

Remote videos are shown as tiles shaped like meetnow's (``[data-participant]`` with a
``.tile__name``), so the tests' page hooks count their frames the same way.

    ip netns exec NS python -m benchmarks.p2p_mesh --host ADDR --port PORT --seconds 600
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys

from aiohttp import WSMsgType, web

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>p2p mesh</title>
<style>video { width: 320px; height: 240px; }</style></head><body>
<div id="tiles"></div>
<script>
const me = new URLSearchParams(location.search).get('name') || 'guest';
const peers = new Map();
let local;
const socket = new WebSocket(`ws://${location.host}/ws`);
const send = (message) => socket.send(JSON.stringify(message));
const tile = (name, stream) => {
  const div = document.createElement('div');
  div.dataset.participant = name;
  const label = document.createElement('span');
  label.className = 'tile__name';
  label.textContent = name;
  const video = document.createElement('video');
  video.autoplay = true; video.muted = true; video.playsInline = true;
  video.srcObject = stream;
  div.append(label, video);
  document.getElementById('tiles').append(div);
};
const connect = (id, name) => {
  const pc = new RTCPeerConnection();
  peers.set(id, pc);
  local.getTracks().forEach((track) => pc.addTrack(track, local));
  pc.onicecandidate = ({ candidate }) => { if (candidate) send({ to: id, candidate }); };
  pc.ontrack = ({ streams }) => {
    if (!document.querySelector(`[data-participant="${name}"]`)) tile(name, streams[0]);
  };
  return pc;
};
const handle = async (message) => {
  if (message.welcome) {
    for (const { id, name } of message.welcome) {
      const pc = connect(id, name);
      await pc.setLocalDescription(await pc.createOffer());
      send({ to: id, name: me, description: pc.localDescription });
    }
    return;
  }
  let pc = peers.get(message.from);
  if (message.description) {
    if (!pc) pc = connect(message.from, message.name);
    await pc.setRemoteDescription(message.description);
    if (message.description.type === 'offer') {
      await pc.setLocalDescription(await pc.createAnswer());
      send({ to: message.from, name: me, description: pc.localDescription });
    }
  } else if (message.candidate && pc) {
    await pc.addIceCandidate(message.candidate);
  }
};
// One message at a time: a candidate must not overtake the offer it belongs to.
let chain = Promise.resolve();
socket.onmessage = ({ data }) => { chain = chain.then(() => handle(JSON.parse(data))).catch(console.error); };
window.startMesh = async () => {
  local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  send({ hello: me });
};
socket.onopen = () => { window.meshReady = true; };
</script></body></html>
"""


def make_app() -> web.Application:
    sockets: dict[int, tuple[str, web.WebSocketResponse]] = {}
    ids = itertools.count(1)

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def signal(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        me = next(ids)
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    break
                message = frame.json()
                if "hello" in message:
                    others = [{"id": i, "name": name} for i, (name, _) in sockets.items()]
                    sockets[me] = (str(message["hello"]), socket)
                    await socket.send_json({"welcome": others})
                elif (target := sockets.get(int(message.get("to", 0)))) is not None:
                    await target[1].send_json({**message, "from": me})
        finally:
            sockets.pop(me, None)
        return socket

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/ws", signal)
    return app


async def serve(host: str, port: int, seconds: float) -> None:
    runner = web.AppRunner(make_app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print("ready", flush=True)
    try:
        await asyncio.sleep(seconds)  # bounded: stops by itself if the benchmark never stops it
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.p2p_mesh")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
