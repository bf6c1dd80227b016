"""The web UI in a real browser: Debian's headless Chromium driven by playwright, against a live
alstap fed by a real gRPC client. Rows appear, a filter narrows them (and lands in the URL), a bad
filter shows the server's message, a click opens the details with a waterfall, a pair shows both
sides, and a bearer token works; `format=sse` feeds a real EventSource. Screenshots go to $ALSTAP_SCREENSHOTS (default
.build/screenshots); docs/ holds copies."""
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

import als
from conftest import ROOT, Alstap, Tap, require_tool, wait_subscribers
from test_filters import peer_struct
from test_pairing import DESTINATION, SOURCE, half, stream

SHOTS = os.environ.get("ALSTAP_SCREENSHOTS", os.path.join(ROOT, ".build", "screenshots"))
ROWS = "#entries tbody tr"


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, server, query="", size=(1500, 820)):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The browser logs every non-2xx fetch (the 400 and 401 the tests provoke); anything else counts.
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and errors.append(message.text))
    page.goto(server.url("/" + query))
    return page, errors


def traffic(count, code_every=4):
    """Outbound entries from productpage to reviews; every `code_every`th fails with 503 UF."""
    entries = []
    for i in range(count):
        failed = i % code_every == code_every - 1
        entry = half("out", f"req-{i}", 2 + (i % 5) * 7, port=6000 + i, code=503 if failed else 200)
        entry.request.path = f"/reviews/{i}"
        entry.request.authority = "reviews:9080"
        if failed:
            entry.common_properties.response_flags.upstream_connection_failure = True
        d = entry.common_properties
        d.start_time.FromMilliseconds(1_764_000_000_000 + i * 37)
        d.time_to_last_rx_byte.FromMicroseconds(150)
        d.time_to_first_upstream_tx_byte.FromMicroseconds(300)
        d.time_to_last_upstream_tx_byte.FromMicroseconds(420)
        d.time_to_first_upstream_rx_byte.FromMicroseconds(1200 + i * 10)
        d.time_to_last_upstream_rx_byte.FromMicroseconds(1500 + i * 10)
        d.time_to_first_downstream_tx_byte.FromMicroseconds(1550 + i * 10)
        d.time_to_last_downstream_tx_byte.FromMicroseconds(1600 + i * 10)
        entries.append(entry)
    return entries


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name))


def test_live_rows_filters_and_details(browser):
    server = Alstap()
    try:
        page, errors = open_page(browser, server)
        expect(page.locator("#status")).to_have_text("live")
        wait_subscribers(server, 1)
        stream(server, SOURCE, traffic(12))
        expect(page.locator(ROWS)).to_have_count(12)
        first = page.locator(ROWS).first  # newest on top
        expect(first).to_contain_text("productpage-v1.shop → reviews.books:9080")
        expect(first).to_contain_text("reviews:9080/reviews/11")
        expect(first.locator("td").nth(5)).to_have_text("503")
        expect(first.locator("td").nth(5)).to_have_class("code-5")
        expect(first.locator("td").nth(7)).to_have_text("UF")
        expect(page.locator(ROWS).nth(1).locator("td").nth(5)).to_have_class("code-2")
        expect(page.locator("#received")).to_have_text("12")

        # A click opens the whole record and its timings.
        page.locator(ROWS).nth(2).click()
        details = page.locator("#details")
        expect(details).to_be_visible()
        expect(page.locator("#details-title")).to_have_text("GET reviews:9080/reviews/9 → 200")
        expect(details).to_contain_text("productpage-v1")
        expect(details.locator(".wf-row")).to_have_count(6)  # total + five phases
        expect(details.locator("pre.raw")).to_contain_text('"id": "req-9"')
        shot(page, "ui-live.png")

        # A filter narrows the rows (the view starts with the recent matches) and lands in the URL.
        page.fill("input[name=code]", "5xx")
        page.click("#filters button[type=submit]")
        expect(page).to_have_url(re.compile(r"/\?code=5xx$"))
        expect(page.locator(ROWS)).to_have_count(3)
        stream(server, SOURCE, traffic(8))
        expect(page.locator(ROWS)).to_have_count(5)
        codes = page.locator(f"{ROWS} td:nth-child(6)").all_text_contents()
        assert codes == ["503"] * 5
        # The URL is the view: opening it again applies the same filter.
        shared, _ = open_page(browser, server, "?code=5xx&direction=outbound")
        expect(shared.locator("input[name=code]")).to_have_value("5xx")
        expect(shared.locator("select[name=direction]")).to_have_value("outbound")
        expect(shared.locator(ROWS)).to_have_count(5)
        shared.close()

        # A bad filter shows the server's 400 message.
        page.fill("input[name=code]", "abc")
        page.click("#filters button[type=submit]")
        expect(page.locator("#error")).to_contain_text('400 Bad Request: bad value for code: "abc"')
        assert errors == []
    finally:
        server.stop()


