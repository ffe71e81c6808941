"""The queue: filtered, keyset-paginated ticket lists and the counters beside each filter."""
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

import peewee

from app.models import Agent, Brand, Customer, Ticket, TicketTally
from app.models.tickets import ACTIVE_STATUSES, CHANNELS, STATUSES

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

    @classmethod
    def from_params(cls, params) -> "QueueFilter":
        """Read the query string; a value we do not know falls back to the default."""
        status = params.get("status", "active")
        scope = params.get("scope", "everyone")
        channel = params.get("channel", "")
        return cls(
            status=status if status in STATUS_FILTERS else "active",
            scope=scope if scope in SCOPES else "everyone",
            channel=channel if channel in CHANNELS else "",
            brand=params.get("brand", "")[:64],
            before=params.get("before", "")[:64],
        )

    def query_string(self, **changes) -> str:
        """The bookmarkable query for this filter with some values changed; defaults left out."""
        merged = replace(self, **{"before": "", **changes})
        pairs = [(k, v) for k, v, default in (
            ("status", merged.status, "active"), ("scope", merged.scope, "everyone"),
            ("channel", merged.channel, ""), ("brand", merged.brand, ""),
            ("before", merged.before, "")) if v != default]
        return "?" + urlencode(pairs) if pairs else ""


def _status_matches(status: str, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "active":
        return status in ACTIVE_STATUSES
    return status == wanted


def matches(f: QueueFilter, agent_id: int, brand_id_of_slug: dict, *, status: str, brand_id: int,
            channel: str, assignee_id: int) -> bool:
    """Whether a ticket with these values belongs in the filtered queue."""
    if not _status_matches(status, f.status):
        return False
    if f.scope == "mine" and assignee_id != agent_id:
        return False
    if f.scope == "unassigned" and assignee_id:
        return False
    if f.channel and channel != f.channel:
        return False
    return not (f.brand and brand_id != brand_id_of_slug.get(f.brand, -1))


def ticket_matches(f: QueueFilter, agent_id: int, brand_id_of_slug: dict, ticket: Ticket) -> bool:
    return matches(f, agent_id, brand_id_of_slug, status=ticket.status, brand_id=ticket.brand_id,
                   channel=ticket.channel, assignee_id=ticket.assignee_id or 0)


def brand_ids_by_slug() -> dict:
    return {b.slug: b.id for b in Brand.select(Brand.id, Brand.slug)}


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
    if f.before:
        moment, _, ticket_id = f.before.partition(",")
        try:
            cursor = (datetime.fromisoformat(moment), int(ticket_id))
        except ValueError:
            pass  # a mangled cursor shows the first page
        else:
            conditions.append(peewee.Tuple(Ticket.last_activity_at, Ticket.id) < peewee.Tuple(*cursor))
    return conditions


def row_query():
    """Tickets with what a queue row shows: customer, brand and assignee in one query."""
    return (Ticket.select(Ticket, Customer, Brand, Agent)
            .join(Customer, on=(Ticket.customer == Customer.id))
            .switch(Ticket).join(Brand, on=(Ticket.brand == Brand.id))
            .switch(Ticket).join(Agent, peewee.JOIN.LEFT_OUTER, on=(Ticket.assignee == Agent.id)))


def queue_row(ticket_id: int) -> Ticket | None:
    return row_query().where(Ticket.id == ticket_id).first()


@dataclass
class QueuePage:
    tickets: list
    next_cursor: str  # empty on the last page


def list_tickets(f: QueueFilter, agent_id: int, brand_id_of_slug: dict) -> QueuePage:
    query = row_query()
    conditions = _where(f, agent_id, brand_id_of_slug)
    if conditions:
        query = query.where(*conditions)
    rows = list(query.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
                .limit(PAGE_SIZE + 1))
    next_cursor = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        next_cursor = f"{last.last_activity_at.isoformat()},{last.id}"
    return QueuePage(tickets=rows, next_cursor=next_cursor)


def counters(f: QueueFilter, agent_id: int, brand_id_of_slug: dict) -> dict:
    """For each filter value, how many tickets it would show with the other filters kept.

    Sums the tally rows, whose number depends on brands, channels and agents, never on tickets."""
    rows = list(TicketTally.select().where(TicketTally.count != 0))
    dimensions = {
        "status": [("status", s) for s in STATUS_FILTERS],
        "scope": [("scope", s) for s in SCOPES],
        "channel": [("channel", "")] + [("channel", c) for c in CHANNELS],
        "brand": [("brand", "")] + [("brand", slug) for slug in brand_id_of_slug],
    }
    result = {}
    for dimension, options in dimensions.items():
        result[dimension] = {}
        for name, value in options:
            variant = replace(f, **{name: value})
            result[dimension][value] = sum(
                row.count for row in rows
                if matches(variant, agent_id, brand_id_of_slug, status=row.status,
                           brand_id=row.brand_id, channel=row.channel,
                           assignee_id=row.assignee_id))
    return result


def brands_and_agents():
    return list(Brand.select().order_by(Brand.name)), \
        list(Agent.select().where(Agent.active).order_by(Agent.name))
