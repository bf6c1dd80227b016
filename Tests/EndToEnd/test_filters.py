"""Filter semantics, table-driven, against a live server: each /tap parameter, OR within one
parameter, AND across parameters; every bad value is a 400 naming the parameter. Identity:
Istio sidecar and gateway reporters, plain Envoy, peer filter state, inbound / outbound /
empty-cluster entries, IPv6."""
import itertools
import time
import urllib.error
import urllib.request

import pytest
from google.protobuf import struct_pb2
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2

import als
from conftest import Tap, wait_subscribers

METHODS = {"GET": base_pb2.GET, "POST": base_pb2.POST, "DELETE": base_pb2.DELETE, "PATCH": base_pb2.PATCH}


def reporter(kind, workload, namespace, ip):
    ident = als_pb2.StreamAccessLogsMessage.Identifier(log_name=f"{kind}_log")
    pod = f"{workload}-abc12"
    if kind == "plain":
        ident.node.id = "front-proxy-1"
        ident.node.cluster = "front-proxy"
        return ident, {"ns": None, "workload": None, "pod": None, "labels": {}}
    ident.node.id = f"{'router' if kind == 'gateway' else 'sidecar'}~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"
    labels = {"app": workload.rsplit("-", 1)[0], "version": workload.rsplit("-", 1)[-1]}
    ident.node.metadata.update({"NAMESPACE": namespace, "NAME": pod, "WORKLOAD_NAME": workload, "INSTANCE_IPS": ip,
                                "LABELS": labels})
    return ident, {"ns": namespace, "workload": workload, "pod": pod, "labels": labels}


def peer_labels(workload, namespace):
    """Istio's peer metadata: app and version at the top, the exported labels in `labels`."""
    return {"app": workload.rsplit("-", 1)[0], "version": workload.rsplit("-", 1)[-1], "team": f"t-{namespace}"}


def peer_struct(workload, namespace):
    value = struct_pb2.Struct()
    labels = peer_labels(workload, namespace)
    value.update({"workload": workload, "namespace": namespace, "name": f"{workload}-zz9", "service": workload,
                  "app": labels["app"], "version": labels["version"], "labels": {"team": labels["team"]}})
    any_value = accesslog_pb2.AccessLogCommon().filter_state_objects["x"]
    any_value.Pack(value)
    return any_value


