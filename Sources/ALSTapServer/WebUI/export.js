// alstap web UI, exports: "Download capture" (the server's format=capture for the filters in
// the bar: what it kept, as a file `alstap tap -r` reads), "Download HAR" (the records in the
// list, as HAR 1.2, mapped as `alstap tap -o har` maps them: README, "HAR"), and "Copy as curl"
// for the open record. Loaded after app.js, whose state it reads.
"use strict";

const CAPTURE_LAST = 2000;     // entries asked for a capture download (the server's replay ring)

function stamp() { return new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19); }

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function downloadCapture() {
  const params = new URLSearchParams(filterParams());
  // A capture keeps whole single entries of this replica: pairs and masks are for reading it.
  for (const name of ["pair", "fields", "max_rps", "scope"]) params.delete(name);
  params.set("format", "capture");
  params.set("last", String(CAPTURE_LAST));
  params.set("follow", "0");
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const response = await fetch("/tap?" + params, { headers, cache: "no-store" });
  if (!response.ok) {
    showError(`capture: ${response.status} ${(await response.text()).trim()}`);
    return;
  }
  saveBlob(await response.blob(), `alstap-${stamp()}.alstap`);
}

// ---- HAR: the same table as the CLI's HARWriter (Sources/alstap/HAR.swift) ----

