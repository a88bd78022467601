/**
 * channels.js: the browser client of Channels' WebSocket consumers. An ES module with no
 * dependencies and no build step; the guide is docs/client.md.
 *
 *     import { Client } from "/static/channels/channels.js";
 *
 *     const client = new Client("/ws/rooms/lobby/");
 *     client.on("message", (message) => console.log(message));
 *     client.send({ text: "Hello" });
 *
 * A Client reconnects with jittered exponential back-off until it is closed, queues what is
 * sent while it is not connected, speaks the demultiplexer's streams, keeps the presence of
 * its groups, and recovers what its groups said while it was away.
 *
 * @module channels
 */

/** The options of a {@link Client} and their defaults. */
export const DEFAULTS = Object.freeze({
  /** The longest wait (ms) before the first reconnection attempt. */
  minDelay: 500,
  /** The longest wait (ms) before any reconnection attempt. */
  maxDelay: 30000,
  /** How much the longest wait grows with each failed attempt. */
  factor: 2,
  /** How many messages send() keeps while disconnected; the oldest are dropped beyond. */
  maxQueue: 1000,
  /** Positions the page already has, `{group: [epoch, offset]}`, to recover from. */
  since: {},
  /** WebSocket subprotocols to offer. */
  protocols: [],
});

const PRESENCE_KINDS = new Set(["state", "join", "leave"]);

/** Listeners by event name. A listener that throws is reported; the others still run. */
class Emitter {
  #listeners = new Map();

  /** @param {string[]} events the names of the events it emits */
  constructor(events) {
    for (const event of events) this.#listeners.set(event, new Set());
  }

