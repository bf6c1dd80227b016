"""The HTTP listener: health, readiness, stats, errors, and a clean SIGTERM that ends every
subscriber with a final shutdown line and exits 0."""
import json
import signal
import subprocess
import urllib.error
import urllib.request

import als
from conftest import Alstap, Tap, require_tool, wait_subscribers


def fetch(server, path, method="GET"):
    request = urllib.request.Request(server.url(path), method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_and_errors(alstap):
    assert fetch(alstap, "/healthz") == (200, "ok\n")
    assert fetch(alstap, "/readyz") == (200, "ready\n")
    assert fetch(alstap, "/nope")[0] == 404
    assert fetch(alstap, "/tap", method="POST")[0] == 405
    status, body = fetch(alstap, "/tap?format=xml")
    assert status == 400 and "format" in body
    status, body = fetch(alstap, "/tap?colour=blue")
    assert status == 400 and "colour" in body
    curl = require_tool("curl")
    h2 = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}",
                         alstap.url("/healthz")], capture_output=True, text=True, timeout=10)
    assert h2.stdout == "ok\n2 200"


def test_keep_alive_serves_several_requests(alstap):
    curl = require_tool("curl")
    result = subprocess.run([curl, "-sv", alstap.url("/healthz"), alstap.url("/readyz")],
                            capture_output=True, text=True, timeout=10)
    assert result.stdout == "ok\nready\n"
    assert "Re-using existing connection" in result.stderr


def test_sigterm_ends_subscribers_and_exits_zero():
    server = Alstap()
    json_tap = Tap(server)
    text_tap = Tap(server, "?format=text", http2=True)
    wait_subscribers(server, 2)
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages("bye", 5))
    channel.close()
    json_tap.wait_lines(5)
    text_tap.wait_lines(5)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    json_tap.done.wait(5)
    text_tap.done.wait(5)
    assert json.loads(json_tap.lines[-1]) == {"type": "shutdown"}
    assert text_tap.lines[-1].startswith("# alstap is shutting down")
    server.stop()
