"""Field masks (`fields=`) through curl: only the chosen JSON fields, in the full line's order,
with the same values as the full line; on live, replayed and paired records; as JSON and SSE;
subscribers with one mask sharing its bytes; every bad mask a 400 that names it."""
import json
import urllib.error
import urllib.request

import pytest

import als
from conftest import Alstap, Tap, wait_subscribers
from test_pairing import DESTINATION, SOURCE, half, stream

MASK = "request.path,response.code,durations.total,source.workload,reporter.labels.app"


def project(value, paths, line=True):
    """What the mask should keep of a full line: the paths (a prefix covers its children), and of
    the line itself `type` and `time`."""
    kept = {}
    for key, inner in value.items():
        if (line and key in ("type", "time")) or key in paths:
            kept[key] = inner
        elif isinstance(inner, dict):
            deeper = project(inner, [p[len(key) + 1:] for p in paths if p.startswith(key + ".")], line=False)
            if deeper:
                kept[key] = deeper
    return kept


def test_masked_lines_equal_the_full_lines_projected(alstap):
    full = Tap(alstap)
    masked = Tap(alstap, "?fields=" + MASK)
    same = Tap(alstap, "?fields=" + ",".join(reversed(MASK.split(","))))  # the same mask, another spelling
    sse = Tap(alstap, "?format=sse&fields=response.code")
    wait_subscribers(alstap, 4)
    channel, stub = als.stub(alstap.als_target)
    stub.StreamAccessLogs(als.http_messages("mask", 25))
    channel.close()
    for tap in (full, masked, same):
        tap.wait_lines(25)
    paths = MASK.split(",")
    expected = [project(line, paths) for line in full.json()]
    assert masked.json() == expected
    assert same.lines == masked.lines, "one mask, however spelled, gives the same bytes"
    # The order of the full line: time, type, reporter, source, request, response, durations.
    assert list(masked.json()[0]) == ["time", "type", "reporter", "source", "request", "response", "durations"]
    assert masked.json()[0]["reporter"] == {"labels": {"app": "reviews"}}
    # Five fields of a 1 KB line: about a fifth of its bytes (scripts/bench measures two fields).
    assert sum(map(len, masked.lines)) < 0.25 * sum(map(len, full.lines))
    events = [line for line in sse.wait_lines(25 * 2) if line.startswith("data: ")]
    assert [json.loads(line[6:]) for line in events[:25]] == [project(line, ["response.code"]) for line in full.json()]
    for tap in (full, masked, same, sse):
        tap.close()


def test_replayed_and_paired_records_are_masked():
    server = Alstap()
    try:
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(als.http_messages("kept", 5))
        channel.close()
        server.wait_stat("entriesReceived", lambda v: v >= 5)
        replay = Tap(server, "?last=3&follow=0&fields=request.path")
        replay.proc.wait(timeout=10)
        assert [line["request"]["path"] for line in replay.json()] == ["/kept/2", "/kept/3", "/kept/4"]
        assert all(set(line) == {"time", "type", "request"} for line in replay.json())

        pairs = Tap(server, "?pair=1&fields=request.path,durations.total")
        wait_subscribers(server, 1)
        stream(server, SOURCE, [half("out", "r1", 5)])
        stream(server, DESTINATION, [half("in", "r1", 3)])
        (record,) = [json.loads(line) for line in pairs.wait_lines(1)]
        assert record["type"] == "pair" and record["paired"] is True and record["requestId"] == "r1"
        assert record["request"] == {"path": "/reviews/r1"}
        assert record["outbound"] == {"time": record["outbound"]["time"], "type": "http",
                                      "request": {"path": "/reviews/r1"}, "durations": {"total": 5.0}}
        assert record["inbound"]["durations"] == {"total": 3.0}
        assert "source" not in record and "destination" not in record
        assert record["overheadMs"] == 2.0
        pairs.close()
    finally:
        server.stop()


@pytest.mark.parametrize("query, message", [
    ("fields=request.pth", "request.pth"),
    ("fields=", "fields"),
    ("fields=request..path", "request..path"),
    ("fields=type&format=text", "format=json or sse"),
    ("fields=type&format=als", "fields"),
])
def test_bad_masks_are_400_naming_them(alstap, query, message):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(alstap.url("/tap?" + query), timeout=5)
    assert error.value.code == 400
    assert message in error.value.read().decode()


def test_top_refuses_fields(alstap):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(alstap.url("/top?fields=type"), timeout=5)
    assert error.value.code == 400 and "fields is a /tap parameter" in error.value.read().decode()


def test_masked_alone_then_beside_a_full_tap(alstap):
    """While only masked taps read, the server writes only their members; a full tap that joins
    gets whole lines from then on, and the masked one's lines do not change."""
    masked = Tap(alstap, "?fields=request.path")
    wait_subscribers(alstap, 1)
    channel, stub = als.stub(alstap.als_target)
    stub.StreamAccessLogs(als.http_messages("alone", 3))
    masked.wait_lines(3)
    full = Tap(alstap)
    wait_subscribers(alstap, 2)
    stub.StreamAccessLogs(als.http_messages("both", 3))
    channel.close()
    full.wait_lines(3)
    masked.wait_lines(6)
    assert [line["request"] for line in masked.json()] == [{"path": f"/{tag}/{i}"} for tag in ("alone", "both")
                                                          for i in range(3)]
    assert all(set(line) == {"time", "type", "request"} for line in masked.json())
    assert [line["request"]["path"] for line in full.json()] == [f"/both/{i}" for i in range(3)]
    assert all("reporter" in line and "durations" in line for line in full.json())
    masked.close()
    full.close()
