"""Ticket operations: status, assignment, replies, retries, auto-close; each records its events."""
from dataclasses import dataclass
from datetime import timedelta

import peewee

from app import events
from app.db import transaction
from app.mail.ids import domain_of, make_message_id
from app.models import Agent, Customer, Message, Ticket, TicketTally, database, prepared, utcnow
from app.models.tickets import ACTIVE_STATUSES
from app.services import directory

# What an agent may set by hand; "new" is only where a ticket starts.
SETTABLE_STATUSES = ("open", "pending", "resolved", "closed", "spam")
# A customer's new message brings these back to the team.
REOPENED_BY_CUSTOMER = ("pending", "resolved", "closed")
MAX_REPLY_CHARS = 100_000


class TicketError(ValueError):
    """Something the agent asked that cannot be done, in words."""


@dataclass
class Outbox:
    """Outgoing messages stored in a transaction, to hand to the worker after it commits."""

    message_ids: list

    def send(self) -> None:
        from workers import tasks  # the worker imports the domain; import it late to avoid a cycle

        if self.message_ids:
            tasks.send_soon()
        events.notify()


def tally_key(ticket: Ticket) -> tuple:
    return (ticket.status, ticket.brand_id, ticket.channel, ticket.assignee_id or 0)


@prepared
def _tally_add(status, brand_id, channel, assignee_id, delta):
    return (TicketTally
            .insert(status=status, brand_id=brand_id, channel=channel, assignee_id=assignee_id,
                    count=delta)
            .on_conflict(conflict_target=[TicketTally.status, TicketTally.brand_id,
                                          TicketTally.channel, TicketTally.assignee_id],
                         update={TicketTally.count: TicketTally.count + delta}))


def tally_add(key: tuple, delta: int) -> None:
    _tally_add(*key, delta)


def tally_move(old_key: tuple, ticket: Ticket) -> None:
    new_key = tally_key(ticket)
    if new_key != old_key:
        tally_add(old_key, -1)
        tally_add(new_key, +1)


def lock_ticket(ticket_id: int, with_customer: bool = False) -> Ticket:
    """The ticket, locked until the transaction ends; with_customer reads its customer in the
    same query (one query fewer for who needs it)."""
    ticket = locked_ticket_or_none(ticket_id, with_customer)
    if ticket is None:
        raise TicketError(f"There is no ticket #{ticket_id}.")
    return ticket


def locked_ticket_or_none(ticket_id: int, with_customer: bool = False) -> Ticket | None:
    """As lock_ticket(), but None when there is no such ticket."""
    found = list((_locked_with_customer if with_customer else _locked)(ticket_id))
    return found[0] if found else None


def _for_update(query):
    if database.for_update:  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers
        return query.for_update(of=Ticket)  # the ticket's row, not its customer's
    return query


@prepared
def _locked(ticket_id):
    return _for_update(Ticket.select().where(Ticket.id == ticket_id))


@prepared
def _locked_with_customer(ticket_id):
    return _for_update(Ticket.select(Ticket, Customer).join(Customer).where(Ticket.id == ticket_id))


def apply_status(ticket: Ticket, status: str, agent: Agent | None, reason: str = "") -> bool:
    """Set the status inside a transaction: bookkeeping and event. Returns whether it changed."""
    if status == ticket.status:
        return False
    old_key, old_status = tally_key(ticket), ticket.status
    ticket.status = status
    ticket.is_active = status in ACTIVE_STATUSES
    ticket.resolved_at = utcnow() if status == "resolved" else None
    ticket.last_activity_at = utcnow()
    ticket.save(only=[Ticket.status, Ticket.is_active, Ticket.resolved_at,
                      Ticket.last_activity_at])
    tally_move(old_key, ticket)
    events.record("ticket.status", ticket=ticket, agent=agent, old=old_status, new=status,
                  reason=reason)
    return True


def change_status(ticket_id: int, status: str, agent: Agent) -> Ticket:
    if status not in SETTABLE_STATUSES:
        raise TicketError(f"A ticket cannot be set to “{status}”.")
    with transaction():
        ticket = lock_ticket(ticket_id)
        apply_status(ticket, status, agent)
    events.notify()
    return ticket


def assign(ticket_id: int, assignee_id: int | None, agent: Agent) -> Ticket:
    with transaction():
        ticket = lock_ticket(ticket_id)
        if ticket.assignee_id == (assignee_id or None):
            return ticket  # no change, even where the assignee has been deactivated since
        assignee = None
        if assignee_id:
            assignee = Agent.get_or_none((Agent.id == assignee_id) & Agent.active)
            if assignee is None:
                raise TicketError("That agent does not exist or is deactivated.")
        old_key = tally_key(ticket)
        ticket.assignee = assignee
        ticket.last_activity_at = utcnow()
        ticket.save()
        tally_move(old_key, ticket)
        events.record("ticket.assigned", ticket=ticket, agent=agent,
                      assignee_id=assignee.id if assignee else None,
                      assignee=assignee.name if assignee else None)
    events.notify()
    return ticket


