// The live picture at /admin/pooler/: fetches data.json once a second, fills the table and draws
// three uPlot charts per pool (clients; servers against the pool's limits; transactions and waits).
// An external file because the Content-Security-Policy allows no inline script.
/* global uPlot, setTimeout */
"use strict";

const DASH = "—";
const count = (v) => String(v);
const limit = (v) => (v === 0 ? "no limit" : String(v));
const rate = (v) => (v === null ? DASH : String(Math.round(v)));
const ms = (v) => (v === null ? DASH : v.toFixed(1));

/** The table's cells after database and user: a field of the pool's latest point, and its format. */
const CELLS = [
  ["cl_active", count],
  ["cl_waiting", count],
  ["sv_active", count],
  ["sv_idle", count],
  ["pool_size", limit],
  ["max_connections", limit],
  ["tps", rate],
  ["avg_wait_ms", ms],
  ["p99_wait_ms", ms],
  ["maxwait_ms", ms],
];

/** Counts start at 0, with a little headroom so a line at the top stays visible. */
const fromZero = (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1];

/** Per pool, top to bottom; a limit of 0 means "none" and draws no line. */
const CHARTS = [
  {
    title: "Client connections",
    scales: [{ name: "n", label: "clients" }],
    series: [
      { field: "cl_active", label: "active", stroke: "#417690", scale: "n" },
      {
        field: "cl_waiting",
        label: "waiting",
        stroke: "#ba2121",
        fill: "rgba(186, 33, 33, 0.08)",
        scale: "n",
      },
    ],
  },
  {
    title: "Server connections and the pool’s limits",
    scales: [{ name: "n", label: "servers" }],
    series: [
      { field: "sv_active", label: "active", stroke: "#e69500", scale: "n" },
      { field: "sv_idle", label: "idle", stroke: "#5b9a3c", scale: "n" },
      { field: "pool_size", label: "pool size", stroke: "#333", dash: [8, 4], scale: "n", limit: true },
      {
        field: "max_connections",
        label: "max DB connections",
        stroke: "#999",
        dash: [2, 4],
        scale: "n",
        limit: true,
      },
    ],
  },
  {
    title: "Transactions per second and waits",
    scales: [
      { name: "tps", label: "transactions/s" },
      { name: "ms", label: "wait (ms)", side: 1 },
    ],
    series: [
      { field: "tps", label: "transactions/s", stroke: "#417690", scale: "tps" },
      { field: "avg_wait_ms", label: "avg wait (ms)", stroke: "#79aec8", scale: "ms" },
      { field: "p99_wait_ms", label: "p99 wait (ms)", stroke: "#ba2121", scale: "ms" },
    ],
  },
];

const CHART_HEIGHT = 180;

function chartOptions(chart, width) {
  const scales = { x: { time: true } };
  // UTC, as the sample time above and every date in the admin, not the browser's time zone.
  for (const s of chart.scales) scales[s.name] = { range: fromZero };
  return {
    title: chart.title,
    width,
    height: CHART_HEIGHT,
    // The table above has the numbers; the legend only names the lines.
    legend: { live: false },
    scales,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    axes: [
      // Whole seconds at the least: the samples are a second apart.
      { incrs: [1, 2, 5, 10, 15, 30, 60] },
      ...chart.scales.map((s, i) => ({
        scale: s.name,
        label: s.label,
        side: s.side ?? 3,
        grid: { show: i === 0 },
      })),
    ],
    series: [
      {},
      ...chart.series.map((s) => ({
        label: s.label,
        scale: s.scale,
        stroke: s.stroke,
        width: s.dash ? 1.5 : 2,
        ...(s.dash && { dash: s.dash }),
        ...(s.fill && { fill: s.fill }),
      })),
    ],
  };
}

