// The map page: every entity with a location, one layer per type grouped by vertical, coloured
// by state; the neighbourhoods as backdrop and filter; a list holding the same entities for
// keyboard and screen-reader users; details and history charts of the chosen entity; live
// updates from the dashboard's event stream.

import {timeChart, hasNumbers} from "./charts.js";
import {
  API, STATES, attr, config, connectLive, debounce, displayName, formatTime, formatValue,
  getJson, h, history, plain, plural, queryEntities, setText, shortName, stateOf, verticalOf,
} from "./ngsi.js";

const L = window.L;
const LIST_PAGE = 100;
const MAX_CHARTS = 6;

const state = {
  types: [],            // entity types shown as layers (the broker's names)
  backdropType: null,
  areas: [],            // [{id, name, geometry}] the backdrop's outlines, by name
  area: null,           // the chosen neighbourhood, or null for the whole city
  entities: new Map(),  // id -> {entity, layer}
  layers: new Map(),    // type -> {group, shown}
  selected: null,
  search: "",
  listLimit: LIST_PAGE,
};

// -- the map -------------------------------------------------------------------------------------

const map = L.map("map", {preferCanvas: true, zoomSnap: 0.5, keyboard: true});
window.sinergiaMap = map; // the Leaflet map, for the browser tests and the curious
map.setView([45.4642, 9.19], 12);
if (config.tiles.url) {
  L.tileLayer(config.tiles.url, {attribution: config.tiles.attribution, maxZoom: 19}).addTo(map);
}
let backdropLayer = null;
let areaOutline = null;
map.on("zoomend", () => {
  for (const {entity, layer} of state.entities.values()) {
    if (layer instanceof L.CircleMarker) layer.setRadius(radius(entity.id === state.selected));
  }
});

// Symbols grow as the map zooms in: small enough not to bury the city when it is whole.
function radius(selected) {
  const zoom = map.getZoom();
  const base = zoom >= 15 ? 7 : zoom >= 13 ? 5.5 : 4;
  return selected ? base + 4 : base;
}

function style(entity, selected) {
  const colour = STATES[stateOf(entity)].colour;
  return {
    color: selected ? "#000000" : "#1a1a1a", weight: selected ? 4 : 1.2,
    fillColor: colour, fillOpacity: 0.95, radius: radius(selected),
  };
}

function lineStyle(entity, selected) {
  const colour = STATES[stateOf(entity)].colour;
  return {color: selected ? "#000000" : colour, weight: selected ? 6 : 3, fillColor: colour,
    fillOpacity: 0.2, opacity: 0.9};
}

function layerOf(entity) {
  const geometry = plain(attr(entity, "location"));
  if (!geometry || typeof geometry.type !== "string") return null;
  const selected = entity.id === state.selected;
  let layer;
  if (geometry.type === "Point") {
    const [lon, lat] = geometry.coordinates;
    layer = L.circleMarker([lat, lon], style(entity, selected));
  } else {
    layer = L.geoJSON(geometry, {
      style: () => lineStyle(entity, selected),
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, style(entity, selected)),
    });
  }
  layer.bindTooltip(displayName(entity));
  layer.on("click", () => select(entity.id));
  return layer;
}

function typeLayer(type) {
  let entry = state.layers.get(type);
  if (!entry) {
    const vertical = verticalOf(type);
    entry = {group: L.layerGroup(), shown: vertical.shown};
    state.layers.set(type, entry);
    if (entry.shown) entry.group.addTo(map);
  }
  return entry;
}

function put(entity) {
  const old = state.entities.get(entity.id);
  if (old && old.layer) typeLayer(old.entity.type).group.removeLayer(old.layer);
  const layer = layerOf(entity);
  if (layer) typeLayer(entity.type).group.addLayer(layer);
  else typeLayer(entity.type);
  state.entities.set(entity.id, {entity, layer});
}

function remove(id) {
  const old = state.entities.get(id);
  if (!old) return;
  if (old.layer) typeLayer(old.entity.type).group.removeLayer(old.layer);
  state.entities.delete(id);
}

// -- loading -------------------------------------------------------------------------------------

async function loadTypes() {
  const {body} = await getJson(`${API}/types`);
  const all = body.typeList || [];
  state.backdropType = config.backdropTypes
    .map((wanted) => all.find((type) => shortName(type) === wanted))
    .find(Boolean) || null;
  state.types = all.filter((type) => type !== state.backdropType);
}

