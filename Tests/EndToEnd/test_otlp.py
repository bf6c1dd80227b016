"""OpenTelemetry logs (OTLP) as a second ingest: a real Envoy (deploy/envoy/envoy-otlp.yaml) logs
the same requests over gRPC ALS, OTLP/gRPC with alstap's attribute set, OTLP/HTTP, and OTLP/gRPC
with only Istio's default text line; the OTLP entries equal the ALS ones field by field, pair with
the destination sidecar's ALS half, and count in /top. Then without Envoy: a grpcio client sends
partial successes (bad records skipped and counted, the rest published), trace ids, bodies,
custom tags and hostile bytes; requests over a bound (records, nesting, size, garbage, the ingest
token) fail whole; and OTLP/HTTP on raw sockets answers 200 / 400 / 401 / 405 / 413 / 415 as the
OTLP specification says, with Content-Length and chunked bodies, keep-alive, and clients that
vanish or stall mid-body."""
import gzip
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from conftest import ROOT, Alstap, Tap, require_tool, wait_subscribers
from test_envoy import INGEST_TOKEN, token_file, wait_envoy_ready

OTLP_SOURCE = os.path.join(ROOT, "deploy", "envoy", "envoy-otlp.yaml")
DESTINATION = os.path.join(ROOT, "deploy", "envoy", "envoy-destination.yaml")
EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
OUTBOUND_LOGS = ("als", "otlp_grpc", "otlp_http", "otlp_text")
SOURCE_NODE = "sidecar~127.0.0.1~productpage-v1-6b746f74dc-9stfk.demo~demo.svc.cluster.local"
SOURCE_POD = "productpage-v1-6b746f74dc-9stfk"


@pytest.fixture(autouse=True)
def close_taps(monkeypatch):
    """Every tap a test opened is closed when it ends, failed or not: the module's tests share one
    server and count its subscribers."""
    opened = []
    original = Tap.__init__

    def tracking(self, *args, **kwargs):
        original(self, *args, **kwargs)
        opened.append(self)
    monkeypatch.setattr(Tap, "__init__", tracking)
    yield
    for tap in opened:
        tap.close()


