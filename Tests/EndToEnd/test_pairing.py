"""Pairing (`pair=1`): both sidecars' entries of a request become one record, in either arrival
order, across streams and connections; retries list every attempt; a half alone is emitted when
its window ends; a full table emits at once and counts; filters apply to either half."""
import json
import time

import grpc

import als
from conftest import Alstap, Tap, wait_subscribers

SOURCE = als.identifier(workload="productpage-v1", namespace="shop")
DESTINATION = als.identifier(workload="reviews-v2", namespace="books")


def half(direction, request_id, millis, port=5000, flags=None, code=200):
    entry = als.accesslog_pb2.HTTPAccessLogEntry()
    c = entry.common_properties
    c.start_time.FromNanoseconds(1_764_000_000_000_000_000)
    c.duration.FromMicroseconds(millis * 1000)
    if direction == "out":
        c.upstream_cluster = "outbound|9080||reviews.books.svc.cluster.local"
        c.upstream_local_address.socket_address.address = "10.0.0.1"
        c.upstream_local_address.socket_address.port_value = port
        c.upstream_remote_address.socket_address.address = "10.0.0.2"
        c.upstream_remote_address.socket_address.port_value = 9080
    else:
        c.upstream_cluster = "inbound|9080||"
        c.downstream_remote_address.socket_address.address = "10.0.0.1"
        c.downstream_remote_address.socket_address.port_value = port
        c.downstream_local_address.socket_address.address = "10.0.0.2"
        c.downstream_local_address.socket_address.port_value = 9080
    if flags == "DC":
        c.response_flags.downstream_connection_termination = True
    entry.request.request_method = als.base_pb2.GET
    entry.request.path = f"/reviews/{request_id}"
    entry.request.request_id = request_id
    entry.response.response_code.value = code
    return entry


def stream(server, identifier, entries):
    """One ALS call: the Identifier, then each entry in its own message."""
    channel = grpc.insecure_channel(server.als_target, options=[("grpc.use_local_subchannel_pool", 1)])
    stub = als.als_pb2_grpc.AccessLogServiceStub(channel)

    def messages():
        for n, entry in enumerate(entries):
            message = als.als_pb2.StreamAccessLogsMessage()
            if n == 0:
                message.identifier.CopyFrom(identifier)
            message.http_logs.log_entry.append(entry)
            yield message

    stub.StreamAccessLogs(messages())
    channel.close()


def records(tap):
    return [r for r in tap.json() if r.get("type") == "pair"]


def test_pairs_in_either_order_across_streams():
    server = Alstap("--pair-window", "0.5")
    try:
        tap = Tap(server, "?pair=1")
        text = Tap(server, "?pair=1&format=text")
        plain = Tap(server)
        wait_subscribers(server, 3)
        stream(server, SOURCE, [half("out", f"a-{i}", 3) for i in range(10)])
        stream(server, DESTINATION, [half("in", f"a-{i}", 1) for i in range(10)] + [half("in", f"b-{i}", 1) for i in range(10)])
        stream(server, SOURCE, [half("out", f"b-{i}", 3) for i in range(10)])
        tap.wait_lines(20)
        time.sleep(0.8)  # past the window: nothing may come alone
        got = records(tap)
        assert sorted(r["requestId"] for r in got) == sorted([f"a-{i}" for i in range(10)] + [f"b-{i}" for i in range(10)])
        for record in got:
            assert record["paired"] is True
            assert record["overheadMs"] == 2.0
            assert record["source"]["workload"] == "productpage-v1"
            assert record["destination"]["workload"] == "reviews-v2"
            assert record["request"]["path"] == f"/reviews/{record['requestId']}"
            assert record["outbound"]["direction"] == "outbound" and record["inbound"]["direction"] == "inbound"
        assert all(line.startswith("pair productpage-v1.shop → reviews-v2.books GET /reviews/")
                   and "out=3.000ms in=1.000ms" in line for line in text.wait_lines(20))
        assert len(plain.wait_lines(40)) == 40, "subscribers without pair=1 still get every entry"
    finally:
        server.stop()


def test_retries_lone_halves_and_a_full_table():
    server = Alstap("--pair-window", "0.3", "--pair-table", "3")
    try:
        tap = Tap(server, "?pair=1")
        wait_subscribers(server, 1)
        # Retries: three inbound attempts on their own connections, the outbound entry carrying
        # the last attempt's connection.
        stream(server, DESTINATION, [half("in", "retry", 1, port=5001, flags="DC", code=503),
                                     half("in", "retry", 1, port=5002, flags="DC", code=503),
                                     half("in", "retry", 1, port=5003)])
        stream(server, SOURCE, [half("out", "retry", 9, port=5003)])
        tap.wait_lines(1)
        retry = records(tap)[0]
        assert retry["paired"] is True and retry["requestId"] == "retry"
        assert retry["inbound"]["source"]["address"] == "10.0.0.1:5003"
        assert sorted(a["source"]["address"] for a in retry["attempts"]) == ["10.0.0.1:5001", "10.0.0.1:5002"]
        # Lone halves: emitted alone when the window ends; the table holds 3 requests, so the
        # 4th and 5th are emitted at once and counted.
        stream(server, SOURCE, [half("out", f"lone-{i}", 2) for i in range(5)])
        lines = tap.wait_lines(6)
        assert json.loads(lines[1])["requestId"] in ("lone-3", "lone-4")
        tap.wait_lines(6)
        time.sleep(0.6)
        lone = [r for r in records(tap) if r["requestId"].startswith("lone-")]
        assert sorted(r["requestId"] for r in lone) == [f"lone-{i}" for i in range(5)]
        assert all(r["paired"] is False and "inbound" not in r and r["outbound"]["direction"] == "outbound" for r in lone)
        assert server.stats()["pairTableFull"] == 2
    finally:
        server.stop()


def test_filters_apply_to_either_half():
    server = Alstap("--pair-window", "0.3")
    try:
        by_destination = Tap(server, "?pair=1&workload=reviews-v2")
        by_inbound_code = Tap(server, "?pair=1&direction=in&code=5xx")
        nothing = Tap(server, "?pair=1&ns=elsewhere")
        wait_subscribers(server, 3)
        stream(server, SOURCE, [half("out", "f-1", 3), half("out", "f-2", 3, code=503)])
        stream(server, DESTINATION, [half("in", "f-1", 1), half("in", "f-2", 1, code=503)])
        by_destination.wait_lines(2)
        by_inbound_code.wait_lines(1)
        time.sleep(0.6)
        assert sorted(r["requestId"] for r in records(by_destination)) == ["f-1", "f-2"]
        assert [r["requestId"] for r in records(by_inbound_code)] == ["f-2"]
        assert records(nothing) == []
    finally:
        server.stop()
