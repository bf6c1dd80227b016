"""A raw HTTP/2 client (the h2 library) for what grpcio will not send: truncated bodies,
hand-made frames, connections dropped mid-message."""
import socket
import struct
import time

import hpack

import h2.config
import h2.connection
import h2.events

ALS_PATH = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


def grpc_frame(payload, compressed=False, declared_length=None):
    length = len(payload) if declared_length is None else declared_length
    return struct.pack(">BI", 1 if compressed else 0, length) + payload


class RawH2:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.headers = {}
        self.ended = set()
        self.reset = {}

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def start(self, path=ALS_PATH, content_type="application/grpc"):
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                        (":authority", "alstap"), ("content-type", content_type), ("te", "trailers")])
        self.flush()
        return stream

    def send(self, stream, data, end=False):
        self.conn.send_data(stream, data, end_stream=end)
        self.flush()

    def result(self, stream, timeout=5):
        """Every header (response and trailers) received on `stream`, once it ended or was reset."""
        deadline = time.time() + timeout
        while stream not in self.ended and stream not in self.reset and time.time() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            self.receive(data)
        return self.headers.get(stream, {})

    def receive(self, data):
        """Takes bytes from the server: headers, ends and resets are recorded, data acknowledged."""
        for event in self.conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self.headers.setdefault(event.stream_id, {}).update(dict(event.headers))
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            if isinstance(event, h2.events.StreamReset):
                self.reset[event.stream_id] = event.error_code
        self.flush()

    def raw_frames(self, until, timeout=5):
        """Reads the server's frames itself, as (type, flags, stream, payload) with HEADERS
        decoded to a dict: h2 refuses frames that follow a GOAWAY, which the protocol allows
        (streams up to its last id go on). Reads until `until(frames)` or `timeout`."""
        frames, buffer, decoder = [], b"", hpack.Decoder()
        deadline = time.time() + timeout
        while not until(frames) and time.time() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            buffer += data
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length = int.from_bytes(buffer[:3], "big")
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9:9 + length], buffer[9 + length:]
                if kind == 1:  # HEADERS (alstap sends no padding, priority or CONTINUATION)
                    payload = dict(decoder.decode(payload))
                frames.append((kind, flags, stream, payload))
        return frames

    def receive_settings(self):
        """Reads until the server's SETTINGS arrived; returns them (h2's remote_settings)."""
        while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.conn.receive_data(self.sock.recv(65536))):
            pass
        self.flush()
        return self.conn.remote_settings

    def abort(self):
        """Drops the connection at once (RST), as a crashed client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()
