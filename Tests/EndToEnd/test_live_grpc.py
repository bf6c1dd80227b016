"""Live: an independent gRPC client (grpcio + Envoy's protos) streams thousands of entries over
several connections and concurrent streams; real curl subscribers on HTTP/1.1 and HTTP/2
receive every entry exactly once, with the right fields; every call ends with status OK."""
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc

import als
from conftest import Tap, wait_subscribers

CONNECTIONS = 4
STREAMS_PER_CONNECTION = 3
ENTRIES_PER_STREAM = 500


def send_stream(stub, tag):
    return stub.StreamAccessLogs(als.http_messages(tag, ENTRIES_PER_STREAM, per_message=7,
                                                   ident=als.identifier(workload=f"wl-{tag}")))


def test_every_entry_reaches_every_subscriber_once(alstap):
    json_h1 = Tap(alstap)
    json_h2 = Tap(alstap, http2=True)
    text_h1 = Tap(alstap, "?format=text")
    wait_subscribers(alstap, 3)

    channels = []
    jobs = []
    with ThreadPoolExecutor(max_workers=CONNECTIONS * STREAMS_PER_CONNECTION) as pool:
        for c in range(CONNECTIONS):
            # A local subchannel pool gives each channel its own TCP connection.
            channel = grpc.insecure_channel(alstap.als_target, options=[("grpc.use_local_subchannel_pool", 1)])
            channels.append(channel)
            stub = als.als_pb2_grpc.AccessLogServiceStub(channel)
            for s in range(STREAMS_PER_CONNECTION):
                jobs.append(pool.submit(send_stream, stub, f"c{c}s{s}"))
        responses = [job.result(timeout=60) for job in jobs]
    for channel in channels:
        channel.close()
    assert all(isinstance(r, als.als_pb2.StreamAccessLogsResponse) for r in responses)

    total = CONNECTIONS * STREAMS_PER_CONNECTION * ENTRIES_PER_STREAM
    for tap in (json_h1, json_h2, text_h1):
        tap.wait_lines(total)
    stats = alstap.stats()
    assert stats["entriesReceived"] == total
    assert stats["alsStreamsOK"] == CONNECTIONS * STREAMS_PER_CONNECTION
    assert stats["alsStreamsFailed"] == 0
    assert stats["linesDropped"] == 0

    expected_ids = {f"c{c}s{s}-{i}" for c in range(CONNECTIONS) for s in range(STREAMS_PER_CONNECTION)
                    for i in range(ENTRIES_PER_STREAM)}
    for tap in (json_h1, json_h2):
        entries = tap.json()
        ids = Counter(e["request"]["id"] for e in entries)
        assert set(ids) == expected_ids
        assert max(ids.values()) == 1, "an entry arrived twice"
        for entry in entries:
            tag, index = entry["request"]["id"].rsplit("-", 1)
            index = int(index)
            expected_method = als.METHOD_NAMES[als.METHODS[index % len(als.METHODS)]]
            assert entry["type"] == "http"
            assert entry["direction"] == "outbound"
            assert entry["request"]["method"] == expected_method
            assert entry["request"]["path"] == f"/{tag}/{index}"
            assert entry["response"]["code"] == als.CODES[index % len(als.CODES)]
            assert entry["reporter"]["workload"] == f"wl-{tag}"
            assert entry["source"]["workload"] == f"wl-{tag}"
            assert entry["destination"]["service"] == "ratings"
            assert entry["destination"]["port"] == 9080
            assert entry["request"]["userAgent"] == "curl/7.88.1"
            if entry["response"]["code"] == 503:
                assert entry["response"]["flags"] == ["UF"]
            else:
                assert "flags" not in entry["response"]

    text_paths = Counter(line.split()[6] for line in text_h1.lines)
    assert len(text_paths) == total and max(text_paths.values()) == 1
    assert all(" → " in line and line.endswith("ms\n") or line.rstrip().endswith("UF") for line in text_h1.lines)

    for tap in (json_h1, json_h2, text_h1):
        tap.close()
    wait_subscribers(alstap, 0)
