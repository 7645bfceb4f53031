// The lighting page: energy the adaptive lighting used against the full-power baseline, kWh and
// % saved and CO2 avoided, city-wide and per control cabinet, now and over time. It reads the
// LightingEnergyReport entities the lighting app publishes (one per group, per cabinet and for
// the city; totals since the app started accounting) and their history.

import {timeChart} from "./charts.js";
import {
  API, attr, connectLive, debounce, displayName, formatNumber, formatTime, getJson, h, history,
  plain, queryEntities, setText, shortName,
} from "./ngsi.js";

const REPORT = "LightingEnergyReport";

function num(report, name) {
  const value = plain(attr(report, name));
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The figures of one report; missing ones derived from the others where possible. */
function figures(report) {
  const used = num(report, "energyConsumed");
  const baseline = num(report, "baselineEnergy");
  let saved = num(report, "energySaved");
  if (saved === null && used !== null && baseline !== null) saved = baseline - used;
  let share = num(report, "energySavingPercentage");
  if (share === null && saved !== null && baseline) share = (100 * saved) / baseline;
  return {used, baseline, saved, share, co2: num(report, "co2Avoided"),
    power: num(report, "powerDemand"), lamps: num(report, "lampCount"),
    since: plain(attr(report, "dateAccountingStarted"))};
}

function sum(reports) {
  const all = reports.map(figures);
  const total = (key) => (all.some((f) => f[key] !== null)
    ? all.reduce((acc, f) => acc + (f[key] || 0), 0) : null);
  const result = {used: total("used"), baseline: total("baseline"), saved: total("saved"),
    co2: total("co2"), power: total("power"), lamps: total("lamps"), since: all[0]?.since};
  result.share = result.saved !== null && result.baseline ? (100 * result.saved) / result.baseline : null;
  return result;
}

const kwh = (v) => (v === null ? "–" : `${formatNumber(v, 1)} kWh`);

function cabinetName(report) {
  const ref = plain(attr(report, "refStreetlightControlCabinet"));
  const name = plain(attr(report, "name"));
  if (typeof name === "string" && name) return name;
  if (typeof ref === "string") return ref.replace(/^urn:ngsi-ld:[^:]+:/, "");
  return displayName(report);
}

async function reportType() {
  // The type as this broker names it (its IRI depends on the context the app wrote with).
  const {body} = await getJson(`${API}/types`);
  return (body.typeList || []).find((t) => shortName(t) === REPORT) || null;
}

let chosen = null; // the report whose history is drawn

async function load() {
  const type = await reportType();
  const reports = type ? await queryEntities([type]) : [];
  const scope = (r) => plain(attr(r, "reportScope"));
  const city = reports.find((r) => scope(r) === "city");
  const cabinets = reports.filter((r) => scope(r) === "cabinet");
  const groups = reports.filter((r) => scope(r) === "group");
  document.getElementById("lighting-empty").hidden = reports.length > 0;
  for (const id of ["city", "history", "cabinets"]) document.getElementById(id).hidden = !reports.length;
  if (!reports.length) {
    setText("lighting-summary", "No energy reports to show yet.");
    return;
  }
  const total = city ? figures(city) : sum(cabinets.length ? cabinets : groups);
  setText("kpi-used", kwh(total.used));
  setText("kpi-baseline", kwh(total.baseline));
  setText("kpi-saved", kwh(total.saved));
  setText("kpi-saving", total.share === null ? "–" : `${formatNumber(total.share, 1)} %`);
  setText("kpi-co2", total.co2 === null ? "–" : `${formatNumber(total.co2, 1)} kg`);
  setText("kpi-power", total.power === null ? "–" : `${formatNumber(total.power / 1000, 2)} kW`);
  setText("city-since", [
    total.lamps !== null ? `${formatNumber(total.lamps, 0)} lamps` : null,
    total.since ? `accounting since ${formatTime(total.since)}` : null,
    city ? null : "city-wide figures summed from the cabinets",
  ].filter(Boolean).join(" · "));

  cabinets.sort((a, b) => (figures(b).saved || 0) - (figures(a).saved || 0));
  document.getElementById("cabinet-rows").replaceChildren(...(cabinets.length ? cabinets.map((r) => {
    const f = figures(r);
    return h("tr", {},
      h("th", {scope: "row"}, cabinetName(r)),
      h("td", {class: "num"}, f.lamps === null ? "–" : formatNumber(f.lamps, 0)),
      h("td", {class: "num"}, f.used === null ? "–" : formatNumber(f.used, 1)),
      h("td", {class: "num"}, f.baseline === null ? "–" : formatNumber(f.baseline, 1)),
      h("td", {class: "num"}, f.saved === null ? "–" : formatNumber(f.saved, 1)),
      h("td", {class: "num"}, f.share === null ? "–" : `${formatNumber(f.share, 1)} %`),
      h("td", {class: "num"}, f.co2 === null ? "–" : formatNumber(f.co2, 1)));
  }) : [h("tr", {}, h("td", {colspan: 7}, "No cabinet reports."))]));

  const options = [...(city ? [[city.id, "The whole city"]] : []),
    ...cabinets.map((r) => [r.id, `Cabinet ${cabinetName(r)}`])];
  const picker = document.getElementById("history-of");
  if (!options.some(([id]) => id === chosen)) chosen = options.length ? options[0][0] : null;
  picker.replaceChildren(...options.map(([id, label]) =>
    h("option", {value: id, selected: id === chosen}, label)));
  document.getElementById("history").hidden = !options.length;
  await drawHistory();
  setText("lighting-summary",
    `Saving ${total.share === null ? "unknown" : `${formatNumber(total.share, 1)} %`} city-wide; ` +
    `${cabinets.length} cabinets, ${groups.length} groups reported.`);
}

async function drawHistory() {
  const box = document.getElementById("history-charts");
  if (!chosen) {
    box.replaceChildren();
    return;
  }
  const series = await history(chosen, 500);
  const pick = (short) => Object.entries(series).find(([name]) => shortName(name) === short)?.[1] || [];
  const energy = h("div", {class: "chart-box", id: "chart-energy"});
  const saving = h("div", {class: "chart-box", id: "chart-saving"});
  const co2 = h("div", {class: "chart-box", id: "chart-co2"});
  box.replaceChildren(energy, saving, co2);
  await timeChart(energy, {title: "Energy used and full-power baseline, since accounting started",
    unit: "kWh", series: [{name: "Baseline (full power)", points: pick("baselineEnergy")},
      {name: "Used", points: pick("energyConsumed")}]});
  await timeChart(saving, {title: "Energy saved", unit: "%",
    series: [{name: "Saving", points: pick("energySavingPercentage")}]});
  await timeChart(co2, {title: "CO₂ avoided", unit: "kg",
    series: [{name: "CO₂ avoided", points: pick("co2Avoided")}]});
}

function showError(error) {
  setText("lighting-summary", `Could not read the energy reports: ${error.message}`);
}

const reload = debounce(() => load().catch(showError), 1000);

document.getElementById("history-of").addEventListener("change", (event) => {
  chosen = event.target.value;
  drawHistory().catch(showError);
});
connectLive({
  onChange: ({entities}) => {
    if (entities.some((e) => shortName(e.type) === REPORT)) reload();
  },
  onReady: (stats, reconnected) => {
    if (reconnected) reload();
  },
});
load().catch(showError);
