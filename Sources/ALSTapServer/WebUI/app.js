// alstap web UI: reads /tap as NDJSON over fetch (so a bearer token can be sent), keeps the
// filters in the page URL, keeps the newest MAX_ROWS records and draws only the rows in view
// (a virtual list: the page does the same work at 10 entries/s and at 10 000). At thousands of
// entries per second most lines are never shown (nobody reads 10 000 rows a second): they are
// counted, and only the lines that reach the list are parsed. Every value from an access log is
// set as text, never as HTML. The Top and Map views (top.js) read /top the same way, with the
// same filters; one stream is open at a time, the current view's.
"use strict";

const MAX_ROWS = 1000;
const RECONNECT_MS = 2000;
const HISTORY = 200;           // recent entries asked for when a view opens (not on reconnects)
const RENDER_MS = 100;         // at most ten list updates a second...
const ROWS_PER_RENDER = 250;   // ...each adding at most this many records (the newest)
const ROW_PX = 20;             // every row's height (app.css), so the rows in view are known
const FORM_FIELDS = ["ns", "workload", "pod", "destination", "method", "code", "path", "direction",
                     "min_duration", "flags", "errors", "probes", "pair"];
const VIEWS = ["live", "top", "map"];
const TOP_ROWS = 200;          // groups asked of /top (most requests first)
const TAP_ONLY = ["last", "max_rps", "follow"];  // /tap parameters a /top view does not pass on

const $ = (id) => document.getElementById(id);
const form = $("filters");
const tbody = document.querySelector("#entries tbody");
const scroller = document.querySelector(".table-wrap");
const sizer = $("sizer");
const topBy = $("top-by");
const topWindow = $("top-window");

let controller = null;         // aborts the current stream (/tap or /top)
let reconnectTimer = null;
let paused = false;
let incoming = [];             // lines received since the last render (the newest ROWS_PER_RENDER kept)
let frameRequested = false;
let lastRender = 0;
let selected = null;           // the record whose details are open
let records = [];              // newest first, at most MAX_ROWS
const counts = { received: 0, lost: 0, held: 0 };
let extraParams = new URLSearchParams();  // URL parameters the form has no field for (kept as they are)
let view = "live";

// ---- filters <-> URL ----

function loadFiltersFromURL() {
  const params = new URLSearchParams(location.search);
  extraParams = new URLSearchParams();
  for (const [name, value] of params) {
    if (name === "view") { view = VIEWS.includes(value) ? value : "live"; continue; }
    if (name === "by") { choose(topBy, value); continue; }
    if (name === "window") { choose(topWindow, value); continue; }
    // `!path=/healthz` shows in the path field as `!/healthz`.
    const negated = name.startsWith("!") && name !== "!" && FORM_FIELDS.includes(name.slice(1));
    const base = negated ? name.slice(1) : name;
    if (!FORM_FIELDS.includes(base)) { extraParams.append(name, value); continue; }
    const field = form.elements[base];
    if (field.type === "checkbox") {
      // The box sends one value (errors=1, probes=0); any other is kept as the URL had it.
      if (!negated && (value === field.value || (field.value === "1" && value === "true"))) field.checked = true;
      else extraParams.append(name, value);
    } else if (!field.value) {
      field.value = negated ? "!" + value : value;
    } else if (negated === field.value.startsWith("!")) {
      field.value += "," + value;  // repeats of one kind: one field, comma-separated
    } else {
      extraParams.append(name, value);  // `path=/a&!path=/b`: the field shows one of them
    }
  }
}

function filterParams() {
  const params = new URLSearchParams();
  for (const name of FORM_FIELDS) {
    const field = form.elements[name];
    if (field.type === "checkbox") { if (field.checked) params.set(name, field.value); continue; }
    const value = field.value.trim();
    // A leading ! negates the filter: none of the values.
    if (value.startsWith("!") && value.length > 1) params.set("!" + name, value.slice(1));
    else if (value) params.set(name, value);
  }
  for (const [name, value] of extraParams) params.append(name, value);
  return params;
}

