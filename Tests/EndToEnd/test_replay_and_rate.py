"""Replay (`last=K`, `follow=0`) and per-subscriber rate limits (`max_rps=R`), with the lost lines
that account for every skipped entry."""
import json
import subprocess
import time

import als
from conftest import Alstap, Tap, alstap_binary, wait_subscribers


def send(server, tag, count, per_message=5):
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages(tag, count, per_message=per_message))
    channel.close()


def ids(tap):
    return [e["request"]["id"] for e in tap.json() if e.get("type") == "http"]


def test_replay_then_live_in_order(alstap):
    send(alstap, "old", 50)
    alstap.wait_stat("entriesReceived", lambda v: v == 50)

    only_replay = Tap(alstap, "?last=10&follow=0")
    assert only_replay.done.wait(10), "follow=0 ends the stream after the replay"
    assert ids(only_replay) == [f"old-{i}" for i in range(40, 50)]

    # method=GET: every 4th entry is a GET (als.METHODS); the 5 most recent of them.
    filtered = Tap(alstap, "?last=5&method=GET&follow=0")
    assert filtered.done.wait(10)
    assert ids(filtered) == [f"old-{i}" for i in range(28, 50, 4)][-5:]

    following = Tap(alstap, "?last=3")
    wait_subscribers(alstap, 1)
    following.wait_lines(3)
    send(alstap, "new", 7)
    following.wait_lines(10)
    time.sleep(0.3)
    assert ids(following) == ["old-47", "old-48", "old-49"] + [f"new-{i}" for i in range(7)]
    following.close()

    cli = subprocess.run([alstap_binary(), "tap", "--server", alstap.url(""), "--last", "2", "--no-follow", "-o", "json"],
                         capture_output=True, text=True, timeout=20)
    assert cli.returncode == 0, cli.stderr
    assert [json.loads(line)["request"]["id"] for line in cli.stdout.splitlines()] == ["new-5", "new-6"]


def test_replay_off_and_ring_bound():
    server = Alstap("--replay-entries", "20")
    try:
        send(server, "x", 100)
        server.wait_stat("entriesReceived", lambda v: v == 100)
        tap = Tap(server, "?last=1000&follow=0")
        assert tap.done.wait(10)
        # The ring keeps whole messages: at least the 20 most recent entries, not many more.
        got = ids(tap)
        assert got[-20:] == [f"x-{i}" for i in range(80, 100)] and len(got) <= 25
    finally:
        server.stop()


def test_rate_limit_holds_and_lost_lines_add_up(alstap):
    rate = 200
    limited = Tap(alstap, f"?max_rps={rate}")
    wait_subscribers(alstap, 1)
    channel, stub = als.stub(alstap.als_target)
    sent = 0
    start = time.time()
    while time.time() - start < 5:
        stub.StreamAccessLogs(als.http_messages(f"r{sent}", 50, per_message=10))
        sent += 50
        time.sleep(0.02)
    elapsed = time.time() - start
    channel.close()
    alstap.wait_stat("entriesReceived", lambda v: v == sent)
    time.sleep(0.5)
    lines = limited.json()
    got = sum(1 for line in lines if line.get("type") == "http")
    skipped = sum(line["count"] for line in lines if line.get("type") == "lost" and line["reason"] == "rate")
    # A one-second burst, then `rate` per second.
    allowed = rate * (elapsed + 1)
    assert rate * elapsed * 0.9 <= got <= allowed * 1.1, (got, elapsed)
    assert got + skipped == sent, "every skipped entry is reported in-stream"
    assert alstap.stats()["linesRateLimited"] == sent - got
    limited.close()
