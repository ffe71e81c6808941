"""The big bench database: 100,000 tickets and 300,000 messages, inserted in bulk through the
app's own models, with the invariants the app keeps (ticket_tally, is_active, customers and
their identities, events)."""
import random
import time
from collections import Counter
from datetime import timedelta

from bench.common import PASSWORD, helpdesk

TICKETS = 100_000
MESSAGES = 300_000  # 1 to 5 per ticket, 3 on average
CUSTOMERS = 40_000
BRANDS = [("acme", "Acme Outdoor", "support@acme.example"),
          ("books", "Bright Books", "hello@brightbooks.example"),
          ("tea", "Tea Corner", "care@teacorner.example")]
OTHER_AGENTS = 7  # besides the bench agent: 8 in all
BENCH_AGENT = "bench@example.com"
# (status, weight): a third of the tickets are active (new, open or pending).
STATUS_WEIGHTS = [("new", 8), ("open", 15), ("pending", 10), ("resolved", 17), ("closed", 45),
                  ("spam", 5)]
CHANNEL_WEIGHTS = [("email", 55), ("form", 30), ("chat", 15)]
WORDS = ("order parcel refund invoice broken missing size colour delivery address account "
         "password tracking return label gift voucher discount late damaged wrong").split()
MAX_VARIABLES = 30_000
TEXTS = 2_000  # distinct subjects and bodies, picked at random  # SQLite allows 32,766 bound parameters per statement


def _insert(model, fields: list, rows: list) -> None:
    """INSERT through the model: peewee writes the statement and converts the values (its
    db_value), SQLite runs it for every row (executemany: peewee's SQL generation for 400,000
    rows would take most of a minute). Fields left out get the model's defaults, as with
    insert_many."""
    from app.models import database

    given = {f.name for f in fields}  # by name: a peewee field's == builds an expression
    defaults = {f: (d() if callable(d) else d) for f, d in model._meta.defaults.items()
                if f.name not in given and not f.primary_key}
    fields = [*fields, *defaults]
    tail = tuple(defaults.values())
    sql, params = model.insert_many([tuple(rows[0]) + tail], fields=fields).sql()
    if len(params) != len(fields):
        raise RuntimeError(f"unexpected INSERT for {model.__name__}: {sql}")
    convert = [field.db_value for field in fields]
    database.cursor().executemany(
        sql, ([c(v) for c, v in zip(convert, tuple(row) + tail)] for row in rows))