/** Selects `value` when the select offers it (a URL may say anything). */
function choose(select, value) {
  if ([...select.options].some((option) => option.value === value)) select.value = value;
}

/** The page's own URL: the view and its settings (defaults left out), then the filters. */
function pageParams(filters) {
  const params = new URLSearchParams();
  if (view !== "live") params.set("view", view);
  if (view === "top" && topBy.value !== "edge") params.set("by", topBy.value);
  if (view !== "live" && topWindow.value !== "10s") params.set("window", topWindow.value);
  for (const [name, value] of filters) params.append(name, value);
  return params;
}

function tapParams(filters, withHistory) {
  const params = new URLSearchParams(filters);
  params.set("format", "json");
  // Replay gives single entries, so a pair view starts live.
  if (withHistory && !params.has("pair") && !params.has("last")) params.set("last", String(HISTORY));
  return params;
}

/** /top takes /tap's filters; the map always shows edges. */
function topParams(filters) {
  const params = new URLSearchParams(filters);
  for (const name of TAP_ONLY) params.delete(name);
  params.set("by", view === "map" ? "edge" : topBy.value);
  params.set("window", topWindow.value);
  params.set("limit", String(TOP_ROWS));
  params.set("format", "json");
  return params;
}

/**
 * Opens the live tap on one group of Top or Map: the group's parameters replace the same ones
 * in the filter bar; the others stay, as the group was counted under them too.
 */
function openTap(filter) {
  for (const [name, value] of filter) {
    if (FORM_FIELDS.includes(name)) form.elements[name].value = value;
    else extraParams.set(name, value);
  }
  showView("live");
  connect(true);
}

// ---- the stream ----

function token() { return sessionStorage.getItem("alstap-token"); }

/** Opens the current view's stream; `withHistory`: the live tap first asks for recent entries. */
function connect(withHistory = false) {
  const filters = filterParams();
  const pageQuery = pageParams(filters);
  history.replaceState(null, "", pageQuery.toString() ? "?" + pageQuery : location.pathname);
  if (view === "live") openStream("/tap", tapParams(filters, withHistory), receive);
  else openStream("/top", topParams(filters), receiveSnapshot);
}

/** Reads NDJSON from `path`, each line to `onLine` (true: the server's shutdown notice). */
async function openStream(path, params, onLine) {
  clearTimeout(reconnectTimer);
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  showError("");
  setStatus("connecting", "");
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  let response;
  try {
    response = await fetch(path + "?" + params, { headers, signal, cache: "no-store" });
  } catch (error) {
    if (!signal.aborted) retryLater("unreachable");
    return;
  }
  if (response.status === 401) {
    setStatus("token needed", "down");
    $("token-form").hidden = false;
    $("token").focus();
    return;
  }
  if (!response.ok) {
    // A bad filter: the server's message names the parameter.
    showError(`${response.status} ${response.statusText}: ${(await response.text()).trim()}`);
    setStatus("not connected", "down");
    return;
  }
  $("token-form").hidden = true;
  setStatus("live", "live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let partial = "";
  let shutdown = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (partial + value).split("\n");
      partial = lines.pop();  // the start of a line the next read completes
      // A line read before a view switch aborted the stream belongs to the old view.
      for (const line of lines) if (line && !signal.aborted) shutdown = onLine(line) || shutdown;
    }
  } catch (error) {
    if (signal.aborted) return;
  }
  if (!signal.aborted) retryLater(shutdown ? "server shut down" : "stream ended");
}

function retryLater(why) {
  setStatus(`${why}; reconnecting`, "down");
  reconnectTimer = setTimeout(connect, RECONNECT_MS);
}

/** Handles one line; returns true for the shutdown notice. Entries stay unparsed until shown. */
function receive(line) {
  if (line.startsWith('{"type":"lost"')) {
    counts.lost += JSON.parse(line).count;
    updateCounters();
    return false;
  }
  if (line.startsWith('{"type":"shutdown"')) return true;
  if (line.startsWith('{"type":"notice"')) return false;
  counts.received += 1;
  if (paused) counts.held += 1;
  incoming.push(line);
  if (incoming.length > 2 * ROWS_PER_RENDER) incoming = incoming.slice(-ROWS_PER_RENDER);
  scheduleFrame();
  return false;
}

