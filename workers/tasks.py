"""Huey tasks: thin, idempotent wrappers around domain functions."""
import logging

from huey import crontab

from app.services import outgoing, tickets
from workers import queue
from workers.queue import huey

log = logging.getLogger(__name__)


@huey.task(retries=3, retry_delay=5)
def deliver(message_id: int) -> None:
    """Send one queued message; on a temporary failure, schedule the next try with backoff."""
    delay = outgoing.deliver(message_id, queue.settings)
    if delay is not None:
        deliver.schedule((message_id,), delay=delay)


@huey.periodic_task(crontab(minute="*/10"))
def close_resolved_tickets() -> None:
    closed = tickets.auto_close(queue.settings.auto_close_days)
    if closed:
        log.info("closed %s tickets resolved more than %s days ago", closed,
                 queue.settings.auto_close_days)


@huey.periodic_task(crontab(minute="*/5"))
def requeue_overdue_messages() -> None:
    """A queued message whose job was lost is handed to the worker again: mail is never lost."""
    for message_id in outgoing.requeue_overdue():
        deliver(message_id)
