"""Huey tasks: thin, idempotent wrappers around domain functions."""
import logging

from huey import crontab
from huey.exceptions import TaskLockedException

from app.services import chat, mailboxes, outgoing, tickets
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


@huey.task(retries=2, retry_delay=30)
def fetch_mailbox(mailbox_id: int) -> None:
    """Check one mailbox; a check already running for it (here or in another worker) is enough."""
    try:
        with huey.lock_task(f"fetch-mailbox-{mailbox_id}"):
            mailboxes.fetch(mailbox_id, queue.settings)
    except TaskLockedException:
        pass


@huey.periodic_task(crontab(minute="*"))
def poll_mailboxes() -> None:
    """Every mailbox is checked at least every HELPDESK_MAIL_POLL_SECONDS, IDLE or not."""
    for mailbox_id in mailboxes.due_mailboxes(queue.settings.mail_poll_seconds):
        fetch_mailbox(mailbox_id)


@huey.periodic_task(crontab(minute="*/5"))
def requeue_overdue_messages() -> None:
    """A queued message whose job was lost is handed to the worker again: mail is never lost."""
    for message_id in outgoing.requeue_overdue():
        deliver(message_id)


@huey.periodic_task(crontab(minute="*"))
def end_idle_chats() -> None:
    """Live chats whose visitor has gone (no open widget, no message) end; the ticket stays
    in the queue and the team answers by email."""
    ended = chat.end_idle_chats(queue.settings.chat_idle_minutes)
    if ended:
        log.info("ended %s chats whose visitor left", ended)