/** Handles one /top line: a snapshot for the view, or the shutdown notice (true). */
function receiveSnapshot(line) {
  const record = JSON.parse(line);
  if (record.type === "shutdown") return true;
  if (record.type !== "top") return false;
  showTotals(record);
  if (view === "map") renderMap(record);
  else renderTop(record);
  return false;
}

// ---- the table ----

function scheduleFrame() {
  if (frameRequested) return;
  frameRequested = true;
  const wait = Math.max(0, lastRender + RENDER_MS - performance.now());
  setTimeout(() => requestAnimationFrame(renderFrame), wait);
}

function renderFrame() {
  frameRequested = false;
  lastRender = performance.now();
  if (paused) {  // the counters move; the rows wait
    updateCounters();
    return;
  }
  const batch = incoming.slice(-ROWS_PER_RENDER).map((line) => JSON.parse(line)).reverse();  // newest first
  incoming = [];
  records = batch.concat(records).slice(0, MAX_ROWS);
  // Someone reading further down keeps the same rows in view.
  if (scroller.scrollTop > 0) scroller.scrollTop += batch.length * ROW_PX;
  drawRows();
  updateCounters();
}

/** Draws the rows in view (and a few around them) over a sizer as tall as every record. */
function drawRows() {
  sizer.style.height = `${records.length * ROW_PX}px`;
  const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_PX) - 5);
  const last = Math.min(records.length, first + Math.ceil(scroller.clientHeight / ROW_PX) + 10);
  $("entries").style.top = `${first * ROW_PX}px`;
  const fragment = document.createDocumentFragment();
  for (let i = first; i < last; i++) fragment.appendChild(row(records[i], i));
  tbody.replaceChildren(fragment);
}

function row(record, index) {
  const view = summarize(record);
  const tr = document.createElement("tr");
  tr.dataset.index = String(index);
  if (record === selected) tr.className = "selected";
  cell(tr, view.time);
  cell(tr, view.direction, "dir " + (record.type === "pair" ? "pair" : ""));
  cell(tr, `${view.source} → ${view.destination}`);
  cell(tr, view.method);
  cell(tr, view.path).title = view.path;
  cell(tr, view.code || "—", "code-" + String(view.code || 0)[0]);
  cell(tr, view.latency);
  cell(tr, view.flags, "flags");
  return tr;
}

function cell(tr, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  tr.appendChild(td);
  return td;
}

/** The table's view of a single entry or a pair record. */
function summarize(record) {
  if (record.type === "pair") {
    const half = record.outbound || record.inbound;
    const final = record.inbound || record.outbound;
    const latency = [record.outbound && `out ${ms(total(record.outbound))}`,
                     record.inbound && `in ${ms(total(record.inbound))}`].filter(Boolean).join(" / ");
    const flags = new Set([...flagsOf(record.outbound), ...flagsOf(record.inbound)]);
    return {
      time: clock(half.time), direction: record.paired ? "pair" : "lone",
      source: side(record.source), destination: side(record.destination),
      method: (record.request || {}).method || "", path: pathOf(record.request),
      code: (final.response || {}).code, latency, flags: [...flags].join(","),
    };
  }
  const tcp = record.type === "tcp";
  const connection = record.connection || {};
  return {
    time: clock(record.time), direction: record.direction || "",
    source: side(record.source), destination: side(record.destination),
    method: tcp ? "TCP" : (record.request || {}).method || "",
    path: tcp ? `rx=${connection.receivedBytes ?? 0} tx=${connection.sentBytes ?? 0}` : pathOf(record.request),
    code: tcp ? 0 : (record.response || {}).code, latency: ms(total(record)), flags: flagsOf(record).join(","),
  };
}

