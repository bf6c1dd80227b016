"""The HTTP listener: health, readiness, stats, errors, and a clean SIGTERM that ends every
subscriber with a final shutdown line and exits 0."""
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import als
from conftest import Alstap, Tap, require_tool, wait_subscribers


def fetch(server, path, method="GET"):
    request = urllib.request.Request(server.url(path), method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_and_errors(alstap):
    assert fetch(alstap, "/healthz") == (200, "ok\n")
    assert fetch(alstap, "/readyz") == (200, "ready\n")
    assert fetch(alstap, "/nope")[0] == 404
    assert fetch(alstap, "/tap", method="POST")[0] == 405
    status, body = fetch(alstap, "/tap?format=xml")
    assert status == 400 and "format" in body
    status, body = fetch(alstap, "/tap?colour=blue")
    assert status == 400 and "colour" in body
    curl = require_tool("curl")
    h2 = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}",
                         alstap.url("/healthz")], capture_output=True, text=True, timeout=10)
    assert h2.stdout == "ok\n2 200"


def test_keep_alive_serves_several_requests(alstap):
    curl = require_tool("curl")
    result = subprocess.run([curl, "-sv", alstap.url("/healthz"), alstap.url("/readyz")],
                            capture_output=True, text=True, timeout=10)
    assert result.stdout == "ok\nready\n"
    assert "Re-using existing connection" in result.stderr


def test_sigterm_ends_subscribers_and_exits_zero():
    server = Alstap()
    json_tap = Tap(server)
    text_tap = Tap(server, "?format=text", http2=True)
    wait_subscribers(server, 2)
    channel, stub = als.stub(server.als_target)
    stub.StreamAccessLogs(als.http_messages("bye", 5))
    channel.close()
    json_tap.wait_lines(5)
    text_tap.wait_lines(5)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    json_tap.done.wait(5)
    text_tap.done.wait(5)
    assert json.loads(json_tap.lines[-1]) == {"type": "shutdown"}
    assert text_tap.lines[-1].startswith("# alstap is shutting down")
    server.stop()


def connect(server):
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Responses:
    """HTTP/1.1 responses read off a raw socket (alstap frames its fixed answers with Content-Length)."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.closed = False

    def _fill(self):
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise AssertionError(f"nothing from alstap in {self.sock.gettimeout()} s") from None
        if not data:
            self.closed = True
        self.buffer += data

    def next(self):
        """The next whole response as (status, headers, body), or None once the connection ended."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                lines = self.buffer[:end].decode("latin-1").split("\r\n")
                headers = {name.lower(): value.strip() for name, value in
                           (line.split(":", 1) for line in lines[1:])}
                length = int(headers["content-length"])
                if len(self.buffer) >= end + 4 + length:
                    body = self.buffer[end + 4:end + 4 + length]
                    self.buffer = self.buffer[end + 4 + length:]
                    return int(lines[0].split()[1]), headers, body
            if self.closed:
                return None
            self._fill()

    def nothing_more(self, wait=0.5):
        """True when no byte arrives within `wait` seconds (the connection still open)."""
        if self.buffer:
            return False
        self.sock.settimeout(wait)
        try:
            self._fill()
        except AssertionError:
            return True
        finally:
            self.sock.settimeout(5)
        return False

    def ended(self):
        """True when the server closes the connection with nothing more sent."""
        while not self.closed:
            before = len(self.buffer)
            try:
                self._fill()
            except AssertionError:
                return False  # still open
            if len(self.buffer) != before:
                return False
        return not self.buffer


SMUGGLED = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"


