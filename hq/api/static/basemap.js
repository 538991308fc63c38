// The basemap under the live picture: Natural Earth's countries (land, borders and coastlines,
// from the world-atlas package) drawn by OpenLayers in the page's own projection, so that it
// lies exactly under what draw.js paints. HQ serves OpenLayers and the data from the npm
// packages that `make setup` installs: nothing comes from the internet. Without them the page
// works as before, on a plain background.

import { loadScript } from "./scripts.js";

const OL_SCRIPT = "/vendor/ol/dist/ol.js";
const COUNTRIES = "/vendor/world-atlas/countries-50m.json";
const LOCAL_CODE = "dunewatch:local";
const LAND = "#2b2820";
const LINE = "rgba(214, 196, 160, 0.55)";

export class Basemap {
  // The basemap in `element` for the page's `projection`, or null when HQ does not serve it.
  static async create(element, projection) {
    const ol = await loadScript(OL_SCRIPT, "ol"); // OpenLayers' full build: `window.ol`
    if (!ol) return null;
    const response = await fetch(COUNTRIES);
    if (!response.ok) return null;
    const topology = await response.json();
    return new Basemap(ol, element, projection, topology);
  }

  constructor(ol, element, projection, topology) {
    this.ol = ol;
    const local = localProjection(ol, projection);
    const features = new ol.format.TopoJSON({ dataProjection: "EPSG:4326" })
      .readFeatures(topology, { featureProjection: local });
    this.countries = features.filter((f) => f.get("name") !== undefined);
    this.layer = new ol.layer.Vector({
      source: new ol.source.Vector({ features: this.countries }),
      style: new ol.style.Style({
        fill: new ol.style.Fill({ color: LAND }),
        stroke: new ol.style.Stroke({ color: LINE, width: 1 }),
      }),
      updateWhileInteracting: true,
      updateWhileAnimating: true,
    });
    this.view = new ol.View({
      projection: local,
      center: [0, 0],
      resolution: 20,
      constrainResolution: false,
      smoothResolutionConstraint: false,
      multiWorld: true,
      minResolution: 0.001,
      maxResolution: 100000,
    });
    this.map = new ol.Map({ target: element, layers: [this.layer], view: this.view, controls: [], interactions: [] });
  }

  // Show what the overlay's viewport shows (its centre in the local frame, metres per pixel).
  follow(viewport) {
    this.map.updateSize();
    this.view.setCenter([viewport.cx, viewport.cy]);
    this.view.setResolution(viewport.metresPerPixel);
    this.map.renderSync();
  }

  // The country drawn at canvas pixel (sx, sy), or null for none (the sea, or off the data).
  countryAt(sx, sy) {
    const found = this.map.getFeaturesAtPixel([sx, sy], { layerFilter: (l) => l === this.layer });
    return found.length ? found[0].get("name") : null;
  }
}

// The page's equirectangular projection as an OpenLayers projection, with its transforms from
// and to WGS84 longitude/latitude.
function localProjection(ol, projection) {
  const existing = ol.proj.get(LOCAL_CODE);
  const local = existing || new ol.proj.Projection({
    code: LOCAL_CODE, units: "m", extent: [-2.1e7, -1.1e7, 2.1e7, 1.1e7],
  });
  if (!existing) ol.proj.addProjection(local);
  const inverse = (x, y) => [projection.lon0 + x / projection.kx, projection.lat0 + y / projection.ky];
  ol.proj.addCoordinateTransforms("EPSG:4326", local,
    ([lon, lat]) => projection.toLocal(lat, lon),
    ([x, y]) => inverse(x, y));
  return local;
}