function side(s) {
  if (!s) return "?";
  if (s.workload) return s.namespace ? `${s.workload}.${s.namespace}` : s.workload;
  if (s.service) return `${s.service}${s.namespace ? "." + s.namespace : ""}${s.port ? ":" + s.port : ""}`;
  return s.address || "?";
}
function pathOf(request) { return request ? (request.authority || "") + (request.path || "") : ""; }
function total(entry) { return entry && entry.durations ? entry.durations.total : undefined; }
function flagsOf(entry) { return (entry && entry.response && entry.response.flags) || []; }
function ms(value) { return value === undefined ? "" : `${value.toFixed(2)}ms`; }
function clock(time) { return time ? time.slice(11, 23) : ""; }

function updateCounters() {
  $("shown").textContent = records.length;
  $("received").textContent = counts.received;
  $("lost").textContent = counts.lost;
  $("held").textContent = counts.held;
  $("paused-note").hidden = !paused;
}

// ---- details ----

function showDetails(record) {
  selected = record;
  drawRows();
  const view = summarize(record);
  $("details-title").textContent = `${view.method} ${view.path} → ${view.code || "—"}`;
  const body = $("details-body");
  body.replaceChildren();
  if (record.type === "pair") {
    if (record.overheadMs !== undefined) {
      const p = element("p", "overhead", `overhead ${record.overheadMs.toFixed(3)}ms (outbound total − inbound total: network and both sidecars)`);
      body.appendChild(p);
    } else {
      body.appendChild(element("p", "overhead", "not paired: only one sidecar logged this request in the window"));
    }
    body.appendChild(section("timings", pairWaterfall(record)));
    body.appendChild(section("request", fields(record.request)));
    const sides = element("div", "sides");
    sides.appendChild(section("source", fields(record.source)));
    sides.appendChild(section("destination", fields(record.destination)));
    body.appendChild(sides);
    const halves = element("div", "sides");
    if (record.outbound) halves.appendChild(entrySections("outbound (source sidecar)", record.outbound));
    if (record.inbound) halves.appendChild(entrySections("inbound (destination sidecar)", record.inbound));
    body.appendChild(halves);
    for (const [n, attempt] of (record.attempts || []).entries()) body.appendChild(entrySections(`earlier attempt ${n + 1}`, attempt));
  } else {
    body.appendChild(section("timings", waterfall([{ label: "", entry: record, offset: 0 }])));
    body.appendChild(entrySections("", record));
  }
  const raw = element("pre", "raw", JSON.stringify(record, null, 2));
  body.appendChild(section("record", raw));
  $("details").hidden = false;
}

function entrySections(title, entry) {
  const box = element("div");
  if (title) box.appendChild(element("h3", "", title));
  const parts = [["request", entry.request], ["response", entry.response], ["source", entry.source],
                 ["destination", entry.destination], ["reporter", entry.reporter], ["upstream", entry.upstream],
                 ["tls", entry.tls], ["connection", entry.connection]];
  const top = {};
  for (const key of ["time", "type", "direction", "protocol", "route", "logName", "streamId"]) {
    if (entry[key] !== undefined) top[key] = entry[key];
  }
  box.appendChild(section("entry", fields(top)));
  for (const [name, value] of parts) if (value) box.appendChild(section(name, fields(value)));
  return box;
}

/** A definition list of an object's fields; nested objects (headers, labels) flattened as a.b. */
function fields(object, prefix = "", dl = element("dl")) {
  for (const [key, value] of Object.entries(object || {})) {
    const name = prefix + key;
    if (value && typeof value === "object" && !Array.isArray(value)) { fields(value, name + ".", dl); continue; }
    dl.appendChild(element("dt", "", name));
    dl.appendChild(element("dd", "", Array.isArray(value) ? value.join(", ") : String(value)));
  }
  return dl;
}

const PHASES = [
  ["request received", 0, "lastRxByte", ""],
  ["request upstream", "firstUpstreamTxByte", "lastUpstreamTxByte", "upstream"],
  ["waiting upstream", "lastUpstreamTxByte", "firstUpstreamRxByte", "wait"],
  ["response upstream", "firstUpstreamRxByte", "lastUpstreamRxByte", "upstream"],
  ["response sent", "firstDownstreamTxByte", "lastDownstreamTxByte", "downstream"],
];

