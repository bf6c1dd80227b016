"""The `capture` scenario: `alstap tap -r` of a 1 000 000-entry capture into /dev/null, pinned to
one core, against the server's pinned single-core ingest rate measured in the same run (the
captures issue's bar: at least half of it). The file is written here in the capture format
(CaptureFile.swift) from the load generator's messages, each behind its sidecar's Identifier."""
import os
import struct
import subprocess
import time

import loadgen

ENTRIES = 1_000_000


def varint(value):
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def write_capture(path, body):
    """`body`: gRPC frames of StreamAccessLogsMessages (the first with the Identifier)."""
    messages, offset = [], 0
    while offset < len(body):
        length = struct.unpack(">I", body[offset + 1:offset + 5])[0]
        messages.append(body[offset + 5:offset + 5 + length])
        offset += 5 + length
    identifier = loadgen.identifier(0).SerializeToString(deterministic=True)
    field = b"\x0a" + varint(len(identifier)) + identifier
    with open(path, "wb") as f:
        f.write(b"ALSTAPCAP\n" + struct.pack(">HH", 1, 5) + b"0.9.0")
        written, micros = 0, 1_764_633_600_000_000
        while written < ENTRIES:
            for index, message in enumerate(messages):
                # The body's first message has the Identifier already; the others get it in front.
                record = struct.pack(">q", micros) + (message if index == 0 else field + message)
                f.write(b"\x00" + struct.pack(">I", len(record)) + record)
                written += 100
                micros += 1000
                if written >= ENTRIES:
                    break


def capture(record, binary, work, body_path, ingest_rate, runs=3):
    path = os.path.join(work, "million.alstap")
    with open(body_path, "rb") as f:
        write_capture(path, f.read())
    size = os.path.getsize(path)
    rates = []
    for _ in range(runs):
        start = time.time()
        with open(os.devnull, "wb") as null:
            result = subprocess.run(["taskset", "-c", "0", binary, "tap", "-r", path, "-o", "json"], stdout=null,
                                    stderr=subprocess.PIPE, timeout=600)
        rates.append(ENTRIES / (time.time() - start))
        assert result.returncode == 0, result.stderr
    lines = int(subprocess.run(f"{binary} tap -r {path} -o json | wc -l", shell=True, capture_output=True, text=True,
                               timeout=600).stdout.strip())
    rates.sort()
    read = rates[len(rates) // 2]
    ingest = ingest_rate()
    record("capture: tap -r 1M entries, pinned", f"{read:,.0f} entries/s", ">= 0.5 x ingest",
           read >= 0.5 * ingest and lines == ENTRIES,
           f"median of {runs} ({', '.join(f'{r:,.0f}' for r in rates)}); {read / ingest:.2f} x the pinned ingest rate "
           f"({ingest:,.0f}/s, same run); {size / 1e6:.0f} MB file, {lines} JSON lines")
