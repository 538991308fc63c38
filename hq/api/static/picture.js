// The live picture the page draws: tracks with their recent tails, alerts, posts, our own
// drones with their cameras' footprints, the border and zones. The stream's snapshot and
// delta events change it; the map and panels read it.

const TAIL_SECONDS = 120; // how much of a track's past the fading tail shows
const TAIL_POINTS = 40;

export class Picture {
  constructor(projection) {
    this.projection = projection;
    this.tracks = new Map(); // global_id -> { track, x, y, tail: [[x, y, time]], shownAt }
    this.alerts = new Map(); // alert_id -> AlertOut (resolved ones are dropped)
    this.nodes = []; // NodeOut, each with x, y when its position is known
    this.drones = new Map(); // drone_id -> { drone: DroneOut, at: [x, y], footprints }
    this.border = []; // [x, y]
    this.zones = []; // { name, points: [[x, y]] }
    this.unshown = new Set(); // ids changed since the last frame, for their shownAt time
  }

  local(lat, lon) {
    return this.projection.toLocal(lat, lon);
  }

  setBorder(area) {
    this.border = area ? area.points.map((p) => this.local(p.lat, p.lon)) : [];
  }

  setZones(zones) {
    this.zones = zones.map((z) => ({ name: z.name, points: z.points.map((p) => this.local(p.lat, p.lon)) }));
  }

  setNodes(nodes) {
    this.nodes = nodes.map((node) => ({
      ...node,
      at: node.lat == null ? null : this.local(node.lat, node.lon),
    }));
  }

  // A snapshot replaces everything; tails of tracks still present are kept.
  applySnapshot(data) {
    const old = this.tracks;
    this.tracks = new Map();
    for (const track of data.tracks) {
      const held = old.get(track.global_id);
      if (held) this.tracks.set(track.global_id, held);
      this.upsert(track);
    }
    this.alerts = new Map();
    this.applyAlerts(data.alerts);
    this.drones = new Map();
    this.applyDrones(data.drones || []);
  }

  // Returns which parts changed, so the page redraws only what it must.
  applyDelta(data) {
    for (const track of data.created) this.upsert(track);
    for (const track of data.updated) this.upsert(track);
    for (const id of data.ended) {
      this.tracks.delete(id);
      this.unshown.delete(id);
    }
    this.applyAlerts(data.alerts);
    const drones = data.drones || [];
    this.applyDrones(drones);
    return {
      tracks: data.created.length + data.updated.length + data.ended.length > 0,
      alerts: data.alerts.length > 0,
      drones: drones.length > 0,
    };
  }

  // Each drone as it last reported itself; a footprint's corners in the map's frame, null
  // where a corner looks above the horizon.
  applyDrones(drones) {
    for (const drone of drones) {
      const held = this.drones.get(drone.drone_id);
      if (held && held.drone.time > drone.time) continue; // a late message from a backlog
      this.drones.set(drone.drone_id, {
        drone,
        at: this.local(drone.lat, drone.lon),
        footprints: drone.footprints.map((f) => ({
          camera: f.camera,
          corners: f.corners.map((c) => (c == null ? null : this.local(c.lat, c.lon))),
        })),
      });
    }
  }

  applyAlerts(alerts) {
    for (const alert of alerts) {
      if (alert.state === "resolved") this.alerts.delete(alert.alert_id);
      else this.alerts.set(alert.alert_id, alert);
    }
  }

  upsert(track) {
    const [x, y] = this.local(track.lat, track.lon);
    let entry = this.tracks.get(track.global_id);
    if (!entry) {
      entry = { track, x, y, tail: [], shownAt: null };
      this.tracks.set(track.global_id, entry);
    }
    entry.track = track;
    entry.x = x;
    entry.y = y;
    addToTail(entry.tail, x, y, track.time);
    this.unshown.add(track.global_id);
  }

  // Marks the tracks changed since the last frame as shown at `when` (epoch ms).
  markShown(when) {
    for (const id of this.unshown) {
      const entry = this.tracks.get(id);
      if (entry) entry.shownAt = when;
    }
    this.unshown.clear();
  }

  // Alerts in the order an operator must see them: distress first, then by severity and
  // state (open before acknowledged), newest first within each.
  sortedAlerts() {
    const rank = (a) =>
      (isDistress(a) ? 0 : 10) + { critical: 0, warning: 1, info: 2 }[a.severity] * 2 +
      (a.state === "open" ? 0 : 1);
    return [...this.alerts.values()].sort((a, b) => rank(a) - rank(b) || b.time - a.time);
  }
}

export function isDistress(alert) {
  return alert.alert_type === "distress";
}

function addToTail(tail, x, y, time) {
  const last = tail[tail.length - 1];
  if (last && last[2] >= time) return; // a repeated or late update adds no past
  tail.push([x, y, time]);
  while (tail.length > TAIL_POINTS || (tail.length > 1 && time - tail[0][2] > TAIL_SECONDS)) {
    tail.shift();
  }
}

export { TAIL_SECONDS };
