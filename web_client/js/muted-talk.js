// t("page.notice.you_are_muted"): someone talks while their microphone is off. Detected here, in the page: a
// WebAudio AnalyserNode reads the level of a clone of the microphone track (the muted track
// itself gives WebAudio silence), only while muted. Nothing leaves the page.

import { t } from "./i18n.js";
import { clearNotice, showNotice } from "./notices.js";
import { state } from "./state.js";

const SAMPLE_MS = 50;
/** Samples looked at together: half a second. */
const WINDOW_SAMPLES = 10;
/** Talking: loud in at least this many of the window's samples. Speech has short pauses between
 * syllables; a click, a cough or a beep fills one or two samples. */
const LOUD_SAMPLES_NEEDED = 6;
/** RMS level of a loud sample, in full scale (about -40 dBFS): quiet speech, over room noise. */
const LOUD_RMS = 0.01;
/** The notice goes once the talking stopped this long ago. */
const QUIET_CLEAR_MS = 3_000;
const NOTICE_KEY = "muted-talk";

export class MutedTalkWatch {
  /** @param {MediaStreamTrack} track our microphone (muted: enabled is false) */
  constructor(track) {
    /** @readonly */ this.track = track;
    /** @private @readonly */ this._clone = track.clone();
    this._clone.enabled = true;
    /** @private @readonly */ this._context = new AudioContext();
    /** @private @readonly */ this._analyser = this._context.createAnalyser();
    this._analyser.fftSize = 2048;
    this._context.createMediaStreamSource(new MediaStream([this._clone])).connect(this._analyser);
    /** @private @readonly */ this._samples = new Float32Array(this._analyser.fftSize);
    /** @private @type {boolean[]} */ this._recent = [];
    /** @private */ this._lastTalkAt = -Infinity;
    /** @private */ this._shown = false;
    /** @private */ this._timer = setInterval(() => this._tick(), SAMPLE_MS);
    this.resume();
  }

  /** A page without a user gesture yet starts its AudioContext suspended: try again (a click). */
  resume() {
    if (this._context.state === "suspended") this._context.resume().catch(() => {});
  }

  /** @private */
  _level() {
    this._analyser.getFloatTimeDomainData(this._samples);
    let sum = 0;
    for (const sample of this._samples) sum += sample * sample;
    return Math.sqrt(sum / this._samples.length);
  }

  /** @private */
  _tick() {
    this._recent.push(this._level() >= LOUD_RMS);
    if (this._recent.length > WINDOW_SAMPLES) this._recent.shift();
    const now = performance.now();
    if (this._recent.filter(Boolean).length >= LOUD_SAMPLES_NEEDED) {
      this._lastTalkAt = now;
      if (!this._shown) {
        this._shown = true;
        showNotice(NOTICE_KEY, t("page.notice.you_are_muted"), { kind: "warn" });
      }
    } else if (this._shown && now - this._lastTalkAt > QUIET_CLEAR_MS) {
      this._shown = false;
      clearNotice(NOTICE_KEY);
    }
  }

  close() {
    clearInterval(this._timer);
    this._clone.stop();
    this._context.close().catch(() => {});
    if (this._shown) clearNotice(NOTICE_KEY);
  }
}

/** Watch while we are in the call with our own microphone muted; stop watching otherwise. */
export function updateMutedTalkWatch() {
  const track = state.localStream.getAudioTracks().find((candidate) => candidate.readyState === "live");
  const muted = state.inCall && track !== undefined && !state.wantAudio && !state.mutedByHost;
  const current = state.mutedTalk;
  if (current && (!muted || current.track !== track)) {
    current.close();
    state.mutedTalk = null;
  }
  if (muted && track && !state.mutedTalk && typeof AudioContext === "function") {
    state.mutedTalk = new MutedTalkWatch(track);
  } else {
    state.mutedTalk?.resume();
  }
}

export function stopMutedTalkWatch() {
  state.mutedTalk?.close();
  state.mutedTalk = null;
}
