"""Figure 5: the chat widget. 200 live chats at once on one server process: how long a
visitor's message takes to show on the agent's open ticket stream, and the agent's answer to
show on the visitor's stream; and the widget's script as served, gzipped."""
import asyncio
import gzip
import json
import random
import re
import statistics
import subprocess
import sys
import time

from bench.common import (ROOT, CpuMeter, EventStream, Server, env_for, fresh_dir, log, login,
                          percentile, raise_nofile)

CHATS = 200
ROUNDS = 5  # messages each visitor sends; the agent answers each at once
SPACING = (1.0, 3.0)  # seconds between a visitor's messages, drawn uniformly
ARRIVAL_TIMEOUT = 10.0  # a message not on the other side by then counts as missed
SLUG = "chat"
ORIGIN = "https://shop.chat.example"  # the brand's site, as the widget's requests name it
AGENT = "agent@chat.example"
AGENT_PASSWORD = "bench-password-123"
OPEN_CONCURRENCY = 32
MARKER = re.compile(rb"probe-(\d+)-(\d+)-(q|a)")

SETUP = """
import sys
from pathlib import Path
from app import db
from app.config import Settings, ensure_secret_key
from app.services import agents, brands
db.connect(ensure_secret_key(Settings(data_dir=Path(sys.argv[1]))))
brands.create_brand("chat", {"name": "Chat Bench", "address": "support@chat.example",
                             "allowed_origins": sys.argv[2]})
agents.create_agent(sys.argv[3], "Bench Agent", sys.argv[4], "agent")
"""

# Every visitor comes from 127.0.0.1 here: the per-address limits are raised for the run.
SERVER_ENV = {"HELPDESK_CHAT_START_RATE_PER_IP": "100000/hour",
              "HELPDESK_CHAT_RATE_PER_IP": "1000000/minute"}


class Http:
    """One keep-alive HTTP/1.1 connection, requests one at a time; enough for JSON and forms."""

    IDLE_SECONDS = 4  # uvicorn closes a connection idle for 5 s

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.used_at = 0.0

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        if self.writer is not None and time.monotonic() - self.used_at > self.IDLE_SECONDS:
            self.close()
        self.used_at = time.monotonic()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return int(status_line.split()[1]), data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


class Arrivals:
    """When each probe marker was first seen on a kind of stream, and who waits for which."""

    def __init__(self):
        self.seen: dict = {}
        self.waiting: dict = {}

    def saw(self, marker: str, now: float) -> None:
        if marker not in self.seen:
            self.seen[marker] = now
            waiter = self.waiting.pop(marker, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)

    async def wait_for(self, marker: str, timeout: float) -> float | None:
        if marker in self.seen:
            return self.seen[marker]
        waiter = self.waiting[marker] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None


class Stream(EventStream):
    """A server-sent event stream; notes when each probe marker first arrives on it."""

    def __init__(self, arrivals: Arrivals, opened: asyncio.Future):
        super().__init__(opened)
        self.arrivals, self.tail = arrivals, b""

    def body_received(self, data: bytes, now: float) -> None:
        chunk = self.tail + data
        for match in MARKER.finditer(chunk):
            self.arrivals.saw(match.group(0).decode(), now)
        self.tail = chunk[-40:]


async def open_stream(port: int, path: str, headers: dict, arrivals: Arrivals,
                      limit) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    async with limit:
        opened = loop.create_future()
        transport, _ = await loop.create_connection(lambda: Stream(arrivals, opened),
                                                    "127.0.0.1", port)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream",
                 *(f"{k}: {v}" for k, v in headers.items())]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await asyncio.wait_for(opened, 15)
        return transport


async def run_chats(port: int, cookie: str, csrf: str) -> dict:
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)
    agent_seen = Arrivals()  # on the agent's ticket streams
    visitor_seen = Arrivals()  # on the visitors' widget streams
    transports, chats = [], []
    widget = {"Origin": ORIGIN, "Content-Type": "application/json"}

    async def start(n: int):
        async with limit:
            http = Http(port)
            body = json.dumps({"name": f"Visitor {n}", "email": f"visitor{n}@example.org",
                               "message": f"Hello, this is chat {n}.",
                               "page_url": f"{ORIGIN}/products/{n}"}).encode()
            status, data = await http.request("POST", f"/widget/{SLUG}/chats", body, widget)
            if status != 201:
                raise RuntimeError(f"starting a chat gave {status}: {data[:200]!r}")
            started = json.loads(data)
            ticket_id = int(started["reference"].lstrip("#"))
            chats.append((n, started["token"], ticket_id, http))

    await asyncio.gather(*(start(n) for n in range(CHATS)))
    for n, token, ticket_id, _ in chats:
        transports.append(await open_stream(
            port, f"/widget/{SLUG}/chats/stream?token={token}", {"Origin": ORIGIN},
            visitor_seen, limit))
        transports.append(await open_stream(
            port, f"/tickets/{ticket_id}/stream?live=1", {"Cookie": cookie}, agent_seen, limit))
    log(f"{len(chats)} chats started by POST /widget/{SLUG}/chats (Origin {ORIGIN}); "
        f"{len(transports)} streams open: each visitor's widget stream and the agent's ticket "
        "stream of each chat (as if the agent had every chat open).")

    rows, errors = [], []
    started = time.monotonic()

    async def converse(n: int, token: str, ticket_id: int, http: Http):
        agent_http = Http(port)
        rng = random.Random(n)
        await asyncio.sleep(rng.uniform(0, SPACING[1]))
        for k in range(ROUNDS):
            question, answer = f"probe-{n}-{k}-q", f"probe-{n}-{k}-a"
            sent = time.monotonic()
            status, data = await http.request(
                "POST", f"/widget/{SLUG}/chats/messages",
                json.dumps({"text": f"Question {question}", "client_id": f"c{n}-{k}"}).encode(),
                {**widget, "X-Visitor-Token": token})
            if status != 201:
                errors.append(f"visitor message {status}: {data[:120]!r}")
                continue
            on_agent = await agent_seen.wait_for(question, ARRIVAL_TIMEOUT)
            row = {"chat": n, "round": k, "at_s": round(sent - started, 2), "to_agent_ms": None,
                   "to_visitor_ms": None}
            rows.append(row)
            if on_agent is None:
                continue
            row["to_agent_ms"] = (on_agent - sent) * 1000
            replied = time.monotonic()
            form = f"csrftoken={csrf}&text=Answer+{answer}&then=".encode()
            status, data = await agent_http.request(
                "POST", f"/tickets/{ticket_id}/reply", form,
                {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded",
                 "HX-Request": "true"})
            if status != 200:
                errors.append(f"agent reply {status}: {data[:120]!r}")
                continue
            on_visitor = await visitor_seen.wait_for(answer, ARRIVAL_TIMEOUT)
            if on_visitor is not None:
                row["to_visitor_ms"] = (on_visitor - replied) * 1000
                row["round_trip_ms"] = (on_visitor - sent) * 1000
            await asyncio.sleep(rng.uniform(*SPACING))
        agent_http.close()

    await asyncio.gather(*(converse(*chat) for chat in chats))
    for transport in transports:
        transport.close()
    for *_, http in chats:
        http.close()
    return {"rows": rows, "errors": errors}


