"""Delivering queued outgoing messages: send once, record sent or the reason it failed."""
import logging
from datetime import timedelta

from app import events
from app.db import transaction
from app.mail import smtp
from app.mail.compose import compose
from app.models import Brand, Customer, Message, Ticket, utcnow
from app.services.brands import smtp_server_of

log = logging.getLogger(__name__)


def deliver(message_id: int, settings) -> float | None:
    """Try to send one queued message. Returns the delay before the next try, or None when done."""
    # Claim it first: of two workers handed the same message, only one sends it. The claim
    # is a lease: if this process dies mid-send, requeue_overdue() gives it back to the queue.
    lease = timedelta(seconds=settings.smtp_timeout * 4 + 30)
    with transaction():
        claimed = (Message.update(state="sending", next_attempt_at=utcnow() + lease)
                   .where((Message.id == message_id) & (Message.state == "queued")).execute())
    if not claimed:
        return None  # already sent, failed for good, or taken: running twice does no harm
    # The message with its ticket, brand and customer, which the mail needs, in one query.
    message = (Message.select(Message, Ticket, Brand, Customer).join(Ticket)
               .join(Brand, on=(Ticket.brand == Brand.id))
               .switch(Ticket).join(Customer, on=(Ticket.customer == Customer.id))
               .where(Message.id == message_id).get())
    server = smtp_server_of(message.ticket.brand)
    try:
        smtp.require_host(server)  # before composing: no need to build a mail that cannot go
        smtp.send(server, compose(message), timeout=settings.smtp_timeout)
    except smtp.SendError as exc:
        return _record_failure(message.id, str(exc), exc.permanent, settings)
    with transaction():
        updated = (Message.update(state="sent", sent_at=utcnow(), error="", next_attempt_at=None,
                                  attempts=Message.attempts + 1)
                   .where((Message.id == message.id) & (Message.state == "sending")).execute())
        if updated:
            events.record("message.sent", ticket=message.ticket_id, message_id=message.id,
                          to=message.to_address, auto=message.is_auto)
    events.notify()
    return None


def _record_failure(message_id: int, reason: str, permanent: bool, settings) -> float | None:
    with transaction():
        message = Message.get_by_id(message_id)
        if message.state != "sending":
            return None
        message.attempts += 1
        message.error = reason
        if permanent or message.attempts >= settings.smtp_max_attempts:
            message.state = "failed"
            message.next_attempt_at = None
            message.save()
            events.record("message.failed", ticket=message.ticket_id, message_id=message.id,
                          reason=reason, attempts=message.attempts)
            delay = None
        else:
            delay = settings.smtp_retry_delay * 2 ** (message.attempts - 1)
            message.state = "queued"
            message.next_attempt_at = utcnow() + timedelta(seconds=delay)
            message.save()
            events.record("message.retrying", ticket=message.ticket_id, message_id=message.id,
                          reason=reason, attempts=message.attempts, delay=delay)
    log.warning("message %s not sent (attempt %s): %s", message_id, message.attempts, reason)
    events.notify()
    return delay


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