def build(data_dir, seed: int = 1) -> dict:
    """Create the database in data_dir (empty); returns what the benchmarks need to know."""
    started = time.monotonic()
    # The agent who logs in is made as an operator would: `helpdesk create-agent`.
    helpdesk(data_dir, "create-agent", BENCH_AGENT, "--name", "Bench Agent",
             "--password-stdin", stdin=PASSWORD + "\n")

    from app import db
    from app.config import ensure_secret_key, from_env
    from app.models import (Agent, Brand, Customer, CustomerIdentity, Event, Message, Ticket,
                            TicketTally, database, utcnow)
    from app.services import agents, brands
    from app.services.tickets import tally_add

    settings = ensure_secret_key(from_env({"HELPDESK_DATA_DIR": str(data_dir)}))
    db.connect(settings)
    rnd = random.Random(seed)
    for slug, name, address in BRANDS:
        brands.create_brand(slug, {"name": name, "address": address})
    for n in range(OTHER_AGENTS):
        agents.create_agent(f"agent{n}@example.com", f"Agent {n:02d}", PASSWORD)
    brand_ids = [b.id for b in Brand.select(Brand.id).order_by(Brand.id)]
    agent_ids = [a.id for a in Agent.select(Agent.id).order_by(Agent.id)]
    bench_agent_id = Agent.get(Agent.email == BENCH_AGENT).id
    now = utcnow()
    subjects = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 7))).capitalize()
                for _ in range(TEXTS)]
    incoming = [" ".join(rnd.choice(WORDS) for _ in range(30)) for _ in range(TEXTS)]
    outgoing = [" ".join(rnd.choice(WORDS) for _ in range(25)) for _ in range(TEXTS)]

    with database.atomic():
        customer_rows, identity_rows = [], []
        first_customer = (Customer.select(Customer.id).order_by(Customer.id.desc()).scalar() or 0) + 1
        for n in range(CUSTOMERS):
            email = f"customer{n}@example.net"
            created = now - timedelta(days=400 * rnd.random())
            customer_rows.append((f"Customer {n}" if n % 7 else "", email, created))
            identity_rows.append((first_customer + n, "email", email))
        _insert(Customer, [Customer.name, Customer.email, Customer.created_at], customer_rows)
        _insert(CustomerIdentity, [CustomerIdentity.customer, CustomerIdentity.kind,
                                   CustomerIdentity.value], identity_rows)

    statuses = [s for s, _ in STATUS_WEIGHTS]
    status_w = [w for _, w in STATUS_WEIGHTS]
    channels = [c for c, _ in CHANNEL_WEIGHTS]
    channel_w = [w for _, w in CHANNEL_WEIGHTS]
    first_ticket = (Ticket.select(Ticket.id).order_by(Ticket.id.desc()).scalar() or 0) + 1
    ticket_rows, message_rows, event_rows = [], [], []
    tally = Counter()
    for n in range(TICKETS):
        ticket_id = first_ticket + n
        status = rnd.choices(statuses, status_w)[0]
        channel = rnd.choices(channels, channel_w)[0]
        brand_id = rnd.choice(brand_ids)
        # New tickets are mostly unassigned; the rest belong to someone, sometimes to nobody.
        assignee_id = None
        if (status == "new" and rnd.random() < 0.1) or (status != "new" and rnd.random() < 0.9):
            assignee_id = rnd.choice(agent_ids)
        # Active tickets are recent; closed ones spread over a year.
        age_days = rnd.random() * (20 if status in ("new", "open", "pending") else 365)
        created = now - timedelta(days=age_days, seconds=rnd.randint(0, 3600))
        last_activity = created + timedelta(seconds=rnd.randint(0, int(age_days * 86400)))
        resolved_at = last_activity if status == "resolved" else None
        waiting_since = created if status in ("new", "open") else None
        subject = rnd.choice(subjects)
        customer_n = rnd.randrange(CUSTOMERS)
        ticket_rows.append((subject, status, status in ("new", "open", "pending"), channel,
                            brand_id, first_customer + customer_n, assignee_id, created,
                            last_activity, waiting_since, resolved_at))
        tally[(status, brand_id, channel, assignee_id or 0)] += 1
        count = 1 + n % 5
        span = (last_activity - created) / count
        for m in range(count):
            at = created + span * m
            if m % 2 == 0:  # the customer's messages
                ref = (f"form:{rnd.getrandbits(128):032x}" if channel == "form" and m == 0
                       else None)
                message_rows.append((ticket_id, "incoming", None, False,
                                     f"Hello, about my {rnd.choice(WORDS)}: " + rnd.choice(incoming),
                                     "received", None, "", "", ref, at))
            else:  # the team's answers, sent
                message_rows.append((ticket_id, "outgoing", assignee_id or bench_agent_id, False,
                                     "Thank you for writing; " + rnd.choice(outgoing),
                                     "sent", at, f"customer{customer_n}@example.net",
                                     f"<hd.{ticket_id}.{m}.bench@example.com>", None, at))
        event_rows.append((ticket_id, "ticket.created", None,
                           f'{{"channel": "{channel}", "brand": {brand_id}}}', created))
        if status != "new":
            event_rows.append((ticket_id, "ticket.status", assignee_id,
                               f'{{"old": "new", "new": "{status}"}}', last_activity))
    assert len(message_rows) == MESSAGES, len(message_rows)

    with database.atomic():
        _insert(Ticket, [Ticket.subject, Ticket.status, Ticket.is_active, Ticket.channel,
                         Ticket.brand, Ticket.customer, Ticket.assignee, Ticket.created_at,
                         Ticket.last_activity_at, Ticket.waiting_since, Ticket.resolved_at],
                ticket_rows)
        _insert(Message, [Message.ticket, Message.direction, Message.author, Message.is_auto,
                          Message.body_text, Message.state, Message.sent_at, Message.to_address,
                          Message.message_id, Message.channel_ref, Message.created_at],
                message_rows)
        event_rows.sort(key=lambda row: row[4])  # the log is in time order
        _insert(Event, [Event.ticket, Event.kind, Event.agent, Event.data, Event.created_at],
                event_rows)
        for (status, brand_id, channel, assignee_id), count in tally.items():
            # Through the app's own upsert, so a ticket made before (none here) is counted too.
            tally_add((status, brand_id, channel, assignee_id), count)
    database.execute_sql("ANALYZE")
    database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    check(database)
    info = {
        "tickets": Ticket.select().count(), "messages": Message.select().count(),
        "customers": Customer.select().count(), "events": Event.select().count(),
        "tally_rows": TicketTally.select().count(), "agents": len(agent_ids),
        "brands": len(brand_ids), "active": Ticket.select().where(Ticket.is_active).count(),
        "bench_agent_id": bench_agent_id, "seconds": round(time.monotonic() - started, 1),
    }
    database.close()
    return info


def check(database) -> None:
    """The invariants the app keeps: tallies match the tickets, is_active matches the status."""
    tally = dict(((s, b, c, a), n) for s, b, c, a, n in database.execute_sql(
        "SELECT status, brand_id, channel, assignee_id, count FROM ticket_tally WHERE count != 0"))
    counted = dict(((s, b, c, a), n) for s, b, c, a, n in database.execute_sql(
        "SELECT status, brand_id, channel, COALESCE(assignee_id, 0), COUNT(*) FROM ticket "
        "GROUP BY 1, 2, 3, 4"))
    if tally != counted:
        raise AssertionError("ticket_tally does not match the tickets")
    wrong = database.execute_sql(
        "SELECT COUNT(*) FROM ticket WHERE is_active != (status IN ('new', 'open', 'pending'))"
    ).fetchone()[0]
    if wrong:
        raise AssertionError(f"{wrong} tickets have is_active out of step with their status")
    orphans = database.execute_sql(
        "SELECT COUNT(*) FROM customer c LEFT JOIN customer_identity i ON i.customer_id = c.id "
        "WHERE i.id IS NULL").fetchone()[0]
    if orphans:
        raise AssertionError(f"{orphans} customers have no identity")
