"""Figure 3: 1,000 open queue streams: server memory per stream, and the time from a contact
form POST to the new ticket's row arriving on every stream."""
import asyncio
import multiprocessing
import re
import secrets
import socket
import statistics
import time
from urllib.parse import urlencode

from bench import dataset
from bench.common import (VAR, CpuMeter, EventStream, Server, fresh_dir, log, login, percentile,
                          raise_nofile, request)

STREAMS = 1000
PROCESSES = 2  # the client's share of the 2 cores: 500 sockets each
TICKETS = 20
SPACING = 0.5  # seconds between the tickets
OPEN_CONCURRENCY = 64
# A ticket's row in a pushed fragment: <li id="ticket-N" ...> or the delete of "#ticket-N".
ROW = re.compile(rb'ticket-(\d+)"')
TICKET_REF = re.compile(r'class="ticket-ref">#(\d+)<')


# The client: raw asyncio sockets, just enough HTTP and SSE to see which ticket rows arrive.

class StreamProtocol(EventStream):
    """A queue stream; notes when each ticket's row first arrives on it."""

    def __init__(self, opened: asyncio.Future):
        super().__init__(opened)
        self.tail = b""
        self.arrivals: dict[int, float] = {}  # ticket id -> time.monotonic() of its first row

    def body_received(self, data: bytes, now: float) -> None:
        chunk = self.tail + data
        for match in ROW.finditer(chunk):
            self.arrivals.setdefault(int(match.group(1)), now)
        self.tail = chunk[-48:]


async def _client(port: int, cookie: str, count: int, pipe) -> None:
    loop = asyncio.get_running_loop()
    request_bytes = (f"GET /events/queue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n").encode()
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)
    protocols, errors = [], []

    async def open_one():
        async with limit:
            opened = loop.create_future()
            try:
                transport, protocol = await asyncio.wait_for(loop.create_connection(
                    lambda: StreamProtocol(opened), "127.0.0.1", port), 10)
                transport.write(request_bytes)
                await asyncio.wait_for(opened, 10)
                protocols.append(protocol)
            except Exception as exc:  # counted and reported, never retried
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(open_one() for _ in range(count)))
    pipe.send(("open", len(protocols), errors[:3], len(errors), time.process_time()))
    await loop.run_in_executor(None, pipe.recv)  # "stop": the tickets have been made
    pipe.send(("arrivals", [p.arrivals for p in protocols], sum(p.closed for p in protocols),
               time.process_time()))
    for protocol in protocols:
        if protocol.transport:
            protocol.transport.close()


def client_process(port: int, cookie: str, count: int, pipe) -> None:
    raise_nofile()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_client(port, cookie, count, pipe))


