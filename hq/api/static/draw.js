// Drawing the picture on the map canvas. Everything of one kind goes into one path and one
// fill or stroke (all ellipses, all tails of one age), so a thousand tracks cost a handful
// of canvas calls, not thousands; the 2525 symbols are stamped from symbols.js' cache.

import { drawDrones } from "./drones.js";
import { LABEL_HEIGHT, placeLabels } from "./labels.js";
import { niceDistance } from "./view.js";
import { isDistress, TAIL_SECONDS } from "./picture.js";

const COLOURS = {
  grid: "rgba(255, 255, 255, 0.06)",
  border: "#ff5252",
  zoneFill: "rgba(255, 167, 38, 0.08)",
  zoneLine: "rgba(255, 167, 38, 0.7)",
  postOnline: "#66bb6a",
  postOffline: "#e53935",
  history: "#4fc3f7",
  ellipse: "rgba(255, 255, 255, 0.35)",
  heading: "rgba(255, 255, 255, 0.8)",
  label: "#e6e6e6",
  selected: "#ffffff",
};

// Affiliation colours after the usual map symbology: yellow unknown, blue friend, green
// neutral, red suspect or hostile.
const AFFILIATION = {
  unknown: "#ffd23f",
  pending: "#ffd23f",
  assumed_friend: "#4fc3f7",
  friend: "#4fc3f7",
  neutral: "#7bd389",
  suspect: "#ff5252",
  hostile: "#ff5252",
};

const SYMBOL_RADIUS = 5; // px
const TAIL_BUCKETS = [0.7, 0.45, 0.25, 0.1]; // alpha of each age quarter, newest first
const LEADER_SECONDS = 60; // the heading line shows where a track will be in a minute
const LABEL_LIMIT = 200; // label tracks with their id when no more than this are on screen
const LABEL_FONT = "11px system-ui, sans-serif";
const DEG = Math.PI / 180;
export const SCALE_BAR_AT = [12, 16]; // px from the map's bottom-left corner

// The canvas is transparent: the map area's background, or the basemap under it, shows.
// `symbols` draws MIL-STD-2525 symbols (symbols.js); without it, plain shapes. Returns how
// many tracks are in view and the labels placed ([{ id, box }]).
export function drawMap(ctx, view, picture, selection, symbols = null) {
  ctx.clearRect(0, 0, view.width, view.height);
  drawGrid(ctx, view);
  drawZones(ctx, view, picture.zones);
  drawBorder(ctx, view, picture.border);
  drawHistory(ctx, view, selection.history);
  const visible = visibleTracks(view, picture);
  drawTails(ctx, view, visible);
  drawEllipses(ctx, view, visible);
  drawHeadings(ctx, view, visible);
  if (symbols) drawMilitarySymbols(ctx, visible, symbols);
  else drawSymbols(ctx, visible);
  const labels = visible.length <= LABEL_LIMIT ? drawLabels(ctx, view, visible, selection.id) : [];
  drawSelection(ctx, view, picture, selection.id);
  const posts = drawPosts(ctx, view, picture.nodes);
  // Drone labels keep off posts, track labels and symbols (the tracks' only while they are
  // few enough to label: with thousands the checks would cost more than the frame).
  const taken = visible.length <= LABEL_LIMIT
    ? [...posts, ...labels.map((label) => label.box), ...visible.map((item) => item.symbolBox)]
    : posts;
  drawDrones(ctx, view, picture.drones, symbols, taken, screenArea(view));
  drawAlertMarkers(ctx, view, picture);
  drawScaleBar(ctx, view, picture.projection);
  return { visible: visible.length, labels };
}

// The canvas as a box, which labels must stay inside.
function screenArea(view) {
  return [0, 0, view.width, view.height];
}

// The tracks on screen, each with its screen position.
function visibleTracks(view, picture) {
  const visible = [];
  for (const entry of picture.tracks.values()) {
    const [sx, sy] = view.toScreen(entry.x, entry.y);
    if (view.contains(sx, sy, 80)) visible.push({ entry, sx, sy });
  }
  return visible;
}