def _widget_bytes(port: int) -> tuple[int, int]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/widget.js", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        body = response.read()
        encoding = response.getheader("Content-Encoding", "")
    finally:
        conn.close()
    raw = gzip.decompress(body) if encoding == "gzip" else body
    return len(gzip.compress(raw, 9)) if encoding != "gzip" else len(body), len(raw)


def run(results: dict) -> None:
    log(f"== 5. Chat: {CHATS} live chats at once, {ROUNDS} messages each, answered at once ==")
    data_dir = fresh_dir("chat") / "data"
    subprocess.run([sys.executable, "-c", SETUP, str(data_dir), ORIGIN, AGENT, AGENT_PASSWORD],
                   check=True, cwd=ROOT, env=env_for(data_dir))
    with Server.helpdesk_serve(data_dir, SERVER_ENV, name="chat-server") as server:
        gzipped, raw = _widget_bytes(server.port)
        log(f"GET /widget.js with Accept-Encoding: gzip: {gzipped:,} bytes gzipped "
            f"({raw:,} bytes of JavaScript).")
        results["widget_js_bytes"] = gzipped
        cookie = login(server.port, AGENT, AGENT_PASSWORD)  # the agent is online from here
        csrf = re.search(r"csrftoken=([^;]+)", cookie).group(1)
        log(f"Served by `helpdesk serve` in the default configuration but for the per-address "
            f"limits ({', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())}): every visitor "
            "comes from 127.0.0.1 here. One agent logged in. Client: one asyncio process on "
            "the same 2 cores, nothing subtracted for it.")
        raise_nofile()
        meter = CpuMeter(server.pid).start()
        started = time.monotonic()
        outcome = asyncio.run(run_chats(server.port, cookie, csrf))
        meter.stop()
        seconds = time.monotonic() - started
    rows = outcome["rows"]
    to_agent = [r["to_agent_ms"] for r in rows if r["to_agent_ms"] is not None]
    to_visitor = [r["to_visitor_ms"] for r in rows if r["to_visitor_ms"] is not None]
    round_trips = [r["round_trip_ms"] for r in rows if "round_trip_ms" in r]
    expected = CHATS * ROUNDS
    missed = expected - len(round_trips)
    log(f"{len(rows):,} of {expected:,} visitor messages sent in {seconds:.1f}s; errors: "
        f"{len(outcome['errors'])}{', e.g. ' + outcome['errors'][0] if outcome['errors'] else ''}.")
    if not round_trips:
        raise RuntimeError("no message made the round trip")
    log("Visitor's POST to the message on the agent's ticket stream: p50 "
        f"{statistics.median(to_agent):.1f} ms, p99 {percentile(to_agent, 99):.1f} ms. "
        "Agent's reply POST to the answer on the visitor's stream: p50 "
        f"{statistics.median(to_visitor):.1f} ms, p99 {percentile(to_visitor, 99):.1f} ms. "
        f"Round trip (both, without the agent's thinking): p50 "
        f"{statistics.median(round_trips):.1f} ms, p99 {percentile(round_trips, 99):.1f} ms; "
        f"missed: {missed}.")
    slowest = sorted((r for r in rows if "round_trip_ms" in r), key=lambda r: -r["round_trip_ms"])
    log("Slowest: " + "; ".join(
        f"chat {r['chat']} message {r['round']} sent {r['at_s']} s into the run: "
        f"{r['to_agent_ms']:.0f} + {r['to_visitor_ms']:.0f} ms" for r in slowest[:5]))
    log(meter.describe(per=len(round_trips), unit="round trip"))
    results["chat_roundtrip_p50_ms"] = round(statistics.median(round_trips), 1)
    results["chat_roundtrip_p99_ms"] = round(percentile(round_trips, 99), 1)
    results["chat_missed"] = missed