function harHeaders(object) {
  return Object.entries(object || {}).filter(([, v]) => typeof v === "string")
    .map(([name, value]) => ({ name, value })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function harHeader(name, headers) {
  const found = headers.find((h) => h.name.toLowerCase() === name);
  return found ? found.value : undefined;
}

function harQuery(path) {
  const mark = path.indexOf("?");
  if (mark < 0) return [];
  return path.slice(mark + 1).split("&").filter((p) => p !== "").map((pair) => {
    const equals = pair.indexOf("=");
    return equals < 0 ? { name: pair, value: "" } : { name: pair.slice(0, equals), value: pair.slice(equals + 1) };
  });
}

function harInt(value) { return typeof value === "number" && Math.abs(value) <= Number.MAX_SAFE_INTEGER ? Math.trunc(value) : -1; }

function harSide(value) {
  if (!value) return undefined;
  if (value.workload) return value.workload + (value.namespace ? "." + value.namespace : "");
  return value.service || value.address;
}

function hostOnly(address) {
  if (address.startsWith("[") && address.includes("]")) return address.slice(1, address.indexOf("]"));
  const colon = address.indexOf(":");
  return colon < 0 ? address : address.slice(0, colon);
}

/** One HAR entry for a tap record (undefined for TCP and notices). */
function harEntry(line) {
  let entry = line;
  const pair = {};
  if (line.type === "pair") {
    entry = line.outbound || line.inbound;
    if (!entry) return undefined;
    if (typeof line.paired === "boolean") pair.paired = line.paired;
    if (typeof line.overheadMs === "number") pair.overheadMs = line.overheadMs;
    if (line.inbound && line.inbound.durations && typeof line.inbound.durations.total === "number") {
      pair.inboundMs = line.inbound.durations.total;
    }
  }
  if (entry.type !== "http" || !entry.request) return undefined;
  const request = entry.request;
  const response = entry.response || {};
  const version = entry.protocol || "HTTP/1.1";
  const authority = request.authority || (entry.destination && entry.destination.host) || "unknown";
  const path = request.path || "/";
  const requestHeaders = harHeaders(request.headers);
  const responseHeaders = harHeaders(response.headers);
  const d = entry.durations || {};
  const total = typeof d.total === "number" ? d.total : 0;
  const send = Math.min(total, typeof d.lastRxByte === "number" ? d.lastRxByte : 0);
  const firstByte = typeof d.firstDownstreamTxByte === "number" ? d.firstDownstreamTxByte
    : typeof d.firstUpstreamRxByte === "number" ? d.firstUpstreamRxByte : send;
  const wait = Math.max(0, Math.min(total, firstByte) - send);
  const receive = Math.max(0, total - send - wait);
  const upstream = (entry.upstream && entry.upstream.host) || (entry.destination && entry.destination.address);
  const alstap = {
    direction: entry.direction, requestId: request.id,
    flags: Array.isArray(response.flags) ? response.flags.filter((f) => typeof f === "string") : undefined,
    reporter: harSide(entry.reporter) || (entry.reporter && entry.reporter.nodeId),
    source: harSide(entry.source), destination: harSide(entry.destination),
    upstreamCluster: entry.upstream && entry.upstream.cluster, responseCodeDetails: response.codeDetails, ...pair,
  };
  for (const key of Object.keys(alstap)) if (alstap[key] === undefined) delete alstap[key];
  const har = {
    startedDateTime: entry.time || "1970-01-01T00:00:00Z", time: total,
    request: {
      method: request.method || "GET", url: `${request.scheme || "http"}://${authority}${path}`, httpVersion: version,
      cookies: [], headers: requestHeaders, queryString: harQuery(path),
      headersSize: harInt(request.headerBytes), bodySize: harInt(request.bodyBytes),
    },
    response: {
      status: Math.max(0, harInt(response.code)), statusText: "", httpVersion: version,
      cookies: [], headers: responseHeaders,
      content: { size: Math.max(0, harInt(response.bodyBytes)), mimeType: harHeader("content-type", responseHeaders) || "" },
      redirectURL: harHeader("location", responseHeaders) || "",
      headersSize: harInt(response.headerBytes), bodySize: harInt(response.bodyBytes),
    },
    cache: {}, timings: { blocked: -1, dns: -1, connect: -1, ssl: -1, send, wait, receive },
    _alstap: alstap,
  };
  if (upstream) har.serverIPAddress = hostOnly(upstream);
  if (entry.source && entry.source.address) har.connection = entry.source.address;
  return har;
}

function downloadHAR() {
  const entries = records.slice().reverse().map(harEntry).filter((e) => e !== undefined);
  const har = { log: { version: "1.2", creator: { name: "alstap", version: "web UI" }, pages: [], entries } };
  saveBlob(new Blob([JSON.stringify(har, null, 1)], { type: "application/json" }), `alstap-${stamp()}.har`);
}

// ---- Copy as curl ----

/** A shell word: single quotes, with each ' written as '\'' (nothing in it is expanded). */
function shellQuote(text) { return "'" + String(text).replace(/'/g, "'\\''") + "'"; }

/** Headers a replayed request must not carry as they were (curl sets its own). */
const CURL_SKIP = ["content-length", "transfer-encoding", "host", "connection"];

/** The open record's request as a curl command (the headers Envoy logged; redacted ones left out). */
function curlCommand(record) {
  const entry = record.type === "pair" ? (record.outbound || record.inbound) : record;
  if (!entry || !entry.request) return "";
  const har = harEntry(entry) || { request: { url: "", method: "GET", headers: [] } };
  const words = ["curl", "-g"];  // -g: no globbing of [] and {} in the URL
  if (har.request.method === "HEAD") words.push("-I");
  else if (har.request.method !== "GET") words.push("-X", shellQuote(har.request.method));
  for (const h of har.request.headers) {
    if (h.value === "[redacted]" || h.name.startsWith(":") || CURL_SKIP.includes(h.name.toLowerCase())) continue;
    words.push("-H", shellQuote(`${h.name}: ${h.value}`));
  }
  words.push("--url", shellQuote(har.request.url));
  return words.join(" ");
}

async function copyCurl() {
  if (!selected) return;
  const command = curlCommand(selected);
  const shown = $("curl");
  shown.textContent = command;
  shown.hidden = false;
  try {
    await navigator.clipboard.writeText(command);
    $("copy-curl").textContent = "Copied";
  } catch (_) {
    $("copy-curl").textContent = "Select to copy";
  }
  setTimeout(() => { $("copy-curl").textContent = "Copy as curl"; }, 1500);
}

$("download-capture").addEventListener("click", () => { downloadCapture().catch((e) => showError(`capture: ${e}`)); });
$("download-har").addEventListener("click", downloadHAR);
$("copy-curl").addEventListener("click", () => { copyCurl(); });
$("close-details").addEventListener("click", () => { $("curl").hidden = true; });