def build_entries():
    """Entries over four reporters, with the attributes each filter looks at, as the test sees them."""
    streams = []
    records = []
    sequence = itertools.count()
    for kind, workload, namespace, ip in [("sidecar", "productpage-v1", "shop", "10.0.0.5"),
                                          ("sidecar", "reviews-v2", "books", "fd00::7"),
                                          ("gateway", "ingress", "istio-system", "10.0.0.9"),
                                          ("plain", None, None, None)]:
        ident, me = reporter(kind, workload, namespace, ip)
        message = als_pb2.StreamAccessLogsMessage()
        message.identifier.CopyFrom(ident)
        for direction, method, code, flag, millis, path, scheme in itertools.product(
                ["outbound", "inbound", "none"], ["GET", "POST", "DELETE"], [200, 404, 503],
                [None, "UF"], [5, 300], ["/api/a", "/static/x"], ["http", "HTTPS"]):
            if (next(sequence) % 3) != 0:
                continue  # a third of the cross product keeps the suite quick but covers every value
            n = len(records)
            entry = message.http_logs.log_entry.add()
            c = entry.common_properties
            c.start_time.FromNanoseconds(1_764_000_000_000_000_000 + n)
            c.duration.FromMilliseconds(millis)
            c.downstream_remote_address.socket_address.address = "10.1.1.1"
            c.downstream_local_address.socket_address.address = ip or "192.168.0.1"
            c.downstream_local_address.socket_address.port_value = 8080
            other = {"ns": None, "workload": None, "pod": None, "service": None}
            peer = {}
            if direction == "outbound":
                c.upstream_cluster = "outbound|9080||ratings.data.svc.cluster.local"
                other = {"ns": "data", "workload": None, "pod": None, "service": "ratings"}
                if n % 2:
                    c.filter_state_objects["upstream_peer"].CopyFrom(peer_struct("ratings-v1", "data"))
                    other.update(workload="ratings-v1", pod="ratings-v1-zz9")
                    peer = peer_labels("ratings-v1", "data")
            elif direction == "inbound":
                c.upstream_cluster = "inbound|8080||"
                if n % 2:
                    c.filter_state_objects["downstream_peer"].CopyFrom(peer_struct("client-v1", "shop"))
                    other = {"ns": "shop", "workload": "client-v1", "pod": "client-v1-zz9", "service": "client-v1"}
                    peer = peer_labels("client-v1", "shop")
            if flag:
                c.response_flags.upstream_connection_failure = True
            entry.request.request_method = METHODS[method]
            entry.request.path = path
            entry.request.scheme = scheme
            entry.request.authority = "ratings:9080" if n % 4 else "www.example.com"
            entry.request.request_id = f"id-{n}"
            entry.response.response_code.value = code
            # What the header, user-agent, size and error filters read.
            agent = "kube-probe/1.29" if n % 5 == 0 else "curl/8.5.0"
            entry.request.user_agent = agent
            tenant = ["acme", "globex", None][n % 3]
            if tenant:
                entry.request.request_headers["x-tenant"] = tenant
            entry.response.response_body_bytes = n * 10
            grpc = {0: 14, 1: 0}.get(n % 7)
            if grpc is not None:
                entry.response.response_trailers["grpc-status"] = str(grpc)
            real_direction = direction
            if direction == "none":
                # No upstream: INSTANCE_IPS decides (the local address is the reporter's own IP).
                real_direction = "inbound" if ip else "unknown"
            if real_direction == "outbound":
                source, destination = dict(me), dict(other)
            elif real_direction == "inbound":
                source, destination = dict(other), dict(me)
            else:
                source, destination = {}, {}
            records.append({"id": f"id-{n}", "direction": real_direction, "method": method, "code": code,
                            "flags": [flag] if flag else [], "millis": millis, "path": path, "scheme": scheme.lower(),
                            "authority": entry.request.authority, "type": "http", "log": ident.log_name,
                            "source": source, "destination": destination, "reporter": me,
                            "agent": agent, "tenant": tenant, "bytes": n * 10, "grpc": grpc,
                            "labels": [labels for labels in (me["labels"], peer) if labels]})
        # One TCP entry per reporter, in a second message on the same stream (no Identifier).
        tcp_message = als_pb2.StreamAccessLogsMessage()
        t = tcp_message.tcp_logs.log_entry.add()
        t.common_properties.upstream_cluster = "outbound|5432||db.data.svc.cluster.local"
        t.common_properties.start_time.FromNanoseconds(1_764_000_000_000_000_000)
        t.connection_properties.received_bytes = 10
        n = len(records)
        t.common_properties.stream_id = f"id-{n}"
        records.append({"id": f"tcp-{n}", "direction": "outbound", "method": None, "code": None, "flags": [],
                        "millis": None, "path": None, "scheme": None, "authority": None, "type": "tcp",
                        "log": ident.log_name, "source": dict(me),
                        "destination": {"ns": "data", "workload": None, "pod": None, "service": "db"},
                        "reporter": me, "agent": None, "tenant": None, "bytes": 0, "grpc": None,
                        "labels": [me["labels"]] if me["labels"] else []})
        streams.append([message, tcp_message])
    return streams, records


def side_has(side, key, name):
    if "/" in name and key != "ns":
        namespace, name = name.split("/")
        if side.get("ns") != namespace:
            return False
    value = side.get(key)
    if key == "workload" and value is None and side.get("service") is not None and side is not None:
        value = side.get("service")
    return value == name


def either(key, names):
    return lambda r: any(side_has(r["source"], key, n) or side_has(r["destination"], key, n) for n in names)


