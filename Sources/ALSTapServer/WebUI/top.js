// alstap web UI, the Top and Map views: draws /top snapshots as a sortable table and as a service
// map (one node per workload or service, one edge per source → destination, columns by call
// depth). Loaded before app.js and sharing its scope: app.js reads the stream and calls
// showTotals, renderTop, renderMap and clearTopViews; this file uses its $, cell, side and
// openTap. Every value from an access log is set as text or as an attribute, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MAP = { nodeWidth: 170, nodeHeight: 40, columnGap: 170, rowGap: 30, pad: 24, arrow: 9, label: 22 };
const GROUP_TITLES = {
  edge: "source → destination", route: "source → destination · method authority route",
  destination: "destination", source: "source", reporter: "reporter",
};

// ---- the Top table ----

const latencyOf = (name) => (row) => (row.latencyMs ? row.latencyMs[name] : undefined);
const TOP_COLUMNS = [
  { title: "", value: groupLabel },
  { title: "requests", value: (row) => row.requests, format: String },
  { title: "rps", value: (row) => row.rps, format: (v) => v.toFixed(1) },
  { title: "success", value: (row) => row.successRate, format: percent, warn: (row) => row.successRate < 1 },
  { title: "p50 ms", value: latencyOf("p50"), format: millis },
  { title: "p90 ms", value: latencyOf("p90"), format: millis },
  { title: "p99 ms", value: latencyOf("p99"), format: millis },
  { title: "max ms", value: latencyOf("max"), format: millis },
  { title: "errors", value: (row) => row.errors, format: String, warn: (row) => row.errors > 0 },
  { title: "flags", value: flagsLabel },
];
let sortColumn = 1;            // requests, most first: the server's own order
let sortDescending = true;
let lastSnapshot = null;       // redrawn when the sort changes

function percent(rate) { return `${(100 * rate).toFixed(2)}%`; }
function millis(value) { return value.toFixed(3); }
function flagsLabel(row) { return Object.entries(row.flags || {}).map(([flag, n]) => `${flag}:${n}`).join(" "); }

/** `source → destination`, the one side a grouping has, and a route's method, authority and route. */
function groupLabel(row) {
  if (row.other) return "(other: groups beyond the bound)";
  const parts = [];
  if (row.reporter) parts.push(side(row.reporter));
  if (row.source && row.destination) parts.push(`${side(row.source)} → ${side(row.destination)}`);
  else if (row.source || row.destination) parts.push(side(row.source || row.destination));
  if (row.method !== undefined) parts.push(row.method || "-");
  if (row.authority) parts.push(row.authority);
  if (row.route) parts.push(row.route);
  return parts.join(" ");
}

function showTotals(snapshot) {
  const t = snapshot.totals;
  const parts = [`${t.requests} requests`, `${t.rps.toFixed(1)} rps`, `${percent(t.successRate)} success`,
                 `${snapshot.groups} groups`, `last ${snapshot.covered.toFixed(1)} of ${snapshot.window} s`];
  if (snapshot.overflow) parts.push(`${snapshot.overflow} in other`);
  if (snapshot.lost) parts.push(`${snapshot.lost} lost`);
  $("top-totals").textContent = parts.join(" · ");
}

function renderTop(snapshot) {
  lastSnapshot = snapshot;
  drawTopHead(snapshot.by);
  const column = TOP_COLUMNS[sortColumn];
  const rows = [...snapshot.rows].sort((a, b) => compare(column.value(a), column.value(b)) * (sortDescending ? -1 : 1));
  const fragment = document.createDocumentFragment();
  for (const row of rows) fragment.appendChild(topRow(row));
  document.querySelector("#top-table tbody").replaceChildren(fragment);
  showEmpty($("top-empty"), snapshot);
}

/** Numbers numerically, text alphabetically; a missing value (no latency) sorts as the smallest. */
function compare(a, b) {
  if (a === undefined || b === undefined) return (a === undefined ? -1 : 0) - (b === undefined ? -1 : 0);
  return typeof a === "number" ? a - b : String(a).localeCompare(String(b));
}

function drawTopHead(by) {
  const tr = document.createElement("tr");
  for (const [index, column] of TOP_COLUMNS.entries()) {
    const th = document.createElement("th");
    th.textContent = column.title || GROUP_TITLES[by];
    th.dataset.column = String(index);
    if (column.format) th.classList.add("number");
    if (index === sortColumn) th.classList.add("sorted", sortDescending ? "down" : "up");
    tr.appendChild(th);
  }
  document.querySelector("#top-table thead").replaceChildren(tr);
}