def wait_until(predicate, timeout, message):
    """Polls with a deadline (a loaded 2-core machine: never a fixed sleep for a result)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message() if callable(message) else message)


# --- the real Envoy ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def otlp_mesh():
    """alstap on the ports the configs name (9001 ingest, 9002 tap; test_envoy.py's module uses
    them too, so this module starts and stops its own), the OTLP source sidecar (admin 9903) and
    the destination sidecar (admin 9902)."""
    envoy = require_tool("envoy")
    require_tool("curl")
    server = None
    deadline = time.time() + 10
    while server is None:  # a previous module's alstap may still be releasing the ports
        try:
            server = Alstap("--als-token-file", token_file(), "--pair-window", "5",
                            als="127.0.0.1:9001", http="127.0.0.1:9002")
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    envoys = []
    try:
        for config, base in [(OTLP_SOURCE, 7311), (DESTINATION, 7312)]:
            envoys.append(subprocess.Popen([envoy, "-c", config, "--log-level", "warn", "--base-id", str(base)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_envoy_ready(9903)
        wait_envoy_ready(9902)
        yield server
    finally:
        for proc in envoys:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        server.stop()


def through_envoy(path, via):
    req = urllib.request.Request(f"http://127.0.0.1:10010{path}", headers={"x-via": via, "x-demo": "e2e"})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def by_path(tap):
    grouped = {}
    for entry in tap.json():
        grouped.setdefault(entry["request"]["path"], []).append(entry)
    return grouped


def close_ms(a, b, tolerance):
    return abs(a - b) <= tolerance + 1e-9


def test_envoy_logs_each_request_the_same_over_als_and_otlp(otlp_mesh):
    server = otlp_mesh
    requests = [("/ok/t1-{}", 200, None), ("/missing/t1-{}", 404, None), ("/dead/t1-{}", 503, "UF")]
    tap = Tap(server, "?path=/ok/t1-&path=/missing/t1-&path=/dead/t1-")
    wait_subscribers(server, 1)
    expected = {}
    for round_ in range(3):
        for template, code, flag in requests:
            path = template.format(round_)
            assert through_envoy(path, "both") == code
            expected[path] = (code, flag)

    def want(path):
        return len(OUTBOUND_LOGS) + (0 if path.startswith("/dead") else 1)  # + the destination's inbound
    total = sum(want(p) for p in expected)
    wait_until(lambda: len(tap.lines) >= total, 20,
               lambda: f"got {len(tap.lines)} of {total}: {Counter((e['request']['path'], e['logName']) for e in tap.json())}")
    time.sleep(1.5)  # one more flush interval of every logger: a duplicate would show up now
    entries = tap.json()
    assert len(entries) == total, Counter((e["request"]["path"], e["logName"]) for e in entries)
    stats = server.stats()
    assert stats["alsUnauthenticated"] == 0 and stats["otlpExportsGRPC"] >= 1 and stats["otlpExportsHTTP"] >= 1
    assert stats["otlpRecordsRejected"] == 0

    for path, group in by_path(tap).items():
        code, flag = expected[path]
        logs = Counter(e["logName"] for e in group)
        assert logs == Counter({**{name: 1 for name in OUTBOUND_LOGS},
                                **({} if path.startswith("/dead") else {"inbound_http": 1})}), (path, logs)
        entry = {e["logName"]: e for e in group}
        als = entry["als"]
        # The reference itself is what Envoy logged.
        assert als["direction"] == "outbound" and als["response"]["code"] == code
        assert als["response"].get("flags", []) == ([flag] if flag else [])
        assert als["request"]["headers"] == {"x-demo": "e2e"}
        assert als["request"]["id"] and als["streamId"] and als["upstream"]["host"]
        assert als["reporter"]["nodeId"] == SOURCE_NODE and als["reporter"]["pod"] == SOURCE_POD

        # The gRPC logger sends alstap's recommended attribute set: those fields equal ALS's.
        otlp = entry["otlp_grpc"]
        where = f"{path} otlp_grpc"
        for key in ("type", "time", "direction", "source", "destination", "reporter", "route", "protocol"):
            assert otlp.get(key) == als.get(key), (where, key, otlp.get(key), als.get(key))
        for key in ("method", "path", "authority", "scheme", "id", "userAgent", "bodyBytes", "headers"):
            assert otlp["request"].get(key) == als["request"].get(key), (where, key, otlp["request"], als["request"])
        for key in ("code", "codeDetails", "flags", "bodyBytes"):
            assert otlp["response"].get(key) == als["response"].get(key), (where, key, otlp["response"], als["response"])
        for key in ("cluster", "host", "localAddress"):
            assert otlp["upstream"].get(key) == als["upstream"].get(key), (where, key, otlp["upstream"], als["upstream"])
        assert set(otlp["durations"]) == {"total"}, where
        assert close_ms(otlp["durations"]["total"], als["durations"]["lastDownstreamTxByte"], 0.002), where
        # What the recommended set leaves out is absent, not made up.
        assert "streamId" not in otlp and "attemptCount" not in otlp["upstream"], where

        # The HTTP logger sends every attribute alstap reads: all of ALS's fields but one.
        for name in ("otlp_http",):
            otlp = entry[name]
            where = f"{path} {name}"
            for key in ("type", "time", "direction", "source", "destination", "reporter", "route", "protocol",
                        "streamId", "downstreamDirectRemoteAddress"):
                assert otlp.get(key) == als.get(key), (where, key, otlp.get(key), als.get(key))
            assert set(otlp) == set(als), (where, set(otlp) ^ set(als))
            assert set(otlp["request"]) == set(als["request"]), where
            for key in ("method", "path", "authority", "scheme", "id", "userAgent", "headerBytes", "bodyBytes",
                        "headers"):
                assert otlp["request"].get(key) == als["request"].get(key), (where, key, otlp["request"], als["request"])
            for key in ("code", "codeDetails", "flags", "bodyBytes", "headerBytes"):
                assert otlp["response"].get(key) == als["response"].get(key), (where, key, otlp["response"], als["response"])
            for key in ("cluster", "host", "localAddress", "attemptCount"):
                assert otlp["upstream"].get(key) == als["upstream"].get(key), (where, key, otlp["upstream"], als["upstream"])
            # Envoy's format strings (%UPSTREAM_TRANSPORT_FAILURE_REASON%, %RESPONSE_CODE_DETAILS%)
            # write "_" for every space; ALS carries the reason as Envoy has it, with spaces.
            reason = als["upstream"].get("transportFailureReason")
            assert otlp["upstream"].get("transportFailureReason") == (reason.replace(" ", "_") if reason else None)
            if path.startswith("/dead"):
                assert reason and " " in reason, "the dead upstream's failure reason (connection refused)"
            # ALS has the last downstream byte; no OTLP attribute carries it (the total is DS_TX_END).
            assert set(otlp["durations"]) == set(als["durations"]) - {"lastDownstreamTxByte"}, where
            for key, value in otlp["durations"].items():
                assert close_ms(value, als["durations"][key], 2.0 if key == "total" else 1.0), \
                    (where, key, otlp["durations"], als["durations"])
            assert close_ms(otlp["durations"]["total"], als["durations"]["lastDownstreamTxByte"], 0.002), \
                (where, otlp["durations"], als["durations"])

        # Istio's text line carries a subset (no scheme, headers, header sizes, stream id).
        text = entry["otlp_text"]
        where = f"{path} otlp_text"
        for key in ("type", "time", "direction", "route", "protocol"):
            assert text.get(key) == als.get(key), (where, key)
        for key in ("method", "path", "authority", "userAgent", "id", "bodyBytes"):
            assert text["request"].get(key) == als["request"].get(key), (where, key)
        for key in ("code", "flags", "codeDetails", "bodyBytes"):
            assert text["response"].get(key) == als["response"].get(key), (where, key)
        for key in ("cluster", "host", "localAddress"):
            assert text["upstream"].get(key) == als["upstream"].get(key), (where, key)
        assert text["upstream"].get("transportFailureReason") == entry["otlp_http"]["upstream"].get("transportFailureReason")
        assert text["source"]["address"] == als["source"]["address"]
        assert text["destination"]["address"] == als["destination"]["address"]
        assert text["destination"].get("service") == als["destination"].get("service")
        for key in ("nodeId", "namespace", "pod"):
            assert text["reporter"][key] == als["reporter"][key], (where, key)
        # %DURATION% is whole milliseconds of the request's duration, taken when the line is
        # formatted: within 1 ms of ALS's total (a slow run put it 19 µs past lastDownstreamTxByte).
        assert text["durations"]["total"] == int(text["durations"]["total"])
        assert abs(als["durations"]["total"] - text["durations"]["total"]) < 1.001, \
            (where, text["durations"], als["durations"])
    tap.close()


def test_pairs_an_otlp_outbound_half_with_an_als_inbound_half(otlp_mesh):
    server = otlp_mesh
    query = "?path=/ok/t2-&path=/missing/t2-&path=/dead/t2-"
    pairs = Tap(server, query + "&pair=1")
    plain = Tap(server, query)
    wait_subscribers(server, 2)
    expected = {}
    for via, log_name in (("otlp", "otlp_grpc"), ("http", "otlp_http")):
        for i in range(2):
            for template, code in (("/ok/t2-{}-{}", 200), ("/missing/t2-{}-{}", 404), ("/dead/t2-{}-{}", 503)):
                path = template.format(via, i)
                assert through_envoy(path, via) == code
                expected[path] = (log_name, code)
    # One record per request; the dead upstream's halves come out alone when the window (5 s) ends.
    pairs.wait_lines(len(expected), timeout=25)
    time.sleep(0.5)
    records = pairs.json()
    assert Counter(r["request"]["path"] for r in records) == Counter({p: 1 for p in expected})
    for record in records:
        path = record["request"]["path"]
        log_name, code = expected[path]
        assert record["type"] == "pair"
        assert record["outbound"]["logName"] == log_name, path
        assert record["outbound"]["response"]["code"] == code
        assert record["source"]["workload"] == "productpage-v1"
        if path.startswith("/dead"):
            assert record["paired"] is False and "inbound" not in record, path
            assert record["outbound"]["response"]["flags"] == ["UF"]
            continue
        assert record["paired"] is True, path
        assert record["inbound"]["logName"] == "inbound_http"
        assert record["inbound"]["reporter"]["workload"] == "reviews-v1"
        assert record["destination"]["workload"] == "reviews-v1"
        assert record["outbound"]["request"]["id"] == record["inbound"]["request"]["id"] == record["requestId"]
        # Confirmed by the connection both saw: the OTLP upstream local address is the inbound remote.
        assert record["outbound"]["upstream"]["localAddress"] == record["inbound"]["source"]["address"]
        assert record["overheadMs"] >= 0
    # x-via picked one logger: no ALS or text entry of the source sidecar for these requests.
    logs = Counter((e["request"]["path"], e["logName"]) for e in plain.json())
    assert logs == Counter({**{(p, name): 1 for p, (name, _) in expected.items()},
                            **{(p, "inbound_http"): 1 for p in expected if not p.startswith("/dead")}})
    pairs.close()
    plain.close()


def test_tcp_connections_logged_over_otlp_are_tcp_entries(otlp_mesh):
    """Envoy's TCP proxy logs over OTLP with the HTTP attribute set: its method, path and protocol
    format to `-`, and alstap makes TCP entries of the records, with the connection's bytes."""
    server = otlp_mesh
    tap = Tap(server, "?log_name=otlp_tcp")
    wait_subscribers(server, 1)
    before = server.stats()["entriesTCP"]
    for i in range(3):
        with socket.create_connection(("127.0.0.1", 10012), timeout=5) as sock:
            sock.sendall(f"GET /ok/tcp-otlp-{i} HTTP/1.0\r\n\r\n".encode())
            while sock.recv(4096):
                pass
    tap.wait_lines(3, timeout=20)
    time.sleep(1.0)  # a duplicate would show up now
    entries = tap.json()
    assert len(entries) == 3
    for entry in entries:
        assert entry["type"] == "tcp" and entry["direction"] == "outbound" and "request" not in entry
        assert entry["destination"]["service"] == "details" and entry["upstream"]["host"] == "127.0.0.1:10003"
        assert entry["connection"]["receivedBytes"] == len("GET /ok/tcp-otlp-0 HTTP/1.0\r\n\r\n")
        assert entry["connection"]["sentBytes"] > 0
        assert entry["reporter"]["pod"] == SOURCE_POD
    assert server.stats()["entriesTCP"] - before == 3
    tap.close()