def test_error_and_probe_toggles_and_negated_fields(browser):
    server = Alstap()
    try:
        page, errors = open_page(browser, server)
        wait_subscribers(server, 1)
        entries = traffic(12)  # 3, 7 and 11 fail
        for i in (0, 3, 5):
            entries[i].request.user_agent = "kube-probe/1.29"
        stream(server, SOURCE, entries)
        expect(page.locator(ROWS)).to_have_count(12)

        # Errors only, without probes: 7 and 11 (3 is a failing probe).
        page.check("input[name=errors]")
        page.check("input[name=probes]")
        page.click("#filters button[type=submit]")
        expect(page).to_have_url(re.compile(r"/\?errors=1&probes=0$"))
        expect(page.locator(ROWS)).to_have_count(2)
        paths = page.locator(f"{ROWS} td:nth-child(5)").all_text_contents()
        assert [path.split("/")[-1] for path in paths] == ["11", "7"]

        # A leading ! negates a text field: every path but /reviews/1…
        page.uncheck("input[name=errors]")
        page.uncheck("input[name=probes]")
        page.fill("input[name=path]", "!/reviews/1")
        page.click("#filters button[type=submit]")
        expect(page).to_have_url(re.compile(r"/\?%21path=%2Freviews%2F1$"))
        expect(page.locator(ROWS)).to_have_count(9)  # not 1, 10, 11
        # …and the URL shows it so again.
        shared, _ = open_page(browser, server, "?%21path=%2Freviews%2F1&probes=0")
        expect(shared.locator("input[name=path]")).to_have_value("!/reviews/1")
        expect(shared.locator("input[name=probes]")).to_be_checked()
        expect(shared.locator(ROWS)).to_have_count(6)  # nor the probes 0, 3 and 5
        shared.close()
        assert errors == []
    finally:
        server.stop()


def test_pair_view_shows_both_sides(browser):
    server = Alstap("--pair-window", "0.5")
    try:
        page, errors = open_page(browser, server, "?pair=1")
        expect(page.locator("input[name=pair]")).to_be_checked()
        expect(page.locator("#status")).to_have_text("live")
        wait_subscribers(server, 1)
        outbound = traffic(6)
        inbound = [half("in", f"req-{i}", 1 + (i % 5) * 6, port=6000 + i, code=entry.response.response_code.value)
                   for i, entry in enumerate(outbound)]
        stream(server, DESTINATION, inbound)
        stream(server, SOURCE, outbound)
        expect(page.locator(ROWS)).to_have_count(6)
        row = page.locator(ROWS).filter(has_text="/reviews/2 ")
        expect(row.locator("td").nth(1)).to_have_text("pair")
        expect(row).to_contain_text("productpage-v1.shop → reviews-v2.books")
        expect(row).to_contain_text("out 16.00ms / in 13.00ms")
        row.click()
        details = page.locator("#details")
        expect(details).to_contain_text("overhead 3.000ms")
        expect(details).to_contain_text("outbound (source sidecar)")
        expect(details).to_contain_text("inbound (destination sidecar)")
        expect(details.locator(".wf-bar.inbound").first).to_be_visible()
        shot(page, "ui-pair.png")
        assert errors == []
    finally:
        server.stop()


