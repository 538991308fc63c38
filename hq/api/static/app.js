// The operator's page: sign in with an API token, then the live map and its side panel.

import { Api, ApiError } from "./api.js";
import { Basemap } from "./basemap.js";
import { drawMap, SCALE_BAR_AT, scaleBarOf } from "./draw.js";
import { attachControls } from "./controls.js";
import { MeasureTool } from "./measure.js";
import { renderAlerts, renderDetails, renderNodes } from "./panels.js";
import { CursorReadout } from "./readout.js";
import { Picture } from "./picture.js";
import { LiveStream } from "./stream.js";
import { sidcOf, Symbols } from "./symbols.js";
import { TrackList } from "./tracklist.js";
import { boundsOf, centreOf, Projection, Viewport } from "./view.js";

const TOKEN_KEY = "dunewatch.token"; // sessionStorage: gone when the tab closes
const NODE_POLL_MS = 10_000; // posts are not on the live stream: ask for them this often
const HISTORY_WINDOW_S = 3600;

const SIGNED_OUT_KEY = "dunewatch.signedOut"; // why the last session ended, shown at login

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", signIn);
  document.getElementById("logout").addEventListener("click", () => signOut(""));
  const token = sessionStorage.getItem(TOKEN_KEY);
  const reason = sessionStorage.getItem(SIGNED_OUT_KEY) || "";
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  if (token) start(token);
  else showLogin(reason);
});

function showLogin(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("token").focus();
}

function signIn(event) {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (token) start(token);
}

// Also when HQ stops accepting the token (revoked or expired).
function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (reason) sessionStorage.setItem(SIGNED_OUT_KEY, reason);
  location.reload(); // the surest way to drop the stream, the timers and the picture at once
}