async function loadBackdrop() {
  if (!state.backdropType) return;
  const areas = await queryEntities([state.backdropType]);
  state.areas = areas
    .map((area) => ({id: area.id, name: displayName(area), geometry: plain(attr(area, "location"))}))
    .filter((area) => area.geometry && /Polygon$/.test(area.geometry.type))
    .sort((a, b) => a.name.localeCompare(b.name));
  backdropLayer = L.geoJSON(
    {type: "FeatureCollection",
      features: state.areas.map((a) => ({type: "Feature", geometry: a.geometry, properties: {}}))},
    {style: {color: "#6b6b6b", weight: 1, fillColor: "#f3efe6", fillOpacity: 0.6},
      interactive: false},
  ).addTo(map);
  backdropLayer.bringToBack();
  if (state.areas.length) map.fitBounds(backdropLayer.getBounds(), {padding: [8, 8]});
  const select = document.getElementById("neighbourhood");
  for (const area of state.areas) select.append(h("option", {value: area.id}, area.name));
  const label = document.querySelector('label[for="neighbourhood"]');
  label.textContent = shortName(state.backdropType) === "Neighbourhood" ? "Neighbourhood" : "Area";
}

async function loadEntities() {
  setText("map-summary", "Loading the entities…");
  const area = state.area ? state.area.geometry : null;
  const entities = await queryEntities(state.types, {geometry: area});
  for (const [type, entry] of state.layers) {
    entry.group.clearLayers();
    if (!state.types.includes(type)) {
      map.removeLayer(entry.group);
      state.layers.delete(type);
    }
  }
  state.entities.clear();
  for (const entity of entities) put(entity);
  renderLayerControls();
  renderList();
  summarise();
  if (state.selected && !state.entities.has(state.selected)) clearDetails();
}

function summarise() {
  let onMap = 0;
  let shown = 0;
  for (const {entity, layer} of state.entities.values()) {
    if (!state.layers.get(entity.type).shown) continue;
    shown += 1;
    if (layer) onMap += 1;
  }
  const types = [...state.layers.values()].filter((l) => l.shown).length;
  const where = state.area ? ` in ${state.area.name}` : "";
  setText("map-summary", `${plural(onMap, "entity", "entities")} on the map, ` +
    `${shown} in the list, ${plural(types, "type", "types")} shown${where}.`);
}

// -- filters -------------------------------------------------------------------------------------

function renderLayerControls() {
  const counts = new Map();
  for (const {entity} of state.entities.values()) {
    counts.set(entity.type, (counts.get(entity.type) || 0) + 1);
  }
  const byVertical = new Map();
  for (const type of state.layers.keys()) {
    const vertical = verticalOf(type);
    if (!byVertical.has(vertical.key)) byVertical.set(vertical.key, {vertical, types: []});
    byVertical.get(vertical.key).types.push(type);
  }
  const container = document.getElementById("layers");
  const order = config.verticals.map((v) => v.key);
  const groups = [...byVertical.values()].sort(
    (a, b) => order.indexOf(a.vertical.key) - order.indexOf(b.vertical.key));
  container.replaceChildren(...groups.map(({vertical, types}) => h("fieldset", {class: "layer-group"},
    h("legend", {}, vertical.label),
    types.sort((a, b) => shortName(a).localeCompare(shortName(b))).map((type) => {
      const id = `layer-${shortName(type)}-${[...state.layers.keys()].indexOf(type)}`;
      return h("div", {class: "check"},
        h("input", {type: "checkbox", id, checked: state.layers.get(type).shown,
          "data-type": type, onchange: (event) => showType(type, event.target.checked)}),
        h("label", {for: id, title: type}, `${shortName(type)} (${counts.get(type) || 0})`));
    }))));
  if (!groups.length) container.replaceChildren(h("p", {class: "muted"}, "The broker holds no entities yet."));
}

function showType(type, shown) {
  const entry = state.layers.get(type);
  entry.shown = shown;
  if (shown) entry.group.addTo(map);
  else map.removeLayer(entry.group);
  state.listLimit = LIST_PAGE;
  renderList();
  summarise();
}

async function chooseArea(id) {
  state.area = state.areas.find((a) => a.id === id) || null;
  if (areaOutline) map.removeLayer(areaOutline);
  areaOutline = null;
  if (state.area) {
    areaOutline = L.geoJSON(state.area.geometry,
      {style: {color: "#123a5e", weight: 3, fillOpacity: 0}, interactive: false}).addTo(map);
    map.fitBounds(areaOutline.getBounds(), {padding: [16, 16]});
  } else if (backdropLayer) {
    map.fitBounds(backdropLayer.getBounds(), {padding: [8, 8]});
  }
  await loadEntities();
}

