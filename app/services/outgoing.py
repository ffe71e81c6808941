"""Delivering queued outgoing messages: send once, record sent or the reason it failed."""
import logging
import time
from datetime import datetime, timedelta

from app import events
from app.db import transaction
from app.mail import smtp
from app.mail.compose import compose
from app.models import Message, Ticket, database, prepared, utcnow
from app.services import directory
from app.services.brands import smtp_server_of
from app.services.tickets import REOPENED_BY_CUSTOMER, apply_status, locked_ticket_or_none

log = logging.getLogger(__name__)

BATCH = 50  # messages claimed, sent and recorded together by send_due()


def send_due(settings, pause: float = 0.0) -> list[tuple[int, float]]:
    """Send the queued messages that are due, a batch at a time, until none is left. After a
    batch that was not full it waits `pause` seconds: messages that arrive one by one then
    go in batches, instead of a claim and a record (two transactions) each. Returns the
    (message id, delay) of each that failed for now and waits for another try."""
    retries = []
    while True:
        lease, batch = _claim(settings)
        if not batch:
            return retries
        retries += _send_and_record(batch, lease, settings)
        if len(batch) < BATCH:
            time.sleep(pause)


def deliver(message_id: int, settings) -> float | None:
    """Try to send one queued message, due or not (its retry). Returns the delay before the
    next try, or None when it is done (sent, failed for good, or taken by another worker)."""
    lease, claimed = _claim(settings, message_id)
    retries = _send_and_record(claimed, lease, settings)
    return retries[0][1] if retries else None


def _one_send(settings) -> timedelta:
    """How long one mail may take to send: connecting, the greeting, TLS, login and the data
    may each wait up to the timeout."""
    return timedelta(seconds=settings.smtp_timeout * 5)


def _claim(settings, message_id: int | None = None) -> tuple[datetime | None, list[Message]]:
    """Mark queued messages as being sent and return the lease with them, each with its
    ticket and brand (the customer is read when a mail is composed): of two workers after
    the same message, only one gets it. The lease holds for two sends; if this process dies
    mid-batch, requeue_overdue() gives the messages back to the queue when it runs out."""
    now = utcnow()
    with transaction():
        ids = [row[0] for row in _due_ids(now)] if message_id is None else [message_id]
        if not ids:
            return None, []
        # Always BATCH ids, the last repeated: each statement's SQL is then built only once.
        slots = ids + ids[-1:] * (BATCH - len(ids))
        lease = now + 2 * _one_send(settings)
        if not _take(lease, *slots):
            return None, []
    claimed = list(_taken_with_tickets(lease, *slots))
    # The brand from the directory, and the customer read only for a mail that can go:
    # reading all four in one join cost more than the rest of a batch together.
    for message in claimed:
        message.ticket.brand = directory.brand_by_id(message.ticket.brand_id) or message.ticket.brand
    return lease, claimed


def _send_and_record(claimed: list[Message], lease, settings) -> list[tuple[int, float]]:
    """Send claimed messages one after another and record what became of them; the retries,
    as _record() returns them. A batch to a slow server can take longer than its lease: when
    less than one send is left of it, what was sent is recorded and the rest is held longer.
    What requeue_overdue() gave back to the queue meanwhile (another worker may have it) is
    left alone: no mail goes out twice."""
    retries, outcomes, waiting = [], [], list(claimed)
    while waiting:
        if utcnow() + _one_send(settings) > lease:
            retries += _record(outcomes, settings)
            outcomes = []
            lease, waiting = _hold_longer(waiting, lease, settings)
            continue
        message = waiting.pop(0)
        outcomes.append((message, _send(message, settings)))
    return retries + _record(outcomes, settings)


def _hold_longer(messages: list[Message], lease, settings) -> tuple[datetime, list[Message]]:
    """Extend the lease on those of the messages still held under `lease`; the new lease and
    those messages."""
    renewed = utcnow() + 2 * _one_send(settings)
    ids = [message.id for message in messages]
    held = (Message.id.in_(ids) & (Message.state == "sending"))
    with transaction():
        Message.update(next_attempt_at=renewed).where(held & (Message.next_attempt_at == lease)).execute()
        still_held = {row[0] for row in Message.select(Message.id)
                      .where(held & (Message.next_attempt_at == renewed)).tuples()}
    return renewed, [message for message in messages if message.id in still_held]


@prepared
def _due_ids(now):
    due = (Message.select(Message.id)
           .where((Message.state == "queued") & (Message.next_attempt_at <= now))
           .order_by(Message.next_attempt_at).limit(BATCH).tuples())
    if database.for_update:  # PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers
        due = due.for_update("FOR UPDATE SKIP LOCKED")
    return due


