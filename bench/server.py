"""The helpdesk as `helpdesk serve` runs it, with three bench-only routes in front of it.

    python -m bench.server --port P     (HELPDESK_* settings from the environment, as for serve)

The app is app.main.create_app(settings) from the same Settings (app.config.from_env +
ensure_secret_key), served by app.cli.run_server, as `helpdesk serve` serves it. In front of it,
in the same process and event loop:

  /bench/reference  the floor cost of a queue page: the same 50 rows of the default queue read
                    with plain sqlite3 and rendered by a minimal Jinja template, no middleware
  /bench/static     a PlainTextResponse: the floor cost of any answer from this server
  /bench/form       a bare validate-and-insert form: the contact form's fields parsed by
                    Starlette, checked for presence, one INSERT with plain sqlite3 (its own
                    file, WAL, synchronous=NORMAL, a transaction each) and a line of HTML
                    with the new row's id (the floor cost of any form that stores a post)

Everything else (lifespan included) goes to the app unchanged.
"""
import argparse
import logging
import sqlite3
from datetime import datetime

import jinja2
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import request_response

from app.config import ensure_secret_key, from_env

REFERENCE_SQL = """
SELECT t.id, t.subject, t.status, t.channel, t.last_activity_at, t.waiting_since,
       c.name, c.email, b.name, a.name
FROM ticket t
JOIN customer c ON c.id = t.customer_id
JOIN brand b ON b.id = t.brand_id
LEFT JOIN agent a ON a.id = t.assignee_id
WHERE t.is_active = 1
ORDER BY t.last_activity_at DESC, t.id DESC
LIMIT 50
"""

BARE_FORM_SCHEMA = """CREATE TABLE IF NOT EXISTS submission (
    id INTEGER PRIMARY KEY, name TEXT, email TEXT, subject TEXT, message TEXT, created_at TEXT)"""
BARE_FORM_INSERT = """INSERT INTO submission (name, email, subject, message, created_at)
VALUES (?, ?, ?, ?, ?)"""

REFERENCE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reference</title></head><body>
<ul>
{% for id, subject, status, channel, activity, waiting, customer, email, brand, assignee in rows %}
<li id="ticket-{{ id }}" class="row status-{{ status }}"><a href="/tickets/{{ id }}">#{{ id }} {{ subject }}</a>
<span>{{ customer or email }}</span><span>{{ channel }} · {{ brand }}</span><span>{{ status }}</span>
<span>{{ assignee or "—" }}</span><span>{{ activity }}</span><span>{{ waiting or "" }}</span></li>
{% endfor %}
</ul></body></html>
"""


class BenchApp:
    """Dispatches the two bench paths; passes every other scope to the helpdesk app."""

    def __init__(self, app, db_path):
        self.app = app
        self.connection = sqlite3.connect(str(db_path), check_same_thread=False)
        self.forms = sqlite3.connect(str(db_path.parent / "bench-form.db"), isolation_level=None,
                                     check_same_thread=False)
        self.forms.execute("PRAGMA journal_mode=wal")
        self.forms.execute("PRAGMA synchronous=normal")
        self.forms.execute(BARE_FORM_SCHEMA)
        self.template = jinja2.Environment(autoescape=True).from_string(REFERENCE_TEMPLATE)
        self.routes = {
            "/bench/reference": request_response(self.reference),
            "/bench/static": request_response(self.static),
            "/bench/form": request_response(self.bare_form),
        }

    async def reference(self, request):
        rows = self.connection.execute(REFERENCE_SQL).fetchall()
        return HTMLResponse(self.template.render(rows=rows))

    async def static(self, request):
        return PlainTextResponse("ok")

    async def bare_form(self, request):
        form = await request.form()
        values = [form.get(name, "").strip() for name in ("name", "email", "subject", "message")]
        if not values[0] or "@" not in values[1] or not values[3]:
            return HTMLResponse("<p>Please give your name, email and message.</p>", 400)
        self.forms.execute("BEGIN IMMEDIATE")
        row_id = self.forms.execute(BARE_FORM_INSERT, (*values, datetime.utcnow())).lastrowid
        self.forms.execute("COMMIT")
        return HTMLResponse(f"<p>Thank you. Your reference is #{row_id}.</p>")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None:
                return await route(scope, receive, send)
        return await self.app(scope, receive, send)


def main() -> None:
    from app.cli import run_server
    from app.main import create_app

    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # As app.cli.main and cmd_serve do.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = ensure_secret_key(from_env())
    app = create_app(settings)
    bench_app = BenchApp(app, settings.data_dir / "helpdesk.db")
    run_server(bench_app, settings, args.host, args.port)


if __name__ == "__main__":
    main()
