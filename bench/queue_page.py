"""Figure 1: the queue page over 100,000 tickets, against a bare reference page from the same
server process, and the query plans of the queue and counter queries."""
import logging
import re
import subprocess
import sys

from bench import dataset
from bench.common import ROOT, CpuMeter, Server, fresh_dir, log, login, request, wrk

SECONDS = 10
CONNECTIONS = 16
ROW = re.compile(r'<li id="ticket-\d+"')


def _captured_sql(run) -> list[tuple[str, tuple]]:
    """The statements peewee runs for run(): peewee logs each (sql, params) at DEBUG."""
    captured = []

    class Capture(logging.Handler):
        def emit(self, record):
            if isinstance(record.msg, tuple) and len(record.msg) == 2:
                captured.append((record.msg[0], tuple(record.msg[1] or ())))

    logger = logging.getLogger("peewee")
    handler, old_level = Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        run()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return captured


def _plan(database, sql, params) -> list[str]:
    return [row[3] for row in database.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params)]


def _ticket_scan(sql: str, plan: list[str]) -> str:
    """How the plan reads the ticket table when it does not SEARCH it by an index: '' (it
    searches), 'full table scan', 'scans an index in order' (stops at the LIMIT only when no
    other condition filters rows), or 'sorts all matching rows' (a temporary B-tree)."""
    names = {"ticket", *re.findall(r'"ticket" AS "(\w+)"', sql)}
    verdict = ""
    for line in plan:
        match = re.match(r"SCAN (\w+)( USING (?:COVERING )?INDEX)?", line)
        if match and match.group(1) in names:
            verdict = "scans an index in order" if match.group(2) else "full table scan"
    if verdict and any("TEMP B-TREE" in line for line in plan):
        verdict += ", sorts all matching rows"
    return verdict


def check_plans(data_dir, agent_id: int) -> int:
    """EXPLAIN QUERY PLAN of the statements the queue page runs for the default filter (and, for
    information, for other filters); returns 1 when the default queue or counter query reads
    the ticket table other than by an index SEARCH."""
    from app import db
    from app.config import ensure_secret_key, from_env
    from app.events import latest_event_id
    from app.models import database
    from app.services import directory, queue

    settings = ensure_secret_key(from_env({"HELPDESK_DATA_DIR": str(data_dir)}))
    db.connect(settings)
    brand_ids = directory.brand_ids_by_slug()
    scans = 0
    log("EXPLAIN QUERY PLAN of what the queue page runs (captured from peewee's query log):")
    variants = [("default (active, everyone)", {}), ("mine", {"scope": "mine"}),
                ("unassigned", {"scope": "unassigned"}), ("channel=form", {"channel": "form"}),
                ("brand=books", {"brand": "books"}), ("status=closed", {"status": "closed"}),
                ("status=all", {"status": "all"})]
    first_page = queue.read_page(queue.QueueFilter(), agent_id, brand_ids)
    variants.append(("second page (before=cursor)", {"before": first_page.next_cursor}))
    for label, params in variants:
        f = queue.QueueFilter.from_params(params)
        default = not params
        # Uncached: list_tickets and counters keep their results until the event log grows,
        # which they read first (the version query).
        for what, run in (("version query", latest_event_id),
                          ("queue query", lambda: queue.read_page(f, agent_id, brand_ids)),
                          ("counter query", lambda: queue.count_tallies(f, agent_id, brand_ids))):
            if what != "queue query" and not default:
                continue  # the same statement whatever the filter
            for sql, sql_params in _captured_sql(run):
                plan = _plan(database, sql, sql_params)
                scan = _ticket_scan(sql, plan)
                if default and scan:
                    scans = 1
                log(f"  [{label}] {what}{f'  <-- ticket table: {scan}' if scan else ''}")
                log(f"    {sql[:160]}{'...' if len(sql) > 160 else ''}")
                for line in plan:
                    log(f"      {line}")
    database.close()
    return int(scans)


