// Distance and bearing between two clicks on the map: the geodesic on the WGS84 ellipsoid
// (GeographicLib's geodesic package, served by HQ), not a straight line on the page's
// projection. A third click starts a new measurement.

import { loadScript } from "./scripts.js";

const GEODESIC = "/vendor/geographiclib-geodesic/geographiclib-geodesic.min.js"; // `window.geodesic`
const COLOUR = "#f48fb1";

// "12.35 km · bearing 045.2°" (or metres below a kilometre).
export function measurementText(metres, bearing) {
  const distance = metres >= 1000 ? `${(metres / 1000).toFixed(2)} km` : `${metres.toFixed(1)} m`;
  return `${distance} · bearing ${bearing.toFixed(1).padStart(5, "0")}°`;
}

export class MeasureTool {
  // The tool, or null when HQ does not serve the geodesic package (the button is then hidden).
  static async create(button, readout) {
    const geodesic = await loadScript(GEODESIC, "geodesic");
    if (!geodesic) {
      button.hidden = true;
      return null;
    }
    return new MeasureTool(geodesic.Geodesic.WGS84, button, readout);
  }

  constructor(ellipsoid, button, readout) {
    this.ellipsoid = ellipsoid;
    this.button = button;
    this.readout = readout;
    this.active = false;
    this.points = []; // up to two { lat, lon, at: [x, y] in the map's frame }
    this.result = null; // { metres, bearing, text } once two points are set
    this.changed = () => {};
    button.addEventListener("click", () => this.toggle());
  }

  toggle() {
    this.active = !this.active;
    this.button.setAttribute("aria-pressed", String(this.active));
    this.clear();
  }

  clear() {
    this.points = [];
    this.result = null;
    this.readout.textContent = this.active ? "Click the first point" : "";
    this.changed();
  }

  // A click at (lat, lon), drawn at `at` in the map's frame.
  add(lat, lon, at) {
    if (this.points.length === 2) this.points = [];
    this.points.push({ lat, lon, at });
    if (this.points.length === 1) {
      this.result = null;
      this.readout.textContent = "Click the second point";
    } else {
      const [a, b] = this.points;
      const line = this.ellipsoid.Inverse(a.lat, a.lon, b.lat, b.lon);
      const bearing = (line.azi1 + 360) % 360; // clockwise from true north, at the first point
      this.result = { metres: line.s12, bearing, text: measurementText(line.s12, bearing) };
      this.readout.textContent = this.result.text;
    }
    this.changed();
  }

  draw(ctx, view) {
    if (!this.active || this.points.length === 0) return;
    const screen = this.points.map((p) => view.toScreen(...p.at));
    ctx.save();
    ctx.strokeStyle = COLOUR;
    ctx.fillStyle = COLOUR;
    ctx.lineWidth = 2;
    if (screen.length === 2) {
      ctx.beginPath();
      ctx.moveTo(...screen[0]);
      ctx.lineTo(...screen[1]);
      ctx.stroke();
    }
    for (const [x, y] of screen) {
      ctx.beginPath();
      ctx.arc(x, y, 4, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  }
}