def top_once(server, query):
    curl = require_tool("curl")
    out = subprocess.run([curl, "-s", "--max-time", "10", server.url("/top" + query)],
                         capture_output=True, text=True, timeout=15)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 1, (out.returncode, out.stdout, out.stderr)
    return json.loads(lines[0])


def test_top_counts_otlp_entries(otlp_mesh):
    server = otlp_mesh
    tap = Tap(server, "?path=/ok/t3-&path=/missing/t3-&path=/dead/t3-")
    wait_subscribers(server, 1)
    for i in range(4):
        assert through_envoy(f"/ok/t3-{i}", "otlp") == 200
    for i in range(2):
        assert through_envoy(f"/missing/t3-{i}", "otlp") == 404
        assert through_envoy(f"/dead/t3-{i}", "otlp") == 503
    tap.wait_lines(8 + 6, timeout=20)  # 8 OTLP outbound entries, 6 ALS inbound ones
    tap.close()
    paths = "&path=/ok/t3-&path=/missing/t3-&path=/dead/t3-"
    base = "?by=route&follow=0&window=60s&interval=300ms" + paths
    snapshot = top_once(server, base + "&log_name=otlp_grpc")
    assert snapshot["type"] == "top" and snapshot["by"] == "route"
    assert snapshot["totals"]["requests"] == 8
    assert snapshot["totals"]["errors"] == 2 and snapshot["totals"]["flags"] == {"UF": 2}
    rows = {(r.get("method"), r.get("route")): r for r in snapshot["rows"]}
    assert {k: r["requests"] for k, r in rows.items()} == {("GET", "reviews"): 6, ("GET", "dead-upstream"): 2}
    assert rows[("GET", "reviews")]["errors"] == 0
    assert rows[("GET", "dead-upstream")]["errors"] == 2
    assert rows[("GET", "reviews")]["source"]["workload"] == "productpage-v1"
    assert rows[("GET", "reviews")]["destination"] == {"service": "reviews", "namespace": "demo"}
    assert all(r["authority"] == "127.0.0.1:10010" for r in snapshot["rows"])
    assert rows[("GET", "reviews")]["latencyMs"]["max"] > 0
    # The other loggers' counts over the same requests: the inbound halves only; no ALS outbound.
    assert top_once(server, base + "&log_name=inbound_http")["totals"]["requests"] == 6
    assert top_once(server, base + "&log_name=als")["totals"]["requests"] == 0
    assert top_once(server, base)["totals"]["requests"] == 14


