// Where things are drawn: a local projection (WGS84 -> metres) and the viewport (metres ->
// canvas pixels) that pan and zoom move.

const EARTH_RADIUS_M = 6_371_008.8;
const DEG = Math.PI / 180;

// Equirectangular around an origin: x metres east, y metres north. Over the few hundred
// kilometres a directorate watches, its distortion is far below a track's uncertainty, and
// it keeps the map free of any tile service or projection library.
export class Projection {
  constructor(lat0, lon0) {
    this.lat0 = lat0;
    this.lon0 = lon0;
    this.kx = EARTH_RADIUS_M * Math.cos(lat0 * DEG) * DEG;
    this.ky = EARTH_RADIUS_M * DEG;
  }

  toLocal(lat, lon) {
    return [(lon - this.lon0) * this.kx, (lat - this.lat0) * this.ky];
  }

  // The inverse: [lat, lon] of the point x metres east and y metres north of the origin.
  toGeodetic(x, y) {
    return [this.lat0 + y / this.ky, this.lon0 + x / this.kx];
  }
}

// The centre of the points' bounding box (lat, lon), or null for no points.
export function centreOf(points) {
  if (points.length === 0) return null;
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  return {
    lat: (Math.min(...lats) + Math.max(...lats)) / 2,
    lon: (Math.min(...lons) + Math.max(...lons)) / 2,
  };
}

const MIN_M_PER_PX = 0.05;
const MAX_M_PER_PX = 5000;

export class Viewport {
  constructor() {
    this.cx = 0; // the world point (m) at the canvas centre
    this.cy = 0;
    this.metresPerPixel = 20;
    this.width = 1; // CSS pixels
    this.height = 1;
  }

  resize(width, height) {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
  }

  toScreen(x, y) {
    return [
      this.width / 2 + (x - this.cx) / this.metresPerPixel,
      this.height / 2 - (y - this.cy) / this.metresPerPixel,
    ];
  }

  toWorld(sx, sy) {
    return [
      this.cx + (sx - this.width / 2) * this.metresPerPixel,
      this.cy - (sy - this.height / 2) * this.metresPerPixel,
    ];
  }

  panBy(dxPixels, dyPixels) {
    this.cx -= dxPixels * this.metresPerPixel;
    this.cy += dyPixels * this.metresPerPixel;
  }

  // Zoom by `factor` (> 1 zooms in) keeping the world point under (sx, sy) in place.
  zoomAt(sx, sy, factor) {
    const [wx, wy] = this.toWorld(sx, sy);
    const next = this.metresPerPixel / factor;
    this.metresPerPixel = Math.min(MAX_M_PER_PX, Math.max(MIN_M_PER_PX, next));
    const [ax, ay] = this.toWorld(sx, sy);
    this.cx += wx - ax;
    this.cy += wy - ay;
  }

  centreOn(x, y) {
    this.cx = x;
    this.cy = y;
  }

  // Show the box [x0, y0, x1, y1] (m) with a margin; no narrower than minSpan metres.
  fit([x0, y0, x1, y1], minSpan = 2000) {
    const spanX = Math.max(x1 - x0, minSpan);
    const spanY = Math.max(y1 - y0, minSpan);
    this.cx = (x0 + x1) / 2;
    this.cy = (y0 + y1) / 2;
    const scale = Math.max(spanX / this.width, spanY / this.height) * 1.15;
    this.metresPerPixel = Math.min(MAX_M_PER_PX, Math.max(MIN_M_PER_PX, scale));
  }

  contains(sx, sy, margin) {
    return sx > -margin && sy > -margin && sx < this.width + margin && sy < this.height + margin;
  }
}

// The bounding box [x0, y0, x1, y1] of [x, y] points, or null for none.
export function boundsOf(points) {
  if (points.length === 0) return null;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y);
    x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

// A round distance (1, 2 or 5 times a power of ten) of at least `metres`.
export function niceDistance(metres) {
  const power = 10 ** Math.floor(Math.log10(metres));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= metres) return step * power;
  }
  return 10 * power;
}
