// Test hooks, injected into every test page (context.add_init_script) before the page's own
// scripts; tests/support/browser.py reads them through page.evaluate. They only observe, except
// stopSendingVideo, which a test calls to make a publisher go silent on purpose.
(() => {
  const peerConnections = [];
  const NativePeerConnection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      peerConnections.push(this);
    }
  };
  const open = () => peerConnections.filter((pc) => pc.connectionState !== 'closed');

  // Presented frames of every <video>, counted from the moment it enters the document: per
  // requestVideoFrameCallback, its time and how many frames were presented since the last one.
  const frames = new WeakMap();
  const countFrames = (video) => {
    if (frames.has(video)) return;
    const record = { times: [], counts: [], last: 0 };
    frames.set(video, record);
    const onFrame = (now, metadata) => {
      const presented = metadata.presentedFrames;
      // A new srcObject restarts presentedFrames from zero.
      const added = presented >= record.last ? presented - record.last : presented;
      record.last = presented;
      if (added > 0) {
        record.times.push(now);
        record.counts.push(added);
      }
      while (record.times.length > 0 && record.times[0] < now - 30000) {
        record.times.shift();
        record.counts.shift();
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  new MutationObserver(() => document.querySelectorAll('video').forEach(countFrames))
    .observe(document, { childList: true, subtree: true });

  const remoteTiles = () => Array.from(
    document.querySelectorAll('[data-participant]:not([data-local])'),
    (tile) => ({
      name: tile.querySelector('.tile__name')?.textContent ?? '',
      video: tile.querySelector('video'),
    }),
  );
  const framesSince = (video, since) => {
    const record = video && frames.get(video);
    if (!record) return 0;
    let total = 0;
    for (let i = record.times.length - 1; i >= 0 && record.times[i] >= since; i--) {
      total += record.counts[i];
    }
    return total;
  };

  Object.defineProperty(window, '__meetnowTest', { value: Object.freeze({
    remoteFrames: () => remoteTiles().map(({ name, video }) => {
      const record = video && frames.get(video);
      return { name, times: record ? [...record.times] : [], counts: record ? [...record.counts] : [],
               videoWidth: video ? video.videoWidth : 0 };
    }),
    remotePlaying: (count, perWindow, windowMs) => {
      const tiles = remoteTiles();
      const since = performance.now() - windowMs;
      return tiles.length === count &&
        tiles.every(({ video }) => framesSince(video, since) >= perWindow);
    },
    firstRemoteFrameAt: () => {
      const firsts = remoteTiles().map(({ video }) => frames.get(video)?.times[0])
        .filter((at) => at !== undefined);
      return firsts.length > 0 ? Math.min(...firsts) : null;
    },
    remoteAudio: async () => {
      const byTrack = new Map();
      for (const { name, video } of remoteTiles()) {
        const stream = video && video.srcObject;
        if (stream instanceof MediaStream) {
          for (const track of stream.getAudioTracks()) byTrack.set(track.id, name);
        }
      }
      const result = [];
      for (const pc of open()) {
        for (const stat of (await pc.getStats()).values()) {
          if (stat.type === 'inbound-rtp' && stat.kind === 'audio' && byTrack.has(stat.trackIdentifier)) {
            result.push({ name: byTrack.get(stat.trackIdentifier), packets: stat.packetsReceived ?? 0,
                          energy: stat.totalAudioEnergy ?? 0, level: stat.audioLevel ?? 0 });
          }
        }
      }
      return result;
    },
    iceServers: () => open().map((pc) => pc.getConfiguration().iceServers ?? []),
    remoteCandidateAddresses: async () => {
      const addresses = [];
      for (const pc of open()) {
        for (const stat of (await pc.getStats()).values()) {
          if (stat.type === 'remote-candidate') addresses.push(stat.address ?? stat.ip ?? '');
        }
      }
      return addresses;
    },
    stopSendingVideo: async () => {
      for (const pc of open()) {
        for (const sender of pc.getSenders()) {
          if (sender.track && sender.track.kind === 'video') await sender.replaceTrack(null);
        }
      }
    },
  }) });
})();