function drawGrid(ctx, view) {
  const step = niceDistance(view.metresPerPixel * 120);
  const [x0, y1] = view.toWorld(0, 0);
  const [x1, y0] = view.toWorld(view.width, view.height);
  ctx.beginPath();
  for (let x = Math.ceil(x0 / step) * step; x <= x1; x += step) {
    const [sx] = view.toScreen(x, 0);
    ctx.moveTo(sx, 0);
    ctx.lineTo(sx, view.height);
  }
  for (let y = Math.ceil(y0 / step) * step; y <= y1; y += step) {
    const [, sy] = view.toScreen(0, y);
    ctx.moveTo(0, sy);
    ctx.lineTo(view.width, sy);
  }
  ctx.strokeStyle = COLOURS.grid;
  ctx.lineWidth = 1;
  ctx.stroke();
}

function polyline(ctx, view, points, close) {
  ctx.beginPath();
  points.forEach(([x, y], i) => {
    const [sx, sy] = view.toScreen(x, y);
    if (i === 0) ctx.moveTo(sx, sy);
    else ctx.lineTo(sx, sy);
  });
  if (close) ctx.closePath();
}

function drawZones(ctx, view, zones) {
  ctx.lineWidth = 1.5;
  ctx.setLineDash([6, 4]);
  ctx.font = "12px system-ui, sans-serif";
  for (const zone of zones) {
    polyline(ctx, view, zone.points, true);
    ctx.fillStyle = COLOURS.zoneFill;
    ctx.fill();
    ctx.strokeStyle = COLOURS.zoneLine;
    ctx.stroke();
    const [sx, sy] = view.toScreen(...zone.points[0]);
    ctx.fillStyle = COLOURS.zoneLine;
    ctx.fillText(zone.name, sx + 4, sy - 4);
  }
  ctx.setLineDash([]);
}

function drawBorder(ctx, view, border) {
  if (border.length < 2) return;
  polyline(ctx, view, border, false);
  ctx.strokeStyle = COLOURS.border;
  ctx.lineWidth = 2.5;
  ctx.setLineDash([12, 6]);
  ctx.stroke();
  ctx.setLineDash([]);
}

function drawHistory(ctx, view, history) {
  if (!history || history.length < 2) return;
  polyline(ctx, view, history, false);
  ctx.strokeStyle = COLOURS.history;
  ctx.lineWidth = 2;
  ctx.stroke();
}

// Older parts of a tail are fainter: each segment goes to the path of its age quarter.
function drawTails(ctx, view, visible) {
  const paths = TAIL_BUCKETS.map(() => new Path2D());
  for (const { entry } of visible) {
    const tail = entry.tail;
    const newest = entry.track.time;
    for (let i = 1; i < tail.length; i++) {
      const age = (newest - tail[i][2]) / TAIL_SECONDS;
      const bucket = Math.min(TAIL_BUCKETS.length - 1, Math.floor(age * TAIL_BUCKETS.length));
      const [ax, ay] = view.toScreen(tail[i - 1][0], tail[i - 1][1]);
      const [bx, by] = view.toScreen(tail[i][0], tail[i][1]);
      paths[bucket].moveTo(ax, ay);
      paths[bucket].lineTo(bx, by);
    }
  }
  ctx.lineWidth = 1.5;
  paths.forEach((path, i) => {
    ctx.strokeStyle = `rgba(255, 210, 63, ${TAIL_BUCKETS[i]})`;
    ctx.stroke(path);
  });
}

// The 2-sigma ellipse of a 2x2 position covariance [[ee, en], [ne, nn]] in m², in pixels:
// the semi-axes are 2 * sqrt(eigenvalue), the major axis at angle theta from east.
export function ellipseOf(covariance, metresPerPixel) {
  const [[ee, en], [, nn]] = covariance;
  const mean = (ee + nn) / 2;
  const spread = Math.hypot((ee - nn) / 2, en);
  const major = 2 * Math.sqrt(Math.max(mean + spread, 0)) / metresPerPixel;
  const minor = 2 * Math.sqrt(Math.max(mean - spread, 0)) / metresPerPixel;
  const theta = 0.5 * Math.atan2(2 * en, ee - nn);
  return { major, minor, theta };
}

