"""The `rebalance` scenario: real Envoys (three sidecars of Tests/EndToEnd/sidecars.py, each
flushing its access logs every 100 ms) and alstap replicas (the release binary). Scale-up: how
soon a replica started beside a busy one gets streams at --max-stream-age 2 (and, the control,
at 0: never), and its share of the entries after; drain: SIGTERM on one of two replicas under load, five times, and what was
lost (requests answered by Envoy against entries the replicas counted, and Envoy's own
`logs_dropped`). Bounded: a few seconds of traffic per run."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "EndToEnd"))
from conftest import Alstap  # noqa: E402
from sidecars import Sidecars, drive, free_port  # noqa: E402

DROPPED = "access_logs.grpc_access_log.logs_dropped"


def counted(server):
    return server.stats()["entriesReceived"]


def final_count(server):
    line = [line for line in server.log if " stopped" in line and "entries=" in line][-1]
    return int(line.split("entries=")[1].split()[0])


def settle(servers, sent, timeout=5):
    deadline = time.time() + timeout
    while sum(counted(s) for s in servers) < sent and time.time() < deadline:
        time.sleep(0.05)


def scale_up(record, age):
    first = Alstap("--max-stream-age", age, threads=1)
    ports = (free_port(), free_port())
    sidecars = Sidecars([(first.als_port, first.http_port), ports], health=True)
    second = None
    try:
        sent = sum(drive(sidecars, 2, "one"))
        settle([first], sent)
        second = Alstap("--max-stream-age", age, threads=1, als=f"127.0.0.1:{ports[0]}", http=f"127.0.0.1:{ports[1]}")
        started = time.time()
        first_stream = None
        base = (counted(first), 0)
        deadline = started + 10
        while time.time() < deadline:
            sent += sum(drive(sidecars, 0.2, "two"))
            if first_stream is None and second.stats()["alsStreamsStarted"] > 0:
                first_stream = time.time() - started
        settle([first, second], sent)
        share = counted(second) / max(1, counted(second) + counted(first) - base[0])
        lost = sent - counted(first) - counted(second)
        aging = age != "0"
        record(f"rebalance: scale-up 1 -> 2, age {age}", f"{first_stream:.2f} s to a stream" if first_stream else "no stream",
               "<= 2.2 s" if aging else "(control)",
               (first_stream is not None and first_stream <= 2.2) if aging else first_stream is None,
               f"new replica's share of the next 10 s: {share:.0%}; lost {lost} of {sent}; "
               f"Envoy dropped {sidecars.total(DROPPED)}")
    finally:
        sidecars.stop()
        first.stop()
        if second:
            second.stop()


def drain(record, runs=5):
    lost_total, sent_total, dropped, handed = 0, 0, 0, []
    for _ in range(runs):
        first, second = Alstap("--drain-delay", "1", threads=1), Alstap(threads=1)
        sidecars = Sidecars([(first.als_port, first.http_port), (second.als_port, second.http_port)], health=True,
                            preferred=True)
        try:
            sent = sum(drive(sidecars, 1, "before"))
            settle([first, second], sent)
            during = {}
            driver = threading.Thread(target=lambda: during.setdefault("sent", drive(sidecars, 2, "during")))
            driver.start()
            time.sleep(0.5)
            before = counted(second)
            first.proc.send_signal(signal.SIGTERM)
            first.proc.wait(timeout=10)
            driver.join()
            sent += sum(during["sent"])
            deadline = time.time() + 5
            while final_count(first) + counted(second) < sent and time.time() < deadline:
                time.sleep(0.05)
            lost_total += sent - final_count(first) - counted(second)
            sent_total += sent
            handed.append(counted(second) - before)
            dropped += sidecars.total(DROPPED)
        finally:
            sidecars.stop()
            second.stop()
    record("rebalance: SIGTERM under load", f"{lost_total} lost of {sent_total}", "0", lost_total == 0 and dropped == 0,
           f"{runs} runs, 3 sidecars at ~40 req/s each; Envoy dropped {dropped}; "
           f"entries on the other replica after the signal: {min(handed)}..{max(handed)} per run")


def rebalance(record, binary):
    os.environ["ALSTAP_BIN"] = binary
    scale_up(record, "2")
    scale_up(record, "0")  # the control: without an age, the new replica never gets a stream
    drain(record)
