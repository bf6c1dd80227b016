"""`alstap tap`, run as the built binary against a live server fed by a real gRPC client:
golden text, json and wide output; colors only on a terminal and never with NO_COLOR; terminal
commands in the data (ESC, OSC 52, OSC 8, BEL, BS, CR, LF, DEL, C1) shown as text, in the CLI
and the server's format=text; exit codes for a bad flag and a server 400; reconnecting after
the server restarts."""
import json
import os
import pty
import re
import select
import shlex
import socket
import subprocess
import time

import als
from conftest import Alstap, Tap, alstap_binary, require_tool, wait_subscribers

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


# Strings that command a terminal: OSC 52 (set the clipboard), an OSC 8 link, clear-screen and
# cursor moves, a forged line (CR LF), erasing backspaces, DEL, C1 CSI / OSC / NEL / ST.
HOSTILE_PATH = ("/a\x1b]52;c;ZXZpbA==\x07b\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\"
                "\x08\x08\r\nforged\x7f\x9b2J\x85end")
HOSTILE_UA = "ua\x1b[2J\x1b[H\x9d0;title\x07\x9c"
HOSTILE_ID = "id\r\n16:00:00.000 out forged 200\x1b[A"
HOSTILE_NODE = "sidecar~10.1.0.7~\x9b31mpod\x1b[5m.default~default.svc.cluster.local"
HOSTILE_WORKLOAD = "reviews\x07-v1"
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def shown(text):
    """What alstap shows for a string: each control character (C0, DEL, C1) one `?`."""
    return CONTROLS.sub("?", text)


def send_hostile(server, count=2):
    ident = als.identifier(workload=HOSTILE_WORKLOAD)
    ident.node.id = HOSTILE_NODE
    messages = list(als.http_messages("hostile", count, ident=ident))
    for entry in messages[0].http_logs.log_entry:
        entry.request.path = HOSTILE_PATH
        entry.request.user_agent = HOSTILE_UA
        entry.request.request_id = HOSTILE_ID
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(iter(messages))
    channel.close()


def shown_lines(data, color):
    """The output's lines, alstap's own colors (ESC [ digits m) removed; no control may remain."""
    text = data.decode("utf-8")
    if color:
        assert "\x1b[32m200\x1b[0m" in text, "colors expected on a terminal"
        text = re.sub("\x1b\\[[0-9]+m", "", text)
    lines = text.split("\n")
    assert lines[-1] == "", "output ends with a newline"
    for line in lines[:-1]:
        assert not CONTROLS.search(line), f"control character reaches the terminal: {line!r}"
    return lines[:-1]


def test_terminal_commands_in_the_data_are_shown_as_text(alstap):
    script = require_tool("script")
    runs = {}
    for style in ["text", "wide"]:
        command = [alstap_binary(), "tap", "--server", alstap.url(""), "--max", "2", "-o", style]
        runs[(style, "pipe")] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for mode, extra in [("tty", {}), ("tty-no-color", {"NO_COLOR": "1"})]:
            # script(1) gives the CLI a terminal (so it colors unless NO_COLOR); its pty writes CR LF.
            env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | extra
            runs[(style, mode)] = subprocess.Popen([script, "-qfec", shlex.join(command), "/dev/null"],
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, env=env)
    wait_subscribers(alstap, len(runs))
    send_hostile(alstap)
    for (style, mode), proc in runs.items():
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, (style, mode, err)
        if mode != "pipe":
            out = out.replace(b"\r\n", b"\n")
        lines = shown_lines(out, color=mode == "tty")
        assert len(lines) == 2, (style, mode, lines)
        for line, (method, code) in zip(lines, [("GET", 200), ("POST", 201)]):
            assert line.startswith(f"16:00:00.000 out {shown(HOSTILE_WORKLOAD)}.default → ratings.default:9080 "), line
            assert f' "http {method} {shown(HOSTILE_PATH)} HTTP/1.1" {code} 1.00ms' in line, line
            if style == "wide":
                assert line.endswith(f' id={shown(HOSTILE_ID)} ua="{shown(HOSTILE_UA)}" upstream=10.1.0.9:9080'
                                     f' reporter={shown(HOSTILE_NODE)}'), line


def test_server_text_format_replaces_del_and_c1(alstap):
    tap = Tap(alstap, "?format=text")
    try:
        wait_subscribers(alstap, 1)
        send_hostile(alstap)
        lines = tap.wait_lines(2)
    finally:
        tap.close()
    assert len(lines) == 2
    for line in lines:
        assert line.endswith("\n") and not CONTROLS.search(line[:-1]), repr(line)
        assert f" {shown(HOSTILE_WORKLOAD)}.default → " in line, line
        assert f":9080{shown(HOSTILE_PATH)} " in line, line