# --- a grpcio client, no Envoy ---------------------------------------------------------------

def any_value(value):
    v = common_pb2.AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, bytes):
        v.bytes_value = value
    else:
        v.string_value = value
    return v


def attributes(mapping):
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in mapping.items()]


REPORTER = {"node_name": "sidecar~10.1.0.7~productpage-v1-6b7-x9k.shop~shop.svc.cluster.local",
            "cluster_name": "productpage.shop", "log_name": "otel_e2e", "k8s.namespace.name": "shop",
            "k8s.pod.name": "productpage-v1-6b7-x9k", "k8s.deployment.name": "productpage-v1",
            "k8s.cluster.name": "Kubernetes"}
START_NANOS = 1_764_000_000_123_456_789
START_TEXT = "2025-11-24T16:00:00.123456Z"


def log_record(attrs=None, body=None, **fields):
    record = logs_pb2.LogRecord(time_unix_nano=START_NANOS, **fields)
    record.attributes.extend(attributes(attrs or {}))
    if body is not None:
        record.body.string_value = body
    return record


def export_request(*resources):
    """resources: (resource attributes, [LogRecord, ...]) each."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    for resource_attrs, records in resources:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(attributes(resource_attrs))
        resource_logs.scope_logs.add().log_records.extend(records)
    return request


def simple_records(tag, count):
    return [log_record({"http.request.method": "GET", "url.path": f"/{tag}/{i}", "http.response.status_code": 200})
            for i in range(count)]


def stub(server):
    channel = grpc.insecure_channel(server.als_target)
    return channel, logs_service_pb2_grpc.LogsServiceStub(channel)


def test_grpc_partial_success_and_the_fields_of_records(alstap):
    server = alstap
    tap = Tap(server)
    trace_id, span_id = bytes(range(0xa0, 0xb0)), bytes.fromhex("00ff10203040abcd")
    # trace_id= selects the records of one trace (any case on the query side).
    traced = Tap(server, "?trace_id=" + trace_id.hex().upper())
    wait_subscribers(server, 2)
    hostile = 'q"uote\\ new\nline\r esc\x1b[31m <script>alert(1)</script> \x7f \u2028 é'
    good_full = log_record({
        "http.request.method": "POST", "url.scheme": "https", "server.address": "reviews:9080",
        "url.path": "/t4/full", "user_agent.original": "grpc-python", "http.response.status_code": "201",
        "envoy.request_id": "t4-full-id", "envoy.response_flags": "URX,UF", "envoy.route_name": "r1",
        "envoy.upstream_cluster": "outbound|9080||reviews.books.svc.cluster.local",
        "envoy.upstream_host": "10.1.0.9:9080", "envoy.duration_us": 1500, "http.request.body.size": 12,
        "network.protocol.version": "HTTP/2", "http.request.header.x-a": "value-a",
        "team": "payments", "retries": 3, "sampled": True}, trace_id=trace_id, span_id=span_id)
    bad_number = log_record({"url.path": "/t4/bad-number", "http.response.status_code": "abc"})
    good_body = log_record(body="hello from a plain OpenTelemetry app")
    bad_type = log_record({"url.path": 42})
    good_hostile = log_record({"url.path": "/t4/" + hostile, "user_agent.original": hostile,
                               "http.request.header.x-evil": hostile, 'cu"st\nom': hostile}, body=hostile)
    other = {**REPORTER, "k8s.pod.name": "details-v1-7d8-abc", "k8s.deployment.name": "details-v1",
             "node_name": "sidecar~10.1.0.8~details-v1-7d8-abc.shop~shop.svc.cluster.local", "log_name": "otel_other"}
    request = export_request((REPORTER, [good_full, bad_number, good_body]), (other, [bad_type, good_hostile]))
    channel, client = stub(server)
    with channel:
        response = client.Export(request, timeout=10)
        assert response.partial_success.rejected_log_records == 2
        assert response.partial_success.error_message == (
            "2 log records rejected; the first: record 2 of resource 1: http.response.status_code is not a number")
        server.wait_stat("otlpRecordsRejected", lambda v: v == 2)
        tap.wait_lines(3, timeout=10)
        # A record with no body and no attribute alstap reads is rejected on its own.
        response = client.Export(export_request((REPORTER, [log_record({})])), timeout=10)
        assert response.partial_success.rejected_log_records == 1
        assert response.partial_success.error_message == (
            "1 log record rejected; the first: record 1 of resource 1: it has no body and no attribute alstap reads")
        # All good: an empty response, no partial_success.
        response = client.Export(export_request((REPORTER, simple_records("t4-ok", 1))), timeout=10)
        assert not response.HasField("partial_success")
        tap.wait_lines(4, timeout=10)
    stats = server.stats()
    assert stats["otlpRecordsRejected"] == 3 and stats["otlpExportsGRPC"] == 3 and stats["entriesHTTP"] == 4
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in tap.lines), "one line per entry"
    full, body, evil, ok = tap.json()

    assert full["time"] == START_TEXT and full["type"] == "http" and full["logName"] == "otel_e2e"
    assert full["reporter"] == {"nodeId": REPORTER["node_name"], "cluster": "productpage.shop", "workload": "productpage-v1",
                                "namespace": "shop", "pod": "productpage-v1-6b7-x9k", "clusterId": "Kubernetes"}
    assert full["direction"] == "outbound"
    assert full["source"] == {"workload": "productpage-v1", "namespace": "shop", "pod": "productpage-v1-6b7-x9k"}
    assert full["destination"]["service"] == "reviews" and full["destination"]["namespace"] == "books"
    assert full["destination"]["address"] == "10.1.0.9:9080"
    assert full["request"] == {"method": "POST", "scheme": "https", "authority": "reviews:9080", "path": "/t4/full",
                               "userAgent": "grpc-python", "id": "t4-full-id", "headerBytes": 0, "bodyBytes": 12,
                               "headers": {"x-a": "value-a"}}
    assert full["response"]["code"] == 201 and sorted(full["response"]["flags"]) == ["UF", "URX"]  # in ALS flag order
    assert full["upstream"] == {"cluster": "outbound|9080||reviews.books.svc.cluster.local", "host": "10.1.0.9:9080"}
    assert full["route"] == "r1" and full["protocol"] == "HTTP/2"
    assert full["durations"] == {"total": 1.5}
    assert full["traceId"] == trace_id.hex() == "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    assert full["spanId"] == "00ff10203040abcd"
    assert full["customTags"] == {"team": "payments", "retries": "3", "sampled": "true"}
    assert [e["request"]["path"] for e in traced.json()] == ["/t4/full"]
    traced.close()

    assert body["body"] == "hello from a plain OpenTelemetry app" and body["logName"] == "otel_e2e"
    assert "traceId" not in body and "customTags" not in body and "path" not in body["request"]

    assert evil["logName"] == "otel_other" and evil["reporter"]["workload"] == "details-v1"
    assert evil["request"]["path"] == "/t4/" + hostile
    assert evil["request"]["userAgent"] == hostile
    assert evil["request"]["headers"] == {"x-evil": hostile}
    assert evil["customTags"] == {'cu"st\nom': hostile}
    assert evil["body"] == hostile
    evil_line = tap.lines[2]
    assert "\x1b" not in evil_line and "<script>" in evil_line and "\\u001b" in evil_line.lower()
    assert "\r" not in evil_line and evil_line.index("\n") == len(evil_line) - 1

    assert ok["request"]["path"] == "/t4-ok/0" and ok["response"]["code"] == 200
    tap.close()


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7f
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field, payload):
    """A length-delimited protobuf field (python's protobuf refuses to build 200 levels)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def nested_array(depth):
    value = ld(1, b"x")  # AnyValue.string_value
    for _ in range(depth):
        value = ld(5, ld(1, value))  # AnyValue.array_value = ArrayValue{values: [value]}
    return value


def nested_kvlist(depth):
    value = ld(1, b"x")
    for _ in range(depth):
        value = ld(6, ld(1, ld(1, b"k") + ld(2, value)))  # AnyValue.kvlist_value = {values: [{key, value}]}
    return value


def raw_request(path, attribute=None, body=None):
    """An ExportLogsServiceRequest's bytes with one record whose `deep` attribute (or body) is raw."""
    record = log_record({"url.path": path}).SerializeToString()
    if attribute is not None:
        record += ld(6, ld(1, b"deep") + ld(2, attribute))  # LogRecord.attributes
    if body is not None:
        record += ld(5, body)  # LogRecord.body
    return ld(1, ld(2, ld(2, record)))  # resource_logs → scope_logs → log_records


def raw_export(channel):
    return channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)


