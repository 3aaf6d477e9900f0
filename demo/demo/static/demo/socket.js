/*
 * liveSocket(path, options): a WebSocket that reconnects by itself and shows its state.
 *
 * After a close it waits, then tries again: 0.5 s, 1 s, 2 s, ... up to 15 s between
 * tries, with some jitter so that a restarted server is not hit by every tab at once.
 * A successful open resets the wait. The state ("connecting", "open", "closed") is
 * written to options.stateElement (text and data-state), the countdown to
 * options.detailElement.
 *
 * options: onMessage(data), onOpen(), onStateChange(state), stateElement, detailElement.
 * Returns {send(data) -> bool (false when not open), reconnect()}.
 */
"use strict";

function liveSocket(path, options) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  const MIN_DELAY = 500;
  const MAX_DELAY = 15000;
  let socket = null;
  let delay = MIN_DELAY;
  let retryTimer = null;
  let countdownTimer = null;

  function show(state, detail) {
    if (options.stateElement) {
      options.stateElement.textContent = state;
      options.stateElement.dataset.state = state;
    }
    if (options.detailElement) options.detailElement.textContent = detail || "";
    if (options.onStateChange) options.onStateChange(state);
  }

  function stopTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
  }

  function open() {
    stopTimers();
    show("connecting");
    socket = new WebSocket(url);
    socket.onopen = () => {
      delay = MIN_DELAY;
      show("open");
      if (options.onOpen) options.onOpen();
    };
    socket.onmessage = (event) => options.onMessage(event.data);
    socket.onclose = (event) => {
      socket = null;
      retryLater(event);
    };
  }

  function retryLater(event) {
    const wait = delay * (0.8 + Math.random() * 0.4);
    delay = Math.min(delay * 2, MAX_DELAY);
    // 1006: the browser never got a close frame (server down, handshake refused...).
    const why = event.code === 1006 ? "" : `code ${event.code}${event.reason ? ": " + event.reason : ""}; `;
    const due = Date.now() + wait;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      show("closed", `${why}retrying in ${seconds} s`);
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(open, wait);
  }

  function reconnect() {
    delay = MIN_DELAY;
    if (socket) {
      socket.onclose = null; // this close is ours: no retry timer
      socket.close(1000, "reconnecting");
      socket = null;
    }
    open();
  }

  function closeForGood() {
    stopTimers();
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "page hidden");
      socket = null;
    }
  }

  // Leaving the page: close now. Chromium may keep the page in its back/forward
  // cache with the socket still open, and the others would go on seeing us online.
  window.addEventListener("pagehide", closeForGood);
  // Back to a page from that cache: connect again.
  window.addEventListener("pageshow", (event) => { if (event.persisted) reconnect(); });
  // Back on the network (a laptop waking up): do not wait for the timer.
  window.addEventListener("online", () => { if (!socket) reconnect(); });

  open();
  return {
    send(data) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(data);
        return true;
      }
      return false;
    },
    reconnect,
  };
}