def test_content_length_body_is_read_not_answered(alstap):
    sock = connect(alstap)
    reader = Responses(sock)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
    assert reader.next()[::2] == (200, b"ok\n")
    assert reader.nothing_more(), "the body was answered as a request"
    # The body may come in pieces, and the next request right behind it.
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED[:10])
    time.sleep(0.1)
    sock.sendall(SMUGGLED[10:20])
    time.sleep(0.1)
    sock.sendall(SMUGGLED[20:] + b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reader.next()[::2] == (200, b"ok\n")
    assert reader.next()[::2] == (200, b"ready\n")
    assert reader.nothing_more()
    sock.close()


def answered_once_then_closed(server, request):
    sock = connect(server)
    reader = Responses(sock)
    sock.sendall(request)
    response = reader.next()
    assert response is not None, "closed without an answer"
    status, headers, body = response
    assert reader.ended(), "more than one answer, or the connection stayed open"
    sock.close()
    return status, headers, body


def test_chunked_body_is_refused_and_closes(alstap):
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    status, headers, body = answered_once_then_closed(
        alstap, b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    assert (status, headers["connection"], body) == (400, "close", b"transfer-encoding is not accepted\n")


def test_transfer_encoding_with_content_length_is_refused_and_closes(alstap):
    # A front end that follows Content-Length sees one request; one that follows the chunks, two.
    chunk = b"0\r\n\r\n" + SMUGGLED
    status, headers, _ = answered_once_then_closed(
        alstap, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % len(chunk) + chunk)
    assert (status, headers["connection"]) == (400, "close")
    status, _, body = answered_once_then_closed(
        alstap, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n12345")
    assert (status, body) == (400, b"conflicting content-length\n")


def test_body_over_max_head_bytes_is_refused_and_closes(alstap):
    limit = 16 * 1024  # the default --max-head-bytes, also the largest body alstap reads and drops
    status, headers, body = answered_once_then_closed(
        alstap, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1) + b"a" * 100)
    assert (status, headers["connection"], body) == (413, "close", b"request body over %d bytes\n" % limit)
    # One at the limit is read and dropped, and the connection goes on.
    sock = connect(alstap)
    reader = Responses(sock)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % limit + b"a" * limit
                 + b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reader.next()[::2] == (200, b"ok\n")
    assert reader.next()[::2] == (200, b"ready\n")
    assert reader.nothing_more()
    sock.close()


def test_max_head_bytes_also_bounds_bodies():
    server = Alstap("--max-head-bytes", "1024")
    try:
        status, _, body = answered_once_then_closed(
            server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n")
        assert (status, body) == (413, b"request body over 1024 bytes\n")
    finally:
        server.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_pipelining_without_reading_is_bounded(alstap):
    # 5000 requests (500 KB) sent at once and nothing read: alstap answers 16 per loop turn and
    # none while answers are unwritten, and a client holding more than 4 x max-head-bytes (64 KiB)
    # of unanswered requests meanwhile is closed without an answer, counted as a head over the
    # limit. Before, alstap answered all 5000 into its backlog (12 MB of /metrics) in one turn.
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"p" * 52 + b"\r\n\r\n"
    assert len(request) == 100
    count = 5000
    rss_before = rss_kib(alstap.proc.pid)
    limit_hits = alstap.stats()["headTooLarge"]
    sock = socket.socket()
    # A small receive buffer: answers back up after ~4 MB at most (the server's send buffer).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", alstap.http_port))
    try:
        sock.sendall(request * count)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed by the bound while sending
    started = time.monotonic()
    with urllib.request.urlopen(alstap.url("/healthz"), timeout=1) as response:
        assert response.read() == b"ok\n"
    assert time.monotonic() - started < 1
    alstap.wait_stat("headTooLarge", lambda value: value == limit_hits + 1)
    grown = rss_kib(alstap.proc.pid) - rss_before
    assert grown < 50 * 1024, f"RSS grew by {grown} KiB"
    reader = Responses(sock)
    answered = 0
    while reader.next() is not None:
        answered += 1
    assert reader.closed
    assert 0 < answered < count
    assert alstap.stats()["headTooLarge"] == limit_hits + 1
    sock.close()


def test_pipelined_requests_resume_when_answers_drain(alstap):
    # Fewer unanswered bytes than the bound (1000 x 37 B), but 17 MB of answers: alstap pauses
    # while they are unwritten and answers the rest as the client reads, none lost.
    request = b"GET /ui/app.js HTTP/1.1\r\nHost: x\r\n\r\n"
    count = 1000
    sock = connect(alstap)
    sock.sendall(request * count)
    time.sleep(0.3)
    reader = Responses(sock)
    sizes = set()
    for _ in range(count):
        status, _, body = reader.next()
        assert status == 200
        sizes.add(len(body))
    assert len(sizes) == 1 and sizes.pop() > 10_000
    assert reader.nothing_more()
    assert alstap.stats()["headTooLarge"] == 0
    sock.close()