function drawEllipses(ctx, view, visible) {
  const path = new Path2D();
  for (const { entry, sx, sy } of visible) {
    const { major, minor, theta } = ellipseOf(entry.track.position_covariance, view.metresPerPixel);
    if (major < SYMBOL_RADIUS) continue; // hidden under the symbol anyway
    const rotation = -theta; // screen y points down, so angles turn the other way
    path.moveTo(sx + major * Math.cos(rotation), sy + major * Math.sin(rotation));
    path.ellipse(sx, sy, major, Math.max(minor, 0.5), rotation, 0, 2 * Math.PI);
  }
  ctx.strokeStyle = COLOURS.ellipse;
  ctx.lineWidth = 1;
  ctx.stroke(path);
}

// A line from each moving track along its course, as long as a minute of travel.
function drawHeadings(ctx, view, visible) {
  const path = new Path2D();
  for (const { entry, sx, sy } of visible) {
    const { speed, course } = entry.track;
    if (speed < 0.3) continue;
    const length = Math.min(80, Math.max(10, (speed * LEADER_SECONDS) / view.metresPerPixel));
    const angle = course * (Math.PI / 180); // clockwise from north
    path.moveTo(sx, sy);
    path.lineTo(sx + length * Math.sin(angle), sy - length * Math.cos(angle));
  }
  ctx.strokeStyle = COLOURS.heading;
  ctx.lineWidth = 1.5;
  ctx.stroke(path);
}

// The shape of each class; filled with the affiliation's colour.
const SHAPES = {
  person(path, x, y, r) {
    path.moveTo(x + r, y);
    path.arc(x, y, r, 0, 2 * Math.PI);
  },
  vehicle(path, x, y, r) {
    path.rect(x - r, y - r, 2 * r, 2 * r);
  },
  animal(path, x, y, r) {
    polygon(path, x, y, r * 1.25, 3, -Math.PI / 2);
  },
  aircraft(path, x, y, r) {
    polygon(path, x, y, r * 1.2, 6, 0);
  },
  unknown(path, x, y, r) {
    polygon(path, x, y, r * 1.3, 4, -Math.PI / 2);
  },
};

function polygon(path, x, y, r, sides, start) {
  for (let i = 0; i <= sides; i++) {
    const a = start + (i * 2 * Math.PI) / sides;
    if (i === 0) path.moveTo(x + r * Math.cos(a), y + r * Math.sin(a));
    else path.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
  }
  path.closePath();
}

// Plain shapes, when HQ does not serve the symbol package.
function drawSymbols(ctx, visible) {
  const groups = new Map(); // "shape|colour|coasting" -> Path2D
  for (const item of visible) {
    const { entry, sx, sy } = item;
    item.symbolBox = [sx - SYMBOL_RADIUS - 1, sy - SYMBOL_RADIUS - 1, 2 * SYMBOL_RADIUS + 2,
      2 * SYMBOL_RADIUS + 2];
    const { target_class: cls, affiliation, status } = entry.track;
    const shape = SHAPES[cls] ? cls : "unknown";
    const key = `${shape}|${AFFILIATION[affiliation] || AFFILIATION.unknown}|${status === "coasting"}`;
    if (!groups.has(key)) groups.set(key, new Path2D());
    SHAPES[shape](groups.get(key), sx, sy, SYMBOL_RADIUS);
  }
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#000";
  for (const [key, path] of groups) {
    const [, colour, coasting] = key.split("|");
    ctx.globalAlpha = coasting === "true" ? 0.45 : 1; // a coasting track is a prediction
    ctx.fillStyle = colour;
    ctx.fill(path);
    ctx.stroke(path);
  }
  ctx.globalAlpha = 1;
}

// Each track's 2525 symbol for its affiliation and class, from the symbols' cache; a coasting
// track (a prediction) faded.
function drawMilitarySymbols(ctx, visible, symbols) {
  const scale = window.devicePixelRatio || 1;
  for (const item of visible) {
    const { affiliation, target_class: cls, status } = item.entry.track;
    ctx.globalAlpha = status === "coasting" ? 0.45 : 1;
    item.symbolBox = symbols.stamp(ctx, symbols.get(affiliation, cls, scale), item.sx, item.sy);
  }
  ctx.globalAlpha = 1;
}

