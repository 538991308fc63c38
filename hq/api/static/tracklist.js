// The track list beside the map: every track with its class, affiliation, post, age and
// speed, filtered and sorted as the operator asks; a click centres the map on the track.
// At most MAX_ROWS rows are built (the count says how many matched), and the list is
// rebuilt at most once a second as tracks move, at once when the operator changes it.

import { el } from "./panels.js";

const MAX_ROWS = 200;
const REFRESH_MS = 1000;

// Each column: its header, its value for sorting, and its text.
const COLUMNS = {
  id: { title: "Id", value: (row) => row.id, text: (row) => String(row.id) },
  class: { title: "Class", value: (row) => row.cls, text: (row) => row.cls },
  affiliation: { title: "Affiliation", value: (row) => row.affiliation,
    text: (row) => row.affiliation.replace("_", " ") },
  post: { title: "Post", value: (row) => row.posts.join(" "), text: (row) => row.posts.join(", ") },
  age: { title: "Age s", value: (row) => row.age, text: (row) => row.age.toFixed(0) },
  speed: { title: "Speed m/s", value: (row) => row.speed, text: (row) => row.speed.toFixed(1) },
};

// The posts a fused track comes from: its sources are "site/node:track_id".
export function postsOf(track) {
  return [...new Set(track.sources.map((source) => source.slice(0, source.lastIndexOf(":"))))].sort();
}

// The rows of `tracks` (picture entries) that pass `filter`, sorted by `sort`.
export function trackRows(tracks, filter, sort, now) {
  const rows = [];
  for (const { track } of tracks) {
    const row = { id: track.global_id, cls: track.target_class, affiliation: track.affiliation,
      posts: postsOf(track), age: Math.max(0, now - track.time), speed: track.speed };
    if (filter.cls && row.cls !== filter.cls) continue;
    if (filter.affiliation && row.affiliation !== filter.affiliation) continue;
    if (filter.post && !row.posts.includes(filter.post)) continue;
    if (filter.maxAge != null && row.age > filter.maxAge) continue;
    if (filter.minSpeed != null && row.speed < filter.minSpeed) continue;
    rows.push(row);
  }
  const { value } = COLUMNS[sort.column];
  const sign = sort.descending ? -1 : 1;
  rows.sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    return sign * (va < vb ? -1 : va > vb ? 1 : 0) || a.id - b.id;
  });
  return rows;
}

export class TrackList {
  // locate(id): centre the map on a track and select it.
  constructor(locate) {
    this.locate = locate;
    this.sort = { column: "id", descending: false };
    this.body = document.getElementById("track-rows");
    this.count = document.getElementById("track-list-count");
    this.posts = document.getElementById("filter-post");
    this.lastBuilt = 0;
    this.pending = null;
    this.tracks = () => [];
    this.shown = []; // the ids of the rows built, in order
    const changed = () => this.refresh(true);
    for (const id of ["filter-class", "filter-affiliation", "filter-post", "filter-age", "filter-speed"]) {
      document.getElementById(id).addEventListener("input", changed);
    }
    this.buildHeader();
  }

  buildHeader() {
    const cells = Object.entries(COLUMNS).map(([column, { title }]) => {
      const button = el("button", { type: "button", "data-sort": column,
        onclick: () => this.sortBy(column) }, title);
      return el("th", { scope: "col", "data-column": column }, button);
    });
    document.getElementById("track-head").replaceChildren(el("tr", {}, ...cells));
    this.markSort();
  }

  sortBy(column) {
    const descending = this.sort.column === column ? !this.sort.descending : false;
    this.sort = { column, descending };
    this.markSort();
    this.refresh(true);
  }

  markSort() {
    for (const th of document.querySelectorAll("#track-head th")) {
      const sorted = th.dataset.column === this.sort.column;
      th.setAttribute("aria-sort", sorted ? (this.sort.descending ? "descending" : "ascending") : "none");
    }
  }

  // The posts an operator can filter by.
  setPosts(nodes) {
    const chosen = this.posts.value;
    const keys = nodes.map((n) => n.node_key).sort();
    this.posts.replaceChildren(el("option", { value: "" }, "all"),
      ...keys.map((key) => el("option", { value: key }, key)));
    this.posts.value = keys.includes(chosen) ? chosen : "";
  }

  filter() {
    const number = (id) => {
      const text = document.getElementById(id).value.trim();
      return text === "" || Number.isNaN(Number(text)) ? null : Number(text);
    };
    return {
      cls: document.getElementById("filter-class").value,
      affiliation: document.getElementById("filter-affiliation").value,
      post: this.posts.value,
      maxAge: number("filter-age"),
      minSpeed: number("filter-speed"),
    };
  }

  // entries(): the picture's track entries, read when the list is rebuilt (within REFRESH_MS).
  update(entries) {
    this.tracks = entries;
    this.refresh(false);
  }

  // Rebuilt now when `urgent` (the operator changed a filter or the order), else within
  // REFRESH_MS of the last build.

  refresh(urgent) {
    const wait = urgent ? 0 : Math.max(0, this.lastBuilt + REFRESH_MS - Date.now());
    if (wait === 0) {
      clearTimeout(this.pending);
      this.pending = null;
      this.build();
    } else if (this.pending == null) {
      this.pending = setTimeout(() => { this.pending = null; this.build(); }, wait);
    }
  }

  build() {
    this.lastBuilt = Date.now();
    const rows = trackRows(this.tracks(), this.filter(), this.sort, Date.now() / 1000);
    const shown = rows.slice(0, MAX_ROWS);
    this.shown = shown.map((row) => row.id);
    this.count.textContent = rows.length > MAX_ROWS ? `(${MAX_ROWS} of ${rows.length})` : `(${rows.length})`;
    this.body.replaceChildren(...shown.map((row) => this.rowOf(row)));
  }

  rowOf(row) {
    const cells = Object.values(COLUMNS).map(({ text }) => el("td", {}, text(row)));
    const tr = el("tr", { tabindex: "0", "data-track-id": String(row.id), class: `affiliation-${row.affiliation}`,
      onclick: () => this.locate(row.id),
      onkeydown: (event) => { if (event.key === "Enter") this.locate(row.id); } }, ...cells);
    tr.title = `Centre the map on track ${row.id}`;
    return tr;
  }
}
