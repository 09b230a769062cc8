// Runs before the page's other modules (its own script tag, first in room.html): takes a host
// link's `#host=TOKEN` out of the address bar at once, before the language catalog has loaded and
// before the load event, so the token never lingers where "Copy link", bookmarks or a screen share
// could show it. identity.js keeps the token for state.js.

import { readRoomId, takeHostToken } from "./identity.js";

takeHostToken(readRoomId());
