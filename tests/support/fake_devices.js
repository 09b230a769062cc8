// Test devices, injected after page_hooks.js (context.add_init_script): Chromium's fake devices give
// one camera, so this adds two more the page lists and opens like real ones:
//   "Canvas camera"  a canvas painted magenta (CANVAS_RGB) 30 times a second, captured as a track
//   "Busy <i>camera</i>" listed (markup in a label must stay text), but opening it fails with NotReadableError (another app holds it)
// window.__fakeDevices lets a test unplug a device (its track ends, `devicechange` fires without it)
// and read what the page did: the call's offers answered and connections made, senders' tracks.
(() => {
  const CANVAS_ID = 'meetnow-test-canvas-camera';
  const BUSY_ID = 'meetnow-test-busy-camera';
  const CANVAS_RGB = [255, 0, 255];
  const devices = navigator.mediaDevices;
  const realEnumerate = devices.enumerateDevices.bind(devices);
  const realGetUserMedia = devices.getUserMedia.bind(devices);
  const extra = [
    { deviceId: CANVAS_ID, kind: 'videoinput', label: 'Canvas camera', groupId: 'meetnow-test' },
    { deviceId: BUSY_ID, kind: 'videoinput', label: 'Busy <i>camera</i>', groupId: 'meetnow-test' },
  ];
  const unplugged = new Set();
  const canvasTracks = [];
  let getUserMediaCalls = 0;

  devices.enumerateDevices = async () => {
    const real = (await realEnumerate()).filter((device) => !unplugged.has(device.deviceId));
    const added = extra.filter((device) => !unplugged.has(device.deviceId))
      .map((device) => ({ ...device, toJSON: () => device }));
    return [...real, ...added];
  };

  // The device a video constraint asks for: a string, {exact}, {ideal}, or an array of them.
  const wantedId = (video) => {
    if (!video || typeof video !== 'object' || video.deviceId === undefined) return null;
    const value = video.deviceId;
    const pick = (v) => (typeof v === 'string' ? v : Array.isArray(v) ? v[0] : null);
    if (typeof value === 'object' && !Array.isArray(value)) return pick(value.exact ?? value.ideal);
    return pick(value);
  };

  const canvasTrack = () => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const context = canvas.getContext('2d');
    let tick = 0;
    // Painted on a timer, so the captured track keeps producing frames; a small square moves
    // along the bottom edge (a canvas that does not change yields no new frames).
    const paint = () => {
      context.fillStyle = `rgb(${CANVAS_RGB.join(',')})`;
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.fillStyle = '#000';
      context.fillRect((tick++ * 4) % canvas.width, canvas.height - 8, 8, 8);
    };
    paint();
    const timer = setInterval(paint, 33);
    const track = canvas.captureStream(30).getVideoTracks()[0];
    const nativeStop = track.stop.bind(track);
    const nativeSettings = track.getSettings.bind(track);
    Object.defineProperty(track, 'label', { value: 'Canvas camera' });
    track.getSettings = () => ({ ...nativeSettings(), deviceId: CANVAS_ID });
    track.stop = () => { clearInterval(timer); nativeStop(); };
    canvasTracks.push(track);
    return track;
  };

  devices.getUserMedia = async (constraints = {}) => {
    getUserMediaCalls += 1;
    const id = wantedId(constraints.video);
    const exact = constraints.video && typeof constraints.video.deviceId === 'object' &&
      constraints.video.deviceId.exact !== undefined;
    const ours = id === CANVAS_ID || id === BUSY_ID;
    if (!ours || (unplugged.has(id) && !exact)) {
      // Not one of ours (or ours but gone, asked as `ideal`): the real fake devices decide.
      const real = { ...constraints };
      if (ours && real.video && typeof real.video === 'object') {
        real.video = { ...real.video };
        delete real.video.deviceId;
      }
      return realGetUserMedia(real);
    }
    if (unplugged.has(id)) throw new DOMException('device gone', 'OverconstrainedError');
    if (id === BUSY_ID) throw new DOMException('Could not start video source', 'NotReadableError');
    const stream = constraints.audio ? await realGetUserMedia({ audio: constraints.audio }) : new MediaStream();
    stream.addTrack(canvasTrack());
    return stream;
  };

  // The call's connections and offers: those with media sections (the pre-join network check
  // makes a connection of its own, with a data channel only).
  const peerConnections = [];
  const callConnections = new Set();
  let offersAnswered = 0;
  const Base = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Base {
    constructor(...args) {
      super(...args);
      peerConnections.push(this);
    }

    setRemoteDescription(description, ...rest) {
      if (description && description.type === 'offer' && /^m=(audio|video) /m.test(description.sdp ?? '')) {
        offersAnswered += 1;
        callConnections.add(this);
      }
      return super.setRemoteDescription(description, ...rest);
    }
  };

  Object.defineProperty(window, '__fakeDevices', { value: Object.freeze({
    CANVAS_ID,
    BUSY_ID,
    CANVAS_RGB,
    // Unplug: listed no more, its tracks end (a real unplug fires `ended`; stop() alone does not),
    // and the browser's `devicechange`.
    unplug: (deviceId) => {
      unplugged.add(deviceId);
      for (const track of canvasTracks) {
        if (deviceId === CANVAS_ID && track.readyState === 'live') {
          track.stop();
          track.dispatchEvent(new Event('ended'));
        }
      }
      devices.dispatchEvent(new Event('devicechange'));
    },
    getUserMediaCalls: () => getUserMediaCalls,
    offersAnswered: () => offersAnswered,
    callConnectionCount: () => callConnections.size,
    // Label and enabled of the tracks this page's open connections send.
    sentTracks: () => peerConnections.filter((pc) => pc.connectionState !== 'closed')
      .flatMap((pc) => pc.getSenders())
      .filter((sender) => sender.track)
      .map((sender) => ({ kind: sender.track.kind, label: sender.track.label,
                          enabled: sender.track.enabled, state: sender.track.readyState })),
  }) });
})();
