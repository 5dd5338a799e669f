// Drives webui/static/js/room.js with a scripted socket and a manual clock, so its reconnect and like
// policies can be checked step by step without waiting on real time.

import { RoomClient } from "/js/room.js";

class ScriptedSocket {
  constructor(url, protocol, registry) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    registry.push(this);
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000) {
    this.readyState = 3;
    this.closedWith = code;
  }

  open() {
    this.readyState = 1;
    this.onopen({});
  }

  receive(events) {
    this.onmessage({ data: JSON.stringify(events) });
  }

  drop(code) {
    this.readyState = 3;
    this.onclose({ code });
  }
}

export function createHarness(roomId) {
  const sockets = [];
  const statuses = [];
  const events = [];
  let nowMs = 0;
  let timers = [];
  let nextTimerId = 1;
  const setTimer = (callback, delayMs) => {
    const id = nextTimerId++;
    timers.push({ id, atMs: nowMs + delayMs, callback });
    return id;
  };
  const clearTimer = (id) => {
    timers = timers.filter((timer) => timer.id !== id);
  };
  const advance = (ms) => {
    const endMs = nowMs + ms;
    for (;;) {
      timers.sort((a, b) => a.atMs - b.atMs);
      const due = timers[0];
      if (!due || due.atMs > endMs) break;
      timers.shift();
      nowMs = due.atMs;
      due.callback();
    }
    nowMs = endMs;
  };
  const client = new RoomClient(roomId, {
    onEvent: (event) => events.push(event),
    onStatus: (state, info) => statuses.push({ state, ...info }),
    WebSocketImpl: class extends ScriptedSocket {
      constructor(url, protocol) {
        super(url, protocol, sockets);
      }
    },
    random: () => 0.5,
    now: () => nowMs,
    setTimer,
    clearTimer,
    base: { protocol: "https:", host: "live.example" },
  });
  const last = () => sockets[sockets.length - 1];
  return { client, sockets, statuses, events, advance, last, pendingTimers: () => timers.length };
}
