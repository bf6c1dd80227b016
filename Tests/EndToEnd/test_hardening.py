"""Hardening regressions: abusive clients on both listeners (leaving taps, deep nesting, memory
amplification, HPACK bombs, CONTINUATION floods, reset floods, port roles, NUL bytes, stuck
subscribers, half-open streams, partial messages) end with the documented refusal, are
counted in /stats, and leave the process alive and within its memory bounds."""
import json
import os
import socket
import struct
import threading
import time
import urllib.request

import grpc
import h2.config
import h2.connection
import h2.events
import hpack
import pytest

import als
from conftest import Alstap, Tap, wait_subscribers
from rawh2 import ALS_PATH, RawH2, grpc_frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20
REFUSED_STREAM, INTERNAL_ERROR, CANCEL = 7, 2, 8


# ---------------------------------------------------------------- small helpers

def proc_status(pid, key):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def mib(kib):
    return kib / 1024


def rss_bound(plain_mib):
    """An RSS bound: as given, or with 512 MiB more when alstap runs under a sanitizer
    (scripts/sanitize sets ALSTAP_SANITIZER), whose quarantine keeps freed memory."""
    return plain_mib + (512 if os.environ.get("ALSTAP_SANITIZER") else 0)


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_head(sock, timeout=5):
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in data and time.time() < deadline and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"\r\n\r\n" in data, f"no response head: {data[:200]!r}"
    return data.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def http1_status(port, path, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = read_head(sock, timeout)
    return int(head.split(" ", 2)[1])


class Streamer:
    """A grpcio client streaming small messages of entries until stopped."""

    def __init__(self, server, tag="bg", per_message=10, pause=0.01):
        self.channel = grpc.insecure_channel(server.als_target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = als.als_pb2_grpc.AccessLogServiceStub(self.channel)
        self.stop_event = threading.Event()
        self.tag, self.per_message, self.pause = tag, per_message, pause
        self.sent = 0
        self.future = self.stub.StreamAccessLogs.future(self._messages(), timeout=120)

    def _messages(self):
        first = True
        deadline = time.time() + 100
        while not self.stop_event.is_set() and time.time() < deadline:
            message = als.als_pb2.StreamAccessLogsMessage()
            if first:
                message.identifier.CopyFrom(als.identifier(workload=self.tag))
                first = False
            for _ in range(self.per_message):
                message.http_logs.log_entry.append(als.http_entry(self.tag, self.sent))
                self.sent += 1
            yield message
            time.sleep(self.pause)

    def finish(self):
        self.stop_event.set()
        response = self.future.result(timeout=20)
        self.channel.close()
        return response


def stream_once(server, messages, timeout=20, metadata=None, options=None):
    """One StreamAccessLogs call of raw (already serialized) messages; returns the grpc StatusCode."""
    channel = grpc.insecure_channel(server.als_target, options=options or [])
    try:
        als.raw_stream(channel)(iter(messages), timeout=timeout, metadata=metadata)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        return error.code(), error.details()
    finally:
        channel.close()


# Protobuf wire format by hand (for messages python's protobuf refuses to build or nest).

def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def ld(field, payload):
    """A length-delimited field."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def deep_struct(levels):
    """google.protobuf.Struct {fields {key: "a" value {struct_value {fields {key: "a" ...}}}}}, `levels` deep."""
    inner = b""
    for _ in range(levels):
        value = ld(5, inner)                       # Value.struct_value
        entry = ld(1, b"a") + ld(2, value)         # map entry: key, value
        inner = ld(1, entry)                       # Struct.fields
    return inner


def nested_dict(levels):
    value = {"leaf": "x"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def entry_bytes(tag, i):
    return als.http_entry(tag, i).SerializeToString()


def message_with_entries(entries, ident=b""):
    body = (ld(1, ident) if ident else b"") + ld(2, b"".join(ld(1, e) for e in entries))
    return body


# HTTP/2 by hand (frames h2 refuses to send, and headers it would not encode).

def h2frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, indexing=False):
    """A literal header with a new name: with incremental indexing (0x40) or without indexing (0x00)."""
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return (bytes([0x40 if indexing else 0x00]) + hpack_int(len(name), 7) + name
            + hpack_int(len(value), 7) + value)


def grpc_request_block(path=ALS_PATH):
    return b"".join(hpack_literal(n, v) for n, v in [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "alstap"),
        ("content-type", "application/grpc"), ("te", "trailers")])


class RawFrames:
    """A hand-driven HTTP/2 client connection: sends bytes as given, parses every frame received."""

    def __init__(self, port, settings=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(PREFACE + h2frame(SETTINGS, 0, 0, settings))
        self.buffer = b""
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.frames = []          # (type, flags, stream, payload)
        self.headers = {}         # stream -> {name: value}
        self.resets = {}          # stream -> error code
        self.goaway = None        # (last stream, error code)
        self.server_settings = {}
        self.closed = False       # b"" or ECONNRESET seen
        self.close_kind = None
        self._block = None

    def send(self, data):
        self.sock.sendall(data)

    def _handle(self, ftype, flags, stream, payload):
        self.frames.append((ftype, flags, stream, payload))
        if ftype == SETTINGS and not flags & 1:
            for i in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[ident] = value
            try:
                self.sock.sendall(h2frame(SETTINGS, 1, 0))
            except OSError:
                pass
        elif ftype == PING and not flags & 1:
            try:
                self.sock.sendall(h2frame(PING, 1, 0, payload))
            except OSError:
                pass
        elif ftype == RST_STREAM:
            self.resets[stream] = struct.unpack(">I", payload[:4])[0]
        elif ftype == GOAWAY:
            self.goaway = struct.unpack(">II", payload[:8])
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                self._block = payload
            else:
                self._block += payload
            if flags & END_HEADERS:
                for name, value in self.decoder.decode(self._block):
                    self.headers.setdefault(stream, {})[name] = value
                self._block = None

    def pump(self, until=lambda: False, timeout=5):
        """Reads and handles frames until `until()` holds, the socket closes or `timeout` passes."""
        deadline = time.time() + timeout
        while not until() and not self.closed and time.time() < deadline:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.time())))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.closed, self.close_kind = True, "ECONNRESET"
                break
            if not data:
                self.closed, self.close_kind = True, "EOF"
                break
            self.buffer += data
            while len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) < 9 + length:
                    break
                ftype, flags = self.buffer[3], self.buffer[4]
                stream = struct.unpack(">I", self.buffer[5:9])[0] & 0x7FFFFFFF
                payload = self.buffer[9:9 + length]
                self.buffer = self.buffer[9 + length:]
                self._handle(ftype, flags, stream, payload)
        return until()

    def close(self):
        self.sock.close()


def h2_client(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def h2_pump(sock, conn, until, timeout=5):
    """Feeds h2 with what arrives until `until(events_so_far)` holds; returns all events."""
    events = []
    deadline = time.time() + timeout
    while not until(events) and time.time() < deadline:
        sock.settimeout(max(0.01, min(0.2, deadline - time.time())))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        for event in conn.receive_data(data):
            events.append(event)
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    return events


def h2_get_status(port, path, timeout=5):
    sock, conn = h2_client(port)
    try:
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                   (":authority", "x")], end_stream=True)
        sock.sendall(conn.data_to_send())
        events = h2_pump(sock, conn, lambda ev: any(isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset))
                                                       and e.stream_id == stream for e in ev), timeout)
        for event in events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                return int(dict(event.headers)[":status"])
        raise AssertionError(f"no response to h2c GET {path}: {events}")
    finally:
        sock.close()


# ---------------------------------------------------------------- 1. taps that leave

def ask_tap(server, read_head_first):
    """A raw HTTP/1.1 tap request; with `read_head_first`, waits for the 200 head."""
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
    sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n\r\n")
    if read_head_first:
        head = read_head(sock)
        assert head.startswith("HTTP/1.1 200"), head
    return sock


def leave_rst_at_once(server):
    rst_close(ask_tap(server, read_head_first=False))


def leave_rst_after_head(server):
    rst_close(ask_tap(server, read_head_first=True))


def leave_fin_after_head(server):
    sock = ask_tap(server, read_head_first=True)
    sock.shutdown(socket.SHUT_WR)
    sock.close()


class H2Leaver:
    """HTTP/2 taps on one connection, each opened and then reset by the client (RST_STREAM CANCEL)."""

    def __init__(self):
        self.sock = None

    def __call__(self, server):
        if self.sock is None:
            self.sock, self.conn = h2_client(server.http_port)
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/tap"),
                                        (":authority", "x")], end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        if stream % 4 == 1:  # every other stream: reset only once the response head came
            events = h2_pump(self.sock, self.conn, lambda ev: any(
                isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream for e in ev))
            assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream for e in events)
        self.conn.reset_stream(stream, error_code=CANCEL)
        self.sock.sendall(self.conn.data_to_send())

    def keep_reading(self):
        """Swallows what the server still sends, so nothing blocks on a full socket."""
        if self.sock is not None:
            h2_pump(self.sock, self.conn, lambda ev: False, timeout=0.2)

    def close(self):
        if self.sock is not None:
            self.sock.close()


def leave_h2_goaway(server):
    sock, conn = h2_client(server.http_port)
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/tap"),
                               (":authority", "x")], end_stream=True)
    sock.sendall(conn.data_to_send())
    events = h2_pump(sock, conn, lambda ev: any(isinstance(e, h2.events.ResponseReceived) for e in ev))
    assert any(isinstance(e, h2.events.ResponseReceived) for e in events), events
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()


@pytest.mark.parametrize("how", ["rst_at_once", "rst_after_head", "fin_after_head", "h2_rst_stream", "h2_goaway"])
def test_leaving_taps_are_released(how):
    """Abuse: 200 tap clients that leave abruptly (RST, FIN, RST_STREAM, GOAWAY) while entries flow."""
    server = Alstap()
    h2_leaver = H2Leaver()
    leave = {"rst_at_once": leave_rst_at_once, "rst_after_head": leave_rst_after_head,
             "fin_after_head": leave_fin_after_head, "h2_rst_stream": h2_leaver,
             "h2_goaway": leave_h2_goaway}[how]
    streamer = None
    try:
        streamer = Streamer(server)
        server.wait_stat("entriesHTTP", lambda v: v > 0)
        started = time.time()
        for _ in range(200):
            leave(server)
            assert time.time() - started < 30, "200 leaving clients took over 30 s"
        if how == "h2_rst_stream":
            h2_leaver.keep_reading()
            # The connection itself stays open: the reset streams alone must release their subscribers.
            server.wait_stat("subscribersActive", lambda v: v == 0, timeout=1)
            h2_leaver.close()
        else:
            server.wait_stat("subscribersActive", lambda v: v == 0, timeout=1)
        # With the default --max-subscribers, a new tap is still admitted and fed.
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
            sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n\r\n")
            head = read_head(sock)
            assert head.startswith("HTTP/1.1 200"), head
        tap = Tap(server)
        tap.wait_lines(5, timeout=10)
        tap.close()
        assert server.stats()["subscribersRejected"] == 0
        assert server.alive()
    finally:
        h2_leaver.close()
        if streamer:
            streamer.finish()
        server.stop()


# ---------------------------------------------------------------- 2. deep nesting

def test_deep_nesting_is_invalid_argument(alstap):
    """Abuse: a Struct nested 3000 levels in node.metadata, then in an entry's filter_metadata."""
    before = alstap.stats()
    node = ld(1, b"sidecar~10.0.0.1~deep-1.default~default.svc.cluster.local") + ld(3, deep_struct(3000))
    deep_identifier = ld(1, node)
    message = message_with_entries([entry_bytes("deep", 0)], ident=deep_identifier)
    assert 30_000 < len(message) < 60_000, len(message)
    code, details = stream_once(alstap, [message])
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert alstap.alive()
    alstap.wait_stat("decodeTooDeep", lambda v: v == before["decodeTooDeep"] + 1, timeout=2)

    deep_metadata = ld(1, ld(1, b"x") + ld(2, deep_struct(3000)))     # filter_metadata {key: "x" value: Struct}
    deep_entry = ld(1, ld(17, deep_metadata))                         # common_properties.metadata
    normal_identifier = als.identifier(workload="deep").SerializeToString()
    code, details = stream_once(alstap, [message_with_entries([deep_entry], ident=normal_identifier)])
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert alstap.alive()
    alstap.wait_stat("decodeTooDeep", lambda v: v == before["decodeTooDeep"] + 2, timeout=2)
    assert alstap.stats()["entriesHTTP"] == before["entriesHTTP"]


def test_moderate_nesting_is_accepted(alstap):
    """Control: 20 levels of Struct in node.metadata and in filter_metadata decode fine."""
    before = alstap.stats()
    ident = als.identifier(workload="shallow")
    ident.node.metadata.update({"DEEP": nested_dict(20)})
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(ident)
    entry = als.http_entry("shallow", 0)
    entry.common_properties.metadata.filter_metadata["x"].update(nested_dict(20))
    message.http_logs.log_entry.append(entry)
    code, details = stream_once(alstap, [message.SerializeToString()])
    assert code == grpc.StatusCode.OK, (code, details)
    alstap.wait_stat("entriesHTTP", lambda v: v == before["entriesHTTP"] + 1, timeout=2)
    assert alstap.stats()["decodeTooDeep"] == before["decodeTooDeep"]


# ---------------------------------------------------------------- 3. memory amplification

def test_million_empty_entries_is_resource_exhausted():
    """Abuse: one 2 MB message holding 1 000 000 empty HTTP entries (memory amplification)."""
    server = Alstap("--max-message-bytes", "8388608")
    try:
        before = server.stats()
        hwm_before = proc_status(server.proc.pid, "VmHWM")
        payload = b"\x0a\x00" * 1_000_000
        message = varint(2 << 3 | 2) + varint(len(payload)) + payload
        code, details = stream_once(server, [message], options=[("grpc.max_send_message_length", 64 << 20)])
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
        server.wait_stat("decodeTooManyEntries", lambda v: v == before["decodeTooManyEntries"] + 1, timeout=2)
        hwm = proc_status(server.proc.pid, "VmHWM")
        print("million entries:", code, details, "VmHWM KiB", hwm_before, "->", hwm)
        assert mib(hwm) < rss_bound(120), f"VmHWM {mib(hwm):.1f} MiB (was {mib(hwm_before):.1f} MiB before)"
        assert server.alive()
    finally:
        server.stop()


def test_huge_node_id_is_cut():
    """Abuse: a 256 KiB node.id followed by 1000 empty entries, a JSON subscriber attached."""
    server = Alstap("--max-message-bytes", "8388608")
    try:
        tap = Tap(server)
        wait_subscribers(server, 1)
        node_id = b"a" * (256 * 1024)
        message = message_with_entries([b""] * 1000, ident=ld(1, ld(1, node_id)))
        code, details = stream_once(server, [message], options=[("grpc.max_send_message_length", 64 << 20)])
        assert code == grpc.StatusCode.OK, (code, details)
        lines = tap.wait_lines(1000, timeout=20)
        objects = [json.loads(line) for line in lines[:1000]]
        node_ids = {o.get("reporter", {}).get("nodeId") for o in objects}
        assert node_ids == {"a" * 256}, {len(n or "") for n in node_ids}
        hwm = proc_status(server.proc.pid, "VmHWM")
        print("huge node id: VmHWM KiB", hwm)
        assert mib(hwm) < rss_bound(120), f"VmHWM {mib(hwm):.1f} MiB"
        tap.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- 4. HPACK bomb

def normal_request(client, stream, tag):
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(als.identifier(workload=tag))
    message.http_logs.log_entry.append(als.http_entry(tag, 0))
    client.send(h2frame(HEADERS, END_HEADERS, stream, grpc_request_block())
                + h2frame(DATA, END_STREAM, stream, grpc_frame(message.SerializeToString())))
    client.pump(lambda: "grpc-status" in client.headers.get(stream, {}) or stream in client.resets)
    return client.headers.get(stream, {})


def test_hpack_bomb_is_refused(alstap):
    """Abuse: one 4000-byte header put in the HPACK dynamic table, then referenced 4000 times (16 MB decoded)."""
    settings_client = RawH2(alstap.als_port)
    assert settings_client.receive_settings().max_header_list_size == 65536
    settings_client.close()

    before = alstap.stats()
    client = RawFrames(alstap.als_port)
    bomb = (grpc_request_block() + hpack_literal("x-bomb", "b" * 4000, indexing=True)
            + bytes([0x80 | 62]) * 4000)   # dynamic table index 62: the header just added
    client.send(h2frame(HEADERS, END_HEADERS | END_STREAM, 1, bomb))
    client.pump(lambda: 1 in client.resets or client.goaway is not None)
    print("hpack bomb: resets", client.resets, "headers", client.headers, "goaway", client.goaway,
          "settings", client.server_settings)
    assert client.server_settings.get(6) == 65536, client.server_settings
    assert 1 in client.resets, f"stream 1 not reset; headers {client.headers.get(1)}, goaway {client.goaway}"
    assert client.headers.get(1, {}).get("grpc-status") != "0", client.headers.get(1)
    alstap.wait_stat("headerListTooLarge", lambda v: v > before["headerListTooLarge"], timeout=2)

    if client.goaway is None and not client.closed:
        same = normal_request(client, 3, "after-bomb-same")
        assert same.get("grpc-status") == "0", (same, client.resets.get(3), client.goaway)
    client.close()
    other = RawFrames(alstap.als_port)
    answer = normal_request(other, 1, "after-bomb-other")
    assert answer.get("grpc-status") == "0", (answer, other.resets.get(1), other.goaway)
    other.close()
    assert alstap.stats()["entriesHTTP"] >= before["entriesHTTP"] + 1
    assert alstap.alive()


# ---------------------------------------------------------------- 5. CONTINUATION flood

def test_continuation_flood_is_a_connection_error(alstap):
    """Abuse: HEADERS without END_HEADERS followed by 10 000 empty CONTINUATION frames."""
    before = alstap.stats()
    client = RawFrames(alstap.als_port)
    client.pump(lambda: 4 in {f[0] for f in client.frames}, timeout=2)   # the server's SETTINGS
    flood = h2frame(HEADERS, 0, 1, grpc_request_block()[:20]) + h2frame(CONTINUATION, 0, 1) * 10_000
    try:
        client.send(flood)
    except OSError:
        pass  # the server may close while the flood is still being sent
    started = time.time()
    client.pump(lambda: False, timeout=2)
    print("continuation flood: goaway", client.goaway, "closed", client.close_kind,
          "after", time.time() - started, "frames", [f[0] for f in client.frames])
    assert client.goaway is not None, f"no GOAWAY; frames {[f[0] for f in client.frames]}"
    assert client.closed, "socket still open 2 s after the flood"
    assert time.time() - started < 2.5
    alstap.wait_stat("http2ConnectionErrors", lambda v: v > before["http2ConnectionErrors"], timeout=2)
    client.close()
    assert alstap.alive()


# ---------------------------------------------------------------- 6. reset flood on one loop

def test_reset_flood_does_not_stall_the_loop():
    """Abuse: one sendall of 2000 x (HEADERS GET /tap?last=2000 + RST_STREAM) with --threads 1."""
    server = Alstap(threads=1)
    try:
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(als.http_messages("ring", 2000, per_message=100), timeout=30)
        channel.close()
        server.wait_stat("entriesHTTP", lambda v: v >= 2000)

        latencies, failures = [], []
        stop = threading.Event()

        def probe():
            deadline = time.time() + 30
            while not stop.is_set() and time.time() < deadline:
                started = time.time()
                try:
                    with urllib.request.urlopen(server.url("/healthz"), timeout=5) as response:
                        assert response.status == 200
                        response.read()
                except Exception as error:  # noqa: BLE001 (recorded and asserted below)
                    failures.append(repr(error))
                latencies.append(time.time() - started)
                time.sleep(0.02)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        time.sleep(0.2)

        sock, conn = h2_client(server.http_port)
        h2_pump(sock, conn, lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in ev), timeout=2)
        for _ in range(2000):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/tap?last=2000"),
                                       (":authority", "x")], end_stream=True)
            conn.reset_stream(stream, error_code=CANCEL)
        burst = conn.data_to_send()
        drained = []

        def drain():
            deadline = time.time() + 30
            sock.settimeout(0.2)
            while time.time() < deadline and not stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                drained.append(len(data))

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        sock.sendall(burst)
        server.wait_stat("tapStreamsReset", lambda v: v > 0, timeout=15)
        server.wait_stat("subscribersActive", lambda v: v == 0, timeout=15)
        time.sleep(0.5)
        stop.set()
        prober.join(10)
        drainer.join(10)
        sock.close()
        print("reset flood:", len(latencies), "probes, slowest", max(latencies, default=None),
              "burst bytes", len(burst), "received", sum(drained), "stats", server.stats())
        assert not failures, failures[:5]
        assert latencies, "no /healthz probe ran"
        assert max(latencies) < 1.0, f"slowest /healthz {max(latencies):.3f} s of {len(latencies)} probes"
        assert server.stats()["tapStreamsReset"] > 0
        assert server.alive()
    finally:
        server.stop()