def test_bearer_token(browser, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("ui-token\n")
    server = Alstap("--tap-token-file", str(token_file))
    try:
        # The page itself holds no data and loads without the token; /tap does not.
        with urllib.request.urlopen(server.url("/")) as response:
            assert response.status == 200 and "alstap" in response.read().decode()
        page, errors = open_page(browser, server)
        expect(page.locator("#status")).to_have_text("token needed")
        page.fill("#token", "wrong")
        page.click("#token-form button")
        expect(page.locator("#status")).to_have_text("token needed")
        page.fill("#token", "ui-token")
        page.click("#token-form button")
        expect(page.locator("#status")).to_have_text("live")
        server.token = "ui-token"
        wait_subscribers(server, 1)
        channel, stub = als.stub(server.als_target)
        stub.StreamAccessLogs(als.http_messages("tok", 3))
        channel.close()
        expect(page.locator(ROWS)).to_have_count(3)
        assert errors == []
    finally:
        server.stop()


def test_server_sent_events(browser, alstap):
    """`format=sse` for EventSource: one event per entry (JSON data), notices as named events."""
    curl = subprocess.Popen(["curl", "-sN", alstap.url("/tap?format=sse&code=503")], stdout=subprocess.PIPE)
    page, errors = open_page(browser, alstap)
    page.evaluate("""() => {
        window.events = [];
        const source = new EventSource('/tap?format=sse&pair=1');
        source.onmessage = (e) => window.events.push(JSON.parse(e.data));
        source.addEventListener('shutdown', (e) => { window.events.push(JSON.parse(e.data)); source.close(); });
    }""")
    wait_subscribers(alstap, 3)  # curl, the page's own tap, the EventSource
    stream(alstap, SOURCE, traffic(8))
    page.wait_for_function("() => window.events.length === 8", timeout=10_000)
    got = page.evaluate("window.events")
    assert sorted(r["requestId"] for r in got) == sorted(f"req-{i}" for i in range(8))
    assert all(r["type"] == "pair" and r["paired"] is False for r in got), "lone halves after the pair window"
    alstap.stop()
    page.wait_for_function("() => window.events.length === 9")
    assert page.evaluate("window.events[8]") == {"type": "shutdown"}
    raw = curl.communicate(timeout=10)[0].decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == 'event: shutdown\ndata: {"type":"shutdown"}'
    data = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert [d["request"]["path"] for d in data] == ["/reviews/3", "/reviews/7"]
    assert errors == []


# ---- Top and Map: /top's groups as a table and as a service map ----

RATINGS = als.identifier(workload="ratings-v1", namespace="data")
A, B, C, DETAILS = "productpage-v1.shop", "reviews-v2.books", "ratings-v1.data", "details.shop"
# by=edge counts entries: A → B is logged by both sidecars (A outbound, B inbound), but for the
# call that never reached B.
EDGES = {(A, B): 15, (B, C): 6, (A, DETAILS): 4}
REQUESTS = sum(EDGES.values())
TOP_ROWS = "#top-table tbody tr"
EDGE = "#map g.edge"


def call(direction, request_id, cluster=None, peer=None, code=200):
    """One side of a request; `peer` (workload, namespace) as Istio's peer metadata gives it."""
    entry = half(direction, request_id, 3 if direction == "out" else 2, code=code)
    c = entry.common_properties
    if cluster:
        c.upstream_cluster = f"outbound|9080||{cluster}.svc.cluster.local"
    if peer:
        c.filter_state_objects["upstream_peer" if direction == "out" else "downstream_peer"].CopyFrom(peer_struct(*peer))
    if code == 503:
        c.response_flags.upstream_connection_failure = True
    return entry


def chain(server, tag="c"):
    """A → B → C with both of B's sides, and A → details (a service: no peer metadata). A's last
    call to B fails to connect (B never sees it); B → C fails half the time."""
    stream(server, SOURCE, [call("out", f"{tag}ab-{i}", peer=("reviews-v2", "books"), code=503 if i == 7 else 200)
                            for i in range(8)]
           + [call("out", f"{tag}ad-{i}", cluster="details.shop") for i in range(4)])
    stream(server, DESTINATION, [call("in", f"{tag}ab-{i}", peer=("productpage-v1", "shop")) for i in range(7)]
           + [call("out", f"{tag}bc-{i}", cluster="ratings.data", peer=("ratings-v1", "data"), code=503 if i % 2 else 200)
              for i in range(6)])


def label(identity):
    name = identity.get("workload") or identity.get("service") or identity.get("address")
    return f"{name}.{identity['namespace']}" if "namespace" in identity else name


def server_edges(server, feed, requests):
    """The newest snapshot of the test's own `/top?by=edge` once it counts `requests`, as {(source, destination): row}."""
    deadline = time.time() + 10
    while time.time() < deadline:
        snapshots = [s for s in feed.json() if s.get("type") == "top"]
        if snapshots and snapshots[-1]["totals"]["requests"] == requests:
            return {(label(r["source"]), label(r["destination"])): r for r in snapshots[-1]["rows"]}
        time.sleep(0.1)
    raise AssertionError(f"/top never counted {requests} requests: {feed.lines[-1:]}")


def top_rows(page):
    """The Top table as {group label: requests}."""
    cells = page.locator(TOP_ROWS).evaluate_all("rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    return {group: int(requests) for group, requests in cells}


def wait_snapshot(page):
    """The view's own /top stream answers (its first snapshot comes after one interval)."""
    expect(page.locator("#top-totals")).to_contain_text("requests")


def test_top_view_table(browser):
    server = Alstap()
    try:
        page, errors = open_page(browser, server, "?view=top")
        expect(page.locator("#views button[data-view=top]")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#live-view")).to_be_hidden()
        feed = Tap(server, "?by=edge&interval=200ms", path="/top")
        wait_subscribers(server, 2)
        wait_snapshot(page)
        chain(server)
        edges = server_edges(server, feed, REQUESTS)
        assert {key: row["requests"] for key, row in edges.items()} == EDGES
        expected = {f"{s} → {d}": n for (s, d), n in EDGES.items()}
        expect(page.locator(TOP_ROWS)).to_have_count(len(edges))
        page.wait_for_function(f"() => document.querySelector('#top-totals').textContent.startsWith('{REQUESTS} requests')")
        assert top_rows(page) == expected
        first = page.locator(TOP_ROWS).first  # most requests first, as the server sends them
        expect(first.locator("td").nth(0)).to_have_text(f"{A} → {B}")
        expect(first.locator("td").nth(3)).to_have_text("93.33%")  # 1 of 15 failed
        expect(first.locator("td").nth(9)).to_have_text("UF:1")
        expect(page.locator(f"{TOP_ROWS}:nth-child(2) td").nth(0)).to_have_text(f"{B} → {C}")

        # A click on a header sorts by it, largest first; a second click flips the order.
        page.locator("#top-table th", has_text="rps").click()
        expect(page.locator("#top-table th.sorted")).to_have_text("rps")
        expect(page.locator(TOP_ROWS).first.locator("td").nth(1)).to_have_text("15")
        page.locator("#top-table th", has_text="rps").click()
        expect(page.locator(TOP_ROWS).first.locator("td").nth(1)).to_have_text("4")
        page.locator("#top-table th", has_text="success").click()
        expect(page.locator(TOP_ROWS).last.locator("td").nth(0)).to_have_text(f"{B} → {C}")

        # The grouping is the view's: it lands in the URL and the server groups by it.
        page.select_option("#top-by", "source")
        expect(page).to_have_url(re.compile(r"/\?view=top&by=source$"))
        expect(page.locator("#top-table th").first).to_have_text("source")
        chain(server, tag="s")
        expect(page.locator(TOP_ROWS)).to_have_count(2)
        page.wait_for_function(f"() => document.querySelector('#top-totals').textContent.startsWith('{REQUESTS} requests')")
        assert top_rows(page) == {A: 19, B: 6}
        wait_subscribers(server, 2)  # the feed and the page's one stream
        feed.close()
        assert errors == []
    finally:
        server.stop()


def test_map_view_edges_layout_and_clicks(browser):
    server = Alstap()
    try:
        page, errors = open_page(browser, server, "?view=map", size=(1000, 600))
        feed = Tap(server, "?by=edge&interval=200ms", path="/top")
        wait_subscribers(server, 2)
        wait_snapshot(page)
        chain(server)
        edges = server_edges(server, feed, REQUESTS)
        feed.close()

        # One edge per row of the server's own /top?by=edge, each named by its two ends.
        expect(page.locator(EDGE)).to_have_count(len(edges))
        for (source, destination), row in edges.items():
            edge = page.locator(f'{EDGE}[data-source="{source}"][data-destination="{destination}"]')
            expect(edge).to_have_count(1)
            expect(edge.locator("title")).to_contain_text(f"{row['requests']} requests")
        # Color by error rate, width by rps.
        line = lambda s, d: page.locator(f'{EDGE}[data-source="{s}"][data-destination="{d}"] .edge-line')
        assert line(B, C).get_attribute("stroke") == "hsl(0, 70%, 52%)"  # half failed
        assert line(A, DETAILS).get_attribute("stroke") == "hsl(140, 70%, 52%)"
        assert float(line(A, B).get_attribute("stroke-width")) > float(line(A, DETAILS).get_attribute("stroke-width"))
        # Left to right by call depth: A, then B and details, then C.
        x = lambda node: float(page.locator(f'#map g.node[data-node="{node}"] rect').get_attribute("x"))
        assert x(A) < x(B) < x(C)
        assert x(B) == x(DETAILS)
        expect(page.locator("#map g.node")).to_have_count(4)
        shot(page, "service-map.png")

        # A click on an edge opens the live tap on that edge (with its recent entries).
        page.locator(f'{EDGE}[data-source="{A}"][data-destination="{B}"]').click()
        expect(page).to_have_url(re.compile(r"/\?workload=shop%2Fproductpage-v1&destination=workload%2Fbooks%2Freviews-v2$"))
        expect(page.locator("#live-view")).to_be_visible()
        expect(page.locator("#map-view")).to_be_hidden()
        expect(page.locator(ROWS)).to_have_count(15)
        assert set(page.locator(f"{ROWS} td:nth-child(3)").all_text_contents()) == {f"{A} → {B}"}

        # A click on a node opens the tap on it: a workload on either side, a service as destination.
        for node, query, count in [(C, r"workload=data%2Fratings-v1", 12), (DETAILS, r"destination=workload%2Fshop%2Fdetails", 12)]:
            page.fill("input[name=workload]", "")
            page.fill("input[name=destination]", "")
            page.click("#views button[data-view=map]")
            expect(page).to_have_url(re.compile(r"/\?view=map$"))
            wait_snapshot(page)
            chain(server, tag=node[:3])
            page.locator(f'#map g.node[data-node="{node}"]').click()
            expect(page).to_have_url(re.compile(rf"/\?{query}$"))
            expect(page.locator(ROWS)).to_have_count(count)
        wait_subscribers(server, 1)  # each switch closed the stream of the view it left
        assert errors == []
    finally:
        server.stop()


def test_map_layout_survives_a_cycle(browser):
    """A calls B, B calls A and itself: the layout ends (the edges that close a cycle do not count)
    and puts them in two columns."""
    server = Alstap()
    try:
        page, errors = open_page(browser, server, "?view=map")
        wait_subscribers(server, 1)
        wait_snapshot(page)
        stream(server, SOURCE, [call("out", f"ab-{i}", peer=("reviews-v2", "books")) for i in range(3)])
        stream(server, DESTINATION, [call("out", f"ba-{i}", cluster="productpage.shop", peer=("productpage-v1", "shop"))
                                     for i in range(2)]
               + [call("out", f"bb-{i}", cluster="reviews.books", peer=("reviews-v2", "books")) for i in range(2)])
        expect(page.locator(EDGE)).to_have_count(3)  # A → B, B → A, B → B
        expect(page.locator("#map g.node")).to_have_count(2)
        x = lambda node: float(page.locator(f'#map g.node[data-node="{node}"] rect').get_attribute("x"))
        assert x(A) != x(B)
        assert errors == []
    finally:
        server.stop()


NO_ELEMENTS_IN = "selector => [...document.querySelectorAll(selector)].every(e => e.children.length === 0)"


def test_hostile_names_are_text(browser):
    hostile = "<img src=x onerror=alert(1)>"
    server = Alstap()
    try:
        page, errors = open_page(browser, server, "?view=top")
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        wait_subscribers(server, 1)
        wait_snapshot(page)
        evil = als.identifier(workload=hostile, namespace="evil")
        send = lambda tag: stream(server, evil, [call("out", f"{tag}-{i}", cluster="ratings.data") for i in range(3)])
        send("t")
        expect(page.locator(TOP_ROWS)).to_have_count(1)
        expect(page.locator(TOP_ROWS).first.locator("td").first).to_have_text(f"{hostile}.evil → ratings.data")
        assert page.evaluate(NO_ELEMENTS_IN, "#top-table td")

        page.click("#views button[data-view=map]")
        wait_snapshot(page)
        send("m")
        node = page.locator("#map g.node.workload")
        expect(node.locator(".node-name")).to_have_text(hostile[:21] + "…")
        assert node.get_attribute("data-node") == f"{hostile}.evil"
        expect(page.locator(EDGE)).to_have_attribute("data-source", f"{hostile}.evil")
        assert page.evaluate(NO_ELEMENTS_IN, "#map text, #map title")
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        page.wait_for_timeout(300)  # an onerror handler would have run by now
        assert dialogs == [] and errors == []
    finally:
        server.stop()


def test_downloads_and_copy_as_curl(browser, tmp_path):
    """Download capture gives a file `alstap tap -r` reads; Download HAR gives the same HAR as
    `alstap tap -r FILE -o har` (one mapping, two implementations agreeing); Copy as curl quotes
    what it copies."""
    from test_capture import HAR_SCHEMA, tap
    import jsonschema
    server = Alstap()
    try:
        page, errors = open_page(browser, server)
        wait_subscribers(server, 1)
        entries = traffic(8)
        entries[7].request.request_headers["x-demo"] = "it's $(not run)"
        entries[7].request.request_headers["authorization"] = "Bearer secret"
        stream(server, SOURCE, entries)
        expect(page.locator(ROWS)).to_have_count(8)

        with page.expect_download() as download:
            page.click("#download-capture")
        capture = tmp_path / "ui.alstap"
        download.value.save_as(capture)
        assert download.value.suggested_filename.endswith(".alstap")
        assert capture.read_bytes().startswith(b"ALSTAPCAP\n")
        cli = tap("-r", str(capture), "-o", "har")
        assert cli.returncode == 0, cli.stderr
        cli_har = json.loads(cli.stdout)

        with page.expect_download() as download:
            page.click("#download-har")
        ui_har = json.loads(open(download.value.path()).read())
        assert download.value.suggested_filename.endswith(".har")
        jsonschema.validate(ui_har, HAR_SCHEMA)
        by_id = lambda har: sorted(har["log"]["entries"], key=lambda e: e["_alstap"]["requestId"])
        assert by_id(ui_har) == by_id(cli_har) and len(by_id(ui_har)) == 8, "the UI maps as the CLI does"

        page.locator(ROWS).first.click()  # req-7, the newest
        page.click("#copy-curl")
        expect(page.locator("#curl")).to_have_text(
            "curl -g -H 'x-demo: it'\\''s $(not run)' --url 'http://reviews:9080/reviews/7'")
        assert errors == []
    finally:
        server.stop()
