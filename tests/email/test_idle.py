"""IMAP IDLE: with the app running, new mail becomes a ticket within seconds, without anyone
calling fetch, and the watcher comes back after the mail server drops its connection."""
import sys
import threading

import pytest
from starlette.testclient import TestClient

from app.models import Mailbox, Message, Ticket
from tests.email.mailtools import CUSTOMER, append, build_mail
from tests.helpers import wait_until

pytest_plugins = ["tests.email.mailfixtures"]

SECONDS = 5  # "within seconds": the next poll would be a minute away


def watcher_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("idle-")]


def idling() -> bool:
    """Whether a watcher thread is waiting in IDLE for the server to speak (looked up on its
    stack: the server does not show it, and sleeping instead would be a guess)."""
    frames = sys._current_frames()
    for thread in watcher_threads():
        frame = frames.get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == "idle_check":
                return True
            frame = frame.f_back
    return False


@pytest.fixture
def running(app, mailbox):
    """The app with its lifespan (embedded worker, IDLE watchers), started after the mailbox
    exists; once it stops, its watcher threads are waited for, so none outlives the test."""
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # The watcher's first fetch, then it waits in IDLE.
        wait_until(lambda: Mailbox.get_by_id(mailbox.id).last_success_at, 10,
                   message="the IDLE watcher never checked the mailbox")
        wait_until(idling, 10, message="the watcher never started to IDLE")
        yield client
        # Stop only once the worker has sent what the test's mail queued: a worker's commit at
        # the moment of shutdown can hang it (see test_shutdown.py).
        wait_until(lambda: not Message.select().where(Message.state.in_(("queued", "sending")))
                   .exists(), 10, message="queued mail was never sent")
    wait_until(lambda: not watcher_threads(), 10, message="IDLE watchers still run after shutdown")


def ticket_with_subject(subject: str):
    return Ticket.get_or_none(Ticket.subject == subject)


def test_new_mail_becomes_a_ticket_within_seconds_without_a_fetch(running, dovecot, smtp_server):
    append(dovecot, build_mail(subject="Pushed by IDLE"))

    ticket = wait_until(lambda: ticket_with_subject("Pushed by IDLE"), SECONDS,
                        message="IDLE brought no ticket")

    assert ticket.channel == "email" and ticket.customer.email == CUSTOMER
    ack = smtp_server.wait_for(1)[0]  # and the embedded worker acknowledged it
    assert f"[#{ticket.id}]" in ack["Subject"]

    append(dovecot, build_mail("Colin <colin@example.org>", "The next one too"))
    wait_until(lambda: ticket_with_subject("The next one too"), SECONDS,
               message="IDLE brought no second ticket")


def test_watcher_comes_back_after_the_server_dropped_the_connection(running, dovecot):
    dovecot.restart()  # like a crash: every connection ends
    append(dovecot, build_mail(subject="After the restart"))

    wait_until(lambda: ticket_with_subject("After the restart"), 10,
               message="no ticket after the IMAP server restarted")