CASES = [
    ("ns=shop", either("ns", ["shop"])),
    ("ns=books&ns=data", either("ns", ["books", "data"])),
    ("workload=reviews-v2", either("workload", ["reviews-v2"])),
    ("workload=shop/client-v1", either("workload", ["shop/client-v1"])),
    ("workload=ratings", either("workload", ["ratings"])),
    ("pod=productpage-v1-abc12", either("pod", ["productpage-v1-abc12"])),
    ("destination=ns/data", lambda r: r["destination"].get("ns") == "data"),
    ("destination=workload/ratings-v1", lambda r: side_has(r["destination"], "workload", "ratings-v1")),
    ("destination_ns=books", lambda r: r["destination"].get("ns") == "books"),
    # Namespace and workload of one side together: the subscriber index keys on the pair.
    ("destination_ns=data&destination=workload/ratings-v1",
     lambda r: r["destination"].get("ns") == "data" and side_has(r["destination"], "workload", "ratings-v1")),
    ("destination=workload/data/ratings", lambda r: side_has(r["destination"], "workload", "data/ratings")),
    ("destination_ns=books&destination_ns=data&destination=workload/ratings&destination=workload/reviews-v2",
     lambda r: r["destination"].get("ns") in ("books", "data")
     and any(side_has(r["destination"], "workload", n) for n in ("ratings", "reviews-v2"))),
    ("ns=shop&workload=ratings", lambda r: either("ns", ["shop"])(r) and either("workload", ["ratings"])(r)),
    ("method=get", lambda r: r["method"] == "GET"),
    ("method=POST&method=DELETE", lambda r: r["method"] in ("POST", "DELETE")),
    ("path=/api", lambda r: (r["path"] or "").startswith("/api")),
    ("authority=www.example.com", lambda r: r["authority"] == "www.example.com"),
    ("scheme=https", lambda r: r["scheme"] == "https"),
    ("direction=in", lambda r: r["direction"] == "inbound"),
    ("direction=outbound", lambda r: r["direction"] == "outbound"),
    ("code=404", lambda r: r["code"] == 404),
    ("code=500-599", lambda r: r["code"] is not None and 500 <= r["code"] <= 599),
    ("code=2xx,404", lambda r: r["code"] is not None and (200 <= r["code"] <= 299 or r["code"] == 404)),
    ("flags=UF", lambda r: "UF" in r["flags"]),
    ("flags=UH,UF", lambda r: "UF" in r["flags"]),
    ("min_duration=250ms", lambda r: (r["millis"] or 0) >= 250),
    ("min_duration=0.3s", lambda r: (r["millis"] or 0) >= 300),
    ("type=tcp", lambda r: r["type"] == "tcp"),
    ("reporter=workload/ingress", lambda r: r["reporter"].get("workload") == "ingress"),
    ("reporter=pod/reviews-v2-abc12", lambda r: r["reporter"].get("pod") == "reviews-v2-abc12"),
    ("log_name=plain_log", lambda r: r["log"] == "plain_log"),
    ("ns=shop&direction=in&code=5xx", lambda r: either("ns", ["shop"])(r) and r["direction"] == "inbound"
     and r["code"] is not None and r["code"] >= 500),
    ("method=GET&path=/static&flags=UF&format=text", lambda r: r["method"] == "GET"
     and (r["path"] or "").startswith("/static") and "UF" in r["flags"]),
    # Negations: none of the values; beside other clauses they AND.
    ("!ns=shop", lambda r: not either("ns", ["shop"])(r)),
    ("!method=GET&!method=POST", lambda r: r["method"] not in ("GET", "POST")),
    ("!code=5xx", lambda r: not (r["code"] is not None and r["code"] >= 500)),
    ("ns=books&!direction=in&!path=/static", lambda r: either("ns", ["books"])(r) and r["direction"] != "inbound"
     and not (r["path"] or "").startswith("/static")),
    ("destination_ns=data&!destination=workload/ratings-v1",
     lambda r: r["destination"].get("ns") == "data" and not side_has(r["destination"], "workload", "ratings-v1")),
    ("!workload=reviews-v2&!type=tcp", lambda r: not either("workload", ["reviews-v2"])(r) and r["type"] != "tcp"),
    # Headers, user agent, labels, presets, ranges.
    ("header=x-tenant:acme", lambda r: r["tenant"] == "acme"),
    ("header=X-Tenant", lambda r: r["tenant"] is not None),
    ("!header=x-tenant:acme&type=http", lambda r: r["tenant"] != "acme" and r["type"] == "http"),
    ("user_agent=kube-probe/", lambda r: (r["agent"] or "").startswith("kube-probe/")),
    ("probes=0", lambda r: not (r["agent"] or "").startswith("kube-probe/")),
    ("errors=1", lambda r: (r["code"] or 0) >= 500 or bool(r["flags"]) or (r["grpc"] or 0) > 0),
    ("errors=1&probes=0&ns=shop", lambda r: ((r["code"] or 0) >= 500 or bool(r["flags"]) or (r["grpc"] or 0) > 0)
     and not (r["agent"] or "").startswith("kube-probe/") and either("ns", ["shop"])(r)),
    ("label=app=ratings", lambda r: any(labels.get("app") == "ratings" for labels in r["labels"])),
    ("label=app=reviews,version=v2", lambda r: any(labels.get("app") == "reviews" and labels.get("version") == "v2"
                                                  for labels in r["labels"])),
    ("label=team=t-shop&label=team=t-data", lambda r: any(labels.get("team") in ("t-shop", "t-data") for labels in r["labels"])),
    # A reporter without labels (plain Envoy) is unknown: it meets no selector.
    ("reporter_label=version!=v1", lambda r: r["reporter"]["labels"] and r["reporter"]["labels"].get("version") != "v1"),
    ("reporter_label=!canary", lambda r: r["reporter"]["labels"] and "canary" not in r["reporter"]["labels"]),
    ("max_duration=10ms", lambda r: r["millis"] is not None and r["millis"] <= 10),
    ("min_bytes=1k", lambda r: r["bytes"] >= 1024),
    ("max_bytes=500&type=http", lambda r: r["bytes"] <= 500 and r["type"] == "http"),
]


