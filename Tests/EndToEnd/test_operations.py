"""Running alstap in a cluster: /metrics after known traffic, every limit with its status and
counter, the bearer token, header redaction, and a SIGTERM with a live Envoy and a subscriber
(exit 0, the final line, nothing received lost, Envoy's next batch on a second instance)."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import h2.config
import h2.connection
import pytest

import als
from conftest import ROOT, Alstap, Tap, alstap_binary, require_tool, wait_subscribers
from rawh2 import RawH2


def metrics(server, token=None):
    request = urllib.request.Request(server.url("/metrics"))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_after_known_traffic(alstap):
    tap = Tap(alstap)
    wait_subscribers(alstap, 1)
    channel, stub = als.stub(alstap.als_target)
    stub.StreamAccessLogs(als.http_messages("m", 25, per_message=5))
    tcp = als.als_pb2.StreamAccessLogsMessage()
    tcp.identifier.CopyFrom(als.identifier())
    for i in range(3):
        tcp.tcp_logs.log_entry.add().common_properties.upstream_cluster = "outbound|5432||db.data.svc.cluster.local"
    stub.StreamAccessLogs(iter([tcp]))
    with pytest.raises(grpc.RpcError):
        als.raw_stream(channel)(iter([b"\xff\xff\xff"]), timeout=5)
    channel.close()
    tap.wait_lines(28)
    m = metrics(alstap)
    assert m['alstap_entries_received_total{type="http"}'] == 25
    assert m['alstap_entries_received_total{type="tcp"}'] == 3
    assert m["alstap_messages_received_total"] == 6
    assert m['alstap_als_streams_finished_total{grpc_status="0"}'] == 2
    assert m['alstap_als_streams_finished_total{grpc_status="3"}'] == 1
    assert m['alstap_decode_errors_total{reason="invalid_protobuf"}'] == 1
    assert m["alstap_als_streams_started_total"] == 3
    assert m["alstap_als_streams_active"] == 0
    assert m["alstap_subscribers_active"] == 1
    assert m["alstap_lines_sent_total"] == 28
    assert m['alstap_lines_dropped_total{reason="subscriber_queue"}'] == 0
    assert m["alstap_connections_accepted_total"] >= 2
    assert m["alstap_connections_active"] >= 1
    assert m["alstap_bytes_received_total"] > 25 * 100
    assert m["alstap_bytes_sent_total"] > 28 * 500
    assert m['alstap_delivery_latency_seconds_count'] == 6  # one per delivered message
    assert 0 < m['alstap_delivery_latency_seconds{quantile="0.99"}'] < 1
    tap.close()


def test_limits_answer_and_count():
    server = Alstap("--max-connections", "3", "--max-subscribers", "1", "--max-streams", "7",
                    "--max-message-bytes", "2048", "--max-head-bytes", "1024", "--head-timeout", "0.5",
                    "--subscriber-queue", "5")
    try:
        # max subscribers: the second gets 503.
        first = Tap(server)
        wait_subscribers(server, 1)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url("/tap"), timeout=5)
        assert error.value.code == 503 and "max-subscribers" in error.value.read().decode()
        # max streams: advertised in SETTINGS.
        client = RawH2(server.als_port)
        assert client.receive_settings().max_concurrent_streams == 7
        # max connections: tap + h2 client + this one = 3; the fourth is closed at once. The held
        # one is HTTP/2 past its preface: an idle HTTP/1.1 one would meet the 0.5 s head timeout
        # on a slow run and free its place before the fourth arrives.
        held = RawH2(server.als_port)
        held.receive_settings()
        extra = socket.create_connection(("127.0.0.1", server.http_port))
        extra.settimeout(5)
        assert extra.recv(100) == b""
        extra.close()
        held.close()
        client.close()
        # Only the tap is left before the next probes (else they would meet the connection limit).
        server.wait_stat("connectionsActive", lambda v: v <= 2)  # the tap and this /stats request
        # message size, head size, head timeout
        channel, _ = als.stub(server.als_target)
        with pytest.raises(grpc.RpcError) as rpc:
            als.raw_stream(channel)(iter([b"\x00" * 4096]), timeout=5)
        assert rpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        channel.close()
        server.wait_stat("connectionsActive", lambda v: v <= 2)  # the tap and this /stats request
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 431")
        server.wait_stat("connectionsActive", lambda v: v <= 2)  # the tap and this /stats request
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            assert sock.recv(100) == b""
        # subscriber queue: a subscriber that does not read loses lines, counted, then told.
        stalled = socket.create_connection(("127.0.0.1", server.http_port))
        first.close()
        wait_subscribers(server, 0)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_subscribers(server, 1)
        channel, stub = als.stub(server.als_target)
        for i in range(20):  # ~4 MB of lines: more than the socket buffers hold
            stub.StreamAccessLogs(als.http_messages(f"q{i}", 200, per_message=2))
        channel.close()
        server.wait_stat("linesDropped", lambda v: v > 0)
        received = b""
        stalled.settimeout(5)
        while b'"type":"lost"' not in received:
            chunk = stalled.recv(65536)
            assert chunk, "connection closed before the lost line"
            received += chunk
        stalled.close()
        m = metrics(server)
        assert m['alstap_limit_hits_total{limit="max_subscribers"}'] == 1
        assert m['alstap_limit_hits_total{limit="max_connections"}'] >= 1
        assert m['alstap_limit_hits_total{limit="max_message_bytes"}'] == 1
        assert m['alstap_limit_hits_total{limit="max_head_bytes"}'] == 1
        assert m['alstap_limit_hits_total{limit="head_timeout"}'] >= 1
        assert m['alstap_lines_dropped_total{reason="subscriber_queue"}'] > 0
    finally:
        server.stop()


def test_token_and_redaction(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    server = Alstap("--tap-token-file", str(token_file), "--redact-header", "authorization",
                    "--redact-header", "x-secret")
    try:
        for path, expected in [("/tap", 401), ("/metrics", 401), ("/stats", 401), ("/healthz", 200), ("/readyz", 200)]:
            try:
                code = urllib.request.urlopen(server.url(path), timeout=5).status
            except urllib.error.HTTPError as error:
                code = error.code
                assert error.headers.get("WWW-Authenticate") == "Bearer"
            assert code == expected, path
        wrong = urllib.request.Request(server.url("/metrics"), headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=5)
        assert metrics(server, token="s3cret-token")["alstap_unauthorized_requests_total"] == 4
        server.token = "s3cret-token"
        curl = require_tool("curl")
        tap = subprocess.Popen([curl, "-sN", "-H", "Authorization: Bearer s3cret-token", server.url("/tap")],
                               stdout=subprocess.PIPE, text=True)
        cli = subprocess.Popen([alstap_binary(), "tap", "--server", server.url(""), "--token-file", str(token_file),
                                "-o", "json", "--max", "1"], stdout=subprocess.PIPE, text=True)
        cli_text = subprocess.Popen([alstap_binary(), "tap", "--server", server.url(""), "--max", "1"],
                                    stdout=subprocess.PIPE, text=True, env={**os.environ, "ALSTAP_TOKEN": "s3cret-token"})
        server.wait_stat("subscribersActive", lambda v: v == 3)
        message = als.als_pb2.StreamAccessLogsMessage()
        message.identifier.CopyFrom(als.identifier())
        entry = message.http_logs.log_entry.add()
        entry.CopyFrom(als.http_entry("r", 0))
        entry.request.request_headers["authorization"] = "Bearer user-secret"
        entry.request.request_headers["x-secret"] = "hunter2"
        entry.request.request_headers["x-visible"] = "fine"
        entry.response.response_headers["set-cookie"] = "not-in-the-list-this-time"
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(iter([message]))
        channel.close()
        line = tap.stdout.readline()
        tap.terminate()
        logged = json.loads(line)
        assert logged["request"]["headers"] == {"authorization": "[redacted]", "x-secret": "[redacted]", "x-visible": "fine"}
        assert logged["response"]["headers"] == {"set-cookie": "not-in-the-list-this-time"}
        assert "user-secret" not in line and "hunter2" not in line
        assert json.loads(cli.communicate(timeout=10)[0])["request"]["headers"]["x-secret"] == "[redacted]"
        text_line = cli_text.communicate(timeout=10)[0]
        assert "/r/0" in text_line and "hunter2" not in text_line
    finally:
        server.stop()