function chartData(chart, t, series) {
  return [
    t,
    ...chart.series.map((s) =>
      s.limit ? series[s.field].map((v) => (v === 0 ? null : v)) : series[s.field],
    ),
  ];
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("pooler-pools");
  const status = document.getElementById("pooler-status");
  const chartsBox = document.getElementById("pooler-charts");
  if (!table || !status || !chartsBox) return;
  const tbody = table.tBodies[0];
  /** pool key → { row, section, plots } */
  const shown = new Map();

  const setStatus = (state, text) => {
    status.dataset.state = state;
    status.textContent = text;
  };

  const chartWidth = (section) => Math.max(300, section.clientWidth - 24);

  function addPool(key, pool, t) {
    const row = document.createElement("tr");
    row.dataset.pool = key;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = pool.database;
    const user = document.createElement("td");
    user.textContent = pool.user;
    row.append(name, user);
    for (const [field] of CELLS) {
      const cell = document.createElement("td");
      cell.className = "num";
      cell.dataset.field = field;
      row.append(cell);
    }
    tbody.append(row);

    const section = document.createElement("section");
    section.className = "module pooler-pool";
    section.dataset.pool = key;
    const heading = document.createElement("h2");
    heading.textContent = `${pool.database} / ${pool.user}`;
    section.append(heading);
    chartsBox.append(section);
    const plots = CHARTS.map((chart) => {
      const box = document.createElement("div");
      box.className = "pooler-chart";
      section.append(box);
      return new uPlot(chartOptions(chart, chartWidth(section)), chartData(chart, t, pool.series), box);
    });
    shown.set(key, { row, section, plots });
  }

  function updatePool(key, pool, t) {
    if (!shown.has(key)) addPool(key, pool, t);
    const { row, plots } = shown.get(key);
    for (const [field, format] of CELLS) {
      const cell = row.querySelector(`[data-field="${field}"]`);
      const value = pool.latest[field];
      cell.dataset.value = value === null ? "" : String(value);
      cell.textContent = format(value);
    }
    CHARTS.forEach((chart, i) => plots[i].setData(chartData(chart, t, pool.series)));
  }

  function removePool(key) {
    const { row, section, plots } = shown.get(key);
    for (const plot of plots) plot.destroy();
    row.remove();
    section.remove();
    shown.delete(key);
  }

  function describe(data) {
    const at = data.sampledAtText;
    if (data.error) return ["error", at ? `${data.error} The numbers below are from ${at}.` : data.error];
    const notes = [
      `Live: sampled at ${at}, every ${data.intervalMs / 1000} s; the charts show the last ${data.windowMs / 60_000} minutes.`,
    ];
    if (data.pools.length === 0) notes.push("No pools yet: the pooler opens one when a client connects.");
    if (data.warning) notes.push(data.warning);
    else if (!data.p99) notes.push("Set POOLER_METRICS_URL for the p99 wait.");
    return [data.warning ? "warning" : "ok", notes.join(" ")];
  }

  function render(data) {
    const keys = new Set(data.pools.map((p) => `${p.database}/${p.user}`));
    for (const key of [...shown.keys()]) if (!keys.has(key)) removePool(key);
    for (const pool of data.pools) updatePool(`${pool.database}/${pool.user}`, pool, data.t);
    setStatus(...describe(data));
  }

  let interval = 1000;
  async function refresh() {
    try {
      const res = await fetch(table.dataset.url, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      // A session that ended is sent to the login page, which fetch follows.
      if (res.redirected) setStatus("error", "You have been logged out: reload the page to log in again.");
      else if (!res.ok) setStatus("error", `The app answered ${res.status} ${res.statusText}.`);
      else {
        const data = await res.json();
        interval = data.intervalMs;
        render(data);
      }
    } catch (err) {
      setStatus("error", `The app did not answer: ${err.message}`);
    }
    setTimeout(refresh, interval);
  }

  window.addEventListener("resize", () => {
    for (const { section, plots } of shown.values()) {
      for (const plot of plots) plot.setSize({ width: chartWidth(section), height: CHART_HEIGHT });
    }
  });
  refresh();
});
