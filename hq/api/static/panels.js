// The side panel: alerts (distress first and in red, with a banner above the map), the
// selected track's details, and the posts' health. Built with DOM calls, never innerHTML:
// alert messages and names come from the field.

import { isDistress } from "./picture.js";

const MAX_ALERT_ITEMS = 200; // more would only slow the page; the count shows the rest

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

export function clock(seconds) {
  if (seconds == null) return "never";
  return `${new Date(seconds * 1000).toISOString().slice(11, 19)}Z`;
}

function ago(seconds, now) {
  if (seconds == null) return "never";
  const s = Math.max(0, now - seconds);
  return s < 90 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(0)} min ago`;
}

// --- alerts --------------------------------------------------------------------------------

// actions: canAcknowledge (bool), acknowledge(alert), locate(alert)
export function renderAlerts(picture, actions) {
  const list = document.getElementById("alerts");
  const alerts = picture.sortedAlerts();
  document.getElementById("alert-count").textContent = `(${alerts.length})`;
  list.replaceChildren(...alerts.slice(0, MAX_ALERT_ITEMS).map((a) => alertItem(a, actions)));
  if (alerts.length > MAX_ALERT_ITEMS) {
    list.append(el("li", { class: "status" }, `and ${alerts.length - MAX_ALERT_ITEMS} older alerts`));
  }
  renderBanner(alerts);
}

function alertItem(alert, actions) {
  const distress = isDistress(alert);
  const classes = ["alert", alert.severity, alert.state];
  if (distress) classes.push("distress");
  if (!alert.active) classes.push("cleared");
  const title = distress ? "DISTRESS" : alert.alert_type.replaceAll("_", " ");
  const state = alert.state === "acknowledged"
    ? `acknowledged by ${alert.acknowledged_by} at ${clock(alert.acknowledged_at)}`
    : alert.state;
  const buttons = [];
  if (alert.state === "open" && actions.canAcknowledge) {
    buttons.push(el("button", {
      type: "button", class: "acknowledge", "aria-label": `Acknowledge alert: ${alert.message}`,
      onclick: (event) => { event.currentTarget.disabled = true; actions.acknowledge(alert); },
    }, "Acknowledge"));
  }
  if (alert.lat != null) {
    buttons.push(el("button", {
      type: "button", "aria-label": `Show on the map: ${alert.message}`,
      onclick: () => actions.locate(alert),
    }, "Show"));
  }
  return el("li", { class: classes.join(" "), "data-alert-id": alert.alert_id, "data-state": alert.state },
    el("div", { class: "head" }, el("span", {}, title), el("span", {}, clock(alert.time))),
    el("p", { class: "message" }, alert.message),
    el("div", { class: "meta" }, `${alert.site}/${alert.node} · ${alert.active ? "active" : "cleared"} · `,
      el("span", { class: "state" }, state)),
    buttons.length ? el("div", { class: "actions" }, ...buttons) : null);
}

// Distress (people stranded in the desert) must not wait for someone to scroll the panel.
function renderBanner(alerts) {
  const banner = document.getElementById("distress-banner");
  const open = alerts.filter((a) => isDistress(a) && a.state === "open" && a.active);
  banner.hidden = open.length === 0;
  const text = open.length === 1
    ? `DISTRESS: ${open[0].message}`
    : `DISTRESS: ${open.length} unacknowledged distress alerts`;
  if (banner.textContent !== text) banner.textContent = text; // re-announce only on change
}

// --- track details -------------------------------------------------------------------------

export function renderDetails(entry, detail, historyPoints) {
  const panel = document.getElementById("details");
  const body = document.getElementById("details-body");
  if (!entry && !detail) {
    panel.hidden = true;
    return;
  }
  const track = entry ? entry.track : detail;
  panel.hidden = false;
  document.getElementById("details-title").textContent = `Track ${track.global_id}`;
  const sources = detail ? detail.source_tracks.map((s) => `${s.node_key}:${s.track.track_id}`) : track.sources;
  const rows = [
    ["Class", track.target_class === track.fused_class ? track.target_class
      : `${track.target_class} (fusion says ${track.fused_class})`],
    ["Affiliation", track.affiliation],
    ["Status", entry ? track.status : `${track.status} (no longer live)`],
    ["Time", clock(track.time)],
    ["Position", `${track.lat.toFixed(5)}, ${track.lon.toFixed(5)}`],
    ["Speed", `${track.speed.toFixed(1)} m/s`],
    ["Course", `${track.course.toFixed(0)}°`],
    ["2σ error", `${(2 * Math.sqrt(Math.max(track.position_covariance[0][0], track.position_covariance[1][1]))).toFixed(0)} m`],
    ["Quality", track.quality.toFixed(2)],
    ["Sources", sources.join(", ") || "none"],
    ["History", historyPoints == null ? "loading" : `${historyPoints} points (last hour)`],
  ];
  body.replaceChildren(el("div", { class: "details" },
    el("dl", {}, ...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]))));
}

// --- posts -----------------------------------------------------------------------------------

export function renderNodes(nodes, now) {
  const list = document.getElementById("nodes");
  if (nodes.length === 0) {
    list.replaceChildren(el("li", { class: "status" }, "no post heard from yet"));
    return;
  }
  list.replaceChildren(...nodes.map((node) => nodeItem(node, now)));
}

function nodeItem(node, now) {
  const health = node.alive ? "online" : "offline";
  const backlog = node.outbox_depth ?? 0;
  const drones = node.drones.map((d) => {
    const battery = d.battery_remaining == null ? "" : `, battery ${(d.battery_remaining * 100).toFixed(0)}%`;
    const link = d.connected ? `link ok, ${(d.packet_loss * 100).toFixed(0)}% loss` : "LINK LOST";
    return el("div", { class: `meta${d.connected ? "" : " warn"}` }, `drone ${d.sysid}: ${link}${battery}`);
  });
  return el("li", { class: "node", "data-node": node.node_key },
    el("span", { class: `dot ${health}`, role: "img", "aria-label": health }),
    el("strong", {}, node.node_key),
    el("div", { class: "meta" }, `${health} · heard ${ago(node.last_heard, now)}`),
    el("div", { class: `meta${backlog > 0 ? " warn" : ""}` }, `backlog ${backlog} batches`),
    ...drones);
}
