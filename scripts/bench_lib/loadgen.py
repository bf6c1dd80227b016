"""Deterministic load for the benchmark: realistic Istio entries (varied methods, paths, codes,
flags, timings, addresses), gRPC-framed, the Identifier first. Built with Envoy's own protos."""
import random
import struct

from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2

NAMESPACES = [f"team-{i:02d}" for i in range(10)]
WORKLOADS = [f"svc-{i:02d}-v1" for i in range(10)]
PATHS = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users/{id}/profile", "/healthz",
         "/reviews/{id}", "/ratings/{id}", "/productpage", "/static/app.js"]
METHODS = [base_pb2.GET] * 6 + [base_pb2.POST, base_pb2.PUT, base_pb2.DELETE, base_pb2.PATCH]
CODES = [200] * 14 + [201, 204, 301, 404, 429, 500, 503]


def identifier(index):
    namespace = NAMESPACES[index % len(NAMESPACES)]
    workload = WORKLOADS[index % len(WORKLOADS)]
    pod = f"{workload}-7d4b9c{index:04d}-x{index % 97:02d}"
    ident = als_pb2.StreamAccessLogsMessage.Identifier(log_name="outbound_http")
    ident.node.id = f"sidecar~10.8.{index % 250}.{index % 200 + 2}~{pod}.{namespace}~{namespace}.svc.cluster.local"
    ident.node.cluster = f"{workload}.{namespace}"
    ident.node.metadata.update({"NAMESPACE": namespace, "NAME": pod, "WORKLOAD_NAME": workload,
                                "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local",
                                "LABELS": {"app": workload.rsplit("-", 1)[0], "version": "v1"}})
    return ident


def entry(rng, i):
    e = accesslog_pb2.HTTPAccessLogEntry()
    c = e.common_properties
    c.start_time.seconds = 1_764_226_000 + i // 1000
    c.start_time.nanos = rng.randrange(1_000_000_000)
    target_ns = rng.choice(NAMESPACES)
    target = rng.choice(WORKLOADS).rsplit("-", 1)[0]
    c.upstream_cluster = f"outbound|{rng.choice([80, 8080, 9080])}||{target}.{target_ns}.svc.cluster.local"
    c.route_name = "default"
    c.downstream_remote_address.socket_address.address = f"10.8.{rng.randrange(250)}.{rng.randrange(2, 250)}"
    c.downstream_remote_address.socket_address.port_value = rng.randrange(32768, 60999)
    c.downstream_local_address.socket_address.address = f"172.20.{rng.randrange(250)}.{rng.randrange(2, 250)}"
    c.downstream_local_address.socket_address.port_value = 9080
    c.upstream_remote_address.socket_address.address = f"10.9.{rng.randrange(250)}.{rng.randrange(2, 250)}"
    c.upstream_remote_address.socket_address.port_value = 9080
    c.upstream_local_address.socket_address.address = f"10.8.{rng.randrange(250)}.{rng.randrange(2, 250)}"
    c.upstream_local_address.socket_address.port_value = rng.randrange(32768, 60999)
    total = rng.randrange(200_000, 250_000_000)
    c.time_to_last_rx_byte.nanos = rng.randrange(10_000, 100_000)
    c.time_to_first_upstream_tx_byte.nanos = rng.randrange(100_000, 500_000)
    c.time_to_last_upstream_tx_byte.nanos = rng.randrange(100_000, 500_000)
    c.time_to_first_upstream_rx_byte.nanos = total // 2
    c.time_to_last_upstream_rx_byte.nanos = total - 50_000
    c.time_to_first_downstream_tx_byte.nanos = total - 40_000
    c.time_to_last_downstream_tx_byte.nanos = total - 10_000
    c.duration.nanos = total
    c.upstream_request_attempt_count = 1
    code = rng.choice(CODES)
    if code == 503:
        c.response_flags.upstream_connection_failure = True
    if code == 429:
        c.response_flags.rate_limited = True
    request_id = "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                                 rng.getrandbits(12), rng.getrandbits(48))
    c.stream_id = request_id
    r = e.request
    r.request_method = rng.choice(METHODS)
    r.scheme = "http"
    r.authority = f"{target}.{target_ns}:9080"
    r.path = rng.choice(PATHS).replace("{id}", str(rng.randrange(100000)))
    r.user_agent = rng.choice(["curl/7.88.1", "Go-http-client/1.1", "grpc-go/1.62.1", "Mozilla/5.0"])
    r.request_id = request_id
    r.request_headers_bytes = rng.randrange(150, 900)
    r.request_body_bytes = rng.choice([0, 0, 0, rng.randrange(10, 5000)])
    e.response.response_code.value = code
    e.response.response_code_details = "via_upstream"
    e.response.response_headers_bytes = rng.randrange(80, 400)
    e.response.response_body_bytes = rng.randrange(0, 20000)
    e.protocol_version = accesslog_pb2.HTTPAccessLogEntry.HTTP11
    return e


def frame(message):
    payload = message.SerializeToString(deterministic=True)
    return struct.pack(">BI", 0, len(payload)) + payload


def request_body(stream_index, entries, per_message, seed=1):
    """One StreamAccessLogs request body: `entries` entries in messages of `per_message`."""
    rng = random.Random(seed * 1_000_003 + stream_index)
    pool = [entry(rng, i) for i in range(min(entries, 2000))]  # reused: generation is slow in Python
    chunks = []
    for start in range(0, entries, per_message):
        message = als_pb2.StreamAccessLogsMessage()
        if start == 0:
            message.identifier.CopyFrom(identifier(stream_index))
        for i in range(start, min(entries, start + per_message)):
            message.http_logs.log_entry.append(pool[i % len(pool)])
        chunks.append(frame(message))
    return b"".join(chunks)


def entry_sizes(seed=1):
    rng = random.Random(seed)
    entries = [entry(rng, i) for i in range(1000)]
    return sum(len(e.SerializeToString()) for e in entries) / len(entries)
