// Time-series charts with plotly.js, served from the `plotly` Python package (no CDN). The
// library is large, so it is loaded the first time a chart is drawn. Every chart comes with
// its values as a table, for screen readers and for anyone who wants the numbers.

import {config, formatNumber, formatTime, h, plain} from "./ngsi.js";

const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"]; // Okabe-Ito
let loading = null;

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = config.plotly;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => {
      loading = null;
      reject(new Error("the chart library could not be loaded"));
    };
    document.head.append(script);
  });
  return loading;
}

function numeric(points) {
  return points
    .map(([time, value]) => [time, plain(value)])
    .filter(([, value]) => typeof value === "number" && Number.isFinite(value));
}

/** True when some series has at least one number to draw. */
export function hasNumbers(series) {
  return series.some((s) => numeric(s.points).length > 0);
}

function summary(title, series, unit) {
  const parts = series.map((s) => {
    const points = numeric(s.points);
    if (!points.length) return `${s.name}: no values`;
    const [lastTime, lastValue] = points[points.length - 1];
    return `${s.name}: ${points.length} values from ${formatTime(points[0][0])} to ` +
      `${formatTime(lastTime)}, latest ${formatNumber(lastValue, 3)}${unit ? ` ${unit}` : ""}`;
  });
  return `Line chart of ${title}. ${parts.join(". ")}.`;
}

function table(series, unit) {
  const times = [...new Set(series.flatMap((s) => numeric(s.points).map(([t]) => t)))].sort();
  const lookup = series.map((s) => new Map(numeric(s.points)));
  return h("div", {class: "table-wrap"},
    h("table", {class: "data compact"},
      h("thead", {}, h("tr", {},
        h("th", {scope: "col"}, "Time"),
        series.map((s) => h("th", {scope: "col", class: "num"}, unit ? `${s.name} (${unit})` : s.name)))),
      h("tbody", {}, times.slice().reverse().map((time) => h("tr", {},
        h("th", {scope: "row"}, formatTime(time)),
        lookup.map((values) => h("td", {class: "num"},
          values.has(time) ? formatNumber(values.get(time), 3) : "–")))))));
}

/**
 * Draw a time chart into `container` (emptied first).
 * series: [{name, points: [[ISO time, value], ...]}]
 */
export async function timeChart(container, {title, unit = "", series}) {
  const plot = h("div", {class: "chart", role: "img", "aria-label": summary(title, series, unit)});
  const rows = numeric(series[0] ? series[0].points : []).length;
  container.replaceChildren(h("figure", {class: "chart-figure"},
    h("figcaption", {}, unit ? `${title} (${unit})` : title),
    plot,
    h("details", {}, h("summary", {}, `Values as a table (${rows} rows)`), table(series, unit))));
  const Plotly = await loadPlotly();
  const traces = series.map((s, index) => {
    const points = numeric(s.points);
    return {
      type: "scatter", mode: points.length > 60 ? "lines" : "lines+markers", name: s.name,
      x: points.map(([t]) => t), y: points.map(([, v]) => v),
      line: {color: COLOURS[index % COLOURS.length], width: 2, shape: s.step ? "hv" : "linear"},
      marker: {size: 5},
      hovertemplate: `%{y}${unit ? ` ${unit}` : ""}<br>%{x}<extra>${s.name}</extra>`,
    };
  });
  const layout = {
    height: 240, margin: {l: 56, r: 12, t: 8, b: 40},
    font: {family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 13,
      color: "#1a1a1a"},
    paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
    xaxis: {type: "date", gridcolor: "#e3e3e3", linecolor: "#6b6b6b", automargin: true},
    yaxis: {title: {text: unit}, gridcolor: "#e3e3e3", linecolor: "#6b6b6b", rangemode: "tozero",
      automargin: true},
    showlegend: series.length > 1, legend: {orientation: "h", y: -0.25},
  };
  await Plotly.react(plot, traces, layout, {
    displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  });
}