function topRow(row) {
  const tr = document.createElement("tr");
  for (const column of TOP_COLUMNS) {
    const value = column.value(row);
    const text = value === undefined ? "—" : column.format ? column.format(value) : value;
    const td = cell(tr, text, column.format ? "number" : "");
    if (!column.format) td.title = text;  // labels may be longer than their column
    if (column.warn && column.warn(row)) td.classList.add("warn");
  }
  if (!row.other) tr.addEventListener("click", () => openTap(rowFilter(row)));
  return tr;
}

document.querySelector("#top-table thead").addEventListener("click", (event) => {
  const th = event.target.closest("th");
  if (!th) return;
  const index = Number(th.dataset.column);
  // A new column starts with the largest numbers (or A to Z); the same column flips.
  sortDescending = index === sortColumn ? !sortDescending : TOP_COLUMNS[index].format !== undefined;
  sortColumn = index;
  if (lastSnapshot) renderTop(lastSnapshot);
});

function showEmpty(element, snapshot) {
  element.textContent = `no requests in the last ${snapshot.window} s with these filters`;
  element.hidden = snapshot.rows.length > 0;
}

function clearTopViews() {
  lastSnapshot = null;
  document.querySelector("#top-table thead").replaceChildren();
  document.querySelector("#top-table tbody").replaceChildren();
  $("top-totals").textContent = "";
  $("top-empty").hidden = true;
  $("map-empty").hidden = true;
  $("map").replaceChildren();
  drawnMap = null;
}

// ---- from a group to /tap's filters (README "Filters") ----

/** The /tap parameters that select one identity as the source or destination (none for an address). */
function identityFilter(identity, asDestination) {
  const name = identity.workload || identity.service;
  if (!name) return [];
  const qualified = identity.namespace ? `${identity.namespace}/${name}` : name;
  // A service is only ever a destination; `destination=workload/…` matches it by service name.
  if (asDestination || identity.service) return [["destination", `workload/${qualified}`]];
  return [["workload", qualified]];
}

function rowFilter(row) {
  const filter = [];
  if (row.source) filter.push(...identityFilter(row.source, false));
  if (row.destination) filter.push(...identityFilter(row.destination, true));
  if (row.reporter && row.reporter.workload) {
    const r = row.reporter;
    filter.push(["reporter", `workload/${r.namespace ? r.namespace + "/" : ""}${r.workload}`]);
  }
  if (row.method) filter.push(["method", row.method]);
  if (row.authority) filter.push(["authority", row.authority]);
  return filter;
}

// ---- the Map ----

let drawnMap = null;           // { shape, edges, nodes }: the elements by key, while the edges stay the same

function renderMap(snapshot) {
  const graph = graphOf(snapshot.rows);
  showEmpty($("map-empty"), snapshot);
  if (graph.edges.length === 0) {
    $("map").replaceChildren();
    drawnMap = null;
    return;
  }
  const shape = graph.edges.map((edge) => edge.key).sort().join("\n");
  // The same edges as the last snapshot: restyle them in place (a hovered edge keeps its tooltip).
  if (!drawnMap || drawnMap.shape !== shape) drawnMap = drawMap(graph, shape);
  const maxRps = Math.max(0, ...graph.edges.map((edge) => edge.row.rps));
  for (const edge of graph.edges) styleEdge(drawnMap.edges.get(edge.key), edge, maxRps);
  for (const node of graph.nodes) styleNode(drawnMap.nodes.get(node.key), node);
}

/** Nodes (by identity) and one edge per row; the overflow row has no identities and no edge. */
function graphOf(rows) {
  const nodes = new Map();
  const nodeOf = (identity) => {
    const key = JSON.stringify([identity.workload, identity.service, identity.address, identity.namespace]);
    if (!nodes.has(key)) nodes.set(key, { key, identity, label: side(identity), calls: [], callers: [] });
    return nodes.get(key);
  };
  const edges = [];
  for (const row of rows) {
    if (row.other) continue;
    const from = nodeOf(row.source || {});
    const to = nodeOf(row.destination || {});
    const edge = { key: `${from.key} ${to.key}`, from, to, row };
    from.calls.push(edge);
    to.callers.push(edge);
    edges.push(edge);
  }
  return { nodes: [...nodes.values()], edges };
}

/**
 * Each node's column: the longest call path reaching it from the nodes nobody calls. A depth-first
 * walk first drops the edges that close a cycle, so what is left is acyclic and the relaxation
 * settles within one pass per node.
 */