def page_breakdown(data_dir, agent_id: int, runs: int = 30) -> None:
    """Where a queue page's time goes: its parts timed in this process (no HTTP, no middleware),
    median of some runs, with the app's own functions and templates."""
    import statistics
    import time

    from app import db
    from app.config import ensure_secret_key, from_env
    from app.models import Agent, TicketTally, database
    from app.services import directory, queue
    from markupsafe import Markup

    from app.templating import env

    db.connect(ensure_secret_key(from_env({"HELPDESK_DATA_DIR": str(data_dir)})))
    f = queue.QueueFilter()
    brand_ids = directory.brand_ids_by_slug()
    page = queue.read_page(f, agent_id, brand_ids)
    rows = env.get_template("partials/_ticket_row.html")
    filters = env.get_template("partials/_queue_filters.html")
    filters_context = {"filter": f, "counts": queue.count_tallies(f, agent_id, brand_ids),
                       "brands": directory.brands(), "forms": directory.forms(), "form_fields": []}
    context = {"filter": f, "page": page, "rows_html": Markup(rows.render(rows=page.tickets)),
               "filters_html": Markup(filters.render(filters_context)),
               "stream_url": "/events/queue?after=1",
               "agent": Agent.get_by_id(agent_id), "csrf_token": "x" * 40}
    page_template = env.get_template("pages/queue.html")
    def kept_parts():
        version = queue.version()
        return (queue.list_tickets(f, agent_id, brand_ids, version),
                queue.counters(f, agent_id, brand_ids, version))

    tally_rows = TicketTally.select().where(TicketTally.count != 0).count()
    parts = [
        ("current_agent (session's agent, from the directory cache)",
         lambda: directory.active_agent(agent_id)),
        ("brands (directory cache)", lambda: (directory.brand_ids_by_slug(), directory.brands())),
        ("read_page: 51 rows as named tuples (one query)",
         lambda: queue.read_page(f, agent_id, brand_ids)),
        (f"count_tallies over {tally_rows} tally rows",
         lambda: queue.count_tallies(f, agent_id, brand_ids)),
        ("version, list_tickets + counters kept (the event log has not grown)", kept_parts),
        ("rendering the 50 rows (partials/_ticket_row.html; kept with the page)",
         lambda: rows.render(rows=page.tickets)),
        ("rendering the filters bar (partials/_queue_filters.html; kept with the page)",
         lambda: filters.render(filters_context)),
        ("rendering pages/queue.html around both", lambda: page_template.render(context)),
    ]
    log(f"Where a queue page's time goes (its parts run in the bench process, no HTTP; median of "
        f"{runs}):")
    for label, part in parts:
        part()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            part()
            times.append(time.perf_counter() - started)
        log(f"  {label:<55} {statistics.median(times) * 1000:6.2f} ms")
    database.close()


def _check_page(port, path, cookie, want_rows=50):
    status, _, body = request(port, "GET", path, headers={"Cookie": cookie} if cookie else {})
    rows = len(ROW.findall(body))
    if status != 200 or rows != want_rows:
        raise RuntimeError(f"GET {path} gave {status} with {rows} rows, not 200 with {want_rows}")
    return len(body)


def run(results: dict) -> None:
    log("== 1. Queue page over 100,000 tickets ==")
    data_dir = fresh_dir("queue") / "data"
    info = dataset.build(data_dir)
    log(f"Built {data_dir} in {info['seconds']}s: {info['tickets']:,} tickets "
        f"({info['active']:,} active), {info['messages']:,} messages, {info['customers']:,} "
        f"customers, {info['events']:,} events, {info['brands']} brands, {info['agents']} agents, "
        f"{info['tally_rows']} ticket_tally rows (tallies checked against the tickets).")
    results["queue_query_plan_scans_table"] = check_plans(data_dir, info["bench_agent_id"])
    # In a fresh process: this one holds what building the data left, and its garbage
    # collector would slow the parts down.
    subprocess.run([sys.executable, "-m", "bench.queue_page", "breakdown", str(data_dir),
                    str(info["bench_agent_id"])], check=True, timeout=120, cwd=ROOT)

    log("Serving with `python -m bench.server`: app.main.create_app(from_env() + "
        "ensure_secret_key) behind a dispatcher that adds /bench/reference and /bench/static, "
        "run by uvicorn with cmd_serve's options (log_level=info, so access logs are on; "
        "proxy_headers; uvloop + httptools), one process.")
    with Server(data_dir, [sys.executable, "-m", "bench.server"], name="queue-server") as server:
        cookie = login(server.port, dataset.BENCH_AGENT)
        base = f"http://127.0.0.1:{server.port}"
        size = _check_page(server.port, "/", cookie)
        ref_size = _check_page(server.port, "/bench/reference", None)
        log(f"GET / as {dataset.BENCH_AGENT}: 200, 50 rows, {size:,} bytes; "
            f"/bench/reference: 200, 50 rows, {ref_size:,} bytes.")
        wrk(base + "/", seconds=3, connections=CONNECTIONS, headers={"Cookie": cookie})  # warm-up
        runs = [("queue_page", base + "/", {"Cookie": cookie}),
                ("reference_page", base + "/bench/reference", {}),
                ("static", base + "/bench/static", {})]
        for name, url, headers in runs:
            meter = CpuMeter(server.pid).start()
            figures, output = wrk(url, seconds=SECONDS, connections=CONNECTIONS, headers=headers)
            meter.stop()
            log(f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s --latency {url}: "
                f"{figures['requests_per_s']:.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
                f"p99 {figures['p99_ms']:.2f} ms, {figures['requests']:,} requests, "
                f"{figures['non_2xx_3xx']} non-2xx/3xx, {figures['socket_errors']} socket errors; "
                f"{meter.describe(figures['requests'])}")
            if figures["non_2xx_3xx"]:
                log(output)
                raise RuntimeError(f"{name}: answers other than 2xx/3xx, the figures would lie")
            if figures["socket_errors"]:
                log(f"   (wrk counted socket errors, timeouts after 10 s included:\n{output})")
            results[f"{name}_rps"] = round(figures["requests_per_s"], 1)
            results[f"{name}_p50_ms"] = round(figures["p50_ms"], 2)
            results[f"{name}_p99_ms"] = round(figures["p99_ms"], 2)
        _check_page(server.port, "/", cookie)  # still logged in: no redirects were measured


if __name__ == "__main__":  # python -m bench.queue_page breakdown DATA_DIR AGENT_ID
    if len(sys.argv) == 4 and sys.argv[1] == "breakdown":
        page_breakdown(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m bench.queue_page breakdown DATA_DIR AGENT_ID")
