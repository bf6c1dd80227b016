"""Captures with real peers: `alstap tap -w` records beside a live curl subscriber and `-r`
reads back the very same JSON lines (filters, --since/--until, --pair on the two-Envoy example);
a file cut short reads up to its last record, garbage and newer versions are exit 2; `-o har`
validates against HAR 1.2 and loads in haralyzer; the server's `format=capture` is a download."""
import json
import os
import subprocess
import time
import urllib.request

import jsonschema
from haralyzer import HarParser

import als
from conftest import ROOT, Alstap, Tap, alstap_binary, wait_subscribers

HAR_SCHEMA = json.load(open(os.path.join(os.path.dirname(__file__), "har_schema.json")))


def tap(*args, timeout=30):
    return subprocess.run([alstap_binary(), "tap", *args], capture_output=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"})


def record(server, path, *args):
    """`alstap tap -w path` against `server`, in the background."""
    return subprocess.Popen([alstap_binary(), "tap", "--server", server.url(""), "-w", str(path), "-q", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def send(server, tag, count, workload="reviews-v1"):
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages(tag, count, per_message=10, ident=als.identifier(workload=workload)))
    channel.close()


def test_a_capture_reads_back_into_what_a_live_subscriber_got(alstap, tmp_path):
    path = tmp_path / "incident.alstap"
    live = Tap(alstap, "?ns=default&method=GET&method=POST")
    recorder = record(alstap, path, "ns/default", "--method", "GET", "--method", "POST", "--duration", "4")
    wait_subscribers(alstap, 2)
    send(alstap, "cap", 60)
    send(alstap, "other", 20, workload="other-v1")
    alstap.wait_stat("entriesReceived", lambda v: v == 80)
    live.wait_lines(40)
    _, err = recorder.communicate(timeout=15)
    assert recorder.returncode == 0, err
    assert b"--duration reached" in err
    live.close()
    lines = "".join(live.lines).encode()
    read = tap("-r", str(path), "-o", "json")
    assert read.returncode == 0, read.stderr
    assert read.stdout == lines, "byte for byte what the live subscriber got"
    # Filters again on reading: a subset, as a live tap with both would have had.
    only_get = tap("-r", str(path), "-o", "json", "--method", "GET")
    assert [json.loads(l)["request"]["method"] for l in only_get.stdout.splitlines()] == ["GET"] * 20
    # --since / --until on the entries' start times (entry i starts at 16:00:00 + i µs).
    window = tap("-r", str(path), "-o", "json", "--since", "2025-11-24T16:00:00.000010Z",
                 "--until", "2025-11-24T17:00:00.000019+01:00")
    got = [json.loads(l)["request"]["id"] for l in window.stdout.splitlines()]
    expected = [json.loads(l)["request"]["id"] for l in lines.splitlines()
                if 10 <= int(json.loads(l)["time"][20:26]) <= 19]
    assert got == expected and len(got) == 8, window.stderr
    # A time of day is on the day the capture began (today): these entries started on another.
    assert tap("-r", str(path), "--since", "00:00").stdout == b""
    text = tap("-r", str(path), "--max", "2")
    assert text.stdout.decode().count("\n") == 2 and b"GET /cap/0 HTTP/1.1" in text.stdout


def test_the_server_sends_a_capture_as_a_download(alstap, tmp_path):
    send(alstap, "dl", 30)
    # One entry with a header the server redacts by default: the capture holds no secret.
    secret = als.als_pb2.StreamAccessLogsMessage()
    secret.identifier.CopyFrom(als.identifier())
    entry = secret.http_logs.log_entry.add()
    entry.CopyFrom(als.http_entry("dl", 99))
    entry.request.request_headers["authorization"] = "Bearer hunter2"
    entry.request.request_headers["x-kept"] = "visible"
    channel, stub = als.stub(alstap.als_target)
    stub.StreamAccessLogs(iter([secret]))
    channel.close()
    alstap.wait_stat("entriesReceived", lambda v: v == 31)
    with urllib.request.urlopen(alstap.url("/tap?format=capture&last=12&follow=0&method=GET")) as response:
        assert response.headers["Content-Type"] == "application/vnd.alstap.capture"
        assert response.headers["Content-Disposition"] == 'attachment; filename="capture.alstap"'
        body = response.read()
    assert body.startswith(b"ALSTAPCAP\n\x00\x01")
    path = tmp_path / "download.alstap"
    path.write_bytes(body)
    read = tap("-r", str(path), "-o", "json")
    ids = [json.loads(l)["request"]["id"] for l in read.stdout.splitlines()]
    assert ids == [f"dl-{i}" for i in range(0, 30, 4)], "the 8 GET entries (fewer than 12)"
    with urllib.request.urlopen(alstap.url("/tap?format=capture&last=1&follow=0")) as response:
        one = tmp_path / "one.alstap"
        one.write_bytes(response.read())
    assert b"hunter2" not in one.read_bytes() and b"[redacted]" in one.read_bytes() and b"visible" in one.read_bytes()
    headers = json.loads(tap("-r", str(one), "-o", "json").stdout)["request"]["headers"]
    assert headers == {"authorization": "[redacted]", "x-kept": "visible"}
    for bad in ["format=capture&pair=1", "format=capture&fields=request.path", "format=capture&scope=cluster"]:
        try:
            urllib.request.urlopen(alstap.url("/tap?" + bad))
            raise AssertionError("accepted " + bad)
        except urllib.error.HTTPError as error:
            assert error.code == 400 and b"format=capture" in error.read()


def test_cut_short_garbage_and_newer_files(alstap, tmp_path):
    path = tmp_path / "whole.alstap"
    recorder = record(alstap, path, "--duration", "2.5")
    wait_subscribers(alstap, 1)
    for i in range(3):
        send(alstap, f"part{i}", 10)
    recorder.communicate(timeout=15)
    whole = path.read_bytes()
    full = tap("-r", str(path), "-o", "json").stdout.splitlines()
    assert len(full) == 30
    cut = tmp_path / "cut.alstap"
    cut.write_bytes(whole[:-10])  # a crash or a full disk inside the last record
    result = tap("-r", str(cut), "-o", "json")
    assert result.returncode == 0 and result.stdout.splitlines() == full[:20]
    assert b"cut short" in result.stderr and b"read up to there" in result.stderr
    for name, data, message in [("garbage", os.urandom(4096), b"not an alstap capture"),
                                ("json", b'{"type":"http"}\n', b"not an alstap capture"),
                                ("newer", b"ALSTAPCAP\n\x00\x07\x00\x00", b"newer than this alstap reads"),
                                ("empty", b"", b"empty: not an alstap capture")]:
        bad = tmp_path / name
        bad.write_bytes(data)
        result = tap("-r", str(bad))
        assert result.returncode == 2 and message in result.stderr, (name, result)
    missing = tap("-r", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and b"cannot open" in missing.stderr


def test_har_validates_and_loads_in_a_har_parser(alstap, tmp_path):
    path = tmp_path / "har.alstap"
    recorder = record(alstap, path, "--duration", "2")
    wait_subscribers(alstap, 1)
    send(alstap, "har", 12)
    recorder.communicate(timeout=15)
    result = tap("-r", str(path), "-o", "har")
    assert result.returncode == 0, result.stderr
    har = json.loads(result.stdout)
    jsonschema.validate(har, HAR_SCHEMA)
    entries = har["log"]["entries"]
    assert len(entries) == 12
    first = entries[0]
    assert first["request"]["url"] == "http://ratings:9080/har/0" and first["request"]["method"] == "GET"
    assert first["response"]["status"] == 200 and first["_alstap"]["requestId"] == "har-0"
    assert first["startedDateTime"] == "2025-11-24T16:00:00.000000Z"
    timings = first["timings"]
    assert abs(timings["send"] + timings["wait"] + timings["receive"] - first["time"]) < 1e-6
    parsed = HarParser(har)
    assert len(parsed.har_data["entries"]) == 12
    assert [e["response"]["status"] for e in parsed.har_data["entries"]][:4] == [200, 201, 404, 503]
    # Live, HAR needs an end: --no-follow after --last.
    live = tap("--server", alstap.url(""), "--last", "3", "--no-follow", "-o", "har")
    assert live.returncode == 0 and len(json.loads(live.stdout)["log"]["entries"]) == 3
    refused = tap("--server", alstap.url(""), "-o", "har")
    assert refused.returncode != 0 and b"give it an end" in refused.stderr


def test_a_capture_of_the_two_envoy_example_pairs_on_reading(tmp_path):
    """The README's mesh: a live `pair=1` subscriber and `alstap tap -w`, then `-r --pair`."""
    import test_envoy
    from test_envoy import DESTINATION, SOURCE, request, token_file, wait_envoy_ready
    from conftest import require_tool
    envoy = require_tool("envoy")
    server = Alstap("--als-token-file", token_file(), als="127.0.0.1:9001", http="127.0.0.1:9002")
    envoys = [subprocess.Popen([envoy, "-c", config, "--log-level", "warn", "--base-id", str(base)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for config, base in [(SOURCE, 7311), (DESTINATION, 7312)]]
    path = tmp_path / "mesh.alstap"
    try:
        wait_envoy_ready(9901)
        wait_envoy_ready(9902)
        live = Tap(server, "?pair=1")
        recorder = record(server, path, "--duration", "6")
        wait_subscribers(server, 2)
        for i, (method, route, code, _) in enumerate(test_envoy.REQUESTS):
            assert request(method, route.format(i)) == code
        server.wait_stat("entriesReceived", lambda v: v >= 9)
        live.wait_lines(5, timeout=15)
        recorder.communicate(timeout=20)
        live.close()
        read = tap("-r", str(path), "-o", "json", "--pair")
        assert read.returncode == 0, read.stderr
        got = [json.loads(l) for l in read.stdout.splitlines()]
        expected = [json.loads(l) for l in live.lines]
        assert sorted(json.dumps(r, sort_keys=True) for r in got) == sorted(json.dumps(r, sort_keys=True) for r in expected)
        assert sum(r["paired"] for r in got) == 4 and len(got) == 5, "four pairs, and /dead alone (UF)"
        har = json.loads(tap("-r", str(path), "-o", "har", "--pair").stdout)
        jsonschema.validate(har, HAR_SCHEMA)
        assert len(har["log"]["entries"]) == 5
        assert sum(1 for e in har["log"]["entries"] if e["_alstap"]["paired"]) == 4
    finally:
        for proc in envoys:
            proc.terminate()
            proc.wait(timeout=10)
        server.stop()
