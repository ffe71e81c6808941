"""Fixtures of the email-channel tests: the brand on example.test sending through the test SMTP
server, its mailbox on the test's Dovecot, a worker that sends, a ticket with a sent reply.

Test modules load them with `pytest_plugins = ["tests.email.mailfixtures"]` (the conftest files
stay as their owners wrote them)."""
import pytest

from app.services import brands
from tests.email.conftest import SUPPORT
from tests.email.mailtools import add_mailbox, open_ticket, send_reply
from workers.queue import CONSUMER_OPTIONS, EmbeddedConsumer, huey


@pytest.fixture
def acme(app, smtp_server):
    """The brand, on example.test, sending through the test SMTP server."""
    return brands.create_brand("acme", {
        "name": "Acme Outdoor", "address": SUPPORT, "signature": "Acme care team",
        "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "smtp_security": "none",
    })


@pytest.fixture
def mailbox(acme, dovecot):
    """The brand's mailbox support@example.test on the test's Dovecot."""
    return add_mailbox(dovecot)


@pytest.fixture
def worker(app):
    """The Huey consumer that sends queued mail, without the periodic tasks (their poll would
    fetch mailboxes behind the test's back) and without IDLE watchers."""
    options = {**CONSUMER_OPTIONS, "periodic": False}
    consumer = EmbeddedConsumer(huey, **options, workers=2, check_worker_health=False,
                                flush_locks=False, shutdown_timeout=10)
    consumer.start()
    yield consumer
    consumer.stop(graceful=True)


@pytest.fixture
def replied(mailbox, dovecot, settings, agent, smtp_server, worker):
    """A customer's ticket and an agent's reply to it, sent: (ticket, the reply as stored,
    the reply as the SMTP server received it)."""
    ticket = open_ticket(mailbox, dovecot, settings)
    message, sent = send_reply(ticket, agent, settings, smtp_server)
    return ticket, message, sent
