"""Scale-out: three alstap replicas on loopback, each told about all three (`--peers`); a real
grpcio client spreads streams over them; `scope=cluster` on any one replica sees every entry once,
in time order, pairs halves that went to different replicas, survives a replica going away and
takes it back when it returns."""
import json
import struct
import socket
import subprocess
import time

import als
from conftest import Alstap, Tap, alstap_binary, wait_subscribers
from test_pairing import DESTINATION, SOURCE, half, stream


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replicas:
    """Three replicas with fixed ports, so each can be stopped and started again on its own."""

    def __init__(self, *extra):
        self.ports = [(free_port(), free_port()) for _ in range(3)]
        self.extra = ["--peers", ",".join(f"127.0.0.1:{http}" for _, http in self.ports),
                      "--merge-window", "0.3", *extra]
        self.servers = [self.start(i) for i in range(3)]

    def start(self, i):
        als_port, http_port = self.ports[i]
        return Alstap(*self.extra, als=f"127.0.0.1:{als_port}", http=f"127.0.0.1:{http_port}")

    def stop(self):
        for server in self.servers:
            if server.alive():
                server.stop()


def wait_peer_subscriptions(replicas, per_replica):
    """Each cluster tap holds one `scope=local` subscription on every replica."""
    for server in replicas.servers:
        server.wait_stat("subscribersActive", lambda v: v >= per_replica)


def wait_for_line(tap, text, timeout=10):
    """The first line of `tap` containing `text`, parsed (fails after `timeout` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [line for line in list(tap.lines) if text in line]
        if found:
            return json.loads(found[0])
        time.sleep(0.05)
    raise AssertionError(f"no line with {text!r}; last lines {tap.lines[-3:]}")


def entries(lines):
    return [json.loads(line) for line in lines if json.loads(line)["type"] in ("http", "tcp")]


def spread(replicas, tag, per_replica, start_ms=0):
    """One stream per replica; entry n's start time interleaves across replicas."""
    for r, server in enumerate(replicas.servers):
        batch = []
        for n in range(per_replica):
            entry = als.http_entry(tag, n * 3 + r)
            entry.common_properties.start_time.FromMilliseconds(1_764_000_000_000 + start_ms + n * 3 + r)
            batch.append(entry)
        stream(server, als.identifier(workload=f"app-{r}", namespace="shop"), batch)


def test_every_entry_once_in_time_order_with_filters_pushed_down():
    replicas = Replicas()
    try:
        a, b, _ = replicas.servers
        everything = Tap(b, "?scope=cluster")
        failures = Tap(a, "?scope=cluster&code=503&format=text")
        wait_peer_subscriptions(replicas, 2)
        spread(replicas, "once", 20)
        got = entries(everything.wait_lines(60))
        time.sleep(0.5)
        got = entries(everything.lines)
        ids = [e["request"]["id"] for e in got]
        assert sorted(ids) == sorted(f"once-{i}" for i in range(60)), "every replica's entries, each once"
        times = [e["time"] for e in got]
        assert times == sorted(times), "ordered by start time within the merge window"
        assert {e["reporter"]["workload"] for e in got} == {"app-0", "app-1", "app-2"}
        # The filter ran on each replica: only 503s crossed, in text.
        text = failures.wait_lines(15)
        time.sleep(0.3)
        assert len(failures.lines) == 15 and all(" 503 " in line for line in text)
        # A replica's own subscribers are unaffected: a local tap on b sees only b's entries.
        assert b.stats()["entriesReceived"] == 20
    finally:
        replicas.stop()


def test_pairs_across_replicas_and_a_replica_that_goes_away_and_returns():
    replicas = Replicas("--pair-window", "0.5")
    try:
        a, b, c = replicas.servers
        pairs = Tap(a, "?scope=cluster&pair=1")
        wait_peer_subscriptions(replicas, 1)
        # The outbound halves reach replica a, their inbound twins replica c.
        stream(a, SOURCE, [half("out", f"x-{i}", 3) for i in range(5)])
        stream(c, DESTINATION, [half("in", f"x-{i}", 1) for i in range(5)])
        lines = pairs.wait_lines(5)
        time.sleep(0.8)
        records = [json.loads(line) for line in pairs.lines]
        assert sorted(r["requestId"] for r in records) == [f"x-{i}" for i in range(5)]
        assert all(r["paired"] and r["overheadMs"] == 2.0 for r in records), lines

        # Replica c stops: a notice names it, and entries on the others still flow.
        c.stop()
        notice = wait_for_line(pairs, '"type":"notice"')
        assert notice["peer"] == f"127.0.0.1:{replicas.ports[2][1]}" and "retrying" in notice["message"]
        assert a.stats()["peerStreamsFailed"] >= 1 and a.stats()["peerStreamsOpened"] >= 3
        stream(a, SOURCE, [half("out", "y-1", 3)])
        stream(b, DESTINATION, [half("in", "y-1", 1)])
        assert wait_for_line(pairs, '"requestId":"y-1"')["paired"] is True

        # Back on the same ports, it rejoins: a notice, and its entries arrive again.
        replicas.servers[2] = c = replicas.start(2)
        assert wait_for_line(pairs, '"message":"connected"')["peer"] == notice["peer"]
        stream(c, DESTINATION, [half("in", "z-1", 1)])
        stream(b, SOURCE, [half("out", "z-1", 3)])
        assert wait_for_line(pairs, '"requestId":"z-1"')["paired"] is True
    finally:
        replicas.stop()