// -- the accessible list -------------------------------------------------------------------------

function listed() {
  const query = state.search.trim().toLowerCase();
  const items = [];
  for (const {entity, layer} of state.entities.values()) {
    if (!state.layers.get(entity.type).shown) continue;
    const name = displayName(entity);
    if (query && !name.toLowerCase().includes(query) && !entity.id.toLowerCase().includes(query)) {
      continue;
    }
    items.push({entity, name, located: Boolean(layer)});
  }
  return items.sort((a, b) => a.name.localeCompare(b.name));
}

function renderList() {
  const items = listed();
  const list = document.getElementById("entity-list");
  list.replaceChildren(...items.slice(0, state.listLimit).map(({entity, name, located}) => {
    const key = stateOf(entity);
    return h("li", {},
      h("button", {type: "button", class: "entity-item", "data-id": entity.id,
        "aria-current": entity.id === state.selected ? "true" : null,
        onclick: () => select(entity.id, {focusDetails: true})},
      h("span", {class: "swatch", style: `background:${STATES[key].colour}`, "aria-hidden": "true"}),
      h("span", {class: "item-name"}, name),
      h("span", {class: "item-meta"},
        `${shortName(entity.type)} · ${STATES[key].label}${located ? "" : " · no location"}`)));
  }));
  const more = document.getElementById("list-more");
  more.hidden = items.length <= state.listLimit;
  setText("list-summary", items.length > state.listLimit
    ? `Showing ${state.listLimit} of ${items.length} entities.`
    : `${plural(items.length, "entity", "entities")}.`);
}

// -- details -------------------------------------------------------------------------------------

function clearDetails() {
  state.selected = null;
  document.getElementById("details-body").replaceChildren(
    h("p", {class: "muted"}, "Choose an entity on the map or in the list to see its attributes and history."));
}

function restyle(id) {
  const entry = state.entities.get(id);
  if (!entry || !entry.layer) return;
  const selected = id === state.selected;
  if (entry.layer instanceof L.CircleMarker) {
    entry.layer.setStyle(style(entry.entity, selected));
    entry.layer.setRadius(style(entry.entity, selected).radius);
  } else {
    entry.layer.setStyle(lineStyle(entry.entity, selected));
  }
  if (selected) entry.layer.bringToFront();
}

