"""Live aggregates (`/top`) with known traffic through real grpcio streams and curl: exact counts
per edge and route, percentiles within 1 %, pair overhead, formats, HTTP/2, bad parameters,
hostile names, and a client that leaves."""
import json
import math
import subprocess
import time

import als
from conftest import Alstap, Tap, require_tool, wait_subscribers
from test_pairing import DESTINATION, SOURCE, half, stream

PRODUCTPAGE = als.identifier(workload="productpage-v1", namespace="shop")


def call(cluster, millis, code=200, path="/", flags=None, route=None):
    """An outbound entry from the stream's reporter to `cluster`'s service."""
    entry = als.accesslog_pb2.HTTPAccessLogEntry()
    c = entry.common_properties
    c.start_time.FromNanoseconds(1_764_000_000_000_000_000)
    c.duration.FromMicroseconds(int(millis * 1000))
    c.upstream_cluster = f"outbound|9080||{cluster}.svc.cluster.local"
    c.upstream_remote_address.socket_address.address = "10.0.0.9"
    c.upstream_remote_address.socket_address.port_value = 9080
    if route:
        c.route_name = route
    if flags == "UF":
        c.response_flags.upstream_connection_failure = True
    entry.request.request_method = als.base_pb2.GET
    entry.request.authority = cluster.split(".")[0] + ":9080"
    entry.request.path = path
    entry.request.request_body_bytes = 10
    entry.response.response_code.value = code
    entry.response.response_body_bytes = 100
    return entry


def known_traffic():
    """30 calls to reviews (1..30 ms, 3 of them 503 UF), 10 to ratings (5 ms)."""
    reviews = [call("reviews.books", i, code=503 if i % 10 == 0 else 200, path=f"/reviews/{i}",
                    flags="UF" if i % 10 == 0 else None) for i in range(1, 31)]
    ratings = [call("ratings.books", 5, path="/ratings", route="ratings-route") for _ in range(10)]
    return reviews + ratings


def snapshots(tap):
    return [line for line in tap.json() if line.get("type") == "top"]