def _warm_up_stream(port: int, cookie: str) -> None:
    """One stream opened and closed, so that what is loaded on first use is not counted."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /events/queue HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
                  .encode())
        s.recv(4096)


def _post_ticket(conn, n: int) -> tuple[float, int]:
    body = urlencode({"name": f"Stream tester {n}", "email": f"fanout{n}.{secrets.token_hex(4)}@example.org",
                      "subject": f"Fan-out {n}", "message": "Does this reach every queue?",
                      "website": "", "submission_id": secrets.token_hex(16)})
    started = time.monotonic()
    conn.request("POST", f"/contact/{dataset.BRANDS[0][0]}", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    page = response.read().decode("utf-8", "replace")
    match = TICKET_REF.search(page)
    if response.status != 200 or not match:
        raise RuntimeError(f"the contact form answered {response.status}")
    return started, int(match.group(1))


def run(results: dict) -> None:
    import http.client

    log(f"== 3. Live queue: {STREAMS:,} open streams, {TICKETS} new tickets ==")
    data_dir = VAR / "queue" / "data"
    if not (data_dir / "helpdesk.db").exists():  # run alone: build the big database
        data_dir = fresh_dir("queue") / "data"
        dataset.build(data_dir)
    log(f"Database {data_dir / 'helpdesk.db'} (the 100,000 tickets of benchmark 1); served by "
        "`helpdesk serve` in the default configuration, open files limit raised to allow "
        f"{STREAMS:,} streams. Clients: {PROCESSES} processes of raw asyncio (uvloop) sockets, "
        f"{STREAMS // PROCESSES} streams each, on the same 2 cores as the server; nothing "
        "subtracted for them.")
    with Server.helpdesk_serve(data_dir, name="sse-server") as server:
        cookie = login(server.port, dataset.BENCH_AGENT)
        status, _, _ = request(server.port, "GET", "/", headers={"Cookie": cookie})
        if status != 200:
            raise RuntimeError(f"the queue page gave {status}")
        _warm_up_stream(server.port, cookie)
        time.sleep(1.0)
        rss_before = server.rss_kib()

        context = multiprocessing.get_context("spawn")
        pipes, processes = [], []
        try:
            for n in range(PROCESSES):
                ours, theirs = context.Pipe()
                count = STREAMS // PROCESSES + (1 if n < STREAMS % PROCESSES else 0)
                process = context.Process(target=client_process,
                                          args=(server.port, cookie, count, theirs), daemon=True)
                process.start()
                pipes.append(ours)
                processes.append(process)
            opened, errors, client_cpu_open, client_cpu_end = 0, [], 0.0, 0.0
            open_started = time.monotonic()
            for pipe in pipes:
                if not pipe.poll(60):
                    raise RuntimeError("the stream clients did not open their streams in 60 s")
                _, count, sample, failures, client_cpu = pipe.recv()
                client_cpu_open += client_cpu
                opened += count
                errors += sample
            log(f"Opened {opened:,} streams in {time.monotonic() - open_started:.1f}s"
                + (f"; failures, e.g. {errors}" if errors else "."))
            time.sleep(2.0)
            rss_after = server.rss_kib()
            per_stream = (rss_after - rss_before) / max(1, opened)
            log(f"Server RSS (VmRSS of pid {server.pid}): {rss_before:,} KiB before, "
                f"{rss_after:,} KiB with the streams open: {per_stream:.1f} KiB per stream.")

            posts, round_trips = [], []
            meter = CpuMeter(server.pid).start()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                for n in range(TICKETS):
                    posts.append(_post_ticket(conn, n + 1))
                    round_trips.append((time.monotonic() - posts[-1][0]) * 1000)
                    time.sleep(SPACING)
            finally:
                conn.close()
            time.sleep(2.0)  # the last ticket's rows
            meter.stop()
            rss_end = server.rss_kib()
            for pipe in pipes:
                pipe.send("stop")
            arrivals, closed = [], 0
            for pipe in pipes:
                if not pipe.poll(60):
                    raise RuntimeError("the stream clients did not report in 60 s")
                _, stream_arrivals, stream_closed, client_cpu = pipe.recv()
                client_cpu_end += client_cpu
                arrivals += stream_arrivals
                closed += stream_closed
        finally:
            for process in processes:
                process.join(15)
                if process.is_alive():
                    process.terminate()
                    process.join(5)

    delays, missed, per_ticket, first = [], 0, [], []
    for started, ticket_id in posts:
        ticket_delays = []
        for stream in arrivals:
            at = stream.get(ticket_id)
            if at is None:
                missed += 1
            else:
                ticket_delays.append((at - started) * 1000)
        delays += ticket_delays
        if ticket_delays:
            per_ticket.append(max(ticket_delays))
            first.append(min(ticket_delays))
    if not delays:
        raise RuntimeError("no ticket row reached any stream")
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    log(f"{len(posts)} tickets posted {SPACING}s apart; rows received on "
        f"{len(delays):,} of {len(posts) * len(arrivals):,} (ticket, stream) pairs, {missed} "
        f"missed, {closed} streams closed by the server. POST to arrival: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(delays):.1f} ms. Per ticket (medians): POST answered "
        f"after {statistics.median(round_trips):.1f} ms, first stream reached after "
        f"{statistics.median(first):.1f} ms, last of the {len(arrivals):,} streams after "
        f"{statistics.median(per_ticket):.1f} ms.")
    log(f"From the first POST to 2 s after the last: {meter.describe(len(posts), 'ticket')}; "
        f"the stream clients used {client_cpu_end - client_cpu_open:.1f} CPU-s. Server RSS "
        f"after the tickets: {rss_end:,} KiB.")
    results["sse_clients"] = len(arrivals)
    results["sse_rss_kib_per_client"] = round(per_stream, 1)
    results["sse_fanout_p50_ms"] = round(p50, 1)
    results["sse_fanout_p99_ms"] = round(p99, 1)
    results["sse_missed"] = missed
