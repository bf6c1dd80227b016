"""The web UI in a real browser: Debian's headless Chromium driven by playwright, against a live
alstap fed by a real gRPC client. Rows appear, a filter narrows them (and lands in the URL), a bad
filter shows the server's message, a click opens the details with a waterfall, a pair shows both
sides, and a bearer token works; `format=sse` feeds a real EventSource. Screenshots go to $ALSTAP_SCREENSHOTS (default
.build/screenshots); docs/ holds copies."""
import json
import os
import re
import subprocess
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

import als
from conftest import ROOT, Alstap, require_tool, wait_subscribers
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


def open_page(browser, server, query=""):
    page = browser.new_page(viewport={"width": 1500, "height": 820})
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