async function select(id, {focusDetails = false} = {}) {
  const previous = state.selected;
  state.selected = id;
  if (previous) restyle(previous);
  restyle(id);
  for (const button of document.querySelectorAll(".entity-item")) {
    if (button.dataset.id === id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  const panel = document.getElementById("details");
  const body = document.getElementById("details-body");
  body.replaceChildren(h("p", {class: "muted"}, "Loading…"));
  if (focusDetails) panel.focus();
  try {
    const [entity, series] = await Promise.all([
      getJson(`${API}/entities/${encodeURIComponent(id)}`).then((r) => r.body),
      history(id).catch(() => ({})),
    ]);
    if (state.selected !== id) return; // another entity was chosen meanwhile
    await renderDetails(entity, series);
  } catch (error) {
    if (state.selected === id) body.replaceChildren(h("p", {class: "error"}, `Could not read ${id}: ${error.message}`));
  }
}

function attributeRows(entity) {
  const rows = [];
  for (const [name, attribute] of Object.entries(entity)) {
    if (["id", "type", "@context"].includes(name)) continue;
    for (const instance of Array.isArray(attribute) ? attribute : [attribute]) {
      if (!instance || typeof instance !== "object") {
        rows.push({name, value: formatValue(instance)});
        continue;
      }
      const value = "object" in instance ? instance.object
        : "languageMap" in instance ? instance.languageMap
          : "vocab" in instance ? instance.vocab : instance.value;
      rows.push({name, value: formatValue(value), unit: instance.unitCode,
        observed: instance.observedAt, dataset: instance.datasetId});
    }
  }
  return rows;
}

async function renderDetails(entity, series) {
  const keyValues = Object.fromEntries(Object.entries(entity).map(([k, v]) =>
    [k, v && typeof v === "object" && !Array.isArray(v) && "value" in v ? v.value : v]));
  const key = stateOf(keyValues);
  const units = {};
  for (const [name, attribute] of Object.entries(entity)) {
    if (attribute && attribute.unitCode) units[name] = attribute.unitCode;
  }
  const charts = Object.entries(series)
    .filter(([, points]) => hasNumbers([{points}]))
    .slice(0, MAX_CHARTS);
  const chartsBox = h("div", {class: "charts"});
  const body = document.getElementById("details-body");
  body.replaceChildren(
    h("h3", {class: "entity-name"}, displayName(entity)),
    h("dl", {class: "facts"},
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, entity.id)),
      h("dt", {}, "Type"), h("dd", {title: entity.type}, `${shortName(entity.type)} (${verticalOf(entity.type).label})`),
      h("dt", {}, "State"), h("dd", {},
        h("span", {class: "swatch", style: `background:${STATES[key].colour}`, "aria-hidden": "true"}),
        STATES[key].label)),
    h("h4", {}, "History"),
    charts.length ? chartsBox : h("p", {class: "muted"}, "No numeric history recorded for this entity."),
    h("h4", {}, "Attributes"),
    h("div", {class: "table-wrap"}, h("table", {class: "data compact attributes"},
      h("thead", {}, h("tr", {},
        h("th", {scope: "col"}, "Attribute"), h("th", {scope: "col"}, "Value"),
        h("th", {scope: "col"}, "Observed"))),
      h("tbody", {}, attributeRows(entity).map((row) => h("tr", {},
        h("th", {scope: "row", title: row.name}, shortName(row.name) + (row.dataset ? ` [${shortName(row.dataset)}]` : "")),
        h("td", {}, row.value + (row.unit ? ` ${row.unit}` : "")),
        h("td", {}, row.observed ? formatTime(row.observed) : "–")))))),
  );
  for (const [name, points] of charts) {
    const box = h("div", {class: "chart-box", "data-attribute": shortName(name)});
    chartsBox.append(box);
    await timeChart(box, {title: shortName(name), unit: units[name] || "", series: [{name: shortName(name), points}]});
  }
}

// -- live updates --------------------------------------------------------------------------------

const refreshList = debounce(() => {
  renderList();
  summarise();
}, 500);
const refreshDetails = debounce(() => {
  if (state.selected) select(state.selected);
}, 500);
const reloadAll = debounce(() => loadEntities().catch(showError), 1000);
let unknownTypes = false;

function onChange({entities}) {
  for (const entity of entities) {
    if (entity.type === state.backdropType) continue;
    const onlyDeletion = "deletedAt" in entity &&
      Object.keys(entity).every((k) => ["id", "type", "deletedAt", "@context"].includes(k));
    if (onlyDeletion) {
      remove(entity.id);
      if (entity.id === state.selected) clearDetails();
      continue;
    }
    // With a neighbourhood chosen, an entity not shown yet may lie outside it: ask the broker.
    if (state.area && !state.entities.has(entity.id)) {
      reloadAll();
      continue;
    }
    if (!state.layers.has(entity.type)) unknownTypes = true;
    if (!state.types.includes(entity.type)) state.types.push(entity.type);
    put(entity);
    if (entity.id === state.selected) {
      restyle(entity.id);
      refreshDetails();
    }
  }
  if (unknownTypes) {
    unknownTypes = false;
    renderLayerControls();
  }
  refreshList();
}

function showError(error) {
  setText("map-summary", `Could not read the broker: ${error.message}`);
}

// -- start ---------------------------------------------------------------------------------------

function renderLegend() {
  document.getElementById("legend").replaceChildren(...Object.values(STATES).map((s) =>
    h("li", {}, h("span", {class: "swatch", style: `background:${s.colour}`, "aria-hidden": "true"}), s.label)));
}

async function start() {
  renderLegend();
  document.getElementById("neighbourhood").addEventListener("change",
    (event) => chooseArea(event.target.value).catch(showError));
  document.getElementById("search").addEventListener("input", (event) => {
    state.search = event.target.value;
    state.listLimit = LIST_PAGE;
    renderList();
  });
  document.getElementById("list-more").addEventListener("click", () => {
    state.listLimit += LIST_PAGE;
    renderList();
  });
  // Listen first, then load: a change made while the city loads is not missed.
  connectLive({
    onChange,
    onReady: (stats, reconnected) => {
      if (reconnected) reloadAll(); // changes may have been missed while away
    },
  });
  await loadTypes();
  await loadBackdrop();
  await loadEntities();
}

start().catch(showError);
