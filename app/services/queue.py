"""The queue: filtered, keyset-paginated ticket lists and the counters beside each filter."""
import functools
from collections import namedtuple
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

import peewee

from app import db
from app.events import latest_event_id
from app.models import Agent, Brand, Customer, Ticket, TicketField, TicketTally, database
from app.models.tickets import ACTIVE_STATUSES, CHANNELS, STATUSES
from app.numbers import whole_number

PAGE_SIZE = 50
STATUS_FILTERS = ("active", *STATUSES, "all")
SCOPES = ("everyone", "mine", "unassigned")


@dataclass(frozen=True)
class QueueFilter:
    status: str = "active"  # active: new, open or pending
    scope: str = "everyone"
    channel: str = ""
    brand: str = ""  # slug
    before: str = ""  # keyset cursor: "<last activity iso>,<id>"
    form: str = ""  # a form's id: tickets sent with it
    field: str = ""  # "<key>:<value>": tickets whose choice (or checkbox) field has this value

    @classmethod
    def from_params(cls, params) -> "QueueFilter":
        """Read the query string; a value we do not know falls back to the default."""
        status = params.get("status", "active")
        scope = params.get("scope", "everyone")
        channel = params.get("channel", "")
        form = params.get("form", "")
        field = params.get("field", "")
        return cls(
            status=status if status in STATUS_FILTERS else "active",
            scope=scope if scope in SCOPES else "everyone",
            channel=channel if channel in CHANNELS else "",
            brand=params.get("brand", "")[:64],
            before=params.get("before", "")[:64],
            form=form if whole_number(form) is not None and len(form) < 10 else "",
            field=field if ":" in field and len(field) <= 300 else "",
        )

    def cursor(self) -> tuple | None:
        """Where a later page starts: (last activity, ticket id) of the row before it; None on
        the first page, or when the cursor is mangled (the first page is shown)."""
        if not self.before:
            return None
        moment, _, ticket_id = self.before.partition(",")
        try:
            last_activity = datetime.fromisoformat(moment)
        except ValueError:
            return None
        ticket_id = whole_number(ticket_id)
        return None if ticket_id is None else (last_activity, ticket_id)

    def query_string(self, **changes) -> str:
        """The bookmarkable query for this filter with some values changed; defaults left out."""
        return _query_string(self, **changes)


# Kept: a queue page links to two dozen filters, and building their queries took a fifth of
# the page.
@functools.lru_cache(maxsize=4096)
def _query_string(f: QueueFilter, **changes) -> str:
    merged = replace(f, **{"before": "", **changes})
    pairs = [(k, v) for k, v, default in (
        ("status", merged.status, "active"), ("scope", merged.scope, "everyone"),
        ("channel", merged.channel, ""), ("brand", merged.brand, ""),
        ("form", merged.form, ""), ("field", merged.field, ""),
        ("before", merged.before, "")) if v != default]
    return "?" + urlencode(pairs) if pairs else ""


