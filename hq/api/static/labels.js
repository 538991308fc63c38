// Where track labels go so that nearby tracks stay readable: a greedy placement that tries a
// few spots around each symbol and takes the first that overlaps neither a label placed
// before it nor another symbol. A label with no free spot is left out (the track list and
// a click still name the track).

const GAP = 2; // px between a symbol and its label
export const LABEL_HEIGHT = 13; // px: one line of the 11 px label font

// Boxes are [x, y, width, height] in canvas pixels.
export function overlaps(a, b) {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

function inside(box, area) {
  return box[0] >= area[0] && box[1] >= area[1] &&
    box[0] + box[2] <= area[0] + area[2] && box[1] + box[3] <= area[1] + area[3];
}

// The spots tried around a symbol box, best first: right, left, then the corners, then
// above and below, then stacked further out to the right and left.
function candidates([sx, sy, sw, sh], width, height) {
  const right = sx + sw + GAP;
  const left = sx - GAP - width;
  const middle = sy + (sh - height) / 2;
  const above = sy - GAP - height;
  const below = sy + sh + GAP;
  const centre = sx + (sw - width) / 2;
  const spots = [
    [right, middle], [left, middle], [right, above], [right, below],
    [left, above], [left, below], [centre, above], [centre, below],
  ];
  for (let k = 1; k <= 3; k++) {
    spots.push([right, above - k * height], [right, below + k * height],
      [left, above - k * height], [left, below + k * height]);
  }
  return spots.map(([x, y]) => [x, y, width, height]);
}

// items: [{ id, symbolBox, width, height }] in the order they should win a spot (the
// selected track first, say); `taken`: boxes already drawn that no label may cover; `area`:
// the box every label must lie inside (the canvas). Returns [{ id, box }] for the labels
// that found a spot.
export function placeLabels(items, taken = [], area = null) {
  const symbolBoxes = items.map((item) => item.symbolBox);
  const placed = [];
  items.forEach((item, index) => {
    const free = (box) =>
      (area === null || inside(box, area)) &&
      !placed.some((other) => overlaps(box, other.box)) &&
      !taken.some((other) => overlaps(box, other)) &&
      !symbolBoxes.some((symbol, other) => other !== index && overlaps(box, symbol));
    const box = candidates(item.symbolBox, item.width, item.height).find(free);
    if (box) placed.push({ id: item.id, box });
  });
  return placed;
}
