// Playing streams in <video> elements, and the way back when the browser blocks autoplay with sound.

import { t } from "./i18n.js";
import { ui } from "./dom.js";
import { clearNotice, showNotice } from "./notices.js";
import { state } from "./state.js";

/** @param {HTMLVideoElement} video */
export function playVideo(video) {
  const result = video.play();
  if (result && typeof result.catch === "function") {
    result.catch((/** @type {unknown} */ error) => {
      if (error instanceof DOMException && error.name === "NotAllowedError") offerSoundButton();
    });
  }
}

/**
 * @param {HTMLVideoElement} video
 * @param {MediaStream | null} stream
 */
export function setVideoStream(video, stream) {
  if (video.srcObject === stream) return;
  video.srcObject = stream;
  if (stream) playVideo(video);
}

function offerSoundButton() {
  if (state.notices.has("sound")) return;
  showNotice("sound", t("page.notice.sound_paused"), {
    kind: "warn",
    action: {
      label: t("page.notice.turn_on_sound"),
      onClick: () => {
        clearNotice("sound");
        ui.grid.querySelectorAll("video").forEach(playVideo);
      },
    },
  });
}
