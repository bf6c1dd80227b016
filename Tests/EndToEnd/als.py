"""ALS messages built with Envoy's own protos (xds-protos), and a grpcio client for them."""
import grpc
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc  # noqa: F401 (re-exported for tests)

METHODS = [base_pb2.GET, base_pb2.POST, base_pb2.PUT, base_pb2.DELETE]
METHOD_NAMES = {base_pb2.GET: "GET", base_pb2.POST: "POST", base_pb2.PUT: "PUT", base_pb2.DELETE: "DELETE"}
CODES = [200, 201, 404, 503]


def identifier(workload="reviews-v1", namespace="default", pod=None, log_name="http_log"):
    pod = pod or f"{workload}-5d8f9c-abcde"
    ident = als_pb2.StreamAccessLogsMessage.Identifier(log_name=log_name)
    ident.node.id = f"sidecar~10.1.0.7~{pod}.{namespace}~{namespace}.svc.cluster.local"
    ident.node.cluster = f"{workload}.{namespace}"
    ident.node.metadata.update({"NAMESPACE": namespace, "NAME": pod, "WORKLOAD_NAME": workload,
                                "CLUSTER_ID": "Kubernetes", "LABELS": {"app": workload.split("-")[0], "version": "v1"}})
    return ident


def http_entry(tag, i):
    """A realistic outbound entry; `tag` and `i` make it identifiable (path and request id)."""
    entry = accesslog_pb2.HTTPAccessLogEntry()
    common = entry.common_properties
    common.start_time.FromNanoseconds(1_764_000_000_000_000_000 + i * 1000)
    common.upstream_cluster = "outbound|9080||ratings.default.svc.cluster.local"
    common.downstream_remote_address.socket_address.address = "10.1.0.7"
    common.downstream_remote_address.socket_address.port_value = 40000 + i % 20000
    common.upstream_remote_address.socket_address.address = "10.1.0.9"
    common.upstream_remote_address.socket_address.port_value = 9080
    common.duration.FromNanoseconds(1_000_000 + i)
    common.route_name = "default"
    method = METHODS[i % len(METHODS)]
    entry.request.request_method = method
    entry.request.scheme = "http"
    entry.request.authority = "ratings:9080"
    entry.request.path = f"/{tag}/{i}"
    entry.request.request_id = f"{tag}-{i}"
    entry.request.user_agent = "curl/7.88.1"
    entry.response.response_code.value = CODES[i % len(CODES)]
    if CODES[i % len(CODES)] == 503:
        common.response_flags.upstream_connection_failure = True
    entry.protocol_version = accesslog_pb2.HTTPAccessLogEntry.HTTP11
    return entry


def http_messages(tag, count, per_message=10, ident=None):
    """count entries in messages of per_message, the Identifier on the first only."""
    ident = ident or identifier()
    sent = 0
    first = True
    while sent < count:
        message = als_pb2.StreamAccessLogsMessage()
        if first:
            message.identifier.CopyFrom(ident)
            first = False
        for _ in range(min(per_message, count - sent)):
            message.http_logs.log_entry.append(http_entry(tag, sent))
            sent += 1
        yield message


def stub(target):
    channel = grpc.insecure_channel(target)
    return channel, als_pb2_grpc.AccessLogServiceStub(channel)


def raw_stream(channel, path="/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"):
    """A client-streaming call that sends bytes as they are (no serialization)."""
    return channel.stream_unary(path, request_serializer=lambda b: b,
                                response_deserializer=als_pb2.StreamAccessLogsResponse.FromString)
