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


def send(server, tag, count, workload="reviews-v1"):
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages(tag, count, ident=als.identifier(workload=workload)))
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


def test_negations_presets_labels_and_fields(alstap):
    """The issue-18 flags reach the server as its parameters: `!` values, --errors, --no-probes,
    -l, --header and --fields (the golden entries: GET 200, POST 201, PUT 404, DELETE 503 UF)."""
    errors = run_tap(alstap, "--errors", "--no-probes", "-l", "app=reviews,version=v1", "-o", "json", count=1)
    negated = run_tap(alstap, "--method", "!GET", "--method", "!DELETE", "--path", "!/golden/2", "-o", "json", count=1)
    not_reviews = run_tap(alstap, "!workload/reviews-v1", "-o", "json", count=1)
    masked = run_tap(alstap, "-o", "json", "--fields", "request.path,response.code", "--user-agent", "curl/")
    wait_subscribers(alstap, 4)
    send(alstap, "golden", 4)
    send(alstap, "other", 1, workload="productpage-v1")
    outputs = [proc.communicate(timeout=10)[0].splitlines() for proc in (errors, negated, not_reviews, masked)]
    assert [proc.returncode for proc in (errors, negated, not_reviews, masked)] == [0, 0, 0, 0]
    assert [json.loads(line)["request"]["path"] for line in outputs[0]] == ["/golden/3"]
    assert [json.loads(line)["request"]["path"] for line in outputs[1]] == ["/golden/1"]
    assert [json.loads(line)["request"]["path"] for line in outputs[2]] == ["/other/0"]
    assert [json.loads(line) for line in outputs[3]] == [
        {"time": f"2025-11-24T16:00:00.00000{i}Z", "type": "http", "request": {"path": f"/golden/{i}"},
         "response": {"code": code}} for i, code in enumerate([200, 201, 404, 503])]
    # --fields is for -o json: the text formats need every field.
    refused = subprocess.run([alstap_binary(), "tap", "--fields", "request.path"], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 64 and "-o json" in refused.stderr


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


# `alstap top`: two reporters, each calling one service. Most requests: reviews → ratings (40,
# 4 × 503 UF: 90% success); most errors: productpage → details (20, 10 × 500: 50% success).
TOP_TRAFFIC = [
    ("reviews-v1", "ratings", [200] * 36 + [503] * 4, 2),
    ("productpage-v1", "details", [200] * 10 + [500] * 10, 8),
]
TOP_TITLES = ["REQS", "RPS", "ERRS", "SUCCESS", "P50", "P99", "SOURCE", "DESTINATION", "FLAGS"]


def top_message(workload, service, codes, ms):
    """One ALS message from `workload`'s sidecar: outbound requests to `service`, the codes in
    order, each taking about `ms`; the route is `{service}-route`."""
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(als.identifier(workload=workload))
    for i, code in enumerate(codes):
        entry = als.http_entry(workload, i)
        common = entry.common_properties
        common.upstream_cluster = f"outbound|9080||{service}.default.svc.cluster.local"
        common.route_name = f"{service}-route"
        common.duration.FromNanoseconds(ms * 1_000_000 + i)
        common.ClearField("response_flags")
        common.response_flags.upstream_connection_failure = code == 503
        entry.request.authority = f"{service}:9080"
        entry.response.response_code.value = code
        message.http_logs.log_entry.append(entry)
    return message


def send_top_traffic(server, traffic=TOP_TRAFFIC):
    for workload, service, codes, ms in traffic:
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(iter([top_message(workload, service, codes, ms)]))
        channel.close()


def run_top(server, *args):
    return subprocess.Popen([alstap_binary(), "top", "--server", server.url(""), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def table_rows(lines):
    """The table under a `# by …` summary line: its titles, then each row's cells."""
    assert lines[0].startswith("# by "), lines
    return lines[1].split(), [line.split() for line in lines[2:]]


def test_top_once_prints_a_table_sorted_as_asked(alstap):
    # --once waits one --interval: long enough to send the traffic after subscribing.
    by_requests = run_top(alstap, "--once", "--interval", "3s")
    by_errors = run_top(alstap, "--once", "--interval", "3s", "--sort", "errors")
    wait_subscribers(alstap, 2)
    send_top_traffic(alstap)
    outputs = {}
    for name, proc in [("requests", by_requests), ("errors", by_errors)]:
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "\x1b" not in out, "no colors when piped"
        outputs[name] = out.splitlines()
    summary = outputs["requests"][0]
    assert re.fullmatch(r"# by edge, window 10s \(covered \d+\.\ds\): 60 requests, \d+\.\d rps, 76\.67% success, "
                        r"p99 7\.95ms, 2 groups", summary), summary
    titles, rows = table_rows(outputs["requests"])
    assert titles == TOP_TITLES
    # REQS, ERRS, SUCCESS, SOURCE, DESTINATION, FLAGS
    assert [(r[0], r[2], r[3], r[6], r[7], r[8:]) for r in rows] == [
        ("40", "4", "90.00%", "reviews-v1.default", "ratings.default", ["UF:4"]),
        ("20", "10", "50.00%", "productpage-v1.default", "details.default", []),
    ]
    assert [(r[4], r[5]) for r in rows] == [("1.99ms", "1.99ms"), ("7.95ms", "7.95ms")], "p50, p99 ≈ 2 ms and 8 ms"
    _, by_errors_rows = table_rows(outputs["errors"])
    assert [r[6] for r in by_errors_rows] == ["productpage-v1.default", "reviews-v1.default"]


def test_top_json_once_passes_the_servers_lines(alstap):
    proc = run_top(alstap, "--once", "--interval", "3s", "-o", "json", "--by", "route")
    wait_subscribers(alstap, 1)
    send_top_traffic(alstap)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith('{"type":"top","time":"')
    snapshot = json.loads(lines[0])
    assert (snapshot["by"], snapshot["window"], snapshot["groups"]) == ("route", 10, 8)
    assert (snapshot["totals"]["requests"], snapshot["totals"]["errors"]) == (60, 14)
    per_route = {}
    for row in snapshot["rows"]:
        key = (row["source"]["workload"], row["destination"]["service"], row["authority"], row["route"])
        requests, errors = per_route.get(key, (0, 0))
        per_route[key] = (requests + row["requests"], errors + row["errors"])
    assert per_route == {("reviews-v1", "ratings", "ratings:9080", "ratings-route"): (40, 4),
                         ("productpage-v1", "details", "details:9080", "details-route"): (20, 10)}
    assert sorted({row["method"] for row in snapshot["rows"]}) == ["DELETE", "GET", "POST", "PUT"]


def test_top_bad_flag_and_server_400(alstap):
    for args, message in [(["--by", "pod"], "'edge', 'route', 'destination', 'source' or 'reporter'"),
                          (["svc/x"], "ns/NAME, workload/NAME or pod/NAME"),
                          (["--last=5"], "Unknown option '--last'")]:
        bad = subprocess.run([alstap_binary(), "top", *args], capture_output=True, text=True, timeout=10)
        assert bad.returncode == 64, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)
    for args, message in [(["--window", "2h"], 'bad value for window: "2h"'),
                          (["--method", "FETCH"], 'bad value for method: "FETCH"')]:
        for mode in [["--once"], ["-o", "json"], []]:
            rejected = subprocess.run([alstap_binary(), "top", "--server", alstap.url(""), *args, *mode],
                                      capture_output=True, text=True, timeout=10)
            assert rejected.returncode == 2, (args, mode, rejected.stderr)
            assert message in rejected.stderr and "(HTTP 400)" in rejected.stderr, (args, mode, rejected.stderr)


HOSTILE_TOP_WORKLOAD = "evil\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b31m\x7f-v1"


def test_top_shows_terminal_commands_in_names_as_text(alstap):
    script = require_tool("script")
    command = [alstap_binary(), "top", "--server", alstap.url(""), "--once", "--interval", "3s"]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    runs = {
        "pipe": subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env),
        "json": subprocess.Popen(command + ["-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env),
        # On a terminal (script's pty), --once prints one colored table.
        "tty": subprocess.Popen([script, "-qfec", shlex.join(command), "/dev/null"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env),
        "tty-no-color": subprocess.Popen([script, "-qfec", shlex.join(command), "/dev/null"], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env | {"NO_COLOR": "1"}),
    }
    wait_subscribers(alstap, len(runs))
    send_top_traffic(alstap, [(HOSTILE_TOP_WORKLOAD, "ratings", [200, 500], 1)])
    outputs = {}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, (name, err)
        outputs[name] = out.decode("utf-8").replace("\r\n", "\n")
    snapshot = json.loads(outputs["json"])
    assert snapshot["rows"][0]["source"]["workload"] == HOSTILE_TOP_WORKLOAD
    assert not CONTROLS.search(outputs["json"].rstrip("\n")), "DEL and C1 escaped in the JSON"
    assert "\x1b[31m50.00%\x1b[0m" in outputs["tty"], "colors on a terminal"
    assert "\x1b" not in outputs["tty-no-color"] and "\x1b" not in outputs["pipe"]
    for name in ["pipe", "tty", "tty-no-color"]:
        lines = re.sub("\x1b\\[[0-9]+m", "", outputs[name]).split("\n")
        assert lines.pop() == "", "output ends with a newline"
        for line in lines:
            assert not CONTROLS.search(line), f"{name}: control character reaches the terminal: {line!r}"
        _, rows = table_rows(lines)
        assert [rows[0][:1] + rows[0][2:]] == [["2", "1", "50.00%", "0.99ms", "0.99ms",
                                                shown(HOSTILE_TOP_WORKLOAD) + ".default", "ratings.default"]], name


class Tmux:
    """A tmux server of our own (on a socket in the test's directory) running `sh` in a
    120×30 window; only this session is ever killed."""

    def __init__(self, name, directory):
        self.tmux = require_tool("tmux")
        self.name = name
        self.socket = str(directory / "tmux.socket")
        self.run("new-session", "-d", "-s", name, "-x", "120", "-y", "30", "env", "PS1=$ ", "sh")

    def run(self, *args):
        return subprocess.run([self.tmux, "-u", "-S", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", self.name, *keys)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", self.name)

    def flag(self, name):
        """A pane flag: alternate_on (the alternate screen), cursor_flag (the cursor shown)."""
        return self.run("display-message", "-p", "-t", self.name, f"#{{{name}}}").strip()

    def wait(self, predicate, what, timeout=15):
        deadline = time.time() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen.split("\n")
            if time.time() > deadline:
                raise AssertionError(f"the screen never showed {what}:\n{screen}")
            time.sleep(0.1)

    def kill(self):
        subprocess.run([self.tmux, "-S", self.socket, "kill-session", "-t", self.name], capture_output=True, timeout=10)


def row_sources(lines):
    """The SOURCE cell of each table row on a captured screen, top to bottom."""
    titles = next(i for i, line in enumerate(lines) if line.startswith("REQS"))
    rows = []
    for line in lines[titles + 1:]:
        if not line.strip() or line.startswith("q quit"):
            break
        rows.append(line.split()[6])
    return rows


def test_top_full_screen_under_tmux(alstap, tmp_path):
    tmux = Tmux(f"alstap-top-{os.getpid()}", tmp_path)
    command = tmp_path / "top.sh"
    # The script's shell survives the Ctrl-C (a trap, which alstap does not inherit) to say how alstap exited.
    command.write_text(f"trap : INT\n{shlex.quote(alstap_binary())} top --server {alstap.url('')} --window 60s\n"
                       "echo EXIT=$?\n")
    try:
        tmux.keys(f"sh {command}", "Enter")
        tmux.wait(lambda s: "by edge, window 60s" in s, "the first snapshot")
        assert tmux.flag("alternate_on") == "1" and tmux.flag("cursor_flag") == "0"
        send_top_traffic(alstap)
        lines = tmux.wait(lambda s: "60 requests" in s and "productpage-v1" in s, "the traffic")
        assert lines[0].startswith(f"alstap top  {alstap.url('')}  ")
        assert lines[1].startswith("by edge, window 60s (covered ") and ": 60 requests," in lines[1]
        assert "76.67% success, p99 7.95ms, 2 groups" in lines[1]
        assert lines[3].split() == TOP_TITLES
        assert [line.split()[:4] for line in lines[4:6]] == [["40", lines[4].split()[1], "4", "90.00%"],
                                                             ["20", lines[5].split()[1], "10", "50.00%"]]
        assert row_sources(lines) == ["reviews-v1.default", "productpage-v1.default"]
        assert lines[29] == "q quit  s/S sort: requests  r reverse  b/B by: edge"
        assert all(len(line) <= 120 for line in lines)
        colored = tmux.run("capture-pane", "-p", "-e", "-t", tmux.name)
        assert "\x1b[31m50.00%" in colored, "the failing row is red"

        # s: requests → rps (same order) → errors (the most failing first).
        tmux.keys("s")
        tmux.wait(lambda s: "sort: rps " in s, "sort: rps")
        tmux.keys("s")
        lines = tmux.wait(lambda s: "sort: errors " in s, "sort: errors")
        assert row_sources(lines) == ["productpage-v1.default", "reviews-v1.default"]
        tmux.keys("r")
        lines = tmux.wait(lambda s: "sort: errors reversed" in s, "reversed")
        assert row_sources(lines) == ["reviews-v1.default", "productpage-v1.default"]

        # b: a new /top stream by route; a new aggregate starts from the history the server kept
        # (the 60 entries sent above), so nothing needs to be sent again.
        tmux.keys("b")
        tmux.wait(lambda s: "waiting for the first snapshot by route" in s and s.rstrip().endswith("b/B by: route"),
                  "the regrouping")
        lines = tmux.wait(lambda s: "by route, window 60s" in s and "60 requests" in s and "details-route" in s,
                          "the routes, from history")
        assert lines[3].split() == ["REQS", "RPS", "ERRS", "SUCCESS", "P50", "P99", "SOURCE", "DESTINATION",
                                    "METHOD", "AUTHORITY", "ROUTE", "FLAGS"]
        routes = sorted((line.split()[7], line.split()[8], line.split()[10]) for line in lines[4:12])
        assert routes == sorted([(d, m, f"{d.split('.')[0]}-route") for d in ["details.default", "ratings.default"]
                                 for m in ["DELETE", "GET", "POST", "PUT"]])
        wide = lines

        # A narrower window: the same rows, cut to 80 columns (the widest labels first). tmux cuts
        # the old frame to the new width at once; alstap's redraw is the frame whose every cell is
        # whole or ends in "…" (the terminal's own cut leaves a word cut bare).
        tmux.run("resize-window", "-t", tmux.name, "-x", "80")

        def redrawn(screen):
            rows = screen.split("\n")
            if max(len(line) for line in rows) > 80 or len(rows) < 12:
                return False
            return all(cut == whole or (cut.endswith("…") and whole.startswith(cut[:-1]))
                       for narrow, full in zip(rows[4:12], wide[4:12])
                       for cut, whole in zip(narrow.split()[6:], full.split()[6:]))

        lines = tmux.wait(redrawn, "the redraw at 80 columns")
        assert lines[3].split()[:6] == wide[3].split()[:6]
        assert [line.split()[:4] for line in lines[4:12]] == [line.split()[:4] for line in wide[4:12]]

        # q: the shell again, the process exited 0, the terminal as it was.
        tmux.keys("q")
        lines = tmux.wait(lambda s: "EXIT=" in s, "the exit")
        assert "EXIT=0" in lines, lines
        assert not any("REQS" in line or "q quit" in line for line in lines), "the alternate screen is left"
        assert tmux.flag("alternate_on") == "0" and tmux.flag("cursor_flag") == "1"

        # A server that goes away is retried, the view kept; then Ctrl-C: the same exit as q.
        tmux.run("resize-window", "-t", tmux.name, "-x", "120")
        tmux.keys("clear", "Enter")
        tmux.keys(f"sh {command}", "Enter")
        tmux.wait(lambda s: "by edge, window 60s" in s, "the second run")
        alstap.stop()
        tmux.wait(lambda s: "reconnecting in" in s.split("\n")[0] and "by edge, window 60s" in s, "the retry")
        tmux.keys("C-c")
        lines = tmux.wait(lambda s: "EXIT=" in s, "the exit after Ctrl-C")
        assert "EXIT=0" in lines, lines
        assert tmux.flag("alternate_on") == "0" and tmux.flag("cursor_flag") == "1"
        tmux.keys("stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; echo STTY-DONE", "Enter")
        lines = tmux.wait(lambda s: "STTY-DONE" in s.split("\n"), "stty")
        assert "icanon" in lines and "echo" in lines, "line editing and echo are back"
    finally:
        tmux.kill()
