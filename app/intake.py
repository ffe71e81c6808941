"""The one entry point that turns any channel's message into a ticket or a message on one."""
import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field

import peewee

from app import events
from app.db import savepoint, transaction
from app.models import (Attachment, Brand, Customer, CustomerIdentity, Message, Ticket,
                        TicketField, prepared, utcnow)
from app.services.tickets import (REOPENED_BY_CUSTOMER, Outbox, apply_status,
                                  locked_ticket_or_none, new_outgoing, tally_add, tally_key)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, limit: int = 255) -> str:
    """Header-safe text: control characters (CR and LF included) become one space."""
    return _CONTROL.sub(" ", text or "").strip()[:limit]


@dataclass
class Incoming:
    """What arrived on a channel, in one shape for every channel."""

    channel: str  # email, form, chat
    brand: Brand
    sender_email: str
    sender_name: str
    subject: str
    text: str
    html: str = ""  # sanitized by the channel adapter before it gets here
    channel_ref: str | None = None  # unique per channel item: receiving it twice changes nothing
    message_id: str = ""
    # A contact form's fields as submitted (dicts of app.models.TicketField fields) and the
    # form's id; a new ticket keeps them.
    fields: list = field(default_factory=list)
    form_id: int | None = None
    ticket_id: int | None = None  # set by a channel that already knows the ticket (threading)
    acknowledge: bool = False  # send the customer a confirmation of a new ticket
    reopens: bool = True  # False for automatic mail (out of office): it joins, does not reopen
    # Mail: what makes the same mail the same whichever mailbox or UID brought it, the
    # original in the blob store, its files (app.models.Attachment fields), what could not
    # be read, and the closed ticket a new one follows up.
    dedupe_key: str | None = None
    raw_sha256: str = ""
    attachments: list = field(default_factory=list)
    notes: str = ""
    linked_ticket_id: int | None = None


@dataclass
class IntakeResult:
    ticket: Ticket
    message: Message
    created: bool
    duplicate: bool = False


@prepared
def _customer_with_email(email: str):
    return (Customer.select().join(CustomerIdentity)
            .where((CustomerIdentity.kind == "email") & (CustomerIdentity.value == email))
            .limit(1))


def find_or_create_customer(email: str, name: str) -> Customer:
    email = email.strip().lower()
    customer = next(iter(_customer_with_email(email)), None)
    if customer:
        fill_in_name(customer, name)
        return customer
    customer = Customer.create(name=name, email=email)
    CustomerIdentity.create(customer=customer, kind="email", value=email)
    return customer


def fill_in_name(customer: Customer, name: str) -> None:
    """A customer known without a name gets the one a later message gives."""
    if name and not customer.name:
        customer.name = name
        customer.save(only=[Customer.name])


def _duplicate(incoming: Incoming) -> IntakeResult | None:
    message = None
    if incoming.channel_ref:
        message = Message.get_or_none(Message.channel_ref == incoming.channel_ref)
    if message is None and incoming.dedupe_key:
        message = Message.get_or_none(Message.dedupe_key == incoming.dedupe_key)
    if message is None:
        return None
    return IntakeResult(ticket=message.ticket, message=message, created=False, duplicate=True)


def receive(incoming: Incoming, secret_key: str) -> IntakeResult:
    """Store what arrived, in one transaction, with its events; then hand mail to the worker."""
    (outcome,) = receive_together([incoming], secret_key)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def receive_together(incomings: list[Incoming], secret_key: str) -> list:
    """Store several arrivals in one transaction; one that fails is undone alone. Returns, in
    order, each one's IntakeResult or the exception it met. One commit for all costs far less
    than one each: it writes every page it touched, and arrivals stored together touch the
    same ones. Their events and new tickets' counts are written once for all, after the last."""
    outbox, new_events, new_tickets = Outbox([]), [], Counter()
    with transaction():
        try:
            with savepoint():
                outcomes = [_store(incoming, secret_key) for incoming in incomings]
        except Exception as exc:
            # Undone together; again, each in a savepoint of its own (two statements each,
            # which arrivals that all go in spare).
            outcomes = [exc] if len(incomings) == 1 else _store_each(incomings, secret_key)
        for stored in outcomes:
            if isinstance(stored, _Stored):
                outbox.message_ids += stored.outgoing
                new_events += stored.events
                if stored.result.created:
                    new_tickets[tally_key(stored.result.ticket)] += 1
        events.record_rows(new_events)
        for key, count in new_tickets.items():
            tally_add(key, count)
    outbox.send()
    # The channel reference is unique: an arrival refused as a duplicate was stored before
    # (or a moment ago by another process), and its answer is what was stored then.
    return [stored.result if isinstance(stored, _Stored)
            else (_duplicate(incoming) or stored) if isinstance(stored, peewee.IntegrityError)
            else stored for incoming, stored in zip(incomings, outcomes)]


