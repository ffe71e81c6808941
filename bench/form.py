"""Figure 2: contact-form submissions turned into tickets per second, sustained, and none lost."""
import re
import sqlite3
import sys
import time
from urllib.parse import urlencode

from bench.common import BENCH, CpuMeter, Server, fresh_dir, helpdesk, log, request, wrk

SECONDS = 20
REFERENCE_SECONDS = 10
CONNECTIONS = 16
SLUG = "shop"
# The rate limits a visitor meets are raised so that one load generator on one address is not
# refused; everything else is the default configuration.
RAISED_LIMITS = {"HELPDESK_FORM_RATE_PER_ADDRESS": "1000000/hour",
                 "HELPDESK_FORM_RATE_PER_IP": "100000000/minute"}


def _counts(db_path) -> dict:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        one = lambda sql: connection.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "form_tickets": one("SELECT COUNT(*) FROM ticket WHERE channel = 'form'"),
            "max_ticket_id": one("SELECT COALESCE(MAX(id), 0) FROM ticket"),
            "form_tally": one("SELECT COALESCE(SUM(count), 0) FROM ticket_tally "
                              "WHERE channel = 'form'"),
            "form_refs": one("SELECT COUNT(*) FROM message WHERE channel_ref LIKE 'form:%'"),
            "acks": one("SELECT COUNT(*) FROM message WHERE is_auto = 1"),
            "acks_done": one("SELECT COUNT(*) FROM message WHERE is_auto = 1 "
                             "AND state IN ('sent', 'failed')"),
            "customers": one("SELECT COUNT(*) FROM customer"),
            "events": one("SELECT COUNT(*) FROM event"),
        }
    finally:
        connection.close()


def run(results: dict) -> None:
    log("== 2. Contact form: submissions to tickets, sustained ==")
    data_dir = fresh_dir("form") / "data"
    helpdesk(data_dir, "brand", "add", SLUG, "--name", "Shop", "--address", "support@shop.example")
    db_path = data_dir / "helpdesk.db"
    log(f"Fresh database {db_path}; brand `{SLUG}` added by `helpdesk brand add` (no SMTP server: "
        "each ticket's acknowledgement is queued, and the embedded worker marks it failed).")
    log(f"Served by `python -m bench.server` (the app as `helpdesk serve` serves it, embedded "
        f"worker included, and /bench/form: a bare validate-and-insert form) with the rate "
        f"limits raised so that one load generator is not refused: "
        f"{' '.join(f'{k}={v}' for k, v in RAISED_LIMITS.items())}.")
    with Server(data_dir, [sys.executable, "-m", "bench.server"], RAISED_LIMITS,
                name="form-server") as server:
        body = urlencode({"name": "Check", "email": "check@example.org", "subject": "Check",
                          "message": "Does the form work?", "website": "",
                          "submission_id": "0" * 32})
        status, _, page = request(server.port, "POST", f"/contact/{SLUG}", body,
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200 or not re.search(r'class="ticket-ref">#\d+<', page):
            raise RuntimeError(f"a form submission gave {status}, not the thank-you page")
        before = _counts(db_path)
        url = f"http://127.0.0.1:{server.port}"
        meter = CpuMeter(server.pid).start()
        figures, output = wrk(url, seconds=SECONDS, connections=CONNECTIONS,
                              script=BENCH / "form.lua", script_args=[f"/contact/{SLUG}"])
        meter.stop()
        time.sleep(1.0)  # answers still on their way when wrk stopped
        after = _counts(db_path)
        time.sleep(4.0)
        later = _counts(db_path)
        # The floor on this machine now: the same posts to a form that only checks and stores.
        bare, _ = wrk(url, seconds=REFERENCE_SECONDS, connections=CONNECTIONS,
                      script=BENCH / "form.lua", script_args=["/bench/form"])
    accepted = int(re.search(r"BENCH_ACCEPTED (\d+)", output).group(1))
    refused = int(re.search(r"BENCH_REFUSED (\d+)", output).group(1))
    last_refusal = int(re.search(r"BENCH_LAST_REFUSAL (\d+)", output).group(1))
    created = after["form_tickets"] - before["form_tickets"]
    log(f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s -s bench/form.lua {url} -- /contact/{SLUG}: "
        f"{figures['requests']:,} requests in {figures['duration_s']:.2f}s, "
        f"{figures['requests_per_s']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms; {accepted:,} answered 200 (thank-you page), "
        f"{refused} refused{f' (last status {last_refusal})' if refused else ''}, "
        f"{figures['socket_errors']} socket errors.")
    log(f"Tickets with channel form created during the run: {created:,}; tally for form "
        f"{after['form_tally']:,} = tickets {after['form_tickets']:,}: "
        f"{'yes' if after['form_tally'] == after['form_tickets'] else 'NO'}; distinct "
        f"submission ids stored: {after['form_refs'] - before['form_refs']:,}; new customers "
        f"{after['customers'] - before['customers']:,}; events written "
        f"{after['events'] - before['events']:,}.")
    backlog_end, backlog_later = after["acks"] - after["acks_done"], later["acks"] - later["acks_done"]
    log(f"Acknowledgements handled by the embedded worker during the run: "
        f"{after['acks_done'] - before['acks_done']:,} of {after['acks'] - before['acks']:,}; "
        f"still waiting when wrk stopped +1 s: {backlog_end:,}, 4 s later: {backlog_later:,}.")
    log(f"During the run, {meter.describe(created, 'ticket')}.")
    if created > accepted:
        log(f"({created - accepted} tickets were made from requests whose answer wrk did not "
            "read before it stopped: not lost.)")
    log(f"wrk -t2 -c{CONNECTIONS} -d{REFERENCE_SECONDS}s -s bench/form.lua {url} -- /bench/form "
        f"(bare validate-and-insert): {bare['requests_per_s']:.0f} req/s, p99 "
        f"{bare['p99_ms']:.1f} ms, {bare['non_2xx_3xx']} non-2xx; the helpdesk's form made "
        f"{created / figures['duration_s'] / bare['requests_per_s']:.0%} of that rate in tickets.")
    results["form_tickets_per_s"] = round(created / figures["duration_s"], 1)
    results["form_reference_per_s"] = round(bare["requests_per_s"], 1)
    results["form_lost"] = max(0, accepted - created)
    results["form_accepted"] = accepted
    results["form_refused"] = refused
    results["form_p99_ms"] = round(figures["p99_ms"], 1)
    results["form_ack_backlog"] = backlog_end
