// The coordinates under the cursor, in MGRS (the mgrs npm package, served by HQ) and in
// decimal degrees, as the operator moves the pointer over the map.

const MGRS_MODULE = "/vendor/mgrs/dist/mgrs.esm.js";
const MGRS_DIGITS = 5; // per axis: 1 m

// "34P FA 98621 62882" from "34PFA9862162882": zone and band, 100 km square, easting, northing.
export function spacedMgrs(reference) {
  const match = /^(\d{1,2}[A-Z])([A-Z]{2})(\d*)$/.exec(reference);
  if (!match) return reference;
  const digits = match[3];
  const half = digits.length / 2;
  return [match[1], match[2], digits.slice(0, half), digits.slice(half)].filter(Boolean).join(" ");
}

// "14.13000° N 22.84000° E"
export function decimalDegrees(lat, lon) {
  return `${Math.abs(lat).toFixed(5)}° ${lat >= 0 ? "N" : "S"} ${Math.abs(lon).toFixed(5)}° ${lon >= 0 ? "E" : "W"}`;
}

export class CursorReadout {
  // Loads the MGRS package; without it the readout shows decimal degrees only.
  static async create(element, canvas, geodeticAt) {
    const mgrs = await import(MGRS_MODULE).catch(() => null);
    return new CursorReadout(element, canvas, geodeticAt, mgrs);
  }

  // geodeticAt(sx, sy) -> [lat, lon] of a canvas pixel.
  constructor(element, canvas, geodeticAt, mgrs) {
    this.element = element;
    this.geodeticAt = geodeticAt;
    this.mgrs = mgrs;
    this.last = null; // { x, y, lat, lon, mgrs } of the last pointer position
    canvas.addEventListener("pointermove", (event) => {
      const box = canvas.getBoundingClientRect();
      this.show(event.clientX - box.left, event.clientY - box.top);
    });
    canvas.addEventListener("pointerleave", () => { element.textContent = ""; });
  }

  show(x, y) {
    const [lat, lon] = this.geodeticAt(x, y);
    const reference = this.mgrsOf(lat, lon);
    this.last = { x, y, lat, lon, mgrs: reference };
    const degrees = decimalDegrees(lat, lon);
    this.element.textContent = reference ? `${reference} · ${degrees}` : degrees;
  }

  // MGRS where it is defined (80° S to 84° N), else null.
  mgrsOf(lat, lon) {
    if (!this.mgrs) return null;
    try {
      return spacedMgrs(this.mgrs.forward([lon, lat], MGRS_DIGITS));
    } catch {
      return null; // the polar regions: UPS, which the package does not cover
    }
  }
}
