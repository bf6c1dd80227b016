"""alstap benchmark scenarios: micro (ns/entry), ingest (1 core pinned, and 2 threads), fan-out
(100 filtered subscribers + a firehose), the cost of a `/top` aggregate and its memory per group, a
field-masked firehose against the full one, latency at a steady rate, memory (10 000 idle streams),
and with real Envoys how Envoy's streams move between replicas (rebalance).
Counts are verified on both ends: the server's own counters and each subscriber's line count."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import loadgen  # noqa: E402
import rebalance  # noqa: E402
import capture_bench  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALSTAP = os.path.join(ROOT, ".build-static", "release", "alstap")  # built by scripts/bench
MICRO = os.path.join(ROOT, ".build", "release", "alstap-microbench")
ALS_PATH = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
WORK = tempfile.mkdtemp(prefix="alstap-bench-")
RESULTS = []
STARTED = []  # every process started, ended on exit whatever happens


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, threads, pin=None, extra=(), binary=None, wrapper=()):
        self.als, self.http = free_port(), free_port()
        args = [*wrapper, binary or ALSTAP, "serve", "--threads", str(threads), "--als-listen", f"127.0.0.1:{self.als}",
                "--http-listen", f"127.0.0.1:{self.http}", "--log-level", "warning", *extra]
        if pin is not None:
            args = ["taskset", "-c", str(pin)] + args
        self.proc = subprocess.Popen(args)
        STARTED.append(self.proc)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("alstap did not start")

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/stats", timeout=5) as r:
            return {k: int(v) for k, v in (line.split() for line in r.read().decode().splitlines())}

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

    def wait(self, predicate, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            stats = self.stats()
            if predicate(stats):
                return stats
            time.sleep(0.01)
        raise RuntimeError(f"timed out; stats {self.stats()}")

    def cpu_seconds(self):
        """User + system CPU time the server has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


class Subscriber:
    """`curl -sN URL > /dev/null`: the firehose of the issue. What it got is proven by the server's
    counters (a line counts as sent once the socket took it, and `linesDropped` stays 0) and by
    curl's exit status 0 (it read up to the final chunk, written after every line)."""

    def __init__(self, server, query="", pin=None):
        pinning = ["taskset", "-c", str(pin)] if pin is not None else []
        self.curl = subprocess.Popen(pinning + ["curl", "-sN", "-o", "/dev/null", "-w", "%{size_download}",
                                                f"http://127.0.0.1:{server.http}/tap{query}"],
                                     stdout=subprocess.PIPE, text=True)
        STARTED.append(self.curl)

    def finished(self):
        """(curl's exit status, bytes received); call after the server stopped (curl then ends)."""
        out = self.curl.communicate(timeout=30)[0]
        return self.curl.returncode, int(out or 0)


class Sink:
    """Many subscribers in one small C process (tapsink.c, built here): each counts its entry
    lines like `Subscriber`. A hundred curl|grep pipelines would load the client core more than
    the server."""

    def __init__(self, server, queries, pin=None):
        binary = os.path.join(WORK, "tapsink")
        source = os.path.join(os.path.dirname(__file__), "tapsink.c")
        subprocess.run(["cc", "-O2", "-o", binary, source], check=True)
        pinning = ["taskset", "-c", str(pin)] if pin is not None else []
        self.proc = subprocess.Popen(pinning + [binary, str(server.http), "300", *queries], stdout=subprocess.PIPE,
                                     text=True)
        STARTED.append(self.proc)

    def counts(self):
        """Entry lines per query; call after the server stopped (the sink then ends by itself)."""
        return [int(line) for line in self.proc.communicate(timeout=60)[0].split()]


def body_file(name, streams_entries, per_message):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(loadgen.request_body(0, streams_entries, per_message))
    return path


def otlp_body_file(name, entries, per_message, every=False):
    path = os.path.join(WORK, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(loadgen.otlp_request_body(entries, per_message, every=every))
    return path


def h2load(server, body, requests, clients=1, pin=None, rps=None):
    args = ["h2load", "-n", str(requests), "-c", str(clients), "-m", "1", "-d", body,
            "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if rps:
        args += ["--rps", str(rps)]
    args.append(f"http://127.0.0.1:{server.als}{ALS_PATH}")
    if pin is not None:
        args = ["taskset", "-c", str(pin)] + args
    out = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))
    if succeeded != requests:
        raise RuntimeError("h2load: " + out)
    return out