def wait_snapshot(tap, predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        matching = [s for s in snapshots(tap) if predicate(s)]
        if matching:
            return matching[-1]
        time.sleep(0.05)
    raise AssertionError(f"no snapshot matched; last: {snapshots(tap)[-1:]}")


def within_one_percent(value, exact):
    return abs(value - exact) <= 0.01 * exact


def row(snapshot, **labels):
    found = [r for r in snapshot["rows"] if all(r.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{labels} in {snapshot['rows']}"
    return found[0]


def test_counts_are_exact_per_edge_and_percentiles_within_one_percent(alstap):
    top = Tap(alstap, "?interval=200ms&window=30s", path="/top")
    routes = Tap(alstap, "?interval=200ms&by=route", path="/top")
    try:
        wait_subscribers(alstap, 2)
        stream(alstap, PRODUCTPAGE, known_traffic())
        snapshot = wait_snapshot(top, lambda s: s["totals"]["requests"] == 40)
        assert snapshot["by"] == "edge" and snapshot["window"] == 30 and snapshot["groups"] == 2
        source = {"workload": "productpage-v1", "namespace": "shop"}
        reviews = row(snapshot, destination={"service": "reviews", "namespace": "books"})
        ratings = row(snapshot, destination={"service": "ratings", "namespace": "books"})
        assert reviews["source"] == ratings["source"] == source
        assert snapshot["rows"][0] == reviews, "most requests first"
        assert (reviews["requests"], reviews["errors"], ratings["requests"], ratings["errors"]) == (30, 3, 10, 0)
        assert reviews["successRate"] == 0.9 and reviews["flags"] == {"UF": 3}
        assert (reviews["bytesReceived"], reviews["bytesSent"]) == (300, 3000)
        latency = reviews["latencyMs"]
        assert within_one_percent(latency["p50"], 15) and within_one_percent(latency["p90"], 27)
        assert within_one_percent(latency["p99"], 30) and latency["max"] == 30.0
        assert ratings["latencyMs"]["max"] == 5.0 and within_one_percent(ratings["latencyMs"]["p50"], 5)
        assert math.isclose(reviews["rps"], 30 / snapshot["covered"], rel_tol=5e-3), "rps = requests / covered (both rounded to 3 decimals)"
        assert snapshot["totals"]["requests"] == 40 and snapshot["totals"]["errors"] == 3

        by_route = wait_snapshot(routes, lambda s: s["totals"]["requests"] == 40)
        assert sorted((r["route"], r["method"], r["authority"], r["requests"]) for r in by_route["rows"]) == [
            ("/reviews/{id}", "GET", "reviews:9080", 30), ("ratings-route", "GET", "ratings:9080", 10)]
    finally:
        top.close()
        routes.close()


def test_filters_narrow_what_is_counted(alstap):
    top = Tap(alstap, "?interval=200ms&code=5xx", path="/top")
    try:
        wait_subscribers(alstap, 1)
        stream(alstap, PRODUCTPAGE, known_traffic())
        alstap.wait_stat("entriesReceived", lambda v: v == 40)
        snapshot = wait_snapshot(top, lambda s: s["totals"]["requests"] > 0)
        time.sleep(0.5)
        snapshot = snapshots(top)[-1]
        assert [(r["destination"]["service"], r["requests"], r["errors"]) for r in snapshot["rows"]] == [("reviews", 3, 3)]
    finally:
        top.close()


def test_pairs_give_each_edge_its_overhead(alstap):
    top = Tap(alstap, "?interval=200ms&pair=1", path="/top")
    try:
        wait_subscribers(alstap, 1)
        stream(alstap, SOURCE, [half("out", f"p-{i}", 5, port=5000 + i) for i in range(10)])
        stream(alstap, DESTINATION, [half("in", f"p-{i}", 3, port=5000 + i) for i in range(10)])
        snapshot = wait_snapshot(top, lambda s: s["totals"]["requests"] == 10)
        edge = snapshot["rows"][0]
        assert len(snapshot["rows"]) == 1 and edge["requests"] == 10, "one request per pair, not two entries"
        assert edge["source"] == {"workload": "productpage-v1", "namespace": "shop"}
        assert within_one_percent(edge["overheadMs"]["p50"], 2) and edge["overheadMs"]["max"] == 2.0
        assert edge["latencyMs"]["max"] == 5.0, "the outbound total: the request as its caller saw it"
    finally:
        top.close()


def test_follow_zero_formats_and_http2(alstap):
    curl = require_tool("curl")

    def get(query, *extra):
        return subprocess.run([curl, "-s", *extra, alstap.url("/top" + query)], capture_output=True, text=True,
                              timeout=10)

    stream(alstap, PRODUCTPAGE, known_traffic()[:5])
    alstap.wait_stat("entriesReceived", lambda v: v == 5)
    # A new aggregate starts with the recent history alstap kept: one snapshot after the
    # interval, then the end.
    once = get("?follow=0&interval=100ms")
    lines = once.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["type"] == "top"
    assert json.loads(lines[0])["totals"]["requests"] == 5
    text = get("?follow=0&interval=100ms&format=text&by=destination").stdout.splitlines()
    assert text[0].startswith("# top by destination at ") and text[1].startswith("REQUESTS\tRPS\tSUCCESS")
    sse = get("?follow=0&interval=100ms&format=sse").stdout
    assert sse.startswith("event: top\ndata: {") and sse.endswith("}\n\n")
    h2 = get("?follow=0&interval=100ms", "--http2-prior-knowledge")
    assert json.loads(h2.stdout.splitlines()[0])["type"] == "top"
    headers = subprocess.run([curl, "-s", "-D", "-", "-o", "/dev/null", alstap.url("/top?follow=0&interval=100ms")],
                             capture_output=True, text=True, timeout=10).stdout
    assert "application/x-ndjson" in headers


def test_history_starts_a_new_aggregate_as_far_as_the_ring_reaches():
    curl = require_tool("curl")
    for extra, expected in [((), 40), (("--replay-entries", "0"), 0), (("--replay-entries", "10"), 10)]:
        server = Alstap(*extra)
        try:
            stream(server, PRODUCTPAGE, known_traffic())
            server.wait_stat("entriesReceived", lambda v: v == 40)
            time.sleep(1)
            out = subprocess.run([curl, "-s", server.url("/top?follow=0&interval=100ms&window=1m")], capture_output=True,
                                 text=True, timeout=10).stdout
            snapshot = json.loads(out.splitlines()[0])
            assert snapshot["totals"]["requests"] == expected, (extra, snapshot)
            # History reaches back (to the server's start, or the oldest message kept); none: the interval.
            assert (snapshot["covered"] >= 1.0) == (expected > 0), snapshot["covered"]
        finally:
            server.stop()


def test_bad_parameters_are_named(alstap):
    curl = require_tool("curl")
    for query, message in [("window=2h", "bad value for window"), ("by=pod", "bad value for by"),
                           ("last=5", "last is a /tap parameter"), ("interval=1ms", "bad value for interval"),
                           ("ns=a/b", "bad value for ns"), ("format=als", "bad value for format"),
                           ("scope=cluster", "scope=cluster needs alstap serve --peers")]:
        result = subprocess.run([curl, "-s", "-w", "\n%{http_code}", alstap.url("/top?" + query)], capture_output=True,
                                text=True, timeout=10)
        body, code = result.stdout.rsplit("\n", 1)
        assert code == "400" and message in body, (query, code, body)


def test_hostile_names_are_data(alstap):
    hostile = als.identifier(workload='ev"il\x1b[31m<script>', namespace="x\x07y")
    top = Tap(alstap, "?interval=200ms&format=text", path="/top")
    jtop = Tap(alstap, "?interval=200ms", path="/top")
    try:
        wait_subscribers(alstap, 2)
        stream(alstap, hostile, [call("reviews.books", 1)])
        snapshot = wait_snapshot(jtop, lambda s: s["totals"]["requests"] == 1)
        assert snapshot["rows"][0]["source"] == {"workload": 'ev"il\x1b[31m<script>', "namespace": "x\x07y"}
        deadline = time.time() + 10
        while time.time() < deadline and not any("reviews.books" in line for line in top.lines):
            time.sleep(0.05)
        shown = [line for line in top.lines if "reviews.books" in line]
        assert shown and "\x1b" not in "".join(top.lines) and "\x07" not in "".join(top.lines)
        assert 'ev"il?[31m<script>.x?y → reviews.books' in shown[-1]
    finally:
        top.close()
        jtop.close()


def test_a_client_that_leaves_frees_its_aggregate():
    server = Alstap()
    try:
        taps = [Tap(server, "?interval=100ms&by=route", path="/top") for _ in range(5)]
        wait_subscribers(server, 5)
        stream(server, PRODUCTPAGE, known_traffic())
        for tap in taps:
            wait_snapshot(tap, lambda s: s["totals"]["requests"] == 40)
        for tap in taps:
            tap.proc.kill()
        wait_subscribers(server, 0)
        # What the decoder computes follows the demand: with no aggregate left, no facts.
        stream(server, PRODUCTPAGE, known_traffic())
        server.wait_stat("entriesReceived", lambda v: v == 80)
    finally:
        server.stop()


def test_cluster_scope_sums_every_replica_and_merges_percentiles():
    from test_cluster import Replicas, wait_peer_subscriptions
    replicas = Replicas()
    top = Tap(replicas.servers[0], "?scope=cluster&interval=200ms", path="/top")
    local = Tap(replicas.servers[0], "?interval=200ms", path="/top")
    try:
        # Replica 0: both aggregates and the cluster one's own subscription; the others: that one.
        replicas.servers[0].wait_stat("subscribersActive", lambda v: v == 3)
        wait_peer_subscriptions(replicas, 1)
        # 10..19 ms to replica 0, 20..39 ms to replica 1, 40..49 ms to replica 2: one edge.
        spans = [range(10, 20), range(20, 40), range(40, 50)]
        for server, span in zip(replicas.servers, spans):
            stream(server, PRODUCTPAGE, [call("reviews.books", ms, code=500 if ms % 10 == 9 else 200) for ms in span])
        snapshot = wait_snapshot(top, lambda s: s["totals"]["requests"] == 40)
        edge = snapshot["rows"][0]
        assert len(snapshot["rows"]) == 1 and edge["requests"] == 40 and edge["errors"] == 4
        # Percentiles of all 40 durations together (10..49 ms), not an average of the replicas'.
        assert within_one_percent(edge["latencyMs"]["p50"], 29) and within_one_percent(edge["latencyMs"]["p90"], 45)
        assert edge["latencyMs"]["max"] == 49.0
        assert wait_snapshot(local, lambda s: s["totals"]["requests"] == 10)["rows"][0]["latencyMs"]["max"] == 19.0
    finally:
        top.close()
        local.close()
        replicas.stop()