def new_outgoing(ticket: Ticket, secret_key: str, text: str, agent: Agent | None,
                 is_auto: bool = False, record_event: bool = True) -> Message:
    """Store an outgoing mail as queued, inside the caller's transaction."""
    message = Message.create(
        ticket=ticket, direction="outgoing", author=agent, is_auto=is_auto, body_text=text,
        state="queued", to_address=ticket.customer.email, next_attempt_at=utcnow(),
        message_id=make_message_id(secret_key, ticket.id, domain_of(ticket.brand.address)),
    )
    if record_event:
        events.record("message.queued", ticket=ticket, agent=agent, message_id=message.id,
                      auto=is_auto)
    return message


def new_chat_reply(ticket: Ticket, text: str, agent: Agent) -> Message:
    """An answer on a live chat, inside the caller's transaction: sent as it is stored (the
    visitor's open widget reads it from the conversation), never mailed."""
    now = utcnow()
    message = Message.create(ticket=ticket, direction="outgoing", author=agent, body_text=text,
                             state="sent", sent_at=now, created_at=now)
    events.record("message.sent", ticket=ticket, agent=agent, message_id=message.id,
                  to="the chat", chat=True)
    return message


def reply(ticket_id: int, text: str, agent: Agent, secret_key: str,
          then_status: str | None = None) -> Message:
    """An agent's answer: into the chat while the ticket's chat is live; otherwise an email,
    stored as queued at once, which the worker sends."""
    text = text.strip()
    if not text:
        raise TicketError("The reply is empty.")
    if len(text) > MAX_REPLY_CHARS:
        raise TicketError(f"The reply is too long (at most {MAX_REPLY_CHARS:,} characters).")
    if then_status and then_status not in ("pending", "resolved"):
        raise TicketError(f"“Send and set {then_status}” is not an action.")
    with transaction():
        # The customer: the address of a mail, and the name on the reply box sent back.
        ticket = lock_ticket(ticket_id, with_customer=True)
        if ticket.is_live:
            message, to_send = new_chat_reply(ticket, text, agent), []
        else:
            if not ticket.customer.email:
                raise TicketError("This customer has no email address to reply to.")
            message = new_outgoing(ticket, secret_key, text, agent)
            to_send = [message.id]
        ticket.waiting_since = None
        ticket.last_activity_at = utcnow()
        ticket.save(only=[Ticket.waiting_since, Ticket.last_activity_at])
        if then_status:
            apply_status(ticket, then_status, agent)
        elif ticket.status == "new":
            apply_status(ticket, "open", agent)
    Outbox(to_send).send()
    return message


def add_note(ticket_id: int, text: str, agent: Agent) -> Message:
    text = text.strip()
    if not text:
        raise TicketError("The note is empty.")
    with transaction():
        ticket = lock_ticket(ticket_id)
        message = Message.create(ticket=ticket, direction="note", author=agent, body_text=text,
                                 state="note")
        events.record("note.added", ticket=ticket, agent=agent, message_id=message.id)
    events.notify()
    return message


def retry_message(message_id: int, agent: Agent) -> Message:
    with transaction():
        message = Message.get_or_none(Message.id == message_id)
        if message is None or message.direction != "outgoing":
            raise TicketError("There is no such outgoing message.")
        if message.state != "failed":
            raise TicketError("Only a failed message can be sent again.")
        message.state, message.error, message.attempts = "queued", "", 0
        message.next_attempt_at = utcnow()
        message.save()
        events.record("message.retried", ticket=message.ticket_id, agent=agent,
                      message_id=message.id)
    Outbox([message.id]).send()
    return message


def auto_close(days: int) -> int:
    """Close tickets resolved more than `days` ago; returns how many."""
    cutoff = utcnow() - timedelta(days=days)
    closed = 0
    due = (Ticket.select(Ticket.id)
           .where((Ticket.status == "resolved") & (Ticket.resolved_at < cutoff))
           .limit(500))
    for row in list(due):
        with transaction():
            ticket = lock_ticket(row.id)
            # Re-checked under the lock: the customer may have written in the meantime.
            if ticket.status == "resolved" and ticket.resolved_at < cutoff:
                apply_status(ticket, "closed", None, reason=f"resolved for {days} days")
                closed += 1
    if closed:
        events.notify()
    return closed


def assignee_choices(ticket: Ticket) -> dict:
    """Whom the ticket can be given to; and its assignee when deactivated since, who keeps it
    until someone reassigns it (shown so, rather than as nobody)."""
    agents = directory.active_agents()
    inactive = (ticket.assignee if ticket.assignee_id
                and all(a.id != ticket.assignee_id for a in agents) else None)
    return {"agents": agents, "inactive_assignee": inactive}


def get_ticket(ticket_id: int) -> Ticket:
    ticket = Ticket.get_or_none(Ticket.id == ticket_id)
    if ticket is None:
        raise TicketError(f"There is no ticket #{ticket_id}.")
    return ticket


def conversation(ticket: Ticket) -> list:
    return list(Message.select(Message, Agent).join(Agent, peewee.JOIN.LEFT_OUTER)
                .where(Message.ticket == ticket).order_by(Message.id))