def record(scenario, figure, target, ok, detail):
    RESULTS.append((scenario, figure, target, "yes" if ok else "NO", detail))
    print(f"{scenario:<34} {figure:<22} target {target:<14} {'met' if ok else 'NOT MET':<8} {detail}", flush=True)


def micro(body, otlp_body, otlp_every_body):
    out = subprocess.run(["taskset", "-c", "0", MICRO, body, "2", otlp_body, otlp_every_body], capture_output=True,
                         text=True, timeout=180).stdout
    print(out, flush=True)
    rates = {}
    for line in out.splitlines():
        if "ns/entry" in line:  # e.g. "json    3118.7 ns/entry ..."
            name, rest = line.split("  ", 1)
            RESULTS.append(("micro: " + name.strip(), rest.split("ns/entry")[0].strip() + " ns/entry", "-", "-",
                            rest.split("ns/entry")[1].strip()))
            rates[name.strip()] = float(rest.split("ns/entry")[1].split("entries/s")[0])
    # The same entries over OTLP against ALS, one pinned core: with the recommended attribute set
    # (the target), and with every attribute alstap reads.
    ratio = rates["otlp+json"] / rates["json"]
    record("OTLP decode + JSON vs ALS", f"{ratio:.2f} of ALS", ">= 0.50", ratio >= 0.5,
           f"{rates['otlp+json']:,.0f} OTLP entries/s (recommended attributes) against {rates['json']:,.0f} ALS "
           f"entries/s, same run, taskset -c 0")
    every = rates["otlp-all+json"] / rates["json"]
    record("OTLP decode + JSON vs ALS, every attribute", f"{every:.2f} of ALS", "-", True,
           f"{rates['otlp-all+json']:,.0f} OTLP entries/s with every attribute alstap reads (its OTLP/HTTP demo logger)")