// Track ids beside their symbols where they overlap no other label or symbol; the selected
// track's label is placed first.
function drawLabels(ctx, view, visible, selectedId) {
  ctx.font = LABEL_FONT;
  const items = visible.map(({ entry, symbolBox }) => {
    const id = entry.track.global_id;
    return { id, symbolBox, width: ctx.measureText(String(id)).width + 2, height: LABEL_HEIGHT };
  });
  const selected = items.findIndex((item) => item.id === selectedId);
  if (selected > 0) items.unshift(...items.splice(selected, 1));
  const placed = placeLabels(items, [], screenArea(view));
  ctx.save();
  ctx.fillStyle = COLOURS.label;
  ctx.textBaseline = "middle";
  for (const { id, box } of placed) ctx.fillText(String(id), box[0] + 1, box[1] + box[3] / 2);
  ctx.restore();
  return placed;
}

function drawSelection(ctx, view, picture, id) {
  const entry = id == null ? null : picture.tracks.get(id);
  if (!entry) return;
  const [sx, sy] = view.toScreen(entry.x, entry.y);
  ctx.beginPath();
  ctx.arc(sx, sy, SYMBOL_RADIUS + 6, 0, 2 * Math.PI);
  ctx.strokeStyle = COLOURS.selected;
  ctx.lineWidth = 2;
  ctx.stroke();
}

// Posts as squares in their health colour, named. Returns the boxes they cover.
function drawPosts(ctx, view, nodes) {
  ctx.font = "12px system-ui, sans-serif";
  const boxes = [];
  for (const node of nodes) {
    if (node.at) {
      const [sx, sy] = view.toScreen(...node.at);
      const colour = node.alive ? COLOURS.postOnline : COLOURS.postOffline;
      ctx.fillStyle = colour;
      ctx.fillRect(sx - 6, sy - 6, 12, 12);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1;
      ctx.strokeRect(sx - 6, sy - 6, 12, 12);
      ctx.fillText(node.node_key, sx + 9, sy - 8);
      boxes.push([sx - 6, sy - 6, 12, 12], [sx + 9, sy - 19, ctx.measureText(node.node_key).width, 14]);
    }
  }
  return boxes;
}

// A ring around where each standing alert is: red for distress, orange otherwise.
function drawAlertMarkers(ctx, view, picture) {
  for (const alert of picture.alerts.values()) {
    if (alert.lat == null || !alert.active) continue;
    const [sx, sy] = view.toScreen(...picture.local(alert.lat, alert.lon));
    ctx.beginPath();
    ctx.arc(sx, sy, isDistress(alert) ? 18 : 13, 0, 2 * Math.PI);
    ctx.strokeStyle = isDistress(alert) ? "#ff1744" : "#ffa726";
    ctx.lineWidth = isDistress(alert) ? 3 : 2;
    ctx.stroke();
  }
}

// The scale bar: a round distance about 100 px long, and its length in pixels, true along
// the parallel where the bar is drawn. The page's equirectangular projection keeps east-west
// distances true at its origin's latitude only: elsewhere a drawn metre is cos(lat)/cos(lat0)
// of a metre on the ground.
export function scaleBarOf(view, projection) {
  const [, y] = view.toWorld(SCALE_BAR_AT[0], view.height - SCALE_BAR_AT[1]);
  const [lat] = projection.toGeodetic(0, y);
  const groundPerPixel = view.metresPerPixel * Math.cos(lat * DEG) / Math.cos(projection.lat0 * DEG);
  const metres = niceDistance(groundPerPixel * 100);
  return { metres, pixels: metres / groundPerPixel };
}

function drawScaleBar(ctx, view, projection) {
  const { metres, pixels } = scaleBarOf(view, projection);
  const x = SCALE_BAR_AT[0];
  const y = view.height - SCALE_BAR_AT[1];
  ctx.beginPath();
  ctx.moveTo(x, y - 5);
  ctx.lineTo(x, y);
  ctx.lineTo(x + pixels, y);
  ctx.lineTo(x + pixels, y - 5);
  ctx.strokeStyle = COLOURS.label;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = COLOURS.label;
  ctx.fillText(metres >= 1000 ? `${metres / 1000} km` : `${metres} m`, x + pixels + 6, y);
}

export { droneStatusText } from "./drones.js";