def expect_status(call, code):
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == code, (error.value.code(), error.value.details())
    return error.value.details()


def test_grpc_requests_over_a_bound_fail_whole():
    server = Alstap("--max-entries-per-message", "50", "--max-message-bytes", "65536", "--max-unpacked-bytes", "65536")
    try:
        tap = Tap(server)
        wait_subscribers(server, 1)
        channel, client = stub(server)
        with channel:
            export = raw_export(channel)
            details = expect_status(lambda: client.Export(export_request((REPORTER, simple_records("t5-many", 51))),
                                                          timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "50" in details, details
            # Deeper than --max-nesting-depth (100): arrays and key-value lists, in an attribute or the body.
            for payload in (raw_request("/t5/deep-array", attribute=nested_array(200)),
                            raw_request("/t5/deep-kvlist", attribute=nested_kvlist(200)),
                            raw_request("/t5/deep-body", body=nested_kvlist(200))):
                expect_status(lambda: export(payload, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
                assert server.alive()
            # Garbage, and a truncated request.
            expect_status(lambda: export(b"\xff\xff\xff\xff\xff\x0f garbage", timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            good = export_request((REPORTER, simple_records("t5-cut", 3))).SerializeToString()
            expect_status(lambda: export(good[:-5], timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            # Over --max-message-bytes (64 KiB): 100 KB of records.
            big = export_request((REPORTER, [log_record({"url.path": "/t5/big/" + "x" * 2000}) for _ in range(50)]))
            assert big.ByteSize() > 100_000
            expect_status(lambda: client.Export(big, timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)
            # Under the size bound, but over --max-unpacked-bytes (64 KiB) once unpacked: 2000 attributes.
            wide = export_request((REPORTER, [log_record({f"attr{i}": "v" for i in range(2000)})]))
            assert wide.ByteSize() < 65536
            details = expect_status(lambda: client.Export(wide, timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "unpacks into more than 65536 bytes" in details, details
            stats = server.stats()
            assert stats["decodeTooManyEntries"] == 1 and stats["decodeTooDeep"] == 3, stats
            assert stats["decodeUnpackedTooLarge"] == 1, stats
            assert stats["decodeInvalidProtobuf"] == 2 and stats["decodeTooLarge"] == 1, stats
            assert stats["entriesHTTP"] == 0 and not tap.lines, "nothing of a failed request is published"
            # Still alive and serving: nesting within the bound and exactly the records limit pass.
            response = export(raw_request("/t5/shallow", attribute=nested_array(20)), timeout=10)
            assert logs_service_pb2.ExportLogsServiceResponse.FromString(response).partial_success.rejected_log_records == 0
            client.Export(export_request((REPORTER, simple_records("t5-fifty", 50))), timeout=10)
            tap.wait_lines(51, timeout=10)
        time.sleep(0.3)
        paths = [e["request"]["path"] for e in tap.json()]
        assert paths == ["/t5/shallow"] + [f"/t5-fifty/{i}" for i in range(50)]
        tap.close()
    finally:
        server.stop()


def test_grpc_ingest_token():
    server = Alstap("--als-token-file", token_file())
    try:
        tap = Tap(server)
        wait_subscribers(server, 1)
        channel, client = stub(server)
        with channel:
            request = export_request((REPORTER, simple_records("t5-token", 1)))
            expect_status(lambda: client.Export(request, timeout=10), grpc.StatusCode.UNAUTHENTICATED)
            expect_status(lambda: client.Export(request, timeout=10, metadata=[("authorization", "Bearer wrong")]),
                          grpc.StatusCode.UNAUTHENTICATED)
            assert server.stats()["entriesHTTP"] == 0
            client.Export(request, timeout=10, metadata=[("authorization", f"Bearer {INGEST_TOKEN}")])
            tap.wait_lines(1)
        assert tap.json()[0]["request"]["path"] == "/t5-token/0"
        assert server.stats()["alsUnauthenticated"] == 2
        tap.close()
    finally:
        server.stop()


# --- OTLP/HTTP on raw sockets ------------------------------------------------------------------

def read_response(sock, timeout=5):
    """One HTTP/1.1 response (alstap's have Content-Length): (status, headers, body). Reads no
    byte past it, so pipelined answers are read one by one."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"closed before a response head: {data!r}"
        data += byte
    lines = data[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk, (status, headers, body)
        body += chunk
    return status, headers, body


def closed(sock, timeout=5):
    """Whether the server closes the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def post_head(length=None, content_type="application/x-protobuf", extra="", path="/v1/logs", chunked=False):
    head = f"POST {path} HTTP/1.1\r\nHost: alstap\r\nContent-Type: {content_type}\r\n{extra}"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {length}\r\n"
    return (head + "\r\n").encode()


def exchange(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock, timeout)


def rpc_status(body):
    status = status_pb2.Status.FromString(body)
    return status.code, status.message


@pytest.fixture
def otlp_http():
    server = Alstap("--max-message-bytes", "65536", "--head-timeout", "1")
    yield server
    server.stop()


def test_otlp_http_content_length_chunked_and_keep_alive(otlp_http):
    server = otlp_http
    tap = Tap(server)
    wait_subscribers(server, 1)
    body = export_request((REPORTER, simple_records("t6-length", 2))).SerializeToString()
    status, headers, answer = exchange(server.als_port, post_head(len(body)) + body)
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    assert not logs_service_pb2.ExportLogsServiceResponse.FromString(answer).HasField("partial_success")
    tap.wait_lines(2)

    # Chunked, sent in pieces (one chunk with an extension, one split mid-data), then a second
    # request with a rejected record on the same connection.
    chunked = export_request((REPORTER, simple_records("t6-chunked", 3))).SerializeToString()
    third = len(chunked) // 3
    parts = [chunked[:third], chunked[third:2 * third], chunked[2 * third:]]
    with socket.create_connection(("127.0.0.1", server.als_port), timeout=5) as sock:
        sock.sendall(post_head(chunked=True))
        sock.sendall(f"{len(parts[0]):x};name=value\r\n".encode() + parts[0][:5])
        time.sleep(0.05)
        sock.sendall(parts[0][5:] + b"\r\n")
        time.sleep(0.05)
        sock.sendall(f"{len(parts[1]):X}\r\n".encode() + parts[1] + b"\r\n")
        time.sleep(0.05)
        sock.sendall(f"{len(parts[2]):x}\r\n".encode() + parts[2] + b"\r\n0\r\n\r\n")
        status, headers, answer = read_response(sock)
        assert status == 200 and "close" not in headers.get("connection", "").lower()
        tap.wait_lines(5)
        second = export_request((REPORTER, simple_records("t6-again", 1)
                                 + [log_record({"http.response.status_code": "abc"})])).SerializeToString()
        sock.sendall(post_head(len(second)) + second)
        status, _, answer = read_response(sock)
        assert status == 200
        partial = logs_service_pb2.ExportLogsServiceResponse.FromString(answer).partial_success
        assert partial.rejected_log_records == 1
        assert partial.error_message.endswith("record 2 of resource 1: http.response.status_code is not a number")
        tap.wait_lines(6)
        # Pipelined in one write: a chunked request with a trailer, an empty one, a Content-Length one.
        piped = export_request((REPORTER, simple_records("t6-piped", 1))).SerializeToString()
        sock.sendall(post_head(chunked=True) + f"{len(piped):x}\r\n".encode() + piped + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
                     + post_head(0) + post_head(len(piped), content_type="Application/X-Protobuf; proto=v1") + piped)
        answers = [read_response(sock) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 200] and answers[1][2] == b""
        tap.wait_lines(8)
    paths = [e["request"]["path"] for e in tap.json()]
    assert paths == ["/t6-length/0", "/t6-length/1", "/t6-chunked/0", "/t6-chunked/1", "/t6-chunked/2", "/t6-again/0",
                     "/t6-piped/0", "/t6-piped/0"]
    assert all(e["reporter"]["workload"] == "productpage-v1" for e in tap.json())
    stats = server.stats()
    assert stats["otlpExportsHTTP"] == 6 and stats["entriesHTTP"] == 8 and stats["otlpRecordsRejected"] == 1
    assert stats["bufferedMessageBytes"] == 0
    tap.close()


def test_otlp_http_refusals(otlp_http):
    server = otlp_http
    port = server.als_port
    tap = Tap(server)
    wait_subscribers(server, 1)
    good = export_request((REPORTER, simple_records("t6-refused", 1))).SerializeToString()

    json_body = b'{"resourceLogs":[]}'
    status, _, answer = exchange(port, post_head(len(json_body), content_type="application/json") + json_body)
    assert status == 415 and "not JSON" in rpc_status(answer)[1], answer
    gzipped = gzip.compress(good)
    status, _, answer = exchange(port, post_head(len(gzipped), extra="Content-Encoding: gzip\r\n") + gzipped)
    assert status == 415 and "gzip" in rpc_status(answer)[1], answer

    garbage = b"\xff\xff\xff\xff\xff\x0f not protobuf"
    status, headers, answer = exchange(port, post_head(len(garbage)) + garbage)
    assert status == 400 and headers["content-type"] == "application/x-protobuf"
    code, message = rpc_status(answer)
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "does not decode" in message, (code, message)

    # Content-Length over --max-message-bytes: 413 before the body, then close.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(post_head(65537))
        status, _, answer = read_response(sock)
        assert status == 413 and "65536" in rpc_status(answer)[1]
        assert closed(sock)
    # Chunks summing past it: 4 × 16 KiB is exactly the bound, one more byte is over.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(post_head(chunked=True))
        for _ in range(4):
            sock.sendall(b"4000\r\n" + b"\x0a" * 0x4000 + b"\r\n")
        sock.sendall(b"1\r\n\x0a\r\n")
        status, _, _ = read_response(sock)
        assert status == 413
        assert closed(sock)
    # A chunk size that is not hex.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(post_head(chunked=True) + b"zz\r\nabc\r\n")
        status, _, _ = read_response(sock)
        assert status == 400
        assert closed(sock)
    status, _, answer = exchange(port, b"GET /v1/logs HTTP/1.1\r\nHost: alstap\r\n\r\n")
    assert status == 405 and rpc_status(answer) == (3, "POST /v1/logs only")
    # The tap listener is no ingest: POST /v1/logs there is an unknown route, not an export.
    status, _, _ = exchange(server.http_port, post_head(len(good)) + good)
    assert status == 404
    stats = server.stats()
    assert stats["otlpExportsHTTP"] == 1, "only the garbage body reached the decoder"
    assert stats["entriesHTTP"] == 0 and not tap.lines
    assert stats["otlpHTTPRefused"] >= 4 and stats["decodeTooLarge"] >= 1
    assert stats["bufferedMessageBytes"] == 0 and server.alive()
    # And it still takes a good request.
    assert exchange(port, post_head(len(good)) + good)[0] == 200
    tap.wait_lines(1)
    tap.close()


def test_otlp_http_ingest_token():
    server = Alstap("--als-token-file", token_file())
    try:
        body = export_request((REPORTER, simple_records("t6-token", 1))).SerializeToString()
        for extra in ("", "Authorization: Bearer wrong\r\n", f"Authorization: {INGEST_TOKEN}\r\n"):
            status, _, answer = exchange(server.als_port, post_head(len(body), extra=extra) + body)
            assert status == 401 and "token" in rpc_status(answer)[1], extra
        assert server.stats()["entriesHTTP"] == 0
        status, _, _ = exchange(server.als_port, post_head(len(body), extra=f"Authorization: Bearer {INGEST_TOKEN}\r\n") + body)
        assert status == 200
        server.wait_stat("entriesHTTP", lambda v: v == 1)
    finally:
        server.stop()


def test_otlp_http_clients_that_vanish_or_stall_mid_body(otlp_http):
    server = otlp_http
    body = export_request((REPORTER, simple_records("t6-half", 40))).SerializeToString()
    half = body[:len(body) // 2]
    # Half a body, then gone: its bytes were counted as in flight, and are released.
    sock = socket.create_connection(("127.0.0.1", server.als_port), timeout=5)
    sock.sendall(post_head(len(body)) + half)
    server.wait_stat("bufferedMessageBytes", lambda v: v == len(half))
    sock.close()
    server.wait_stat("bufferedMessageBytes", lambda v: v == 0)
    assert server.alive()
    # Half a body, then silence: closed once the head timeout (1 s) has passed.
    before = server.stats()["headTimeouts"]
    with socket.create_connection(("127.0.0.1", server.als_port), timeout=5) as sock:
        sock.sendall(post_head(len(body)) + half)
        started = time.time()
        server.wait_stat("bufferedMessageBytes", lambda v: v == len(half))
        assert closed(sock, timeout=8), "a stalled upload was never closed"
        assert 0.8 <= time.time() - started < 6
    server.wait_stat("bufferedMessageBytes", lambda v: v == 0)
    assert server.stats()["headTimeouts"] == before + 1
    assert server.stats()["entriesHTTP"] == 0
    # A whole request afterwards is served.
    assert exchange(server.als_port, post_head(len(body)) + body)[0] == 200
    server.wait_stat("entriesHTTP", lambda v: v == 40)


def test_otlp_http_bytes_in_flight_bound():
    """--max-buffered-message-bytes counts OTLP/HTTP bodies still arriving: the upload that would
    pass it is refused with 503 (a google.rpc.Status, RESOURCE_EXHAUSTED), the others go on."""
    server = Alstap("--max-buffered-message-bytes", "100000")
    try:
        body = export_request((REPORTER, simple_records("t6-inflight", 800))).SerializeToString()
        assert 60_000 < len(body) < 100_000
        first = socket.create_connection(("127.0.0.1", server.als_port), timeout=5)
        first.sendall(post_head(len(body)) + body[:59_000])
        server.wait_stat("bufferedMessageBytes", lambda v: v == 59_000)
        with socket.create_connection(("127.0.0.1", server.als_port), timeout=5) as second:
            second.sendall(post_head(len(body)) + body[:59_000])
            status, _, answer = read_response(second)
            assert status == 503 and rpc_status(answer)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert server.stats()["bufferedTooLarge"] == 1
        first.sendall(body[59_000:])
        assert read_response(first)[0] == 200
        first.close()
        server.wait_stat("entriesHTTP", lambda v: v == 800)
        server.wait_stat("bufferedMessageBytes", lambda v: v == 0)
    finally:
        server.stop()


def test_grpc_export_is_unary():
    """Export is unary: a call that sends a second request message is INVALID_ARGUMENT, and like
    every failed request it publishes nothing (a gRPC server runs a unary handler once the client
    has half-closed: grpc-java answers INTERNAL "Too many requests" without calling it)."""
    server = Alstap()
    try:
        tap = Tap(server)
        wait_subscribers(server, 1)
        channel, client = stub(server)
        with channel:
            twice = channel.stream_unary(EXPORT, request_serializer=None, response_deserializer=None)
            message = export_request((REPORTER, simple_records("t5-twice", 1))).SerializeToString()
            expect_status(lambda: twice(iter([message, message]), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            # None at all is not a request either.
            expect_status(lambda: twice(iter([]), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
            assert server.alive()
            client.Export(export_request((REPORTER, simple_records("t5-once", 1))), timeout=10)
            tap.wait_lines(1)
        time.sleep(0.3)
        paths = [e["request"]["path"] for e in tap.json()]
        assert paths == ["/t5-once/0"], f"a failed call published its first message: {paths}"
        tap.close()
    finally:
        server.stop()