  /**
   * Call `listener(detail)` on each `event`.
   * @param {string} event
   * @param {(detail: any) => void} listener
   * @returns {() => void} a function that removes the listener again
   */
  on(event, listener) {
    const listeners = this.#listeners.get(event);
    if (!listeners) {
      const known = [...this.#listeners.keys()].join(", ");
      throw new TypeError(`There is no "${event}" event to listen to; the events are: ${known}.`);
    }
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** @protected */
  emit(event, detail) {
    for (const listener of [...this.#listeners.get(event)]) {
      try {
        listener(detail);
      } catch (error) {
        reportError(error);
      }
    }
  }
}

/**
 * A connection to a Channels WebSocket consumer that stays up.
 *
 * Events (`client.on(event, listener)`):
 * - `"open"` `{reconnected}`: a socket opened (after the queue was sent);
 * - `"close"` `{code, reason, wasClean, delay}`: a socket closed; the next attempt is in
 *   `delay` ms, or never (`delay` null) after {@link Client#close};
 * - `"message"`: a message: the decoded JSON of a text frame (the text itself when it is not
 *   JSON), or an ArrayBuffer for a binary frame; stream and presence frames go to their
 *   {@link Stream} and {@link Presence} instead;
 * - `"error"` `{type: "socket", event}` when the socket fails, `{type: "dropped", message}`
 *   when a full queue drops its oldest message;
 * - `"gap"` `{group, complete, position}`: some of what a group said while the client was
 *   away is lost; reload the page's state of that group;
 * - `"recovered"` `{group, complete, position, gap}`: the server finished replaying a group.
 */
export class Client extends Emitter {
  /** @type {"connecting" | "open" | "closed"} */
  state = "connecting";
  #options;
  #socket = null;
  #timer = null;
  #attempts = 0;
  #opened = false;
  #queue = [];
  #streams = new Map();
  #presences = new Map();
  #groups = new Map();
  #online = () => this.#reconnectNow();
  #offline = () => this.#abandon("the browser went offline");

  /**
   * Open a WebSocket to `url`: absolute (`ws:`, `wss:`) or relative to the page (`"/ws/"`,
   * on `wss:` when the page is on `https:`).
   * @param {string} url
   * @param {Partial<typeof DEFAULTS>} [options]
   */
  constructor(url, options = {}) {
    super(["open", "close", "message", "error", "gap", "recovered"]);
    const unknown = Object.keys(options).filter((name) => !(name in DEFAULTS));
    if (unknown.length) {
      const [names, known] = [unknown.join(", "), Object.keys(DEFAULTS).join(", ")];
      throw new TypeError(`Unknown Client option ${names}; the options are: ${known}.`);
    }
    this.url = websocketUrl(url);
    this.#options = { ...DEFAULTS, ...options };
    for (const [name, position] of Object.entries(this.#options.since)) {
      if (!isPosition(position)) {
        throw new TypeError(
          `since["${name}"] is ${JSON.stringify(position)}; give the [epoch, offset] position `
          + "of the group's last message the page has, as its \"position\" key gives it.",
        );
      }
      // The page says the server keeps this group's history: expect its replay.
      Object.assign(this.#group(name), { position, recovers: true });
    }
    globalThis.addEventListener?.("online", this.#online);
    globalThis.addEventListener?.("offline", this.#offline);
    this.#connect();
  }

  /**
   * Send `message` as JSON (an ArrayBuffer, typed array or Blob as a binary frame), now when
   * the socket is open, else once it is, in order, after what was queued before it.
   * @param {any} message
   */
  send(message) {
    if (this.state === "closed") {
      throw new Error("This Client was closed; create a new one to send again.");
    }
    const binary = message instanceof ArrayBuffer || ArrayBuffer.isView(message)
      || message instanceof Blob;
    const data = binary ? message : JSON.stringify(message);
    if (this.#socket?.readyState === WebSocket.OPEN) {
      this.#socket.send(data);
      return;
    }
    this.#queue.push({ data, message });
    if (this.#queue.length > this.#options.maxQueue) {
      this.emit("error", { type: "dropped", message: this.#queue.shift().message });
    }
  }

  /**
   * The demultiplexer stream `name`: frames `{"stream": name, "payload": {...}}`.
   * @param {string} name
   * @returns {Stream}
   */
  stream(name) {
    if (!this.#streams.has(name)) this.#streams.set(name, new Stream(this, name));
    return this.#streams.get(name);
  }

  /**
   * Who is present in `group`, kept up to date from the server's presence frames (kept from
   * the client's first connection, whenever this is called).
   * @param {string} group
   * @returns {Presence}
   */
  presence(group) {
    if (!this.#presences.has(group)) this.#presences.set(group, new Presence(group));
    return this.#presences.get(group);
  }

  /**
   * Where the client stands in each group that keeps history, `{group: [epoch, offset]}`:
   * the position of the last message delivered, or of the last replay's end. What it sends
   * as `channels_since` when it reconnects; a new page can pass it on as the `since` option.
   */
  get positions() {
    const positions = {};
    for (const [name, group] of this.#groups) {
      const position = group.position ?? group.resume;
      if (position) positions[name] = [...position];
    }
    return positions;
  }

  /**
   * Close the socket for good: no more reconnection; what is queued is not sent.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.("online", this.#online);
    globalThis.removeEventListener?.("offline", this.#offline);
    if (this.#socket) {
      this.#socket.close(code, reason);
    } else {
      this.emit("close", { code, reason, wasClean: true, delay: null });
    }
  }

  #connect() {
    this.#timer = null;
    this.state = "connecting";
    for (const group of this.#groups.values()) {
      // Until its "recovered" marker, a group's live messages wait for its replay.
      group.since = group.position ?? group.resume;
      group.buffer = group.recovers ? [] : null;
    }
    const since = this.positions;
    const url = Object.keys(since).length ? withQuery(this.url, "channels_since", since) : this.url;
    const socket = new WebSocket(url, this.#options.protocols);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      this.#attempts = 0;
      this.state = "open";
      for (const { data } of this.#queue.splice(0)) socket.send(data);
      this.emit("open", { reconnected: this.#opened });
      this.#opened = true;
    };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onerror = (event) => this.emit("error", { type: "socket", event });
    socket.onclose = (event) => this.#closed(event);
    this.#socket = socket;
  }

  #closed({ code, reason, wasClean }) {
    this.#socket = null;
    // Live messages still waiting for a replay are dropped: the next replay has them.
    for (const group of this.#groups.values()) group.buffer = null;
    let delay = null;
    if (this.state !== "closed") {
      this.state = "connecting";
      const longest = this.#options.minDelay * this.#options.factor ** this.#attempts++;
      delay = Math.random() * Math.min(this.#options.maxDelay, longest);
      this.#timer = setTimeout(() => this.#connect(), delay);
    }
    this.emit("close", { code, reason, wasClean, delay });
  }

  /** The network is back: try now rather than at the end of the back-off. */
  #reconnectNow() {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#connect();
  }

  /**
   * Give up on the socket now, as if it had closed: a browser that goes offline keeps its
   * sockets until TCP gives up on them, which can take minutes.
   */
  #abandon(reason) {
    const socket = this.#socket;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    socket.close();
    this.#closed({ code: 1006, reason, wasClean: false });
  }

  #receive(data) {
    if (typeof data !== "string") {
      this.emit("message", data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.emit("message", data);
      return;
    }
    if (!isObject(message)) {
      this.emit("message", message);
    } else if (message.channels === "recovered" && typeof message.group === "string") {
      this.#recovered(message);
    } else if (typeof message.group === "string" && isPosition(message.position)) {
      const group = this.#group(message.group);
      if (group.buffer && message.recovered !== true) {
        group.buffer.push(message);
      } else {
        this.#deliverInOrder(group, message);
      }
    } else {
      this.#dispatch(message);
    }
  }

  /** The end of a group's replay: report a gap, then deliver the live messages held back. */
  #recovered({ group: name, complete, position }) {
    const group = this.#group(name);
    const { since, buffer } = group;
    Object.assign(group, { recovers: true, since: null, buffer: null });
    // A first connection (nothing remembered) cannot have missed anything.
    const otherEpoch = since != null && position != null && since[0] !== position[0];
    const gap = since != null && (complete === false || otherEpoch);
    if (gap) {
      // Positions of another epoch do not compare: start over in the marker's.
      if (!sameEpoch(group.position, position)) group.position = null;
      this.emit("gap", { group: name, complete, position });
    }
    buffer?.sort((a, b) => a.position[1] - b.position[1]);
    for (const message of buffer ?? []) this.#deliverInOrder(group, message);
    if (since == null) {
      // A first connection: what was sent to the group before the server read its history
      // may still be on its way (group messages and the marker travel apart); deliver it as
      // it comes, and reconnect from the marker only if nothing came.
      group.resume = position;
    } else if (position != null && isAfter(position, group.position)) {
      // Everything up to the marker's position was replayed.
      group.position = position;
    }
    this.emit("recovered", { group: name, complete, position, gap });
  }

  /** Deliver a group's message unless it is not after the last one delivered. */
  #deliverInOrder(group, message) {
    const last = group.position;
    if (!isAfter(message.position, last)) return;
    group.position = message.position;
    if (last && !sameEpoch(last, message.position) && !group.buffer) {
      // The group's history was lost (a flush, a restart) outside a replay, whose marker
      // would have said so.
      this.emit("gap", { group: message.group, complete: false, position: message.position });
    }
    this.#dispatch(message);
  }

  #dispatch(message) {
    const stream = typeof message.stream === "string" && this.#streams.get(message.stream);
    if (stream && "payload" in message) {
      stream.deliver(message.payload);
    } else if (PRESENCE_KINDS.has(message.presence) && typeof message.group === "string") {
      this.presence(message.group).update(message);
    } else {
      this.emit("message", message);
    }
  }

  #group(name) {
    if (!this.#groups.has(name)) {
      this.#groups.set(name, {
        position: null, // of the last message delivered
        resume: null, // where a first connection's marker said the group was
        since: null, // the position this connection resumed from
        buffer: null, // live messages waiting for the end of the replay
        recovers: false, // whether the server replays this group (it sent a marker)
      });
    }
    return this.#groups.get(name);
  }
}

/** One stream of a demultiplexed connection; from {@link Client#stream}. */
export class Stream extends Emitter {
  #client;

  /**
   * @param {Client} client
   * @param {string} name
   */
  constructor(client, name) {
    super(["message"]);
    this.#client = client;
    this.name = name;
  }

  /** Send `payload` on this stream: `{"stream": name, "payload": payload}`. */
  send(payload) {
    this.#client.send({ stream: this.name, payload });
  }

  /**
   * Call `listener(payload, name)` for each payload that arrives on this stream.
   * @param {(payload: any, name: string) => void} listener
   * @returns {() => void} a function that removes the listener again
   */
  on(listener) {
    return super.on("message", (payload) => listener(payload, this.name));
  }

  /** @package The Client hands over a payload of this stream. */
  deliver(payload) {
    this.emit("message", payload);
  }
}

/**
 * Who is present in a group; from {@link Client#presence}. Events: `"join"` and `"leave"`
 * `{channel, info}`, and `"change"` `{type, channel, members}` after every state, join and
 * leave (`type` says which).
 */
export class Presence extends Emitter {
  /** @param {string} group */
  constructor(group) {
    super(["join", "leave", "change"]);
    this.group = group;
    /** @type {Map<string, object>} channel → info of every member present */
    this.members = new Map();
    /** @type {string | null} this connection's channel, from the last state */
    this.channel = null;
  }

  /** @package The Client hands over a presence frame of this group. */
  update({ presence: type, channel, info, members }) {
    if (type === "state") {
      this.channel = channel;
      this.members.clear();
      for (const [member, memberInfo] of Object.entries(members ?? {})) {
        this.members.set(member, memberInfo);
      }
    } else if (type === "join") {
      this.members.set(channel, info);
      this.emit("join", { channel, info });
    } else {
      this.members.delete(channel);
      this.emit("leave", { channel, info });
    }
    this.emit("change", { type, channel, members: this.members });
  }
}

/** `url` as an absolute ws: or wss: URL, resolved against the page's. */
function websocketUrl(url) {
  const resolved = new URL(url, globalThis.location?.href);
  const scheme = { "http:": "ws:", "https:": "wss:" }[resolved.protocol];
  if (scheme) resolved.protocol = scheme;
  if (resolved.protocol !== "ws:" && resolved.protocol !== "wss:") {
    throw new TypeError(`${url} is not a WebSocket URL; give a ws:, wss: or relative URL.`);
  }
  resolved.hash = "";
  return resolved.href;
}

/** `url` with the query parameter `name` set to the JSON of `value`, after its own query. */
function withQuery(url, name, value) {
  const resolved = new URL(url);
  const parameter = `${name}=${encodeURIComponent(JSON.stringify(value))}`;
  resolved.search = resolved.search ? `${resolved.search}&${parameter}` : parameter;
  return resolved.href;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isPosition(value) {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string"
    && Number.isInteger(value[1]);
}

function sameEpoch(a, b) {
  return a != null && b != null && a[0] === b[0];
}

/** Whether `position` comes after `last`: none yet, another epoch, or a greater offset. */
function isAfter(position, last) {
  return !sameEpoch(position, last) || position[1] > last[1];
}