/** Bars for each phase Envoy timed, on one scale; `offset` shifts an entry (ms) on the scale. */
function waterfall(lanes) {
  const scale = Math.max(...lanes.map((l) => l.offset + (total(l.entry) || 0)), 0.001);
  const box = element("div", "waterfall");
  for (const { label, entry, offset, className } of lanes) {
    const d = entry.durations || {};
    if (d.total !== undefined) box.appendChild(bar(`${label}total`, offset, d.total, scale, "total " + (className || "")));
    for (const [name, from, to, kind] of PHASES) {
      const start = from === 0 ? 0 : d[from];
      const end = d[to];
      if (start === undefined || end === undefined) continue;
      box.appendChild(bar(label + name, offset + start, end - start, scale, className || kind));
    }
  }
  return box;
}

function pairWaterfall(record) {
  const lanes = [];
  if (record.outbound) lanes.push({ label: "out: ", entry: record.outbound, offset: 0 });
  if (record.inbound) {
    // The inbound sidecar's work sits inside the outbound total: place it by the start times
    // when the clocks agree, else centre it in the overhead.
    const outTotal = total(record.outbound) || 0;
    const inTotal = total(record.inbound) || 0;
    let offset = record.outbound ? (Date.parse(record.inbound.time) - Date.parse(record.outbound.time)) : 0;
    if (!(offset >= 0 && offset + inTotal <= outTotal)) offset = Math.max(0, (outTotal - inTotal) / 2);
    lanes.push({ label: "in: ", entry: record.inbound, offset, className: "inbound" });
  }
  return waterfall(lanes);
}

function bar(label, start, length, scale, className) {
  const rowElement = element("div", "wf-row");
  rowElement.appendChild(element("span", "", label));
  const track = element("div", "wf-track");
  const fill = element("div", "wf-bar " + className);
  fill.style.left = `${(100 * start) / scale}%`;
  fill.style.width = `${(100 * Math.max(length, 0)) / scale}%`;
  track.appendChild(fill);
  rowElement.appendChild(track);
  rowElement.appendChild(element("span", "", ms(length)));
  return rowElement;
}

function section(title, content) {
  const s = element("section");
  s.appendChild(element("h3", "", title));
  s.appendChild(content);
  return s;
}

function element(tag, className = "", text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- controls ----

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + kind;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

/** Shows one view (Live, Top or Map) and its controls; the caller opens its stream. */
function showView(name) {
  view = name;
  for (const button of $("views").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
  $("live-view").hidden = view !== "live";
  $("live-bar").hidden = view !== "live";
  $("top-bar").hidden = view === "live";
  $("top-by-label").hidden = view !== "top";
  $("top-view").hidden = view !== "top";
  $("map-view").hidden = view !== "map";
  clearTable();
  clearTopViews();
}

$("views").addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button || button.dataset.view === view) return;
  showView(button.dataset.view);
  connect(true);
});

for (const select of [topBy, topWindow]) {
  select.addEventListener("change", () => {
    clearTopViews();
    connect();
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTable();
  clearTopViews();
  connect(true);
});

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("alstap-token", $("token").value.trim());
  connect(true);
});

$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  counts.held = 0;
  if (!paused && incoming.length) scheduleFrame();
  updateCounters();
});

$("clear").addEventListener("click", clearTable);

function clearTable() {
  records = [];
  selected = null;
  drawRows();
  incoming = [];
  counts.received = counts.lost = counts.held = 0;
  $("details").hidden = true;
  updateCounters();
}

tbody.addEventListener("click", (event) => {
  const tr = event.target.closest("tr");
  if (tr) showDetails(records[Number(tr.dataset.index)]);
});

scroller.addEventListener("scroll", () => requestAnimationFrame(drawRows), { passive: true });

$("close-details").addEventListener("click", () => {
  $("details").hidden = true;
  selected = null;
  drawRows();
});

loadFiltersFromURL();
showView(view);
connect(true);