def ingest(body, entries_per_request, threads, pinned, requests, runs=3):
    """Runs the scenario `runs` times (the machine has slow phases) and reports the median."""
    results = [ingest_once(body, entries_per_request, threads, pinned, requests) for _ in range(runs)]
    results.sort(key=lambda r: r[0])
    rate, ok, detail, peak, _ = results[len(results) // 2]
    rates = ", ".join(f"{r[0]:,.0f}" for r in results)
    label = "ingest --threads 1 pinned" if pinned else f"ingest --threads {threads} unpinned"
    record(label, f"{rate:,.0f} entries/s", "250,000/s" if pinned else "-", ok and (rate >= 250_000 or not pinned),
           f"median of {runs} runs ({rates}); {detail}")
    if pinned:
        peak = max(r[3] for r in results)
        record("peak RSS during ingest", f"{peak:.1f} MB", "<= 20 MB", peak <= 20, f"VmHWM, highest of {runs} runs")


def ingest_once(body, entries_per_request, threads, pinned, requests, query=""):
    server = Server(threads, pin=0 if pinned else None)
    subscriber = Subscriber(server, query, pin=1 if pinned else None)
    server.wait(lambda s: s["subscribersActive"] == 1)
    total = entries_per_request * requests
    start = time.time()
    h2load(server, body, requests, clients=1 if pinned else 2, pin=1 if pinned else None)
    stats = server.wait(lambda s: s["linesSent"] + s["linesDropped"] >= total)
    elapsed = time.time() - start
    peak = server.peak_rss_mb()
    server.stop()
    status, received = subscriber.finished()
    rate = total / elapsed
    # Pinned, curl has a core of its own and must get every line. Unpinned, it shares both cores
    # with the server's two threads and h2load and may fall behind: then its bounded queue drops
    # lines (counted, and told to it in a `lost` line) while ingestion goes on, as designed.
    delivered = stats["linesSent"] == total and stats["linesDropped"] == 0
    ok = (stats["entriesReceived"] == total and stats["linesSent"] + stats["linesDropped"] == total and status == 0
          and (delivered or not pinned))
    return (rate, ok, f"sent {total}, server counted {stats['entriesReceived']}, wrote {stats['linesSent']} lines "
                      f"to the subscriber, dropped {stats['linesDropped']}, curl exit {status} after {received:,} "
                      f"bytes; peak RSS {peak:.1f} MB", peak, received)


class TopReader:
    """`curl -sN /top?...` into a file: the aggregate's snapshots, read back at the end."""

    def __init__(self, server, query, pin=None):
        self.path = os.path.join(WORK, f"top-{server.http}.ndjson")
        pinning = ["taskset", "-c", str(pin)] if pin is not None else []
        self.out = open(self.path, "wb")
        self.curl = subprocess.Popen(pinning + ["curl", "-sN", f"http://127.0.0.1:{server.http}/top{query}"],
                                     stdout=self.out)
        STARTED.append(self.curl)

    def wait_totals(self, requests, timeout=30):
        """The newest snapshot once its totals reach `requests` (else the newest one at the timeout)."""
        import json
        deadline = time.time() + timeout
        newest = None
        while time.time() < deadline:
            with open(self.path, "rb") as f:
                lines = [line for line in f.read().splitlines() if line.startswith(b'{"type":"top"')]
            if lines:
                newest = json.loads(lines[-1])
                if newest["totals"]["requests"] >= requests:
                    return newest
            time.sleep(0.1)
        return newest

    def close(self):
        self.curl.terminate()
        self.curl.wait(timeout=10)
        self.out.close()


# The field mask the masked-firehose figures use: two fields (and `type`, `time`).
MASK = "?fields=request.path,response.code"


def masks(body, entries_per_request, requests=100, runs=3):
    """A two-field mask's firehose against the full one: pinned ingest (server on core 0, curl and
    h2load on core 1), the two alternating run by run, medians compared; and the bytes each wrote."""
    full, masked = [], []
    for _ in range(runs):
        full.append(ingest_once(body, entries_per_request, 1, True, requests))
        masked.append(ingest_once(body, entries_per_request, 1, True, requests, query=MASK))
    full_rate = sorted(r[0] for r in full)[runs // 2]
    masked_rate = sorted(r[0] for r in masked)[runs // 2]
    ratio = masked_rate / full_rate
    exact = all(r[1] for r in full + masked)
    # Within the run-to-run noise of this machine (a few %) counts as no slower.
    record("masked firehose (2 fields) rate", f"{ratio:.2f} of the full one", ">= 0.97", ratio >= 0.97 and exact,
           f"pinned ingest, medians of {runs} alternating runs: full {full_rate:,.0f}/s "
           f"({', '.join(f'{r[0]:,.0f}' for r in full)}), {MASK} {masked_rate:,.0f}/s "
           f"({', '.join(f'{r[0]:,.0f}' for r in masked)}); every line delivered: {exact}")
    total = entries_per_request * requests
    full_bytes, masked_bytes = full[0][4] / total, masked[0][4] / total
    share = masked_bytes / full_bytes * 100
    record("masked firehose (2 fields) bytes", f"{share:.1f} % of the full line", "<= 15 %", share <= 15,
           f"curl's bytes per entry: {masked_bytes:.0f} with the mask, {full_bytes:.0f} without")


def top(body, entries_per_request, requests=100, runs=3):
    """The cost of one `/top?by=route` aggregate beside the firehose: pinned ingest (server on
    core 0, every client on core 1) with the firehose alone and with the aggregate too, the two
    alternating run by run (this machine's slow phases hit both alike); medians compared."""
    base, with_top = [], []
    for _ in range(runs):
        base.append(ingest_once(body, entries_per_request, 1, True, requests))
        with_top.append(top_once(body, entries_per_request, requests))
    base_rate = sorted(r[0] for r in base)[runs // 2]
    top_rate = sorted(r[0] for r in with_top)[runs // 2]
    cost = (1 - top_rate / base_rate) * 100
    exact = all(r[1] for r in with_top) and all(r[1] for r in base)
    record("/top by=route beside the firehose", f"{cost:.1f} % of the rate", "<= 10 %", cost <= 10 and exact,
           f"pinned ingest, medians of {runs} alternating runs: firehose alone {base_rate:,.0f}/s "
           f"({', '.join(f'{r[0]:,.0f}' for r in base)}), with /top {top_rate:,.0f}/s "
           f"({', '.join(f'{r[0]:,.0f}' for r in with_top)}); {with_top[runs // 2][2]}")


def top_once(body, entries_per_request, requests):
    server = Server(1, pin=0)
    subscriber = Subscriber(server, pin=1)
    aggregate = TopReader(server, "?by=route&window=15m&interval=1s", pin=1)
    server.wait(lambda s: s["subscribersActive"] == 2)
    total = entries_per_request * requests
    start = time.time()
    h2load(server, body, requests, pin=1)
    stats = server.wait(lambda s: s["linesSent"] + s["linesDropped"] >= total)
    elapsed = time.time() - start
    snapshot = aggregate.wait_totals(total)
    server.stop()
    aggregate.close()
    status, _ = subscriber.finished()
    counted = snapshot["totals"]["requests"] if snapshot else 0
    ok = stats["entriesReceived"] == total and stats["linesSent"] == total and status == 0 and counted == total
    return (total / elapsed, ok, f"the aggregate counted {counted:,} of {total:,} entries in "
                                 f"{snapshot['groups'] if snapshot else 0} groups; the firehose got "
                                 f"{stats['linesSent']:,} lines")


def top_memory(groups=10_000):
    """Bytes per `/top` group: RSS after an aggregate holds `groups` distinct routes (each a
    route name seen once, in one second), less RSS after the same traffic in one group."""
    import grpc
    from envoy.service.accesslog.v3 import als_pb2_grpc

    def send(server, names):
        rng = loadgen.random.Random(7)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.als}")
        stub = als_pb2_grpc.AccessLogServiceStub(channel)

        def messages():
            for start in range(0, len(names), 100):
                message = loadgen.als_pb2.StreamAccessLogsMessage()
                if start == 0:
                    message.identifier.CopyFrom(loadgen.identifier(0))
                for i, name in enumerate(names[start:start + 100]):
                    entry = loadgen.entry(rng, start + i)
                    entry.common_properties.route_name = name
                    message.http_logs.log_entry.append(entry)
                yield message

        stub.StreamAccessLogs(messages())
        channel.close()

    results = {}
    for label, names in [("one", ["same"] * groups), ("many", [f"route-{i:05d}" for i in range(groups)])]:
        server = Server(1, extra=("--top-groups", str(2 * groups)))
        # Destinations vary in the generated entries: by=reporter keeps one group per reporter
        # for "one"; for "many" the route name makes each entry its own by=route group.
        reader = TopReader(server, "?by=route&window=60s&interval=500ms&limit=1" if label == "many"
                           else "?by=reporter&window=60s&interval=500ms&limit=1")
        server.wait(lambda s: s["subscribersActive"] == 1)
        send(server, names)
        snapshot = reader.wait_totals(groups)
        time.sleep(0.5)
        results[label] = (server.rss_mb(), snapshot["groups"] if snapshot else 0)
        server.stop()
        reader.close()
    per_group = (results["many"][0] - results["one"][0]) * 1024 * 1024 / max(1, results["many"][1])
    record("/top memory per group", f"{per_group:,.0f} bytes", "-", results["many"][1] > groups * 0.9,
           f"RSS {results['one'][0]:.1f} MB with one group, {results['many'][0]:.1f} MB with "
           f"{results['many'][1]:,} groups (by=route, one second of the window each)")


def fanout(body, entries_per_request, requests, filtered=100, threads=1, runs=3, indexed=True):
    """`threads` 1: the server pinned to core 0, every client on core 1; 2: nothing pinned. Runs
    the scenario `runs` times (the machine has slow phases) and reports the median. `indexed`
    False: filters on path and code, which the subscriber index cannot narrow down."""
    results = sorted((fanout_once(body, entries_per_request, requests, filtered, threads, indexed)
                      for _ in range(runs)), key=lambda r: r[0])
    rate, exact, detail = results[len(results) // 2]
    pinned = threads == 1
    label = (f"fan-out {filtered} filtered + firehose" + ("" if indexed else " (path & code filters)")
             + ("" if pinned else f", --threads {threads} unpinned"))
    target = filtered == 100 and indexed
    rates = ", ".join(f"{r[0]:,.0f}" for r in results)
    record(label, f"{rate:,.0f} entries/s", "200,000/s" if target else "-",
           (rate >= 200_000 or not target) and all(r[1] for r in results),
           f"median of {runs} runs ({rates}); {detail}")


def filters_for(entries, count, indexed):
    """`count` tap queries, each matching about 1 % of `entries`, and how many each matches."""
    filters = []
    for i in range(count):
        if indexed:
            namespace = loadgen.NAMESPACES[i % 10]
            service = loadgen.WORKLOADS[i // 10].rsplit("-", 1)[0]
            query = f"?destination_ns={namespace}&destination=workload/{service}"
            matches = (lambda e, s=service, n=namespace:
                       e.common_properties.upstream_cluster.endswith(f"||{s}.{n}.svc.cluster.local"))
        else:
            prefix = sorted(set(p.split("{")[0] for p in loadgen.PATHS))[i % 8]
            code = sorted(set(loadgen.CODES) - {200})[i // 8 % 7]
            query = f"?path={prefix}&code={code}"
            matches = (lambda e, p=prefix, c=code:
                       e.request.path.startswith(p) and e.response.response_code.value == c)
        filters.append((query, sum(1 for e in entries if matches(e))))
    return filters


def fanout_once(body, entries_per_request, requests, filtered, threads, indexed, server_binary=None, wrapper=()):
    rng_body = loadgen.request_body(0, entries_per_request, 100)
    # The entries of the body, to count what each filter should match.
    from envoy.service.accesslog.v3 import als_pb2
    import struct
    offset, entries = 0, []
    while offset < len(rng_body):
        length = struct.unpack(">I", rng_body[offset + 1:offset + 5])[0]
        message = als_pb2.StreamAccessLogsMessage.FromString(rng_body[offset + 5:offset + 5 + length])
        entries += list(message.http_logs.log_entry)
        offset += 5 + length
    # A larger queue absorbs the bursts of the client core, which 101 curls and h2load share.
    pinned = threads == 1
    # Byte bounds as generous: this scenario measures speed, not the bounds (callgrind is slow).
    server = Server(threads, pin=0 if pinned else None, binary=server_binary,
                    extra=("--subscriber-queue", "65536", "--subscriber-queue-bytes", str(1 << 30),
                           "--subscribers-queue-bytes", str(4 << 30)),
                    wrapper=wrapper)
    filters = filters_for(entries, filtered, indexed)
    sink = Sink(server, [q for q, _ in filters], pin=1 if pinned else None)
    firehose = Sink(server, [""], pin=1 if pinned else None)
    server.wait(lambda s: s["subscribersActive"] == filtered + 1)
    total = entries_per_request * requests
    start, cpu_start = time.time(), server.cpu_seconds()
    h2load(server, body, requests, clients=1 if pinned else 2, pin=1 if pinned else None)
    expected_lines = total + sum(expected for _, expected in filters) * requests
    stats = server.wait(lambda s: s["linesSent"] + s["linesDropped"] >= expected_lines)
    elapsed = time.time() - start
    busy = (server.cpu_seconds() - cpu_start) / elapsed * 100
    server.stop()
    counts = [(got, expected * requests) for got, (_, expected) in zip(sink.counts(), filters)]
    fire = firehose.counts()[0]
    rate = total / elapsed
    exact = all(got == want for got, want in counts) and fire == total
    short = [(i, got, want) for i, (got, want) in enumerate(counts) if got != want]
    share = sum(want for _, want in counts) / len(counts) / total * 100
    return (rate, exact, (f"server core {busy:.0f} % busy; " if pinned else f"server {busy:.0f} % of a core; ") +
           f"each filter matches {share:.2f} % on average; every subscriber got exactly its lines: {exact}; "
           f"dropped {stats['linesDropped']} (firehose got {fire}/{total}; filtered short: {short[:3]})")


def instructions(body, entries_per_request):
    """Instructions per entry counted by valgrind's callgrind: stable where this machine's
    wall-clock figures are not, so two builds compare within a percent. Decode + JSON in the
    micro-benchmark, and the whole server through the fan-out 100 scenario (5 requests)."""
    def stripped(binary):  # valgrind 3.19 cannot read Swift 6.3's debug info
        path = os.path.join(WORK, os.path.basename(binary) + ".nodebug")
        subprocess.run(["objcopy", "--strip-debug", binary, path], check=True)
        return path

    def total(profile):
        with open(profile) as f:
            return int(next(line.split()[1] for line in f if line.startswith(("summary:", "totals:"))))

    for label, every in (("recommended attributes", False), ("every attribute", True)):
        otlp_profile = os.path.join(WORK, "callgrind.otlp")
        out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={otlp_profile}", stripped(MICRO),
                              otlp_body_file(f"otlp-{int(every)}.bin", entries_per_request, 100, every),
                              "--passes", "1", "otlp+json"], capture_output=True, text=True, timeout=600, check=True).stdout
        otlp_decoded = int(out.split()[0])
        record(f"instructions: OTLP ({label}) + JSON", f"{total(otlp_profile) / otlp_decoded:,.0f} /entry", "-", True,
               f"callgrind, alstap-microbench --passes 1 otlp+json: unpack, translation, JSON ({otlp_decoded} entries, "
               f"the same as ALS's)")
    micro_profile = os.path.join(WORK, "callgrind.micro")
    out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={micro_profile}", stripped(MICRO),
                          body, "--passes", "1", "json"], capture_output=True, text=True, timeout=600, check=True).stdout
    decoded = int(out.split()[0])
    record("instructions: decode + JSON", f"{total(micro_profile) / decoded:,.0f} /entry", "-", True,
           f"callgrind, alstap-microbench --passes 1 json ({decoded} entries)")
    per_entry = {"json": total(micro_profile) / decoded}
    for case in ("facts", "top", "json+mask"):
        profile = os.path.join(WORK, f"callgrind.{case}")
        out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", stripped(MICRO),
                              body, "--passes", "1", case], capture_output=True, text=True, timeout=600, check=True).stdout
        per_entry[case] = total(profile) / int(out.split()[0])
    record("instructions: a /top by=route aggregate", f"{per_entry['top'] - per_entry['facts']:,.0f} /entry", "-", True,
           f"callgrind, alstap-microbench top ({per_entry['top']:,.0f}: decode, the measures and counting) less "
           f"facts ({per_entry['facts']:,.0f}: decode and filter facts)")
    record("instructions: a two-field mask's projection", f"{per_entry['json+mask'] - per_entry['json']:,.0f} /entry", "-",
           True, f"callgrind, alstap-microbench json+mask ({per_entry['json+mask']:,.0f}: decode, JSON and "
           f"fields=request.path,response.code) less json")
    server_profile = os.path.join(WORK, "callgrind.server")
    requests = 5
    _, exact, _ = fanout_once(body, entries_per_request, requests, 100, 1, True, server_binary=stripped(ALSTAP),
                              wrapper=("valgrind", "--tool=callgrind", f"--callgrind-out-file={server_profile}"))
    entries = entries_per_request * requests
    record("instructions: fan-out 100 + firehose", f"{total(server_profile) / entries:,.0f} /entry", "-", exact,
           f"callgrind over the whole server process, {entries} entries, every subscriber got exactly its lines: "
           f"{exact}")
    alone, with_top = (top_instructions(body, entries_per_request, requests, stripped(ALSTAP), aggregate)
                       for aggregate in (False, True))
    masked = top_instructions(body, entries_per_request, requests, stripped(ALSTAP), False, query=MASK)
    record("instructions: masked firehose", f"{masked:,.0f} /entry", "-", True,
           f"callgrind over the whole server process, {entries} entries, one subscriber with {MASK}: "
           f"{(masked / alone - 1) * 100:+.1f} % against the full firehose's {alone:,.0f} /entry")
    record("instructions: firehose + /top by=route", f"{with_top:,.0f} /entry", "-", True,
           f"callgrind over the whole server process, {entries} entries: the firehose alone {alone:,.0f} /entry, "
           f"so the aggregate adds {with_top - alone:,.0f} ({(with_top / alone - 1) * 100:.1f} %; snapshots every 60 s, "
           f"none during the run)")


def top_instructions(body, entries_per_request, requests, binary, aggregate, query=""):
    """Instructions per entry of the whole server with the firehose (`query` its parameters), and a
    `/top` aggregate beside it."""
    profile = os.path.join(WORK, f"callgrind.top-{int(aggregate)}-{len(query)}")
    server = Server(1, binary=binary, wrapper=("valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}"))
    firehose = Subscriber(server, query)
    reader = TopReader(server, "?by=route&window=15m&interval=60s") if aggregate else None
    server.wait(lambda s: s["subscribersActive"] == (2 if aggregate else 1), timeout=120)
    entries = entries_per_request * requests
    h2load(server, body, requests)
    server.wait(lambda s: s["linesSent"] >= entries, timeout=600)
    server.stop()
    if reader:
        reader.close()
    firehose.finished()
    with open(profile) as f:
        return int(next(line.split()[1] for line in f if line.startswith(("summary:", "totals:")))) / entries


def latency(rate_per_second=50_000, seconds=10):
    # Envoy flushes a 16 KiB buffer (its default buffer_size_bytes): about 40 of these entries.
    per_request = 40
    body = body_file("latency.bin", per_request, per_request)
    server = Server(1, pin=0)
    subscriber = Subscriber(server, pin=1)
    server.wait(lambda s: s["subscribersActive"] == 1)
    requests = rate_per_second // per_request * seconds
    h2load(server, body, requests, clients=5, pin=1, rps=rate_per_second // per_request // 5)
    total = requests * per_request
    stats = server.wait(lambda s: s["linesSent"] >= total)
    server.stop()
    status, _ = subscriber.finished()
    lines = stats["linesSent"] if status == 0 and stats["linesDropped"] == 0 else 0
    p50, p99, p999 = stats["latencyP50Micros"], stats["latencyP99Micros"], stats["latencyP999Micros"]
    record(f"latency at {rate_per_second:,}/s", f"p99 {p99} µs", "p99 <= 1 ms", p99 <= 1000 and lines == total,
           f"p50 {p50} µs, p99 {p99} µs, p999 {p999} µs over {stats['latencySamples']} batches; "
           f"subscriber got {lines}/{total}")


def web_ui(rate_per_second=10_000, seconds=10):
    """The browser page at 10 000 entries/s (headless Chromium through playwright): does it keep
    up, stay within 1 000 rows, and stay responsive (main-thread delay, a click to the details)?"""
    import shutil
    from playwright.sync_api import sync_playwright
    per_request = 100
    body = body_file("ui.bin", per_request, per_request)
    server = Server(1, pin=0)
    total = rate_per_second * seconds
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"http://127.0.0.1:{server.http}/")
        page.wait_for_function("() => document.getElementById('status').textContent === 'live'")
        # How late a 50 ms timer fires: the time the page could not answer a user.
        page.evaluate("""() => {
            window.delays = [];
            let last = performance.now();
            setInterval(() => { const now = performance.now(); window.delays.push(now - last - 50); last = now; }, 50);
        }""")
        h2load(server, body, total // per_request, clients=1, pin=1, rps=rate_per_second // per_request)
        page.wait_for_function(f"() => document.getElementById('received').textContent === '{total}'", timeout=60_000)
        delays = sorted(page.evaluate("window.delays"))
        rows = int(page.locator("#shown").text_content())
        lost = int(page.locator("#lost").text_content())
        start = time.time()
        page.locator("#entries tbody tr").nth(5).click()
        page.locator("#details .wf-row").first.wait_for()
        click_ms = (time.time() - start) * 1000
        browser.close()
    server.stop()
    p99 = delays[int(len(delays) * 0.99)] if delays else -1
    record(f"web UI at {rate_per_second:,}/s", f"p99 main-thread delay {p99:.0f} ms", "responsive (<= 100 ms)",
           p99 <= 100 and rows <= 1000 and lost == 0,
           f"the page received {total}/{total} entries in {seconds} s, lost {lost}, {rows} rows shown; "
           f"max delay {delays[-1]:.0f} ms over {len(delays)} samples; a click to the details drawn: {click_ms:.0f} ms")


def connection_memory(connections=2000, streams_per_connection=4):
    """What an idle HTTP/2 connection and an open ALS stream cost (the README's worst-case
    memory formula uses these): RSS before, after the connections' prefaces, after their streams."""
    import resource
    import h2.config
    import h2.connection
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 1000)), hard))
    server = Server(1, pin=0, extra=("--max-streams-total", str(connections * streams_per_connection * 2)))
    time.sleep(0.5)
    before = server.rss_mb()
    clients = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", server.als))
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        clients.append((sock, conn))
    server.wait(lambda s: s["connectionsActive"] >= connections)
    time.sleep(1)
    with_connections = server.rss_mb()
    for sock, conn in clients:
        for _ in range(streams_per_connection):
            conn.send_headers(conn.get_next_available_stream_id(),
                              [(":method", "POST"), (":scheme", "http"), (":path", ALS_PATH), (":authority", "alstap"),
                               ("content-type", "application/grpc")])
        sock.sendall(conn.data_to_send())
    streams = connections * streams_per_connection
    server.wait(lambda s: s["alsStreamsActive"] >= streams)
    time.sleep(1)
    with_streams = server.rss_mb()
    for sock, _ in clients:
        sock.close()
    server.stop()
    per_connection = (with_connections - before) * 1024 / connections
    per_stream = (with_streams - with_connections) * 1024 / streams
    record("memory per connection / stream", f"{per_connection:.1f} KB / {per_stream:.2f} KB", "-", True,
           f"{connections} idle HTTP/2 connections, then {streams} ALS streams (headers only)")