def test_token_passed_to_peers_history_and_the_cli(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("cluster-token\n")
    replicas = Replicas("--tap-token-file", str(token_file))
    try:
        for server in replicas.servers:
            server.token = "cluster-token"
        spread(replicas, "old", 4)  # history: 12 entries across the replicas
        for server in replicas.servers:
            server.wait_stat("entriesReceived", lambda v: v == 4)
        cli = subprocess.run([alstap_binary(), "tap", "--cluster", "--last", "5", "--no-follow", "-o", "json",
                              "--server", f"http://127.0.0.1:{replicas.ports[0][1]}", "--token-file", str(token_file)],
                             capture_output=True, text=True, timeout=20)
        assert cli.returncode == 0, cli.stderr
        assert "peer" not in cli.stderr, "every peer accepted the token"
        got = [json.loads(line) for line in cli.stdout.splitlines()]
        # The 5 most recent of the 12 the replicas hold between them, oldest first.
        assert [e["request"]["id"] for e in got] == [f"old-{i}" for i in range(7, 12)]
        # Following: the history first, then live entries.
        follow = Tap(replicas.servers[1], "?scope=cluster&last=3")
        wait_peer_subscriptions(replicas, 1)
        spread(replicas, "new", 2, start_ms=1000)
        lines = follow.wait_lines(9)
        ids = [e["request"]["id"] for e in entries(lines)]
        assert ids[:3] == ["old-9", "old-10", "old-11"]
        assert sorted(ids[3:]) == sorted(f"new-{i}" for i in range(6))
    finally:
        replicas.stop()


def test_peers_from_dns():
    http_port = free_port()
    server = Alstap("--peers", f"dns:localhost:{http_port}", "--merge-window", "0.1", http=f"127.0.0.1:{http_port}")
    try:
        tap = Tap(server, "?scope=cluster")
        server.wait_stat("subscribersActive", lambda v: v == 2)  # the cluster tap and its own peer subscription
        stream(server, SOURCE, [half("out", f"d-{i}", 3) for i in range(3)])
        got = entries(tap.wait_lines(3))
        assert sorted(e["request"]["id"] for e in got) == ["d-0", "d-1", "d-2"]
    finally:
        server.stop()


def test_cluster_scope_needs_peers(alstap):
    result = subprocess.run(["curl", "-s", "-w", "%{http_code}", alstap.url("/tap?scope=cluster")],
                            capture_output=True, text=True, timeout=10)
    assert result.stdout == "scope=cluster needs alstap serve --peers\n400"


def test_als_format_is_envoys_messages(alstap):
    """What peers exchange (`format=als`) is gRPC-framed StreamAccessLogsMessages that Envoy's
    own protos decode: the matching entries, their reporter's Identifier, notices flagged 0x80."""
    curl = subprocess.Popen(["curl", "-sN", alstap.url("/tap?format=als&code=503&last=100")], stdout=subprocess.PIPE)
    try:
        wait_subscribers(alstap, 1)
        channel, stub = als.stub(alstap.als_target)
        stub.StreamAccessLogs(als.http_messages("w", 40, ident=als.identifier(workload="wire-v1", namespace="ns1")))
        channel.close()
        alstap.wait_stat("entriesReceived", lambda v: v == 40)
        time.sleep(0.3)
    finally:
        curl.terminate()
    data = curl.stdout.read()
    frames = []
    while data:
        flag, length = struct.unpack(">BI", data[:5])
        frames.append((flag, data[5:5 + length]))
        data = data[5 + length:]
    assert frames[0] == (0x80, b'{"type":"replayed"}'), "the (empty) replay ends with its notice"
    paths = []
    for flag, payload in frames[1:]:
        assert flag == 0
        message = als.als_pb2.StreamAccessLogsMessage.FromString(payload)
        assert message.identifier.node.metadata["WORKLOAD_NAME"] == "wire-v1"
        for entry in message.http_logs.log_entry:
            assert entry.response.response_code.value == 503 and entry.request.user_agent == "curl/7.88.1"
            paths.append(entry.request.path)
    assert paths == [f"/w/{i}" for i in range(3, 40, 4)]


def test_bad_peers_flag():
    result = subprocess.run([alstap_binary(), "serve", "--peers", "dns:nameonly"], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 64 and "--peers" in result.stderr