def test_filters_select_exactly_the_matching_entries(alstap):
    streams, records = build_entries()
    taps = [(query, predicate, Tap(alstap, "?" + query)) for query, predicate in CASES]
    firehose = Tap(alstap)
    wait_subscribers(alstap, len(CASES) + 1)
    channel, stub = als.stub(alstap.als_target)
    for messages in streams:
        stub.StreamAccessLogs(iter(messages))
    channel.close()
    firehose.wait_lines(len(records))
    alstap.wait_stat("linesSent", lambda v: v >= len(records))
    time.sleep(0.5)  # every filtered line was queued with the firehose's; this lets curl print them
    for query, predicate, tap in taps:
        expected = sorted(r["id"] for r in records if predicate(r))
        assert expected, f"{query}: the fixture should contain matches"
        assert len(expected) < len(records), f"{query}: the fixture should contain non-matches"
        if "format=text" in query:
            assert len(tap.lines) == len(expected), query
            continue
        got = sorted(e["request"]["id"] if e["type"] == "http" else f"tcp-{int(e['streamId'][3:])}" for e in tap.json())
        assert got == expected, (query, sorted(set(got) ^ set(expected))[:5])
        tap.close()
    firehose.close()


@pytest.mark.parametrize("query, names", [
    ("colour=red", "colour"), ("format=xml", "format"), ("method=FETCH", "method"), ("code=700", "code"),
    ("code=5yy", "code"), ("code=599-500", "code"), ("flags=ZZ", "flags"), ("min_duration=fast", "min_duration"),
    ("direction=sideways", "direction"), ("type=udp", "type"), ("destination=svc/x", "destination"),
    ("reporter=ns/x", "reporter"), ("path=api", "path"), ("workload=a/b/c", "workload"), ("ns=", "ns"),
    ("last=-1", "last"), ("follow=maybe", "follow"), ("max_rps=fast", "max_rps"),
    ("!format=json", "format"), ("header=a%20b", "header"), ("label=a=b=c", "label"), ("errors=maybe", "errors"),
    ("probes=2", "probes"), ("min_bytes=lots", "min_bytes"), ("max_duration=1", "max_duration"),
    ("!colour=red", "!colour"), ("fields=request.pth", "fields"),
])
def test_bad_values_are_400_naming_the_parameter(alstap, query, names):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(alstap.url("/tap?" + query), timeout=5)
    assert error.value.code == 400
    assert names in error.value.read().decode()