def idle_streams(connections=2500, streams_per_connection=4):
    import h2.config
    import h2.connection
    from envoy.service.accesslog.v3 import als_pb2
    server = Server(1, pin=0)
    tap = subprocess.Popen(["curl", "-sN", f"http://127.0.0.1:{server.http}/tap?format=text"], stdout=subprocess.PIPE)
    server.wait(lambda s: s["subscribersActive"] == 1)
    before = server.rss_mb()
    body = loadgen.request_body(0, 1, 1)
    clients = []
    for c in range(connections):
        sock = socket.create_connection(("127.0.0.1", server.als))
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        for _ in range(streams_per_connection):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", ALS_PATH),
                                       (":authority", "alstap"), ("content-type", "application/grpc")])
            conn.send_data(stream, body)
        sock.sendall(conn.data_to_send())
        clients.append((sock, conn))
    total_streams = connections * streams_per_connection
    server.wait(lambda s: s["entriesReceived"] >= total_streams, timeout=120)
    time.sleep(1)
    held = server.rss_mb()
    # A new entry on an idle stream must still arrive promptly.
    lines_before = server.stats()["linesSent"]
    sock, conn = clients[len(clients) // 2]
    message = als_pb2.StreamAccessLogsMessage()
    message.http_logs.log_entry.append(loadgen.entry(__import__("random").Random(7), 1))
    payload = message.SerializeToString()
    conn.send_data(1, b"\x00" + len(payload).to_bytes(4, "big") + payload)
    sent_at = time.time()
    sock.sendall(conn.data_to_send())
    server.wait(lambda s: s["linesSent"] > lines_before, timeout=5)
    delivered_ms = (time.time() - sent_at) * 1000
    for sock, _ in clients:
        sock.close()
    tap.terminate()
    server.stop()
    record("10,000 idle ALS streams", f"{held:.1f} MB RSS", "<= 150 MB", held <= 150 and delivered_ms <= 10,
           f"{connections} connections x {streams_per_connection} streams (RSS {before:.1f} MB before); "
           f"a new entry was delivered in {delivered_ms:.1f} ms (polling /stats, so an upper bound)")


def main():
    scenarios = sys.argv[1:] or ["micro", "instructions", "ingest", "fanout", "top", "masks", "latency", "idle", "memory",
                                 "ui", "rebalance", "capture"]
    entries_per_request = 20_000
    body = body_file("ingest.bin", entries_per_request, 100)
    print(f"machine: {os.cpu_count()} cores, {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
    print(f"entry: {loadgen.entry_sizes():.0f} protobuf bytes on average; {entries_per_request} entries per request body "
          f"in messages of 100", flush=True)
    if "micro" in scenarios:
        micro(body, otlp_body_file("otlp-0.bin", entries_per_request, 100),
              otlp_body_file("otlp-1.bin", entries_per_request, 100, every=True))
    if "instructions" in scenarios:
        instructions(body, entries_per_request)
    if "ingest" in scenarios:
        ingest(body, entries_per_request, threads=1, pinned=True, requests=100)
        ingest(body, entries_per_request, threads=2, pinned=False, requests=100)
    if "fanout" in scenarios:
        fanout(body, entries_per_request, requests=50, filtered=10, runs=1)
        fanout(body, entries_per_request, requests=50)
        fanout(body, entries_per_request, requests=50, threads=2)
        fanout(body, entries_per_request, requests=50, indexed=False, runs=1)
    if "top" in scenarios:
        top(body, entries_per_request)
        top_memory()
    if "masks" in scenarios:
        masks(body, entries_per_request)
    if "latency" in scenarios:
        latency()
    if "idle" in scenarios:
        idle_streams()
    if "memory" in scenarios:
        connection_memory()
    if "ui" in scenarios:
        web_ui()
    if "capture" in scenarios:
        def ingest_rate(runs=3):
            rates = sorted(ingest_once(body, entries_per_request, 1, True, 100)[0] for _ in range(runs))
            return rates[len(rates) // 2]
        capture_bench.capture(record, ALSTAP, WORK, body, ingest_rate)
    if "rebalance" in scenarios:
        rebalance.rebalance(record, ALSTAP)
    print("\n| scenario | figure | target | met | detail |\n|---|---|---|---|---|")
    for row in RESULTS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    try:
        main()
    finally:
        for process in STARTED:
            if process.poll() is None:
                process.kill()
        shutil.rmtree(WORK, ignore_errors=True)
