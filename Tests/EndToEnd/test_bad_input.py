"""Bad input ends its own stream (or connection) with the right status, and nothing else:
a healthy stream and a healthy subscriber beside it keep working, the process stays up."""
import queue
import signal
import socket
import threading
import time

import grpc
import pytest

import als
from conftest import Alstap, Tap, wait_subscribers
from rawh2 import ALS_PATH, RawH2, grpc_frame

MAX_MESSAGE = 64 * 1024


class HealthyStream:
    """A grpcio stream kept open across the bad input; messages are fed from a queue."""

    def __init__(self, server):
        self.channel = grpc.insecure_channel(server.als_target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = als.als_pb2_grpc.AccessLogServiceStub(self.channel)
        self.outbox = queue.Queue()
        self.future = self.stub.StreamAccessLogs.future(iter(self.outbox.get, None))
        self.sent = 0
        self.first = True

    def send(self, count):
        message = als.als_pb2.StreamAccessLogsMessage()
        if self.first:
            message.identifier.CopyFrom(als.identifier(workload="healthy"))
            self.first = False
        for _ in range(count):
            message.http_logs.log_entry.append(als.http_entry("healthy", self.sent))
            self.sent += 1
        self.outbox.put(message)

    def finish(self):
        self.outbox.put(None)
        response = self.future.result(timeout=10)
        self.channel.close()
        return response


def bad_wrong_path(server):
    channel = grpc.insecure_channel(server.als_target)
    call = channel.stream_unary("/envoy.service.accesslog.v3.AccessLogService/Nope",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as error:
        call(iter([b""]), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()


def bad_body_ends_inside_message(server):
    client = RawH2(server.als_port)
    stream = client.start()
    client.send(stream, grpc_frame(b"\x0a\x00" * 5, declared_length=100), end=True)
    headers = client.result(stream)
    assert headers.get("grpc-status") == "13", headers
    assert "inside a gRPC message" in headers.get("grpc-message", "")
    client.close()


def bad_garbage_protobuf(server):
    channel = grpc.insecure_channel(server.als_target)
    with pytest.raises(grpc.RpcError) as error:
        als.raw_stream(channel)(iter([b"\xff\xff\xff\xff\xff\xff"]), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not decode" in error.value.details()
    channel.close()


def bad_message_over_maximum(server):
    channel = grpc.insecure_channel(server.als_target)
    with pytest.raises(grpc.RpcError) as error:
        als.raw_stream(channel)(iter([b"\x00" * (MAX_MESSAGE + 1)]), timeout=5)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()


def bad_compressed_flag(server):
    client = RawH2(server.als_port)
    stream = client.start()
    client.send(stream, grpc_frame(b"\x1f\x8b\x08\x00", compressed=True), end=True)
    headers = client.result(stream)
    assert headers.get("grpc-status") == "12", headers
    client.close()


def bad_garbage_preface(server):
    with socket.create_connection(("127.0.0.1", server.als_port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00garbage that is no preface\r\n\r\n")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400"), reply
        assert sock.recv(4096) == b"", "connection should be closed"


def bad_head_never_ends(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n")
        started = time.time()
        assert sock.recv(4096) == b"", "the server should close a connection whose head never ends"
        assert time.time() - started < 5
    assert server.stats()["headTimeouts"] >= 1


def bad_head_too_large(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(b"GET /tap HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 20000 + b"\r\n\r\n")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 431"), reply


def bad_client_killed_mid_message(server):
    before = server.stats()["alsStreamsFailed"]
    client = RawH2(server.als_port)
    stream = client.start()
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(als.identifier(workload="doomed"))
    message.http_logs.log_entry.append(als.http_entry("doomed", 0))
    frame = grpc_frame(message.SerializeToString())
    client.send(stream, frame[: len(frame) // 2])
    time.sleep(0.1)
    client.abort()
    server.wait_stat("alsStreamsFailed", lambda v: v == before + 1)


def bad_subscriber_killed_mid_stream(server):
    doomed = Tap(server)
    server.wait_stat("subscribersActive", lambda v: v == 2)
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait(timeout=5)
    server.wait_stat("subscribersActive", lambda v: v == 1)


BAD_INPUTS = [bad_wrong_path, bad_body_ends_inside_message, bad_garbage_protobuf, bad_message_over_maximum,
              bad_compressed_flag, bad_garbage_preface, bad_head_never_ends, bad_head_too_large,
              bad_client_killed_mid_message, bad_subscriber_killed_mid_stream]


@pytest.mark.parametrize("bad_input", BAD_INPUTS, ids=lambda f: f.__name__[4:])
def test_bad_input_breaks_nothing_else(bad_input):
    server = Alstap("--max-message-bytes", str(MAX_MESSAGE), "--head-timeout", "1")
    try:
        tap = Tap(server)
        wait_subscribers(server, 1)
        healthy = HealthyStream(server)
        healthy.send(50)
        tap.wait_lines(50)

        bad_input(server)

        healthy.send(50)
        assert isinstance(healthy.finish(), als.als_pb2.StreamAccessLogsResponse)
        lines = tap.wait_lines(100)
        ids = [line for line in tap.json() if line["reporter"].get("workload") == "healthy"]
        assert sorted(e["request"]["id"] for e in ids) == sorted(f"healthy-{i}" for i in range(100))
        assert server.alive()
        tap.close()
    finally:
        server.stop()