def test_replays_under_way_are_gathered_in_steps_and_abandoned_on_reset():
    """Abuse: 300 taps with last=2000 opened at once (each replay decodes 2000 entries again),
    then all reset while their replays are still being gathered: the loop keeps answering, and
    everything the replays held is let go."""
    server = Alstap("--subscriber-queue-bytes", str(64 << 20), "--subscribers-queue-bytes", str(256 << 20), threads=1)
    try:
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(als.http_messages("ring", 2000, per_message=100), timeout=30)
        channel.close()
        server.wait_stat("entriesHTTP", lambda v: v >= 2000)
        sock, conn = h2_client(server.http_port)
        h2_pump(sock, conn, lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in ev), timeout=2)
        streams = []
        for _ in range(300):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/tap?last=2000"),
                                       (":authority", "x")], end_stream=True)
            streams.append(stream)
        sock.sendall(conn.data_to_send())
        server.wait_stat("replayEntriesDecoded", lambda v: v > 0, timeout=10)
        slowest = 0.0
        for _ in range(5):
            started = time.time()
            with urllib.request.urlopen(server.url("/healthz"), timeout=5) as response:
                assert response.status == 200
            slowest = max(slowest, time.time() - started)
        decoded_before_reset = server.stats()["replayEntriesDecoded"]
        for stream in streams:
            conn.reset_stream(stream, error_code=CANCEL)
        sock.sendall(conn.data_to_send())
        server.wait_stat("subscribersActive", lambda v: v == 0, timeout=15)
        server.wait_stat("subscriberQueuedBytes", lambda v: v == 0, timeout=5)
        decoded = server.stats()["replayEntriesDecoded"]
        time.sleep(0.3)
        assert server.stats()["replayEntriesDecoded"] == decoded, "abandoned replays stopped decoding"
        print("replays:", decoded_before_reset, "entries decoded before the resets,", decoded, "in all; slowest probe", slowest)
        assert decoded < 300 * 2000, "the resets came before every replay was gathered"
        assert slowest < 1.0, f"/healthz took {slowest:.3f} s while 300 replays were gathered"
        sock.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- 7. ports have roles

