// Our own drones on the map canvas: each camera's footprint on the ground, the drone as
// MIL-STD-2525's friendly UAV (or an arrowhead without the symbol package) and its label.

import { LABEL_HEIGHT, placeLabels } from "./labels.js";

const COLOURS = {
  friend: "#4fc3f7", // the friendly colour of the usual map symbology
  lost: "#e53935", // a drone whose link is lost
  footprintFill: "rgba(79, 195, 247, 0.12)",
  footprintLine: "rgba(79, 195, 247, 0.85)",
};
const DRONE_LEADER_PX = [13, 26]; // a drone's heading line: from its symbol's frame outwards
const DRONE_STALE_S = 15; // a drone reports every publish period (0.5 s): silent this long, faded

// Our own drones: each camera's footprint on the ground (filled where all four corners
// reach the ground, its known edges dashed where some look above the horizon), then the
// drone in the friendly colour pointing along its heading, labelled by post and system id
// with its altitude, battery and link. A drone whose link is lost is drawn in red, dashed;
// one not heard from for DRONE_STALE_S is faded and says how long ago it reported.
export function drawDrones(ctx, view, drones, symbols, taken, area) {
  const now = Date.now() / 1000;
  const faded = (drone) => (now - drone.time > DRONE_STALE_S ? 0.4 : 1);
  for (const { drone, footprints } of drones.values()) {
    ctx.globalAlpha = faded(drone);
    for (const footprint of footprints) drawFootprint(ctx, view, footprint.corners);
  }
  ctx.font = "11px system-ui, sans-serif";
  const items = [];
  for (const { drone, at } of drones.values()) {
    ctx.globalAlpha = faded(drone);
    const [sx, sy] = view.toScreen(...at);
    const colour = drone.link === "lost" ? COLOURS.lost : COLOURS.friend;
    const symbolBox = symbols
      ? drawDroneSymbol(ctx, symbols, drone, sx, sy, colour)
      : drawDroneArrow(ctx, drone, sx, sy, colour);
    const lines = [drone.label, droneStatusText(drone, now)];
    const width = Math.max(...lines.map((line) => ctx.measureText(line).width)) + 2;
    items.push({ id: drone.drone_id, symbolBox, width, height: 2 * LABEL_HEIGHT, lines, colour, drone });
  }
  // Two drones over one post would write their labels over each other: placed apart.
  const placed = new Map(placeLabels(items, taken, area).map(({ id, box }) => [id, box]));
  ctx.save();
  ctx.textBaseline = "top";
  for (const { id, lines, colour, drone } of items) {
    const box = placed.get(id);
    if (!box) continue;
    ctx.globalAlpha = faded(drone);
    ctx.fillStyle = colour;
    lines.forEach((line, i) => ctx.fillText(line, box[0] + 1, box[1] + i * LABEL_HEIGHT));
  }
  ctx.restore();
  ctx.globalAlpha = 1;
}

// Where a point `forward` px along the heading and `right` px to its right is drawn.
function alongHeading(sx, sy, heading, forward, right = 0) {
  const angle = (heading * Math.PI) / 180; // clockwise from north; screen y is down
  return [
    sx + forward * Math.sin(angle) + right * Math.cos(angle),
    sy - forward * Math.cos(angle) + right * Math.sin(angle),
  ];
}

// The friendly UAV of MIL-STD-2525 filled in the link's colour, and a line from its frame
// along the heading (dashed while the link is lost).
// Returns the symbol's box.
function drawDroneSymbol(ctx, symbols, drone, sx, sy, colour) {
  const symbol = symbols.get("friend", "uav", window.devicePixelRatio || 1, colour);
  const box = symbols.stamp(ctx, symbol, sx, sy);
  ctx.beginPath();
  ctx.moveTo(...alongHeading(sx, sy, drone.heading, DRONE_LEADER_PX[0]));
  ctx.lineTo(...alongHeading(sx, sy, drone.heading, DRONE_LEADER_PX[1]));
  ctx.setLineDash(drone.link === "lost" ? [3, 2] : []);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 3;
  ctx.stroke();
  ctx.setLineDash([]);
  return box;
}

// Without the symbol package: an arrowhead pointing along the heading. Returns its box.
function drawDroneArrow(ctx, drone, sx, sy, colour) {
  const point = (forward, right) => alongHeading(sx, sy, drone.heading, forward, right);
  ctx.beginPath();
  ctx.moveTo(...point(11, 0));
  ctx.lineTo(...point(-7, 8));
  ctx.lineTo(...point(-3, 0));
  ctx.lineTo(...point(-7, -8));
  ctx.closePath();
  ctx.setLineDash(drone.link === "lost" ? [2, 2] : []);
  ctx.fillStyle = colour;
  ctx.fill();
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1;
  ctx.stroke();
  ctx.setLineDash([]);
  return [sx - 11, sy - 11, 22, 22];
}

// "950 m · 64% · link ok", and how long ago once the drone is silent for DRONE_STALE_S.
export function droneStatusText(drone, now) {
  const battery = drone.battery_remaining == null ? "battery ?" : `${Math.round(drone.battery_remaining * 100)}%`;
  const text = `${Math.round(drone.alt)} m · ${battery} · link ${drone.link}`;
  const age = now - drone.time;
  if (!(age > DRONE_STALE_S)) return text;
  return `${text} · heard ${age < 120 ? `${Math.round(age)} s` : `${Math.round(age / 60)} min`} ago`;
}

function drawFootprint(ctx, view, corners) {
  const screen = corners.map((c) => (c == null ? null : view.toScreen(...c)));
  const whole = screen.every((c) => c != null);
  ctx.beginPath();
  let open = true;
  screen.forEach((c, i) => {
    if (c == null) {
      open = true;
      return;
    }
    if (open) ctx.moveTo(...c);
    else ctx.lineTo(...c);
    open = false;
    if (i === screen.length - 1 && whole) ctx.closePath();
  });
  if (whole) {
    ctx.fillStyle = COLOURS.footprintFill;
    ctx.fill();
  }
  ctx.setLineDash(whole ? [] : [4, 3]);
  ctx.strokeStyle = COLOURS.footprintLine;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.setLineDash([]);
}
