"""`alstap tap`, run as the built binary against a live server fed by a real gRPC client:
golden text, json and wide output; colors only on a terminal and never with NO_COLOR; exit
codes for a bad flag and a server 400; reconnecting after the server restarts."""
import json
import os
import pty
import select
import socket
import subprocess
import time

import als
from conftest import Alstap, alstap_binary, wait_subscribers

# als.http_entry's start times are 2025-11-24T16:00:00Z plus i µs.
GOLDEN_TEXT = [
    '16:00:00.000 out reviews-v1.default → ratings.default:9080    "http GET /golden/0 HTTP/1.1" 200 1.00ms',
    '16:00:00.000 out reviews-v1.default → ratings.default:9080    "http POST /golden/1 HTTP/1.1" 201 1.00ms',
    '16:00:00.000 out reviews-v1.default → ratings.default:9080    "http PUT /golden/2 HTTP/1.1" 404 1.00ms',
    '16:00:00.000 out reviews-v1.default → ratings.default:9080    "http DELETE /golden/3 HTTP/1.1" 503 1.00ms UF',
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(server, tag, count):
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages(tag, count, ident=als.identifier(workload="reviews-v1")))
    channel.close()


def run_tap(server, *args, env=None, count=4):
    proc = subprocess.Popen([alstap_binary(), "tap", "--server", server.url(""), "--max", str(count), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc


def test_text_json_and_wide_output(alstap):
    text = run_tap(alstap, "ns/default")
    as_json = run_tap(alstap, "workload/reviews-v1", "-o", "json")
    wide = run_tap(alstap, "--method", "DELETE", "-o", "wide", count=1)
    wait_subscribers(alstap, 3)
    send(alstap, "golden", 4)
    text_out = text.communicate(timeout=10)[0].splitlines()
    json_out = as_json.communicate(timeout=10)[0].splitlines()
    wide_out = wide.communicate(timeout=10)[0].splitlines()
    assert text.returncode == as_json.returncode == wide.returncode == 0

    assert text_out == GOLDEN_TEXT
    objects = [json.loads(line) for line in json_out]
    assert [o["request"]["path"] for o in objects] == [f"/golden/{i}" for i in range(4)]
    assert all(line.startswith('{"time":"2025-11-24T16:00:00.00000') and '"type":"http"' in line for line in json_out)
    assert wide_out == [GOLDEN_TEXT[3] + ' id=golden-3 ua="curl/7.88.1" upstream=10.1.0.9:9080'
                        ' reporter=sidecar~10.1.0.7~reviews-v1-5d8f9c-abcde.default~default.svc.cluster.local']


def test_color_on_a_terminal_unless_no_color(alstap):
    outputs = {}
    for name, env in [("tty", {}), ("no_color", {"NO_COLOR": "1"})]:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([alstap_binary(), "tap", "--server", alstap.url(""), "--max", "4"],
                                stdout=follower, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        os.close(follower)
        wait_subscribers(alstap, 1)
        send(alstap, name, 4)
        data = b""
        deadline = time.time() + 10
        while time.time() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=5)
        os.close(leader)
        outputs[name] = data.decode()
        alstap.wait_stat("subscribersActive", lambda v: v == 0)
    assert "\x1b[32m200\x1b[0m" in outputs["tty"] and "\x1b[31m503\x1b[0m" in outputs["tty"]
    assert "\x1b[" not in outputs["no_color"] and " 503 " in outputs["no_color"]


def test_bad_flag_and_server_400(alstap):
    bad_flag = subprocess.run([alstap_binary(), "tap", "svc/x"], capture_output=True, text=True, timeout=10)
    assert bad_flag.returncode == 64
    assert "ns/NAME, workload/NAME or pod/NAME" in bad_flag.stderr
    rejected = subprocess.run([alstap_binary(), "tap", "--server", alstap.url(""), "--method", "FETCH"],
                              capture_output=True, text=True, timeout=10)
    assert rejected.returncode == 2
    assert 'bad value for method: "FETCH"' in rejected.stderr and "400" in rejected.stderr


def test_reconnects_after_the_server_restarts():
    als_port, http_port = free_port(), free_port()
    first = Alstap(als=f"127.0.0.1:{als_port}", http=f"127.0.0.1:{http_port}")
    proc = run_tap(first, "-o", "json", count=6)
    wait_subscribers(first, 1)
    send(first, "before", 3)
    first.stop()
    second = Alstap(als=f"127.0.0.1:{als_port}", http=f"127.0.0.1:{http_port}")
    try:
        wait_subscribers(second, 1)
        send(second, "after", 3)
        out, err = proc.communicate(timeout=20)
    finally:
        second.stop()
    assert proc.returncode == 0
    paths = [json.loads(line)["request"]["path"] for line in out.splitlines()]
    assert paths == ["/before/0", "/before/1", "/before/2", "/after/0", "/after/1", "/after/2"]
    assert "server is shutting down" in err and "reconnecting" in err
