// MIL-STD-2525 / APP-6 symbols for tracks and our drones, drawn by the milsymbol package
// (served by HQ from the npm packages `make setup` installs). A symbol depends only on the
// track's affiliation and class, so each is drawn once into its own small canvas and then
// stamped with drawImage: ten thousand tracks cost ten thousand image copies, not ten
// thousand symbol constructions.

import { loadScript } from "./scripts.js";

const MILSYMBOL = "/vendor/milsymbol/dist/milsymbol.js"; // one classic script defining `window.ms`
const SYMBOL_SIZE = 18; // milsymbol's size: the frame's height in CSS pixels, about

// The standard identity of each affiliation the API serves (hq/affiliation.py): the letter
// of a letter-based SIDC (2525C) and the digit of a number-based one (2525D/E).
const IDENTITY = {
  pending: ["P", "0"],
  unknown: ["U", "1"],
  assumed_friend: ["A", "2"],
  friend: ["F", "3"],
  neutral: ["N", "4"],
  suspect: ["S", "5"],
  hostile: ["H", "6"],
};

// The symbol of each class, as far down the 2525 tree as a camera can tell. Vehicles and
// aircraft match the CoT types of the TAK export (G-E-V ground vehicle, A-M-F-Q drone).
// A person is a dismounted individual with no function: every deeper entry is a military
// or police role, which a camera cannot see and which the unknown affiliation is there to
// avoid claiming. The standard has no wild animal; its pack animal is the nearest entry.
// Anything else is a plain ground track.
const SIDC = {
  person: ([, digit]) => `10${"0" + digit}2700000000000000`,
  vehicle: ([letter]) => `S${letter}GPEV---------`,
  animal: ([, digit]) => `10${"0" + digit}1500001800000000`,
  aircraft: ([letter]) => `S${letter}APM----------`,
  uav: ([letter]) => `S${letter}APMFQ--------`,
  unknown: ([letter]) => `S${letter}GP-----------`,
};

// The SIDC of a track's symbol: class "uav" is our own drones.
export function sidcOf(affiliation, targetClass) {
  const identity = IDENTITY[affiliation] || IDENTITY.unknown;
  return (SIDC[targetClass] || SIDC.unknown)(identity);
}

export class Symbols {
  // The symbols, or null when HQ does not serve milsymbol (the page then draws plain shapes).
  static async load() {
    const ms = await loadScript(MILSYMBOL, "ms");
    return ms ? new Symbols(ms) : null;
  }

  constructor(ms) {
    this.ms = ms;
    this.cache = new Map(); // "affiliation|class|scale" -> { image, sidc, anchor, width, height }
  }

  // The drawn symbol of (affiliation, class) at the canvas' pixel ratio, made on first use.
  // `fill` overrides the affiliation's colour (our drones in the page's friendly colour).
  get(affiliation, targetClass, scale = 1, fill = null) {
    const key = `${affiliation}|${targetClass}|${scale}|${fill}`;
    let symbol = this.cache.get(key);
    if (!symbol) {
      const sidc = sidcOf(affiliation, targetClass);
      const options = { size: SYMBOL_SIZE, outlineWidth: 2, outlineColor: "rgba(0, 0, 0, 0.8)" };
      if (fill) options.fillColor = fill;
      const drawn = new this.ms.Symbol(sidc, options);
      const anchor = drawn.getAnchor();
      const { width, height } = drawn.getSize();
      symbol = { image: drawn.asCanvas(scale), sidc, valid: drawn.isValid(), anchor, width, height };
      this.cache.set(key, symbol);
    }
    return symbol;
  }

  // Stamps `symbol` with its anchor (the track's position) at (sx, sy); returns its box.
  stamp(ctx, symbol, sx, sy) {
    const x = sx - symbol.anchor.x;
    const y = sy - symbol.anchor.y;
    ctx.drawImage(symbol.image, x, y, symbol.width, symbol.height);
    return [x, y, symbol.width, symbol.height];
  }
}