def _status_matches(status: str, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "active":
        return status in ACTIVE_STATUSES
    return status == wanted


def field_filter(f: QueueFilter) -> tuple[str, str]:
    key, _, value = f.field.partition(":")
    return key, value


def matches(f: QueueFilter, agent_id: int, brand_id_of_slug: dict, *, status: str, brand_id: int,
            channel: str, assignee_id: int, form_id: int | None = None,
            choices: frozenset = frozenset()) -> bool:
    """Whether a ticket with these values belongs in the filtered queue (choices: its
    (key, value) pairs of filterable form fields)."""
    if not _status_matches(status, f.status):
        return False
    if f.scope == "mine" and assignee_id != agent_id:
        return False
    if f.scope == "unassigned" and assignee_id:
        return False
    if f.channel and channel != f.channel:
        return False
    if f.form and form_id != int(f.form):
        return False
    if f.field and field_filter(f) not in choices:
        return False
    return not (f.brand and brand_id != brand_id_of_slug.get(f.brand, -1))


def ticket_matches(f: QueueFilter, agent_id: int, brand_id_of_slug: dict, ticket) -> bool:
    cursor = f.cursor()
    if cursor and (ticket.last_activity_at, ticket.id) >= cursor:
        return False  # newer than where this page starts: it belongs on an earlier page
    choices = ticket_choices(db.generation, ticket.id) if f.field and ticket.form_id else frozenset()
    return matches(f, agent_id, brand_id_of_slug, status=ticket.status, brand_id=ticket.brand_id,
                   channel=ticket.channel, assignee_id=ticket.assignee_id or 0,
                   form_id=ticket.form_id, choices=choices)


@functools.lru_cache(maxsize=4096)
def ticket_choices(generation: int, ticket_id: int) -> frozenset:
    """A ticket's (key, value) pairs of filterable form fields. Kept in memory: a ticket's
    fields are written with the ticket and never change (generation: the database's)."""
    query = (TicketField.select(TicketField.key, TicketField.choice)
             .where((TicketField.ticket == ticket_id) & (TicketField.choice != "")))
    return frozenset(database.execute(query).fetchall())


def _where(f: QueueFilter, agent_id: int, brand_id_of_slug: dict):
    conditions = []
    if f.status == "active":
        conditions.append(Ticket.is_active == True)  # noqa: E712 (peewee expression)
    elif f.status != "all":
        conditions.append(Ticket.status == f.status)
    if f.scope == "mine":
        conditions.append(Ticket.assignee == agent_id)
    elif f.scope == "unassigned":
        conditions.append(Ticket.assignee.is_null())
    if f.channel:
        conditions.append(Ticket.channel == f.channel)
    if f.brand:
        conditions.append(Ticket.brand == brand_id_of_slug.get(f.brand, -1))
    if f.form:
        conditions.append(Ticket.form_id == int(f.form))
    if f.field:
        key, value = field_filter(f)
        conditions.append(Ticket.id.in_(TicketField.select(TicketField.ticket).where(
            (TicketField.key == key) & (TicketField.choice == value))))
    cursor = f.cursor()
    if cursor:
        conditions.append(peewee.Tuple(Ticket.last_activity_at, Ticket.id) < peewee.Tuple(*cursor))
    return conditions


# What a queue row shows. A class made once: peewee's .namedtuples() makes a new one per query.
QueueRow = namedtuple("QueueRow", (
    "id subject status channel brand_id assignee_id last_activity_at waiting_since "
    "customer_name customer_email brand_name assignee_name form_id is_live"))


def row_query():
    """The columns of QueueRow, customer, brand and assignee joined, in one query."""
    return (Ticket.select(Ticket.id, Ticket.subject, Ticket.status, Ticket.channel,
                          Ticket.brand_id, Ticket.assignee_id, Ticket.last_activity_at,
                          Ticket.waiting_since, Customer.name, Customer.email, Brand.name,
                          Agent.name, Ticket.form_id, Ticket.is_live)
            .join(Customer, on=(Ticket.customer == Customer.id))
            .switch(Ticket).join(Brand, on=(Ticket.brand == Brand.id))
            .switch(Ticket).join(Agent, peewee.JOIN.LEFT_OUTER, on=(Ticket.assignee == Agent.id)))


def _rows(query) -> list[QueueRow]:
    """Plain DB-API rows made QueueRows; only the two timestamps need converting (SQLite gives
    text), and peewee's per-value conversion cost more than running the query."""
    to_time = Ticket.last_activity_at.python_value
    return [QueueRow(*row[:6], to_time(row[6]), to_time(row[7]), *row[8:])
            for row in database.execute(query).fetchall()]


def queue_row(ticket_id: int) -> QueueRow | None:
    rows = _rows(row_query().where(Ticket.id == ticket_id))
    return rows[0] if rows else None


@dataclass
class QueuePage:
    tickets: list
    next_cursor: str  # empty on the last page


def list_tickets(f: QueueFilter, agent_id: int, brand_id_of_slug: dict,
                 version: tuple) -> QueuePage:
    return kept(version, ("page", f, agent_id), lambda: read_page(f, agent_id, brand_id_of_slug))


def read_page(f: QueueFilter, agent_id: int, brand_id_of_slug: dict) -> QueuePage:
    query = row_query()
    conditions = _where(f, agent_id, brand_id_of_slug)
    if conditions:
        query = query.where(*conditions)
    rows = _rows(query.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc()).limit(PAGE_SIZE + 1))
    next_cursor = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        next_cursor = f"{last.last_activity_at.isoformat()},{last.id}"
    return QueuePage(tickets=rows, next_cursor=next_cursor)


def counters(f: QueueFilter, agent_id: int, brand_id_of_slug: dict, version: tuple) -> dict:
    count = count_matching if f.form or f.field else count_tallies
    return kept(version, ("counters", f, agent_id), lambda: count(f, agent_id, brand_id_of_slug))


# Queue pages, counters and their rendered rows, kept until the event log grows: every change
# that a queue shows is made in a transaction that also records an event. A page reads the
# version once, before anything else, so what is kept under it is at least that new. Agents
# loading the same queue then share one query and one rendering.
_kept_results: dict = {}
_KEPT_MAX = 512


