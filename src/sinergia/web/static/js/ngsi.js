// The dashboard's helpers around the broker's NGSI-LD API. Every figure the pages show is read
// here with ordinary NGSI-LD requests (/ngsi-ld/v1/...), as any client of the broker reads it.
// Names: the pages send no @context, so the broker answers with the names of its core context:
// short names for the default vocabulary, full IRIs for Smart Data Models terms. The pages key
// everything by those names and show their last segment (shortName).

export const config = JSON.parse(document.getElementById("dashboard-config").textContent);
export const API = config.api;
const PAGE_SIZE = 1000; // the broker's largest page (setting max_limit)

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? `${status}: ${problem.detail}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function check(response) {
  if (response.ok) return response;
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // not a ProblemDetails body: the status says enough
  }
  throw new ApiError(response.status, problem);
}

/** GET a broker path; answers {body, headers}. */
export async function getJson(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, String(value));
  const response = await check(await fetch(url, {headers: {Accept: "application/json"}}));
  return {body: await response.json(), headers: response.headers};
}

/** Every entity of these types (optionally within a geometry), in keyValues form, following
 * the pages of POST /entityOperations/query. */
export async function queryEntities(types, {geometry = null} = {}) {
  if (!types.length) return [];
  const query = {type: "Query", entities: types.map((type) => ({type}))};
  if (geometry) {
    query.geoQ = {georel: "intersects", geometry: geometry.type, coordinates: geometry.coordinates};
  }
  const found = [];
  for (let offset = 0; ; offset += PAGE_SIZE) {
    const url = `${API}/entityOperations/query?options=keyValues&limit=${PAGE_SIZE}&offset=${offset}`;
    const response = await check(await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", Accept: "application/json"},
      body: JSON.stringify(query),
    }));
    const page = await response.json();
    found.push(...page);
    if (page.length < PAGE_SIZE) return found;
  }
}

/** The history of one entity: attribute name -> [[ISO time, value], ...], oldest first. */
export async function history(entityId, lastN = 200) {
  const {body} = await getJson(`${API}/temporal/entities/${encodeURIComponent(entityId)}`,
    {format: "temporalValues", lastN});
  const series = {};
  for (const [name, attribute] of Object.entries(body)) {
    if (name === "id" || name === "type" || name === "@context") continue;
    // a multi-instance attribute comes as a list of such objects, one per datasetId
    for (const instance of Array.isArray(attribute) ? attribute : [attribute]) {
      for (const [value, time] of instance && instance.values ? instance.values : []) {
        (series[name] ??= []).push([time, value]);
      }
    }
  }
  for (const points of Object.values(series)) points.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return series;
}

// -- names and values ---------------------------------------------------------------------------

/** "https://smartdatamodels.org/dataModel.Transportation/BikeLane" -> "BikeLane". */
export function shortName(name) {
  const match = String(name).match(/[^/#]+$/);
  return match ? match[0] : String(name);
}

/** The member of an entity whose (short) name is `short`, whatever IRI the broker used. */
export function attr(entity, short) {
  if (short in entity) return entity[short];
  for (const [name, value] of Object.entries(entity)) {
    if (shortName(name) === short) return value;
  }
  return undefined;
}

/** A DateTime, a language map or a plain value, as the plain value. */
export function plain(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if ("@value" in value) return value["@value"];
    if ("value" in value && "type" in value && Object.keys(value).length <= 4) return value.value;
  }
  return value;
}

export function displayName(entity) {
  const name = plain(attr(entity, "name"));
  if (typeof name === "string" && name) return name;
  if (name && typeof name === "object") {
    const first = Object.values(name).find((v) => typeof v === "string");
    if (first) return first;
  }
  return String(entity.id).replace(/^urn:ngsi-ld:/, "");
}

const NUMBER = new Intl.NumberFormat("en", {maximumFractionDigits: 3});

export function formatNumber(value, digits = 1) {
  return new Intl.NumberFormat("en", {maximumFractionDigits: digits}).format(value);
}

/** "1 entity", "3 entities". */
export function plural(count, one, many) {
  return `${formatNumber(count, 0)} ${count === 1 ? one : many}`;
}

export function formatValue(value) {
  const v = plain(value);
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return NUMBER.format(v);
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v) && v.every((x) => typeof x !== "object")) return v.join(", ");
  if (v && typeof v === "object" && typeof v.type === "string" && "coordinates" in v) {
    if (v.type === "Point") {
      const [lon, lat] = v.coordinates;
      return `Point ${NUMBER.format(lat)}° N, ${NUMBER.format(lon)}° E`;
    }
    return `${v.type} (geometry)`;
  }
  const text = JSON.stringify(v);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(plain(iso));
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString("en-GB");
}

// -- what the map colours by -------------------------------------------------------------------

export const STATES = {
  ok: {label: "Working, on", colour: "#009E73"},
  dimmed: {label: "On, dimmed", colour: "#56B4E9"},
  warning: {label: "Needs attention", colour: "#E69F00"},
  fault: {label: "Fault", colour: "#D55E00"},
  off: {label: "Off or out of service", colour: "#4D4D4D"},
  none: {label: "No state reported", colour: "#B8A9D9"},
};
const WORDS = {
  ok: ["ok", "on", "working", "active", "operational", "open", "available", "enabled", "normal",
    "free", "inservice", "good"],
  warning: ["warning", "degraded", "maintenance", "undermaintenance", "lowbattery", "full",
    "almostfull", "partial", "withincidence", "congested"],
  fault: ["broken", "failed", "failure", "error", "fault", "faulty", "outoforder", "damaged",
    "alarm", "critical", "ko", "defective"],
  off: ["off", "closed", "inactive", "disabled", "decommissioned", "outofservice",
    "notinservice", "stopped", "retired"],
};
const STATE_ATTRIBUTES = ["status", "powerState", "deviceState", "operationalStatus",
  "serviceStatus", "state"];

/** The state an entity is coloured by: one of the keys of STATES. */
export function stateOf(entity) {
  for (const name of STATE_ATTRIBUTES) {
    let value = plain(attr(entity, name));
    if (Array.isArray(value)) value = value[0];
    if (typeof value !== "string") continue;
    const word = value.toLowerCase().replace(/[^a-z]/g, "");
    for (const [state, words] of Object.entries(WORDS)) {
      if (words.includes(word)) {
        if (state === "ok" && isDimmed(entity)) return "dimmed";
        return state;
      }
    }
  }
  if (isDimmed(entity)) return "dimmed";
  const filling = plain(attr(entity, "fillingLevel"));
  if (typeof filling === "number") return filling >= 0.9 ? "warning" : "ok";
  return "none";
}

function isDimmed(entity) {
  const level = plain(attr(entity, "illuminanceLevel"));
  return typeof level === "number" && level > 0 && level < 0.995;
}

/** The vertical (config.verticals) a type belongs to. */
export function verticalOf(type) {
  const short = shortName(type);
  return config.verticals.find((v) => v.types.includes(short) || v.types.includes(type))
    ?? config.verticals.find((v) => v.key === "other");
}

// -- the DOM -------------------------------------------------------------------------------------

/** A new element: h("p", {class: "x"}, "text", child). Text is never parsed as HTML. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function setText(id, text) {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

/** Call `fn` once after `ms`, however often this is called meanwhile. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
}

// -- live updates --------------------------------------------------------------------------------

/** Listen to the dashboard's server-sent events; keeps the header's live indicator true. */
export function connectLive({onChange = null, onReady = null, onStats = null} = {}) {
  const indicator = document.getElementById("live-status");
  const show = (state, text) => {
    indicator.dataset.state = state;
    indicator.querySelector(".live-text").textContent = text;
  };
  const describe = (stats) => {
    if (stats.subscribed) show("live", "Live updates on");
    else if (stats.error) show("down", `Live updates unavailable: ${stats.error}`);
    else show("idle", "Live updates on (nothing to watch yet)");
  };
  let readies = 0;
  const source = new EventSource(config.events);
  source.addEventListener("ready", (event) => {
    const stats = JSON.parse(event.data);
    describe(stats);
    if (onReady) onReady(stats, readies > 0);
    readies += 1;
    if (onStats) onStats(stats);
  });
  source.addEventListener("stats", (event) => {
    const stats = JSON.parse(event.data);
    describe(stats);
    if (onStats) onStats(stats);
  });
  source.addEventListener("change", (event) => {
    if (onChange) onChange(JSON.parse(event.data));
  });
  source.addEventListener("error", () => show("connecting", "Reconnecting to live updates…"));
  return source;
}