@prepared
def _take(lease, *ids):
    return (Message.update(state="sending", next_attempt_at=lease)
            .where(Message.id.in_(ids) & (Message.state == "queued")))


# What sending, composing and recording a mail read (app.mail.compose, _record): a whole row
# of both costs twice as much to turn into objects, and a batch is mostly that.
_SENDING_COLUMNS = (Message.id, Message.ticket, Message.is_auto, Message.body_text,
                    Message.to_address, Message.message_id, Message.attempts,
                    Ticket.id, Ticket.subject, Ticket.brand, Ticket.customer, Ticket.form_id)


@prepared
def _taken_with_tickets(lease, *ids):
    return (Message.select(*_SENDING_COLUMNS).join(Ticket)
            .where(Message.id.in_(ids) & (Message.state == "sending")
                   & (Message.next_attempt_at == lease)))


def _send(message: Message, settings) -> smtp.SendError | None:
    """Hand one claimed message to its brand's SMTP server; the error if it did not go."""
    try:
        server = smtp_server_of(message.ticket.brand)
        smtp.require_host(server)  # before composing: no need to build a mail that cannot go
        smtp.send(server, compose(message), timeout=settings.smtp_timeout)
    except smtp.SendError as exc:
        return exc
    except Exception as exc:  # a bug in one message must not hold up the rest of its batch
        log.exception("message %s could not be sent", message.id)
        return smtp.SendError(f"Sending failed unexpectedly: {exc}")
    return None


@prepared
def _set_outcome(message_id, state, error, attempts, next_attempt_at, sent_at):
    return (Message.update(state=state, error=error, attempts=attempts,
                           next_attempt_at=next_attempt_at, sent_at=sent_at)
            .where((Message.id == message_id) & (Message.state == "sending")))


def _record(outcomes: list, settings) -> list[tuple[int, float]]:
    """Record what became of claimed messages, in one transaction: sent, waiting for another
    try (returned as (message id, delay)), or failed for good with the reason."""
    if not outcomes:
        return []
    now, retries, rows, unsent = utcnow(), [], [], {}
    with transaction():
        for message, error in outcomes:
            attempts, reason = message.attempts + 1, str(error or "")
            ids = {"ticket": message.ticket_id, "message_id": message.id}
            if error is None:
                outcome = ("sent", "", attempts, None, now)
                event = events.row("message.sent", **ids, to=message.to_address,
                                   auto=message.is_auto)
            elif error.permanent or attempts >= settings.smtp_max_attempts:
                outcome = ("failed", reason, attempts, None, None)
                event = events.row("message.failed", **ids, reason=reason, attempts=attempts)
            else:
                delay = settings.smtp_retry_delay * 2 ** (attempts - 1)
                outcome = ("queued", reason, attempts, now + timedelta(seconds=delay), None)
                event = events.row("message.retrying", **ids, reason=reason,
                                   attempts=attempts, delay=delay)
            if _set_outcome(message.id, *outcome):
                rows.append(event)
                if outcome[0] == "queued":
                    retries.append((message.id, delay))
                elif outcome[0] == "failed" and not message.is_auto:
                    _reopen_unanswered(message.ticket_id)
            if error is not None:
                unsent.setdefault(reason, []).append(message.id)
        events.record_rows(rows)
    events.notify()
    for reason, message_ids in unsent.items():  # a batch often fails for one reason: one line
        log.warning("not sent: message %s: %s", ", ".join(map(str, message_ids)), reason)
    return retries


def _reopen_unanswered(ticket_id: int) -> None:
    """A reply that could not be sent leaves the customer without an answer: its ticket
    comes back to the active queue, whatever "send and resolve" or "set pending" said."""
    ticket = locked_ticket_or_none(ticket_id)
    if ticket is not None and ticket.status in REOPENED_BY_CUSTOMER:
        apply_status(ticket, "open", None, reason="a reply could not be sent")


def requeue_overdue(grace_seconds: float = 120) -> list[int]:
    """Messages whose job was lost (a crash, a lost queue): queued ones long past their next
    try, and claims whose lease ran out. Returns their ids, queued again."""
    now = utcnow()
    overdue = (((Message.state == "queued") & (Message.next_attempt_at < now - timedelta(seconds=grace_seconds)))
               | ((Message.state == "sending") & (Message.next_attempt_at < now)))
    with transaction():
        ids = [m.id for m in Message.select(Message.id).where(overdue).limit(200)]
        if ids:
            Message.update(state="queued", next_attempt_at=now).where(Message.id.in_(ids)).execute()
    return ids
