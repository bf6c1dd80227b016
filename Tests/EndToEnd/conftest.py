"""Shared helpers for alstap's end-to-end tests: a real alstap process, real curl
subscribers, and ALS messages built with Envoy's own protos (xds-protos)."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def require_tool(name):
    """A test that needs a tool fails loudly when it is missing (never skips)."""
    path = shutil.which(name) or (os.path.join(ROOT, ".venv", "bin", name)
                                  if os.path.exists(os.path.join(ROOT, ".venv", "bin", name)) else None)
    if path is None:
        pytest.fail(f"required tool '{name}' is not installed; run scripts/setup --test", pytrace=False)
    return path


def alstap_binary():
    path = os.environ.get("ALSTAP_BIN", os.path.join(ROOT, ".build", "debug", "alstap"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"alstap binary not found at {path}; build it first (swift build)", pytrace=False)
    return path


class Alstap:
    """`alstap serve` on ephemeral loopback ports; stopped with SIGTERM, must exit 0."""

    def __init__(self, *extra, als="127.0.0.1:0", http="127.0.0.1:0", threads=2):
        self.args = [alstap_binary(), "serve", "--als-listen", als, "--http-listen", http,
                     "--threads", str(threads), "--shutdown-grace", "0.2", *extra]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.token = None  # set when the server was started with --tap-token-file
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"als=\S+:(\d+) http=\S+:(\d+)", line)
            if match:
                self.als_port, self.http_port = int(match.group(1)), int(match.group(2))
                threading.Thread(target=self._drain_log, daemon=True).start()
                return
        self.proc.kill()
        raise AssertionError("alstap did not start: " + "".join(self.log))

    def _drain_log(self):
        for line in self.proc.stderr:
            self.log.append(line)

    @property
    def als_target(self):
        return f"127.0.0.1:{self.als_port}"

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"

    def stats(self):
        request = urllib.request.Request(self.url("/stats"))
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return {k: int(v) for k, v in (line.split() for line in response.read().decode().splitlines())}

    def wait_stat(self, name, predicate, timeout=10):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            try:
                value = self.stats()[name]
            except OSError:
                # A test near --max-connections: this probe met the limit while a close was in flight.
                assert self.alive(), "alstap exited"
                time.sleep(0.05)
                continue
            if predicate(value):
                return value
            time.sleep(0.05)
        raise AssertionError(f"stat {name} never satisfied the condition; last {value}")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("alstap did not exit within 10 s of SIGTERM")
        assert code == 0, f"alstap exited with {code}: {''.join(self.log[-20:])}"


@pytest.fixture
def alstap():
    server = Alstap()
    yield server
    server.stop()


class Tap:
    """A real `curl -N` subscriber on /tap (or /top), its lines collected in the background."""

    def __init__(self, server, query="", http2=False, path="/tap"):
        curl = require_tool("curl")
        args = [curl, "-sN"] + (["--http2-prior-knowledge"] if http2 else [])
        if server.token:
            args += ["-H", f"Authorization: Bearer {server.token}"]
        args.append(server.url(path + query))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines = []
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8"))
        self.done.set()

    def json(self):
        return [json.loads(line) for line in list(self.lines)]

    def wait_lines(self, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.lines) < count:
            time.sleep(0.02)
        assert len(self.lines) >= count, f"got {len(self.lines)} of {count} lines"
        return self.lines

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=5)


def wait_subscribers(server, count):
    server.wait_stat("subscribersActive", lambda v: v == count)