def test_grpc_on_http_port_is_unimplemented(alstap):
    """Abuse: StreamAccessLogs sent to the HTTP (tap) port."""
    channel = grpc.insecure_channel(f"127.0.0.1:{alstap.http_port}")
    try:
        with pytest.raises(grpc.RpcError) as error:
            channel.stream_unary(ALS_PATH, request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)(iter([b""]), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED, (error.value.code(), error.value.details())
    finally:
        channel.close()
    assert alstap.stats()["entriesHTTP"] == 0


@pytest.mark.parametrize("path", ["/tap", "/", "/metrics", "/stats"])
def test_http_paths_on_als_port_are_404(alstap, path):
    """Abuse: the tap and operations paths asked of the ALS port (HTTP/1.1 and h2c)."""
    assert http1_status(alstap.als_port, path) == 404
    assert h2_get_status(alstap.als_port, path) == 404
    assert alstap.stats()["subscribersActive"] == 0


def test_als_token_is_required(tmp_path):
    """Abuse: ALS streams without (or with a wrong) bearer token when --als-token-file is set."""
    token_file = tmp_path / "als-token"
    token_file.write_text("s3cret")
    server = Alstap("--als-token-file", str(token_file))
    try:
        messages = [m.SerializeToString() for m in als.http_messages("authed", 5)]
        code, details = stream_once(server, messages)
        assert code == grpc.StatusCode.UNAUTHENTICATED and code.value[0] == 16, (code, details)
        code, details = stream_once(server, messages, metadata=[("authorization", "Bearer nope")])
        assert code == grpc.StatusCode.UNAUTHENTICATED, (code, details)
        assert server.stats()["entriesHTTP"] == 0
        server.wait_stat("alsUnauthenticated", lambda v: v == 2, timeout=2)
        code, details = stream_once(server, messages, metadata=[("authorization", "Bearer s3cret")])
        assert code == grpc.StatusCode.OK, (code, details)
        server.wait_stat("entriesHTTP", lambda v: v == 5, timeout=2)
        assert server.stats()["alsUnauthenticated"] == 2
    finally:
        server.stop()


def test_one_port_for_both_roles():
    """Abuse of configuration: --als-listen and --http-listen on the same host:port."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = Alstap(als=f"127.0.0.1:{port}", http=f"127.0.0.1:{port}")
    try:
        assert server.als_port == server.http_port == port
        tap = Tap(server)
        wait_subscribers(server, 1)
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(als.http_messages("shared", 3), timeout=10)
        channel.close()
        lines = tap.wait_lines(3, timeout=10)
        assert [json.loads(line)["request"]["path"] for line in lines[:3]] == [f"/shared/{i}" for i in range(3)]
        tap.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- 8. NUL in strings

def test_nul_in_strings_is_kept(alstap):
    """Abuse: request.path '/before\\x00/after' (a C string would stop at the NUL)."""
    json_tap = Tap(alstap)
    text_tap = Tap(alstap, "?format=text")
    wait_subscribers(alstap, 2)
    message = als.als_pb2.StreamAccessLogsMessage()
    message.identifier.CopyFrom(als.identifier(workload="nul"))
    entry = als.http_entry("nul", 0)
    entry.request.path = "/before\x00/after"
    message.http_logs.log_entry.append(entry)
    code, details = stream_once(alstap, [message.SerializeToString()])
    assert code == grpc.StatusCode.OK, (code, details)
    line = json_tap.wait_lines(1)[0]
    assert "/before\\u0000/after" in line, line
    assert json.loads(line)["request"]["path"] == "/before\x00/after"
    text = text_tap.wait_lines(1)[0]
    assert "\x00" not in text, repr(text)
    assert "/after" in text, repr(text)
    json_tap.close()
    text_tap.close()


# ---------------------------------------------------------------- 9. stuck subscribers

def test_stuck_subscribers_are_bounded_in_bytes():
    """Abuse: 5 taps that never read while ~20 MB of lines are produced for each."""
    server = Alstap("--subscriber-queue-bytes", "1048576", "--subscribers-queue-bytes", "2097152")
    socks = []
    try:
        for _ in range(5):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.http_port))
            sock.sendall(b"GET /tap HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(sock)
        wait_subscribers(server, 5)
        samples, peak = [], {"queued": 0, "rss": 0}
        stop = threading.Event()

        def watch():
            deadline = time.time() + 60
            while not stop.is_set() and time.time() < deadline:
                try:
                    stats = server.stats()
                except OSError:
                    time.sleep(0.02)
                    continue
                samples.append(stats["subscriberQueuedBytes"])
                peak["queued"] = max(peak["queued"], stats["subscriberQueuedBytes"])
                peak["rss"] = max(peak["rss"], proc_status(server.proc.pid, "VmRSS"))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        channel, stub = als.stub(server.als_target)
        # 100 000 entries: ~19 MB of protobuf, ~90 MB of JSON lines per subscriber.
        stub.StreamAccessLogs(als.http_messages("stuck", 100_000, per_message=500), timeout=60)
        channel.close()
        server.wait_stat("entriesHTTP", lambda v: v >= 100_000, timeout=20)
        time.sleep(0.3)
        stop.set()
        watcher.join(5)
        stats = server.stats()
        print("stuck:", len(samples), "polls; peak queued", peak["queued"], "peak VmRSS KiB", peak["rss"],
              "linesDroppedBytes", stats["linesDroppedBytes"], "linesDropped", stats["linesDropped"],
              "linesSent", stats["linesSent"])
        assert len(samples) > 5, samples
        assert peak["queued"] <= 2 * 2097152 + 1048576, f"subscriberQueuedBytes peaked at {peak['queued']}"
        assert stats["linesDroppedBytes"] > 0, stats
        assert mib(peak["rss"]) < rss_bound(150), f"VmRSS peaked at {mib(peak['rss']):.1f} MiB"
        for sock in socks:
            rst_close(sock)
        socks = []
        server.wait_stat("subscriberQueuedBytes", lambda v: v == 0, timeout=5)
        server.wait_stat("subscribersActive", lambda v: v == 0, timeout=5)
    finally:
        for sock in socks:
            sock.close()
        server.stop()


# ---------------------------------------------------------------- 10. half-open streams

def test_half_open_streams_are_capped():
    """Abuse: 3 connections x 50 gRPC POSTs whose HEADERS never end the stream, --max-streams-total 100."""
    server = Alstap("--max-streams-total", "100")
    clients = []
    try:
        before = server.stats()
        for _ in range(3):
            client = RawFrames(server.als_port)
            block = grpc_request_block()
            client.send(b"".join(h2frame(HEADERS, END_HEADERS, 1 + 2 * i, block) for i in range(50)))
            clients.append(client)
        deadline = time.time() + 5
        while time.time() < deadline and sum(len(c.resets) for c in clients) < 50:
            for client in clients:
                client.pump(timeout=0.1)
        active = server.stats()["http2StreamsActive"]
        resets = [code for c in clients for code in c.resets.values()]
        print("half-open: active", active, "resets per connection", [len(c.resets) for c in clients],
              "codes", sorted(set(resets)), "goaways", [c.goaway for c in clients])
        assert active <= 100, f"http2StreamsActive {active}"
        assert len(resets) >= 50, f"{len(resets)} streams reset, http2StreamsActive {active}"
        assert set(resets) == {REFUSED_STREAM}, sorted(set(resets))
        assert active + len(resets) == 150, (active, len(resets))
        assert server.stats()["http2StreamsRefused"] > before["http2StreamsRefused"]
        for client in clients:
            client.close()
        clients = []
        server.wait_stat("http2StreamsActive", lambda v: v == 0, timeout=5)
    finally:
        for client in clients:
            client.close()
        server.stop()


# ---------------------------------------------------------------- 11. partial messages

def rawh2_read(client, stream, timeout):
    """RawH2.result with short socket reads: handles what arrives for up to `timeout` s."""
    deadline = time.time() + timeout
    while stream not in client.ended and stream not in client.reset and time.time() < deadline:
        client.sock.settimeout(max(0.01, min(0.1, deadline - time.time())))
        try:
            data = client.sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        client.receive(data)
    client.sock.settimeout(5)
    return client.headers.get(stream, {})


def send_with_flow_control(client, stream, data, timeout=5):
    """Sends `data` on an h2 stream as far as the server's windows allow within `timeout`; returns bytes sent."""
    sent = 0
    deadline = time.time() + timeout
    while sent < len(data) and time.time() < deadline and stream not in client.reset and stream not in client.ended:
        window = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
        if window <= 0:
            rawh2_read(client, stream, 0.2)  # reads WINDOW_UPDATEs (and any end of the stream)
            continue
        chunk = data[sent:sent + window]
        client.conn.send_data(stream, chunk)
        client.flush()
        sent += len(chunk)
    return sent


def test_partial_messages_are_bounded():
    """Abuse: 4 streams each declaring a 4 000 000-byte gRPC message and sending 400 KB of it."""
    server = Alstap("--max-buffered-message-bytes", "1048576")
    clients = []
    try:
        before = server.stats()
        streams, sent = [], []
        for i in range(4):
            client = RawH2(server.als_port)
            clients.append(client)
            stream = client.start()
            streams.append(stream)
            client.send(stream, grpc_frame(b"", declared_length=4_000_000))
            sent.append(send_with_flow_control(client, stream, b"\x00" * 400_000))
        for client, stream in zip(clients, streams):
            rawh2_read(client, stream, 1)
        statuses = [c.headers.get(s, {}).get("grpc-status") for c, s in zip(clients, streams)]
        print("partial: sent", sent, "statuses", statuses, "resets", [c.reset for c in clients],
              "stats", {k: v for k, v in server.stats().items() if "uffered" in k})
        assert "8" in statuses, (statuses, [c.reset for c in clients])
        stats = server.stats()
        assert stats["bufferedTooLarge"] > before["bufferedTooLarge"], stats["bufferedTooLarge"]
        assert stats["bufferedMessageBytes"] <= 1048576, stats["bufferedMessageBytes"]
        for client in clients:
            client.abort()
        clients = []
        server.wait_stat("bufferedMessageBytes", lambda v: v == 0, timeout=5)
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_a_message_spanning_frames_that_fails_leaves_nothing_counted(alstap):
    """Abuse: invalid protobuf in messages that arrive over many DATA frames, again and again: the
    partial bytes each held must leave the process-wide account when its stream fails (else a
    few such streams would use up --max-buffered-message-bytes for good)."""
    for _ in range(5):
        client = RawH2(alstap.als_port)
        try:
            stream = client.start()
            message = grpc_frame(b"\x00" * 300_000)  # field number 0: not protobuf
            assert send_with_flow_control(client, stream, message) == len(message)
            client.conn.end_stream(stream)
            client.flush()
            headers = rawh2_read(client, stream, 5)
            assert headers.get("grpc-status") == "3", headers
        finally:
            client.close()
    alstap.wait_stat("bufferedMessageBytes", lambda v: v == 0, timeout=5)
    assert alstap.stats()["decodeInvalidProtobuf"] >= 5


def test_declared_length_alone_takes_no_memory(alstap):
    """Abuse: a gRPC frame header declaring 4 MB, followed by nothing."""
    time.sleep(0.2)
    rss_before = proc_status(alstap.proc.pid, "VmRSS")
    client = RawH2(alstap.als_port)
    stream = client.start()
    client.send(stream, grpc_frame(b"", declared_length=4_000_000))
    rawh2_read(client, stream, 1)
    rss_after = proc_status(alstap.proc.pid, "VmRSS")
    print("declared 4 MB: VmRSS KiB", rss_before, "->", rss_after, "headers", client.headers.get(stream))
    assert mib(rss_after - rss_before) <= 10, f"VmRSS {mib(rss_before):.1f} -> {mib(rss_after):.1f} MiB"
    client.abort()
    alstap.wait_stat("bufferedMessageBytes", lambda v: v == 0, timeout=5)