async function start(token) {
  const api = new Api(token);
  let me;
  try {
    me = await api.get("/me");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(error instanceof ApiError ? `Not signed in: ${error.message}` : `HQ unreachable: ${error.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("token").value = "";
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  document.getElementById("who").textContent = `${me.name} (${me.role})`;
  const page = new Page(api, me, await loadMap(api));
  page.run();
}

// The border and zones, and a projection centred on them (or on the posts without them).
async function loadMap(api) {
  const [border, zones, nodes] = await Promise.all([
    api.get("/border").catch(() => null), // 404 when no border is configured
    api.get("/zones").then((z) => z.zones).catch(() => []),
    api.get("/nodes").then((n) => n.nodes).catch(() => []),
  ]);
  const points = [...(border ? border.points : []), ...zones.flatMap((z) => z.points)];
  const centre = centreOf(points) || centreOf(nodes.filter((n) => n.lat != null)) || { lat: 0, lon: 0 };
  const picture = new Picture(new Projection(centre.lat, centre.lon));
  picture.setBorder(border);
  picture.setZones(zones);
  picture.setNodes(nodes);
  return picture;
}

class Page {
  constructor(api, me, picture) {
    this.api = api;
    this.canAcknowledge = me.role === "operator" || me.role === "admin";
    this.picture = picture;
    this.view = new Viewport();
    this.canvas = document.getElementById("map");
    this.ctx = this.canvas.getContext("2d");
    this.selection = { id: null, detail: null, history: null, historyPoints: null };
    this.frameRequested = false;
    this.userMovedMap = false; // until then the view follows the picture's extent
    this.fittedCount = -1; // how many posts and tracks the view was last fitted to
    this.basemap = null; // Natural Earth's countries under the picture, once loaded
    this.symbols = null; // MIL-STD-2525 symbols, once milsymbol is loaded (plain shapes until then)
    this.labels = []; // the track labels of the last frame: [{ id, box }]
    this.readout = null; // the coordinates under the cursor
    this.measure = null; // the distance and bearing tool, once its package is loaded
  }

  // [lat, lon] of a canvas pixel, in the page's projection.
  geodeticAt(sx, sy) {
    return this.picture.projection.toGeodetic(...this.view.toWorld(sx, sy));
  }

  run() {
    this.resize();
    new ResizeObserver(() => this.resize()).observe(this.canvas);
    attachControls(this.canvas, this.view, {
      changed: () => { this.userMovedMap = true; this.redraw(); },
      click: (sx, sy) => this.clicked(sx, sy),
      fit: () => { this.fit(); this.redraw(); },
    });
    document.getElementById("details-close").addEventListener("click", () => this.select(null));
    this.trackList = new TrackList((id) => this.locateTrack(id));
    this.trackList.setPosts(this.picture.nodes);
    this.exposeTestHook();
    this.stream = new LiveStream(this.api.token, {
      onEvent: (name, data) => this.onEvent(name, data),
      onStatus: (state, text) => setConnection(state, text),
      onUnauthorized: (detail) => signOut(`Signed out: ${detail}`),
    });
    this.stream.start();
    Basemap.create(document.getElementById("basemap"), this.picture.projection)
      .then((basemap) => { this.basemap = basemap; this.redraw(); })
      .catch((error) => setStatus(`No basemap: ${error.message}`));
    CursorReadout.create(document.getElementById("cursor-readout"), this.canvas,
      (sx, sy) => this.geodeticAt(sx, sy)).then((readout) => { this.readout = readout; });
    MeasureTool.create(document.getElementById("measure"), document.getElementById("measure-readout"))
      .then((tool) => {
        this.measure = tool;
        if (tool) tool.changed = () => this.redraw();
      })
      .catch((error) => setStatus(`No measuring tool: ${error.message}`));
    Symbols.load()
      .then((symbols) => { this.symbols = symbols; this.redraw(); })
      .catch((error) => setStatus(`No map symbols: ${error.message}`));
    this.renderAlerts();
    renderNodes(this.picture.nodes, Date.now() / 1000);
    setInterval(() => this.pollNodes(), NODE_POLL_MS);
  }

  onEvent(name, data) {
    if (name === "snapshot") {
      this.picture.applySnapshot(data);
      this.renderAlerts();
      this.afterTrackChange();
    } else if (name === "delta") {
      const changed = this.picture.applyDelta(data);
      if (changed.alerts) this.renderAlerts();
      if (changed.tracks || changed.drones) this.afterTrackChange();
      else if (changed.alerts) this.redraw(); // alert rings on the map
    }
    // heartbeats only keep the connection (and its watchdog) alive
  }

  afterTrackChange() {
    // Re-fit when tracks come or go, not when they move: a map that keeps sliding is unusable.
    const count = this.picture.tracks.size + this.picture.nodes.length + this.picture.drones.size;
    if (!this.userMovedMap && count !== this.fittedCount) this.fit();
    if (this.selection.id != null) this.renderDetails(); // it moved, or ended
    this.trackList.update(() => this.picture.tracks.values());
    this.redraw();
  }

  // A click on the map measures while the measuring tool is on, else selects a track.
  clicked(sx, sy) {
    if (this.measure && this.measure.active) {
      this.measure.add(...this.geodeticAt(sx, sy), this.view.toWorld(sx, sy));
    } else {
      this.select(this.trackAt(sx, sy));
    }
  }

  // Centre the map on a track (from the track list) and select it.
  locateTrack(id) {
    const entry = this.picture.tracks.get(id);
    if (!entry) return;
    this.view.centreOn(entry.x, entry.y);
    this.userMovedMap = true;
    this.select(id);
  }

  // One frame at most per display refresh, and none while nothing changes.
  redraw() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      if (this.basemap) this.basemap.follow(this.view);
      const { visible, labels } = drawMap(this.ctx, this.view, this.picture, this.selection, this.symbols);
      this.labels = labels;
      if (this.measure) this.measure.draw(this.ctx, this.view);
      this.picture.markShown(performance.timeOrigin + performance.now());
      const total = this.picture.tracks.size;
      document.getElementById("track-count").textContent =
        visible === total ? `${total} tracks` : `${visible} of ${total} tracks in view`;
    });
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0); // draw in CSS pixels
    this.view.resize(width, height);
    if (!this.userMovedMap) this.fit();
    this.redraw();
  }

  // Fit the posts and tracks, or the border and zones when there are none.
  fit() {
    const picture = this.picture;
    const near = [...picture.nodes.filter((n) => n.at).map((n) => n.at),
      ...[...picture.tracks.values()].map((e) => [e.x, e.y]),
      ...[...picture.drones.values()].map((d) => d.at)];
    const far = [...picture.border, ...picture.zones.flatMap((z) => z.points)];
    const box = boundsOf(near) || boundsOf(far);
    if (!box) return;
    this.view.fit(box);
    this.fittedCount = near.length ? picture.tracks.size + picture.nodes.length + picture.drones.size : -1;
  }

  // The track drawn nearest to a click, within a finger's width.
  trackAt(sx, sy) {
    let best = null;
    let bestDistance = 12;
    for (const [id, entry] of this.picture.tracks) {
      const [tx, ty] = this.view.toScreen(entry.x, entry.y);
      const distance = Math.hypot(tx - sx, ty - sy);
      if (distance < bestDistance) {
        best = id;
        bestDistance = distance;
      }
    }
    return best;
  }

  async select(id) {
    this.selection = { id, detail: null, history: null, historyPoints: null };
    this.renderDetails();
    this.redraw();
    if (id == null) return;
    const now = Date.now() / 1000;
    try {
      const [detail, history] = await Promise.all([
        this.api.get(`/tracks/${id}`),
        this.api.get(`/tracks/${id}/history`, { t0: now - HISTORY_WINDOW_S, t1: now + 60, max_points: 1000 }),
      ]);
      if (this.selection.id !== id) return; // another track was clicked meanwhile
      this.selection.detail = detail;
      this.selection.history = history.points.map((p) => this.picture.local(p.lat, p.lon));
      this.selection.historyPoints = history.points.length;
    } catch (error) {
      setStatus(`Track ${id}: ${error.message}`);
    }
    this.renderDetails();
    this.redraw();
  }

  renderDetails() {
    const { id, detail, historyPoints } = this.selection;
    renderDetails(id == null ? null : this.picture.tracks.get(id), detail, historyPoints);
  }

  renderAlerts() {
    renderAlerts(this.picture, {
      canAcknowledge: this.canAcknowledge,
      acknowledge: (alert) => this.acknowledge(alert),
      locate: (alert) => {
        this.view.centreOn(...this.picture.local(alert.lat, alert.lon));
        this.userMovedMap = true;
        if (alert.track_ids.length) this.select(alert.track_ids[0]);
        this.redraw();
      },
    });
  }

  async acknowledge(alert) {
    try {
      const updated = await this.api.post(`/alerts/${encodeURIComponent(alert.alert_id)}/acknowledge`);
      this.picture.applyAlerts([updated]);
      setStatus(`Acknowledged: ${updated.message}`);
    } catch (error) {
      setStatus(`Could not acknowledge: ${error.message}`);
    }
    this.renderAlerts();
  }

  async pollNodes() {
    try {
      this.picture.setNodes((await this.api.get("/nodes")).nodes);
      renderNodes(this.picture.nodes, Date.now() / 1000);
      this.trackList.setPosts(this.picture.nodes);
      this.redraw();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) signOut(`Signed out: ${error.message}`);
      else setStatus(`Posts could not be read: ${error.message}`);
    }
  }

  // Read-only state for automated checks of the page: what is drawn, and where.
  exposeTestHook() {
    const canvasPoint = (entry) => this.view.toScreen(entry.x, entry.y);
    window.dunewatch = Object.freeze({
      state: () => ({
        tracks: [...this.picture.tracks.values()].map((entry) => {
          const [x, y] = canvasPoint(entry);
          const { affiliation, target_class: cls } = entry.track;
          return { id: entry.track.global_id, lat: entry.track.lat, lon: entry.track.lon,
            time: entry.track.time, x, y, shownAt: entry.shownAt, affiliation, class: cls,
            symbol: this.symbols ? sidcOf(affiliation, cls) : null };
        }),
        labels: this.labels.map(({ id, box }) => ({ id, box: [...box] })),
        trackList: [...this.trackList.shown],
        measure: this.measure && { active: this.measure.active,
          points: this.measure.points.map((p) => [p.lat, p.lon]),
          result: this.measure.result && { ...this.measure.result } },
        cursor: this.readout && this.readout.last ? { ...this.readout.last } : null,
        readout: document.getElementById("cursor-readout").textContent,
        scaleBar: { ...scaleBarOf(this.view, this.picture.projection), left: SCALE_BAR_AT[0],
          y: this.view.height - SCALE_BAR_AT[1] },
        selected: this.selection.id,
        basemap: this.basemap ? { countries: this.basemap.countries.length } : null,
        drones: [...this.picture.drones.values()].map(({ drone, at, footprints }) => {
          const [x, y] = this.view.toScreen(...at);
          return { id: drone.drone_id, label: drone.label, time: drone.time, lat: drone.lat,
            lon: drone.lon, alt: drone.alt, heading: drone.heading, battery: drone.battery_remaining,
            link: drone.link, x, y, symbol: this.symbols ? sidcOf("friend", "uav") : null,
            footprints: footprints.map((f) => ({ camera: f.camera,
              corners: f.corners.map((c) => (c == null ? null : this.view.toScreen(...c))) })) };
        }),
      }),
      // [lat, lon] at canvas pixel (sx, sy).
      geodeticAt: (sx, sy) => this.geodeticAt(sx, sy),
      // Where (lat, lon) is drawn on the canvas, and the basemap's country there.
      probe: (lat, lon) => {
        const [x, y] = this.view.toScreen(...this.picture.local(lat, lon));
        return { x, y, country: this.basemap ? this.basemap.countryAt(x, y) : null };
      },
    });
  }
}

function setConnection(state, text) {
  const node = document.getElementById("connection");
  node.className = `connection ${state}`;
  node.textContent = text;
}

function setStatus(text) {
  document.getElementById("alert-status").textContent = text;
}
