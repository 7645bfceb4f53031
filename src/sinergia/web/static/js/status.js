// The status page: what the broker holds (entities per type), how fast it changes (from the
// dashboard's live feed), and every subscription with its notification health.

import {
  API, connectLive, formatNumber, formatTime, getJson, h, plural, setText, shortName, verticalOf,
} from "./ngsi.js";

const COUNT_EVERY = 6; // count the entities again every this many stats events (~30 s)
let ticks = 0;

async function countOf(type) {
  const {headers} = await getJson(`${API}/entities`, {type, count: "true", limit: 0});
  return Number(headers.get("NGSILD-Results-Count") || 0);
}

async function loadCounts() {
  const {body} = await getJson(`${API}/types`);
  const types = body.typeList || [];
  const counts = [];
  for (let start = 0; start < types.length; start += 6) { // a few requests at a time
    const chunk = types.slice(start, start + 6);
    counts.push(...await Promise.all(chunk.map(async (type) => [type, await countOf(type)])));
  }
  counts.sort((a, b) => b[1] - a[1]);
  setText("st-types", formatNumber(types.length, 0));
  setText("st-entities", formatNumber(counts.reduce((acc, [, n]) => acc + n, 0), 0));
  document.getElementById("type-rows").replaceChildren(...(counts.length ? counts.map(([type, n]) =>
    h("tr", {},
      h("th", {scope: "row", title: type}, shortName(type)),
      h("td", {}, verticalOf(type).label),
      h("td", {class: "num"}, formatNumber(n, 0)))) : [h("tr", {}, h("td", {colspan: 3}, "No entities yet."))]));
}

function endpointOf(sub) {
  const uri = sub.notification?.endpoint?.uri || "";
  return uri.length > 60 ? `${uri.slice(0, 60)}…` : uri;
}

async function loadSubscriptions() {
  const {body, headers} = await getJson(`${API}/subscriptions`, {limit: 100, count: "true"});
  const total = Number(headers.get("NGSILD-Results-Count") || body.length);
  const failing = body.filter((s) => s.notification?.status === "failed");
  const active = body.filter((s) => s.status === "active");
  setText("st-subscriptions", `${formatNumber(total, 0)} (${active.length} active)`);
  const health = document.getElementById("st-health");
  health.dataset.health = failing.length ? "failing" : "ok";
  health.textContent = failing.length
    ? `${failing.length} failing`
    : (body.length ? "All delivering" : "No subscriptions");
  document.getElementById("sub-rows").replaceChildren(...(body.length ? body.map((sub) => {
    const n = sub.notification || {};
    return h("tr", {"data-id": sub.id},
      h("th", {scope: "row"}, sub.subscriptionName || sub.id,
        sub.subscriptionName ? h("div", {class: "muted small"}, sub.id) : null),
      h("td", {}, sub.status || "–"),
      h("td", {class: n.status === "failed" ? "bad" : "good"}, n.status || "–"),
      h("td", {class: "num"}, formatNumber(n.timesSent || 0, 0)),
      h("td", {class: "num"}, formatNumber(n.timesFailed || 0, 0)),
      h("td", {}, formatTime(n.lastSuccess)),
      h("td", {}, formatTime(n.lastFailure)),
      h("td", {class: "small"}, endpointOf(sub)));
  }) : [h("tr", {}, h("td", {colspan: 8}, "No subscriptions."))]));
}

function showFeed(stats) {
  setText("st-rate", formatNumber(stats.changesPerSecond, 2));
  setText("st-feed", `Live feed of this server process: ` +
    `${plural(stats.listeners, "page", "pages")} listening, ` +
    `${plural(stats.changesTotal, "change", "changes")} received in ` +
    `${plural(stats.notifications, "notification", "notifications")} since it started` +
    `${stats.error ? `; problem: ${stats.error}` : ""}.`);
}

async function loadVersion() {
  const {body} = await getJson("/version");
  setText("st-version", `${body.name} ${body.version}`);
}

async function refresh(full) {
  try {
    await Promise.all([loadSubscriptions(), full ? loadCounts() : null]);
    setText("status-summary", `Updated ${new Date().toLocaleTimeString("en-GB")}.`);
  } catch (error) {
    setText("status-summary", `Could not read the broker: ${error.message}`);
  }
}

connectLive({
  onStats: (stats) => {
    showFeed(stats);
    ticks += 1;
    refresh(ticks % COUNT_EVERY === 0);
  },
});
loadVersion().catch(() => setText("st-version", "unreachable"));
refresh(true);