function depths(graph) {
  const state = new Map();     // 1: on the walk's current path, 2: done
  const forward = [];
  const walk = (node) => {
    state.set(node, 1);
    for (const edge of node.calls) {
      if (state.get(edge.to) === 1) continue;  // back to the path: a cycle (or a self-call)
      forward.push(edge);
      if (!state.has(edge.to)) walk(edge.to);
    }
    state.set(node, 2);
  };
  const roots = graph.nodes.filter((node) => node.callers.length === 0);
  for (const node of [...roots, ...graph.nodes]) if (!state.has(node)) walk(node);
  const depth = new Map(graph.nodes.map((node) => [node, 0]));
  for (let pass = 0; pass < graph.nodes.length; pass++) {
    let moved = false;
    for (const { from, to } of forward) {
      if (depth.get(to) <= depth.get(from)) {
        depth.set(to, depth.get(from) + 1);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return depth;
}

/** Columns of nodes, each ordered by its callers' places to the left (fewer crossings). */
function columnsOf(graph) {
  const depth = depths(graph);
  const columns = [];
  for (const node of [...graph.nodes].sort((a, b) => a.label.localeCompare(b.label))) {
    (columns[depth.get(node)] ||= []).push(node);
  }
  const place = new Map();
  for (const [c, column] of columns.entries()) {
    const centre = new Map(column.map((node) => {
      const left = node.callers.filter((edge) => depth.get(edge.from) < c).map((edge) => place.get(edge.from));
      return [node, left.length ? left.reduce((sum, p) => sum + p, 0) / left.length : Infinity];
    }));
    column.sort((a, b) => (centre.get(a) === centre.get(b) ? 0 : centre.get(a) - centre.get(b)));
    column.forEach((node, i) => place.set(node, i));
  }
  return columns;
}

function drawMap(graph, shape) {
  const columns = columnsOf(graph);
  const step = MAP.nodeHeight + MAP.rowGap;
  const height = Math.max(...columns.map((column) => column.length)) * step - MAP.rowGap + 2 * MAP.pad;
  const width = columns.length * (MAP.nodeWidth + MAP.columnGap) - MAP.columnGap + 2 * MAP.pad;
  for (const [c, column] of columns.entries()) {
    const top = (height - column.length * step + MAP.rowGap) / 2;
    column.forEach((node, i) => {
      node.x = MAP.pad + c * (MAP.nodeWidth + MAP.columnGap);
      node.y = top + i * step;
    });
  }
  placePorts(graph);
  const svg = $("map");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  const edges = new Map(graph.edges.map((edge) => [edge.key, edgeElement(edge)]));
  const nodes = new Map(graph.nodes.map((node) => [node.key, nodeElement(node)]));
  svg.replaceChildren(...edges.values(), ...nodes.values());
  return { shape, edges, nodes };
}

/**
 * Where each edge leaves its caller (right side) and enters its callee (left side): spread along
 * the side in the order of the other ends, so that edges neither share an end nor cross there.
 */
function placePorts(graph) {
  for (const node of graph.nodes) {
    const spread = (edges, other, end) => {
      edges.sort((a, b) => a[other].y - b[other].y);
      edges.forEach((edge, i) => { edge[end] = node.y + (MAP.nodeHeight * (i + 1)) / (edges.length + 1); });
    };
    spread(node.calls.filter((edge) => edge.to !== node), "to", "y1");
    spread(node.callers.filter((edge) => edge.from !== node), "from", "y2");
  }
}

function svgElement(tag, attributes = {}, className = "") {
  const e = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) e.setAttribute(name, String(value));
  if (className) e.setAttribute("class", className);
  return e;
}

/** An edge: a wide transparent path to hover and click, the visible line, its arrow and its numbers. */
function edgeElement(edge) {
  const g = svgElement("g", { "data-source": edge.from.label, "data-destination": edge.to.label }, "edge");
  const { line, arrow, label } = edge.from === edge.to ? selfCallShape(edge.from) : callShape(edge);
  g.append(svgElement("title"), svgElement("path", { d: line }, "edge-hit"), svgElement("path", { d: line }, "edge-line"),
           svgElement("path", { d: arrow }, "edge-arrow"), svgElement("text", label, "edge-label"));
  g.addEventListener("click", () => openTap(rowFilter(edge.row)));
  return g;
}

/**
 * A curve from the caller's port to the callee's, level at both ends (so the arrow points right).
 * Its control points are symmetric, so its middle is the middle of its ends; the label sits on
 * the side of the middle where the curve falls away from it (right of a descending curve).
 */
function callShape(edge) {
  const x1 = edge.from.x + MAP.nodeWidth;
  const x2 = edge.to.x - MAP.arrow;
  const { y1, y2 } = edge;
  const bend = Math.max(60, Math.abs(x2 - x1) / 2);
  const [x, y] = [(x1 + x2) / 2, (y1 + y2) / 2];
  const slope = Math.abs(y2 - y1) < 4 ? 0 : Math.sign(y2 - y1);
  return {
    line: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
    arrow: `M ${edge.to.x} ${y2} l ${-MAP.arrow} -5 v 10 z`,
    label: { x: x + 6 * slope, y: y - 6, "text-anchor": ["end", "middle", "start"][slope + 1] },
  };
}

/** A node calling itself: a loop above its right end, coming down onto it. */
function selfCallShape(node) {
  const x = node.x + MAP.nodeWidth - 40;
  const y = node.y;
  return {
    line: `M ${x} ${y} C ${x} ${y - 40}, ${x + 24} ${y - 40}, ${x + 24} ${y - MAP.arrow}`,
    arrow: `M ${x + 24} ${y} l -5 ${-MAP.arrow} h 10 z`,
    label: { x: x + 12, y: y - 36, "text-anchor": "middle" },
  };
}

function styleEdge(g, edge, maxRps) {
  const row = edge.row;
  const line = g.querySelector(".edge-line");
  const color = errorColor(1 - row.successRate);
  line.setAttribute("stroke", color);
  g.querySelector(".edge-arrow").setAttribute("fill", color);
  // Width by rps on a log scale, so one busy edge does not make the others hairlines.
  const share = maxRps > 0 ? Math.log1p(row.rps) / Math.log1p(maxRps) : 0;
  line.setAttribute("stroke-width", (1.5 + 6.5 * share).toFixed(2));
  g.querySelector(".edge-label").textContent = `${row.rps.toFixed(1)} rps · ${percent(row.successRate)}`;
  g.querySelector("title").textContent = `${edge.from.label} → ${edge.to.label}\n${rowSummary(row)}`;
}

/** Green without errors, amber at 5 %, red from 20 %. */
function errorColor(rate) {
  const hue = rate <= 0.05 ? 140 - (100 * rate) / 0.05 : Math.max(0, 40 - (40 * (rate - 0.05)) / 0.15);
  return `hsl(${hue.toFixed(0)}, 70%, 52%)`;
}

function rowSummary(row) {
  const l = row.latencyMs;
  const lines = [`${row.requests} requests, ${row.rps.toFixed(2)} rps, ${percent(row.successRate)} success, ${row.errors} errors`];
  if (l) lines.push(`latency ms: p50 ${millis(l.p50)}, p90 ${millis(l.p90)}, p99 ${millis(l.p99)}, max ${millis(l.max)}`);
  if (row.flags) lines.push(`flags ${flagsLabel(row)}`);
  return lines.join("\n");
}

function nodeElement(node) {
  const id = node.identity;
  const kind = id.workload ? "workload" : id.service ? "service" : id.address ? "address" : "unknown";
  const g = svgElement("g", { "data-node": node.label, "data-kind": kind }, `node ${kind}`);
  g.append(svgElement("title"),
           svgElement("rect", { x: node.x, y: node.y, width: MAP.nodeWidth, height: MAP.nodeHeight, rx: 6 }));
  const name = svgElement("text", { x: node.x + 10, y: node.y + 16 }, "node-name");
  name.textContent = shorten(id.workload || id.service || id.address || "unknown");
  const detail = svgElement("text", { x: node.x + 10, y: node.y + 31 }, "node-detail");
  detail.textContent = shorten(id.namespace ? `${kind} · ${id.namespace}` : kind);
  g.append(name, detail);
  const filter = identityFilter(id, false);
  if (filter.length) g.addEventListener("click", () => openTap(filter));
  else g.classList.add("inert");  // an address or an unknown peer: /tap has no filter for it
  return g;
}

function styleNode(g, node) {
  const rps = (edges) => edges.reduce((sum, edge) => sum + edge.row.rps, 0).toFixed(2);
  g.querySelector("title").textContent = `${node.label}\ncalled by ${node.callers.length} at ${rps(node.callers)} rps`
    + `\ncalls ${node.calls.length} at ${rps(node.calls)} rps`;
}

function shorten(text) { return text.length > MAP.label ? text.slice(0, MAP.label - 1) + "…" : text; }
