"""Scale-out II with real peers: Envoy's log streams move between replicas at --max-stream-age
(ended between messages, nothing lost), a replica that drains hands its Envoys to another with
nothing lost, /readyz says the truth, and a cluster tap gets every counted entry exactly once
through a rolling restart."""
import json
import signal
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest

import als
from conftest import Alstap, Tap
from rawh2 import RawH2, grpc_frame
from sidecars import Sidecars, drive, free_port
from test_cluster import Replicas, wait_for_line, wait_peer_subscriptions
from test_top import wait_snapshot

WRITTEN = "access_logs.grpc_access_log.logs_written"
DROPPED = "access_logs.grpc_access_log.logs_dropped"


def counted(server):
    return server.stats()["entriesReceived"]


def final_count(server):
    """What a stopped replica counted, from its last log line."""
    lines = [line for line in server.log if " stopped" in line and "entries=" in line]
    assert lines, "".join(server.log[-5:])
    return int(lines[-1].split("entries=")[1].split()[0])


def test_an_aged_stream_ends_between_messages_and_loses_nothing_sent_meanwhile():
    server = Alstap("--max-stream-age", "1")
    client = RawH2(server.als_port)
    try:
        stream = client.start()
        messages = [m.SerializeToString() for m in als.http_messages("aged", 30, per_message=10)]
        client.send(stream, grpc_frame(messages[0]))
        second = grpc_frame(messages[1])
        client.send(stream, second[:7])  # half a message when the age comes (0.9..1.1 s)
        time.sleep(1.5)
        assert server.stats()["alsStreamsAged"] == 0, "never in the middle of a message"
        # The rest of it and half the next in one DATA frame (as Envoy's frames straddle
        # messages under load), then the other half: the call ends after the whole one, and the
        # one begun, sent before the answer could reach us, still counts (late).
        third = grpc_frame(messages[2])
        client.conn.send_data(stream, second[7:] + third[:40])
        client.conn.send_data(stream, third[40:])
        client.flush()
        frames = client.raw_frames(lambda f: any(kind == 1 and stream_id == stream for kind, _, stream_id, _ in f)
                                   and any(kind == 7 for kind, _, _, _ in f))
        answers = [payload for kind, _, stream_id, payload in frames if kind == 1 and stream_id == stream]
        assert answers and answers[0]["grpc-status"] == "14", frames
        assert "max-stream-age" in answers[0]["grpc-message"]
        goaway = [payload for kind, _, _, payload in frames if kind == 7][0]
        last_stream, code = int.from_bytes(goaway[:4], "big"), int.from_bytes(goaway[4:8], "big")
        assert code == 0 and last_stream == stream, "GOAWAY: no new streams, this one goes on"
        server.wait_stat("entriesReceived", lambda v: v == 30)
        stats = server.stats()
        assert stats["alsStreamsAged"] == 1 and stats["alsLateMessages"] == 1
        assert stats["alsStreamsFailed"] == 0
    finally:
        client.close()
        server.stop()


def test_new_replicas_get_envoys_streams_within_max_stream_age():
    """Scaling from one replica to two: Envoy's streams stay where they are until alstap ends
    them at --max-stream-age; then they spread, every entry counted by exactly one replica."""
    first = Alstap("--max-stream-age", "2")
    second_ports = (free_port(), free_port())
    sidecars = Sidecars([(first.als_port, first.http_port), second_ports], health=True)
    second = None
    try:
        sent = sum(drive(sidecars, 1.5, "one"))
        first.wait_stat("entriesReceived", lambda v: v == sent)
        second = Alstap("--max-stream-age", "2", als=f"127.0.0.1:{second_ports[0]}", http=f"127.0.0.1:{second_ports[1]}")
        sent += sum(drive(sidecars, 6, "two"))
        deadline = time.time() + 10
        while counted(first) + counted(second) < sent and time.time() < deadline:
            time.sleep(0.1)
        assert counted(first) + counted(second) == sent, "every entry counted once"
        assert sidecars.total(WRITTEN) == sent and sidecars.total(DROPPED) == 0
        new = second.stats()
        assert new["alsStreamsStarted"] >= 2 and new["entriesReceived"] > sent // 10, new
        assert first.stats()["alsStreamsAged"] >= 3, "every sidecar's first stream aged out"
    finally:
        sidecars.stop()
        first.stop()
        if second:
            second.stop()


def test_sigterm_hands_every_sidecar_to_another_replica_with_nothing_lost():
    """A rolling update's step: SIGTERM on one replica while three sidecars log to both. Its
    Envoys reconnect to the other within their flush interval; what each replica counted adds up
    to every request, and Envoy dropped nothing."""
    # --drain-delay: /readyz fails a second before the drain, as the preStop delay gives the
    # Service time to drop the pod (here Envoy's health check, every 0.2 s, sees it).
    first, second = Alstap("--drain-delay", "1"), Alstap()
    # Sidecars 0 and 2 prefer the first replica, sidecar 1 the second; each fails over to the other.
    sidecars = Sidecars([(first.als_port, first.http_port), (second.als_port, second.http_port)], health=True,
                        preferred=True)
    try:
        before = sum(drive(sidecars, 1, "before"))
        deadline = time.time() + 5
        while counted(first) + counted(second) < before and time.time() < deadline:
            time.sleep(0.05)
        assert counted(first) > 0 and counted(second) > 0, "both replicas had streams"
        during = {}
        driver = threading.Thread(target=lambda: during.setdefault("sent", drive(sidecars, 3, "during")))
        driver.start()
        time.sleep(0.5)
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=10) == 0
        driver.join()
        sent = before + sum(during["sent"])
        deadline = time.time() + 5
        while final_count(first) + counted(second) < sent and time.time() < deadline:
            time.sleep(0.05)
        assert final_count(first) + counted(second) == sent
        assert sidecars.total(WRITTEN) == sent and sidecars.total(DROPPED) == 0
    finally:
        sidecars.stop()
        second.stop()