def version() -> tuple:
    """Where the event log stands (in this database)."""
    return (db.generation, latest_event_id())


def kept(at_version: tuple, key: tuple, compute):
    full_key = (*at_version, *key)
    result = _kept_results.get(full_key)
    if result is None:
        if len(_kept_results) >= _KEPT_MAX:
            _kept_results.clear()
        result = _kept_results[full_key] = compute()
    return result


def count_matching(f: QueueFilter, agent_id: int, brand_id_of_slug: dict) -> dict:
    """The counters of count_tallies by counting tickets, for the filters the tallies do not
    know (form, field): four grouped counts, each with the other filters kept."""
    result = {"status": dict.fromkeys(STATUS_FILTERS, 0), "scope": dict.fromkeys(SCOPES, 0),
              "channel": dict.fromkeys(("", *CHANNELS), 0),
              "brand": dict.fromkeys(("", *brand_id_of_slug), 0)}
    slug_of = {brand_id: slug for slug, brand_id in brand_id_of_slug.items()}

    def grouped(column, **left_out):
        conditions = _where(replace(f, before="", **left_out), agent_id, brand_id_of_slug)
        query = Ticket.select(column, peewee.fn.COUNT(Ticket.id)).where(*conditions)
        return database.execute(query.group_by(column)).fetchall()

    for status, count in grouped(Ticket.status, status="all"):
        result["status"]["all"] += count
        result["status"][status] = result["status"].get(status, 0) + count
        if status in ACTIVE_STATUSES:
            result["status"]["active"] += count
    for assignee_id, count in grouped(Ticket.assignee, scope="everyone"):
        result["scope"]["everyone"] += count
        if not assignee_id:
            result["scope"]["unassigned"] += count
        if assignee_id == agent_id:
            result["scope"]["mine"] += count
    for channel, count in grouped(Ticket.channel, channel=""):
        result["channel"][""] += count
        result["channel"][channel] = result["channel"].get(channel, 0) + count
    for brand_id, count in grouped(Ticket.brand, brand=""):
        result["brand"][""] += count
        if brand_id in slug_of:
            result["brand"][slug_of[brand_id]] += count
    return result


def count_tallies(f: QueueFilter, agent_id: int, brand_id_of_slug: dict) -> dict:
    """For each filter value, how many tickets it would show with the other filters kept.

    Sums the tally rows, whose number depends on brands, channels and agents, never on tickets:
    each row counts towards the value it has in one filter if it passes the other three."""
    wanted_brand = brand_id_of_slug.get(f.brand, -1) if f.brand else None
    slug_of = {brand_id: slug for slug, brand_id in brand_id_of_slug.items()}
    result = {"status": dict.fromkeys(STATUS_FILTERS, 0), "scope": dict.fromkeys(SCOPES, 0),
              "channel": dict.fromkeys(("", *CHANNELS), 0),
              "brand": dict.fromkeys(("", *brand_id_of_slug), 0)}
    query = (TicketTally.select(TicketTally.status, TicketTally.brand_id, TicketTally.channel,
                                TicketTally.assignee_id, TicketTally.count)
             .where(TicketTally.count != 0))
    # Plain DB-API rows: these columns need no conversion, which cost more than the query.
    for status, brand_id, channel, assignee_id, count in database.execute(query).fetchall():
        status_ok = _status_matches(status, f.status)
        scope_ok = (f.scope == "everyone" or (f.scope == "mine" and assignee_id == agent_id)
                    or (f.scope == "unassigned" and not assignee_id))
        channel_ok = not f.channel or channel == f.channel
        brand_ok = wanted_brand is None or brand_id == wanted_brand
        if scope_ok and channel_ok and brand_ok:
            result["status"]["all"] += count
            result["status"][status] = result["status"].get(status, 0) + count
            if status in ACTIVE_STATUSES:
                result["status"]["active"] += count
        if status_ok and channel_ok and brand_ok:
            result["scope"]["everyone"] += count
            if not assignee_id:
                result["scope"]["unassigned"] += count
            if assignee_id == agent_id:
                result["scope"]["mine"] += count
        if status_ok and scope_ok and brand_ok:
            result["channel"][""] += count
            result["channel"][channel] = result["channel"].get(channel, 0) + count
        if status_ok and scope_ok and channel_ok:
            result["brand"][""] += count
            slug = slug_of.get(brand_id)
            if slug is not None:
                result["brand"][slug] += count
    return result
