"""Huey tasks: thin, idempotent wrappers around domain functions."""
import logging

from huey import crontab
from huey.exceptions import TaskLockedException

from app.services import chat, mailboxes, outgoing, tickets
from workers import queue
from workers.queue import huey

log = logging.getLogger(__name__)


# Set while a send_queued job waits or runs, in the queue's storage (so across processes).
SEND_PENDING = "send-queued-pending"
SEND_PAUSE = 0.1  # seconds a mail may wait to share a batch with the next ones


def send_soon() -> None:
    """Have the messages queued so far sent. While a send_queued job waits or runs, it sends
    every message committed before its last look, so a new job is only needed when none is
    pending: a burst of messages shares one job and its batches instead of a job each."""
    if huey.get(SEND_PENDING, peek=True) is None and huey.put_if_empty(SEND_PENDING, "1"):
        try:
            send_queued()
        except Exception:
            huey.delete(SEND_PENDING)  # no job was queued: the next message must queue one
            raise


@huey.task(retries=3, retry_delay=5)
def send_queued() -> None:
    """Send every queued message that is due; each that fails for now gets its retry job."""
    try:
        retries = outgoing.send_due(queue.settings, pause=SEND_PAUSE)
    finally:
        huey.delete(SEND_PENDING)
    # A message queued after the last batch but before the line above found the job pending
    # and enqueued nothing: one more look sends it.
    retries += outgoing.send_due(queue.settings)
    for message_id, delay in retries:
        deliver.schedule((message_id,), delay=delay)


@huey.on_startup()
def send_what_was_pending() -> None:
    """A send_queued job that was running when its worker stopped left SEND_PENDING set.
    (Huey runs this in each worker thread, and cannot tell that mark from a job running in
    another process: the extra jobs it may queue find nothing to claim.)"""
    huey.delete(SEND_PENDING)
    send_queued()


@huey.task(retries=3, retry_delay=5)
def deliver(message_id: int) -> None:
    """Try one queued message again; on a temporary failure, schedule the next try with backoff."""
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
    """Messages whose job was lost are handed to the worker again: mail is never lost."""
    if outgoing.requeue_overdue():
        send_queued()


@huey.periodic_task(crontab(minute="*"))
def end_idle_chats() -> None:
    """Live chats whose visitor has gone (no open widget, no message) end; the ticket stays
    in the queue and the team answers by email."""
    ended = chat.end_idle_chats(queue.settings.chat_idle_minutes)
    if ended:
        log.info("ended %s chats whose visitor left", ended)
