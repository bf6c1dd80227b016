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


def _address(address):
    return f"{address.socket_address.address}:{address.socket_address.port_value}"


# alstap's recommended attribute set (AccessAttribute.isRecommended; the gRPC logger of
# deploy/envoy/envoy-otlp.yaml); `every=True` sends every attribute alstap reads (its HTTP logger).
RECOMMENDED = {"http.request.method", "url.scheme", "server.address", "url.path", "user_agent.original",
               "network.protocol.version", "http.request.body.size", "http.response.status_code",
               "http.response.body.size", "envoy.request_id", "envoy.response_code_details", "envoy.response_flags",
               "envoy.upstream_cluster", "envoy.upstream_host", "envoy.upstream_local_address", "envoy.downstream_local_address",
               "envoy.downstream_remote_address", "envoy.route_name", "envoy.duration_us"}


def otlp_record(e, logs_pb2, every=False):
    """The OTLP record Envoy's open_telemetry logger sends for entry `e`: every value a string, as
    Envoy's format strings make them."""
    c, r, s = e.common_properties, e.request, e.response
    start = c.start_time.seconds * 1_000_000_000 + c.start_time.nanos // 1000 * 1000
    record = logs_pb2.LogRecord(time_unix_nano=start)
    us = lambda d: str((d.seconds * 1_000_000_000 + d.nanos) // 1000)  # noqa: E731
    flags = "UF" if c.response_flags.upstream_connection_failure else "RL" if c.response_flags.rate_limited else "-"
    values = [
        ("http.request.method", base_pb2.RequestMethod.Name(r.request_method)), ("url.scheme", r.scheme),
        ("server.address", r.authority), ("url.path", r.path), ("user_agent.original", r.user_agent),
        ("http.request.header.referer", "-"), ("network.protocol.version", "HTTP/1.1"),
        ("http.request.body.size", str(r.request_body_bytes)), ("http.response.status_code", str(s.response_code.value)),
        ("http.response.body.size", str(s.response_body_bytes)), ("envoy.request_id", r.request_id),
        ("envoy.forwarded_for", "-"), ("envoy.original_path", "-"), ("envoy.response_code_details", s.response_code_details),
        ("envoy.response_flags", flags), ("envoy.upstream_cluster", c.upstream_cluster),
        ("envoy.upstream_host", _address(c.upstream_remote_address)),
        ("envoy.upstream_local_address", _address(c.upstream_local_address)),
        ("envoy.upstream_transport_failure_reason", "-"),
        ("envoy.downstream_local_address", _address(c.downstream_local_address)),
        ("envoy.downstream_remote_address", _address(c.downstream_remote_address)),
        ("envoy.requested_server_name", "-"), ("envoy.route_name", c.route_name),
        ("envoy.connection_termination_details", "-"), ("envoy.request_header_bytes", str(r.request_headers_bytes)),
        ("envoy.response_header_bytes", str(s.response_headers_bytes)),
        ("envoy.downstream_direct_remote_address", _address(c.downstream_remote_address)),
        ("envoy.stream_id", c.stream_id), ("envoy.upstream_request_attempt_count", str(c.upstream_request_attempt_count)),
        ("envoy.duration_us", us(c.duration)), ("envoy.last_rx_byte_us", us(c.time_to_last_rx_byte)),
        ("envoy.first_upstream_tx_byte_us", us(c.time_to_first_upstream_tx_byte)),
        ("envoy.last_upstream_tx_byte_us", us(c.time_to_last_upstream_tx_byte)),
        ("envoy.first_upstream_rx_byte_us", us(c.time_to_first_upstream_rx_byte)),
        ("envoy.last_upstream_rx_byte_us", us(c.time_to_last_upstream_rx_byte)),
        ("envoy.first_downstream_tx_byte_us", us(c.time_to_first_downstream_tx_byte)),
    ]
    for key, value in values:
        if every or key in RECOMMENDED:
            record.attributes.add(key=key).value.string_value = value
    return record


def otlp_request_body(entries, per_message, seed=1, every=False):
    """The same entries as `request_body(0, ...)`, as gRPC-framed ExportLogsServiceRequests of
    `per_message` records, each with the resource Envoy and deploy/envoy/envoy-otlp.yaml give it."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2
    rng = random.Random(seed * 1_000_003)
    pool = [otlp_record(entry(rng, i), logs_pb2, every) for i in range(min(entries, 2000))]
    ident = identifier(0)
    resource = [("log_name", ident.log_name), ("zone_name", ""), ("cluster_name", ident.node.cluster),
                ("node_name", ident.node.id), ("k8s.namespace.name", ident.node.metadata["NAMESPACE"]),
                ("k8s.pod.name", ident.node.metadata["NAME"]), ("k8s.deployment.name", ident.node.metadata["WORKLOAD_NAME"]),
                ("k8s.cluster.name", "Kubernetes")]
    chunks = []
    for start in range(0, entries, per_message):
        request = logs_service_pb2.ExportLogsServiceRequest()
        logs = request.resource_logs.add()
        for key, value in resource:
            logs.resource.attributes.add(key=key).value.string_value = value
        records = logs.scope_logs.add().log_records
        for i in range(start, min(entries, start + per_message)):
            records.append(pool[i % len(pool)])
        chunks.append(frame(request))
    return b"".join(chunks)
