// The live stream (Server-Sent Events) read with fetch().
//
// EventSource cannot send an Authorization header, and a token in the URL would end up in
// access logs and browser history, so the page reads the event stream itself: fetch with
// the bearer token, parse the text/event-stream format, and reconnect with Last-Event-ID
// so that HQ resumes where the page left off (or sends a fresh snapshot).

import { API } from "./api.js";

const WATCHDOG_MS = 45_000; // HQ sends a heartbeat well within this when idle

export class LiveStream {
  // handlers: onEvent(name, data), onStatus("live" | "down", text), onUnauthorized(detail)
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.lastEventId = null;
    this.retryMs = 3000;
    this.stopped = false;
    this.abort = null;
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  async loop() {
    while (!this.stopped) {
      try {
        await this.connect();
        this.handlers.onStatus("down", "stream ended; reconnecting");
      } catch (error) {
        if (this.stopped) return;
        if (error.unauthorized) {
          this.handlers.onUnauthorized(error.message);
          return;
        }
        this.handlers.onStatus("down", `reconnecting (${error.message})`);
      }
      await sleep(this.retryMs);
    }
  }

  async connect() {
    this.abort = new AbortController();
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    const response = await fetch(`${API}/stream`, {
      headers,
      cache: "no-store",
      signal: this.abort.signal,
    });
    if (response.status === 401 || response.status === 403) {
      const error = new Error(await detailOf(response));
      error.unauthorized = true;
      throw error;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    this.handlers.onStatus("live", "live");
    await this.read(response.body.getReader());
  }

  // Reads until the server closes the stream or the watchdog finds it silent.
  async read(reader) {
    const decoder = new TextDecoder();
    const parser = new EventParser((event) => this.dispatch(event));
    let watchdog = this.arm(null);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        watchdog = this.arm(watchdog);
        parser.push(decoder.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  // A connection that went quiet without closing (a dead radio link) is aborted and redone.
  arm(previous) {
    clearTimeout(previous);
    return setTimeout(() => this.abort.abort(), WATCHDOG_MS);
  }

  dispatch(event) {
    if (event.retry !== undefined) this.retryMs = event.retry;
    if (event.id !== undefined) this.lastEventId = event.id;
    if (event.data === undefined) return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      console.warn("ignored an event that is not JSON", event.name);
      return;
    }
    this.handlers.onEvent(event.name, data);
  }
}

// The text/event-stream format: fields one per line, an event ends at a blank line.
export class EventParser {
  constructor(emit) {
    this.emit = emit;
    this.buffer = "";
    this.event = {};
  }

  push(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\n|\r/)) >= 0) {
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (this.buffer[end] === "\r" && end === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, end);
      const skip = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      this.buffer = this.buffer.slice(end + skip);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      this.finish();
      return;
    }
    if (line.startsWith(":")) return; // a comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.event.data = this.event.data === undefined ? value : `${this.event.data}\n${value}`;
    } else if (field === "event") {
      this.event.name = value;
    } else if (field === "id") {
      this.event.id = value;
    } else if (field === "retry" && /^\d+$/.test(value)) {
      this.event.retry = Number(value);
    }
  }

  finish() {
    const event = this.event;
    this.event = {};
    if (Object.keys(event).length === 0) return;
    event.name = event.name || "message";
    this.emit(event);
  }
}

async function detailOf(response) {
  try {
    return (await response.json()).detail || response.statusText;
  } catch {
    return response.statusText;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