def _store_each(incomings: list[Incoming], secret_key: str) -> list:
    outcomes = []
    for incoming in incomings:
        try:
            with savepoint():
                outcomes.append(_store(incoming, secret_key))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


class WebIntake:
    """Arrivals from web requests (the contact page, forms), stored together: those that come
    in while the event loop is busy with others make up a batch, stored in one transaction
    (receive_together). The visitor's answer waits for the commit, as it would alone."""

    BATCH = 50  # arrivals stored in one go: bounds how long one batch holds up the event loop

    def __init__(self, secret_key: str):
        self.secret_key = secret_key
        self.waiting: list = []
        self.storing: asyncio.Task | None = None  # held here: the loop keeps tasks weakly

    async def receive(self, incoming: Incoming) -> IntakeResult:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((incoming, future))
        if self.storing is None:
            self.storing = asyncio.create_task(self._store_waiting())
        return await future

    async def _store_waiting(self) -> None:
        try:
            while self.waiting:
                # Requests already under way join this batch: the loop goes round until
                # one round brings no more (each round costs microseconds).
                seen = -1
                while seen != len(self.waiting) and len(self.waiting) < self.BATCH:
                    seen = len(self.waiting)
                    await asyncio.sleep(0)
                batch, self.waiting = self.waiting[:self.BATCH], self.waiting[self.BATCH:]
                try:
                    outcomes = receive_together([incoming for incoming, _ in batch],
                                                self.secret_key)
                except Exception as exc:  # the transaction itself failed: nothing was stored
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes):
                    if future.cancelled():  # the visitor went away; what they sent is stored
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self.storing = None


@dataclass
class _Stored:
    result: IntakeResult
    events: list  # event rows, for receive_together to write with the others'
    outgoing: list  # ids of the mail it queued, for the worker


def _store(incoming: Incoming, secret_key: str) -> _Stored:
    now = utcnow()
    name = one_line(incoming.sender_name)
    # A message on a known ticket is from its customer (mail threading checks the sender, a
    # chat's visitor is who started it): read with the ticket, not looked up by address.
    ticket = (locked_ticket_or_none(incoming.ticket_id, with_customer=True)
              if incoming.ticket_id else None)
    created = ticket is None
    if created:
        customer = find_or_create_customer(incoming.sender_email, name)
        ticket = Ticket.create(
            subject=one_line(incoming.subject) or "(no subject)", channel=incoming.channel,
            brand=incoming.brand, customer=customer, created_at=now, last_activity_at=now,
            waiting_since=now, linked_ticket_id=incoming.linked_ticket_id,
            form_id=incoming.form_id,
        )
        if incoming.fields:
            TicketField.insert_rows([{**f, "ticket": ticket.id} for f in incoming.fields])
        new_events = [events.row("ticket.created", ticket, channel=incoming.channel,
                                 brand=incoming.brand.slug, customer=customer.display_name)]
    else:
        fill_in_name(ticket.customer, name)
        new_events = []
        if incoming.reopens and ticket.status in REOPENED_BY_CUSTOMER:
            apply_status(ticket, "open", None, reason="the customer wrote again")
        ticket.waiting_since = ticket.waiting_since or now
        ticket.last_activity_at = now
        # Only what changed: a whole-row UPDATE costs more to build, and would write back
        # columns another transaction may have changed meanwhile.
        ticket.save(only=[Ticket.waiting_since, Ticket.last_activity_at])
    message = Message.create(
        ticket=ticket, direction="incoming", body_text=incoming.text, body_html=incoming.html,
        channel_ref=incoming.channel_ref, message_id=incoming.message_id, created_at=now,
        dedupe_key=incoming.dedupe_key, raw_sha256=incoming.raw_sha256, notes=incoming.notes,
    )
    if incoming.attachments:
        Attachment.insert_rows([{**a, "message": message.id} for a in incoming.attachments])
    new_events.append(events.row("message.received", ticket, message_id=message.id,
                                 channel=incoming.channel))
    outgoing = []
    if created and incoming.acknowledge and customer.email:
        ack = new_outgoing(ticket, secret_key, "", None, is_auto=True, record_event=False)
        new_events.append(events.row("message.queued", ticket, message_id=ack.id, auto=True))
        outgoing.append(ack.id)
    return _Stored(IntakeResult(ticket=ticket, message=message, created=created), new_events,
                   outgoing)