def readyz(server):
    try:
        with urllib.request.urlopen(server.url("/readyz"), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_readyz_fails_over_the_memory_bound_and_while_draining():
    over = Alstap("--ready-max-memory", "1048576")
    fine = Alstap("--ready-max-memory", str(1 << 40), "--shutdown-grace", "3", "--drain-delay", "1")
    try:
        status, body = readyz(over)
        assert status == 503 and body.startswith("not ready: resident memory ") and "over --ready-max-memory 1.0 MiB" in body
        assert over.stats()["notReadyAnswers"] == 1
        assert readyz(fine) == (200, "ready\n")
        # SIGTERM with --drain-delay: not ready at once while everything else goes on, then the
        # drain ends the open ingest stream.
        channel, stub = als.stub(fine.als_target)
        calls = iter(als.http_messages("ready", 1))
        release = threading.Event()

        def messages():
            yield next(calls)
            release.wait(5)

        future = stub.StreamAccessLogs.future(messages())
        fine.wait_stat("entriesReceived", lambda v: v == 1)
        fine.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 2
        seen = (200, "ready\n")
        while seen == (200, "ready\n") and time.time() < deadline:
            try:
                seen = readyz(fine)
            except OSError:
                seen = "refused"
        assert seen == (503, "not ready: draining\n"), seen
        assert fine.stats()["alsStreamsActive"] == 1, "the stream goes on during the delay"
        with pytest.raises(grpc.RpcError) as ended:
            future.result(timeout=5)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in ended.value.details()
        release.set()
        channel.close()
    finally:
        over.stop()
        fine.stop()


def one_call(target, request_id):
    """One ALS call carrying one entry; True when the replica answered OK (it counted it)."""
    entry = als.http_entry("roll", 0)
    entry.request.request_id = request_id
    entry.request.path = "/roll/" + request_id
    entry.common_properties.start_time.FromNanoseconds(time.time_ns())
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(als.identifier(workload="roller", namespace="roll"))
    message.http_logs.log_entry.append(entry)
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        als.als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(iter([message]), timeout=2)
        return True
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def test_a_cluster_tap_gets_every_counted_entry_once_through_a_rolling_restart():
    replicas = Replicas()
    tap = Tap(replicas.servers[0], "?scope=cluster")
    top = Tap(replicas.servers[0], "?scope=cluster&interval=200ms&window=120", path="/top")
    wait_peer_subscriptions(replicas, 2)
    counted_ids = []
    stop = threading.Event()

    def sender(r):
        n = 0
        while not stop.is_set():
            request_id = f"roll-{r}-{n}"
            n += 1
            if one_call(f"127.0.0.1:{replicas.ports[r][0]}", request_id):
                counted_ids.append(request_id)
            time.sleep(0.02)

    senders = [threading.Thread(target=sender, args=(r,)) for r in range(3)]
    try:
        for thread in senders:
            thread.start()
        # Replicas 1 and 2, one at a time: SIGTERM, and back on the same ports.
        for r in (1, 2):
            time.sleep(1)
            replicas.servers[r].stop()
            time.sleep(0.5)
            replicas.servers[r] = replicas.start(r)
        time.sleep(1)
        stop.set()
        for thread in senders:
            thread.join()
        expected = sorted(counted_ids)
        assert len({i.split("-")[1] for i in expected}) == 3
        deadline = time.time() + 10
        while time.time() < deadline:
            got = sorted(e["request"]["id"] for e in tap.json() if e["type"] == "http")
            if len(got) >= len(expected):
                break
            time.sleep(0.1)
        assert got == expected, f"{len(got)} of {len(expected)}; missing {sorted(set(expected) - set(got))[:5]}"
        notices = [e for e in tap.json() if e["type"] == "notice"]
        for r in (1, 2):
            peer = f"127.0.0.1:{replicas.ports[r][1]}"
            said = [n["message"] for n in notices if n["peer"] == peer]
            assert said[0].startswith("shut down; retrying") and said[-1] == "connected", said
        # The cluster aggregate counted them all too, once.
        wait_snapshot(top, lambda s: s["totals"]["requests"] == len(expected))
        # last=K across the replicas, after the restart: the K most recent of them all.
        recent = Tap(replicas.servers[0], "?scope=cluster&last=5&follow=0")
        recent.done.wait(15)
        by_start = [e["request"]["id"] for e in sorted((e for e in tap.json() if e["type"] == "http"),
                                                     key=lambda e: e["time"])]
        assert [e["request"]["id"] for e in recent.json() if e["type"] == "http"] == by_start[-5:]
    finally:
        stop.set()
        tap.close()
        top.close()
        replicas.stop()
