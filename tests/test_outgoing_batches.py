"""Outgoing mail in batches: a burst all goes out once each, a stuck pending mark or a brand
without SMTP holds nothing else up, a lone reply still goes out at once, and a batch that
outlasts its lease to a slow server sends nothing twice."""
import asyncio
import re
import threading
import time
from collections import Counter

import pytest
from starlette.testclient import TestClient

from app.main import create_app
from app.models import Message, Ticket, database
from app.services import brands, outgoing, tickets
from tests.conftest import PASSWORD, SmtpSink
from tests.helpers import login, post_form, wait_until
from workers import tasks
from workers.queue import huey

BURST = outgoing.BATCH + 10  # more than one batch
# A backlog that one send_queued job sends only if each look at the queue takes batch after
# batch until none is left: it looks twice, so one batch a look would leave some behind.
BACKLOG = 2 * outgoing.BATCH + 10


@pytest.fixture
def settings(settings):
    # A burst comes from one test client's address: let the per-IP form limit allow it.
    return settings.with_changes(form_rate_per_ip="1000/minute")


def submit(client, n: int, slug: str = "acme") -> int:
    """A contact form from customer n (an address of their own); the new ticket's reference."""
    response = post_form(client, f"/contact/{slug}", {
        "name": f"Customer {n}", "email": f"customer{n}@example.org", "subject": f"Order {n}",
        "message": f"Where is order {n}?",
    })
    assert response.status_code == 200, response.text
    return int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1))


def recipients(smtp_server) -> Counter:
    return Counter(rcpt for envelope in smtp_server.envelopes for rcpt in envelope.rcpt_tos)


def outgoing_of(ticket_id: int) -> list[Message]:
    return list(Message.select().where((Message.ticket == ticket_id)
                                       & (Message.direction == "outgoing")))


def all_in_state(message_ids, state: str) -> bool:
    return Message.select().where(Message.id.in_(list(message_ids))
                                  & (Message.state != state)).count() == 0


def not_pending() -> bool:
    return huey.get(tasks.SEND_PENDING, peek=True) is None


def stuck_pending_mark() -> None:
    """What a send_queued job that died mid-run leaves behind: the mark that one is pending."""
    assert huey.put_if_empty(tasks.SEND_PENDING, "1")


def test_burst_of_contact_forms_sends_each_customer_exactly_one_confirmation(client, brand,
                                                                           smtp_server):
    references = [submit(client, n) for n in range(BURST)]

    smtp_server.wait_for(BURST, timeout=10)
    expected = {f"customer{n}@example.org" for n in range(BURST)}
    wait_until(lambda: all_in_state(
        [m.id for m in Message.select().where(Message.direction == "outgoing")], "sent"), 5,
        message="not every confirmation was recorded as sent")
    counts = recipients(smtp_server)
    assert set(counts) == expected
    assert max(counts.values()) == 1, [a for a, c in counts.items() if c > 1]
    assert len({mail["Message-ID"] for mail in smtp_server.messages}) == BURST
    for reference in references:
        confirmations = outgoing_of(reference)
        assert [m.state for m in confirmations] == ["sent"]
        assert confirmations[0].attempts == 1 and confirmations[0].error == ""
        customer = Ticket.get_by_id(reference).customer
        assert confirmations[0].to_address == customer.email
    assert len(smtp_server.messages) == BURST  # nothing more arrived late


def test_mail_queued_under_a_pending_mark_left_by_a_dead_job_goes_out_when_the_worker_starts(
        settings, smtp_server):
    # One worker thread: its start enqueues one send_queued job (each thread's start does).
    app = create_app(settings.with_changes(worker_threads=1))
    brands.create_brand("acme", {"name": "Acme Outdoor", "address": "support@acme.example",
                                 "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                 "smtp_security": "none"})
    stuck_pending_mark()
    offline = TestClient(app, base_url="http://127.0.0.1")  # no lifespan: no worker yet
    references = [submit(offline, n) for n in range(BACKLOG)]
    confirmations = [m.id for r in references for m in outgoing_of(r)]
    assert len(confirmations) == BACKLOG and all_in_state(confirmations, "queued")
    assert smtp_server.messages == []

    with TestClient(app, base_url="http://127.0.0.1") as client:  # starts the worker
        smtp_server.wait_for(BACKLOG, timeout=10)
        wait_until(lambda: all_in_state(confirmations, "sent"), 5,
                   message="the queued confirmations were not all recorded as sent")
        counts = recipients(smtp_server)
        assert len(counts) == BACKLOG and max(counts.values()) == 1

        # The mark is gone once the work is done, so what comes next is sent too.
        wait_until(not_pending, 5, message="SEND_PENDING stayed set after the job finished")
        later = submit(client, BACKLOG)
        smtp_server.wait_for(BACKLOG + 1, timeout=5)
        assert recipients(smtp_server)[f"customer{BACKLOG}@example.org"] == 1
        wait_until(lambda: all_in_state([m.id for m in outgoing_of(later)], "sent"), 5)


def test_message_of_a_brand_without_smtp_fails_with_its_reason_while_the_rest_of_its_batch_is_sent(
        app, brand, smtp_server, agent):
    brands.create_brand("books", {"name": "Bright Books", "address": "hello@books.example"})
    stuck_pending_mark()  # keep the worker away until all are queued: one batch
    offline = TestClient(app, base_url="http://127.0.0.1")
    acme = [submit(offline, n) for n in range(2)]
    books = submit(offline, 2, slug="books")
    acme += [submit(offline, n) for n in range(3, 5)]
    acme_ids = [m.id for r in acme for m in outgoing_of(r)]
    [books_message] = outgoing_of(books)
    assert len(acme_ids) + 1 <= outgoing.BATCH

    with TestClient(app, base_url="http://127.0.0.1") as client:
        failed = wait_until(lambda: (m := Message.get_by_id(books_message.id)).state == "failed"
                            and m, 10, message="the message without SMTP never failed")
        assert failed.error == "No outgoing mail server (SMTP) is set up for this brand."
        assert failed.attempts == 1  # no retry can give a brand a server
        smtp_server.wait_for(len(acme), timeout=10)
        wait_until(lambda: all_in_state(acme_ids, "sent"), 5,
                   message="the other messages of the batch were not all sent")
        assert sorted(recipients(smtp_server)) == [f"customer{n}@example.org" for n in (0, 1, 3, 4)]

        assert login(client, agent.email, PASSWORD).status_code == 303
        page = client.get(f"/tickets/{books}").text
        assert 'class="badge failed"' in page
        assert "No outgoing mail server (SMTP) is set up for this brand." in page
        assert 'class="badge sent"' in client.get(f"/tickets/{acme[0]}").text


def test_reply_after_the_burst_is_over_still_goes_out_promptly(agent_client, brand, smtp_server,
                                                               agent):
    reference = submit(agent_client, 0)
    smtp_server.wait_for(1)
    # The job that sent the confirmation has ended: a new message needs a new job.
    wait_until(not_pending, 5, message="SEND_PENDING stayed set after the job finished")

    message = tickets.reply(reference, "Your order left today.", agent, "test-secret-key")
    reply = smtp_server.wait_for(2, timeout=3)[1]
    assert "Your order left today." in reply.get_body(("plain",)).get_content()
    wait_until(lambda: Message.get_by_id(message.id).state == "sent", 3)
    fragment = agent_client.get(f"/tickets/{reference}/messages/{message.id}").text
    assert 'class="badge sent"' in fragment


def test_messages_of_a_batch_that_failed_for_now_are_each_sent_once_when_the_server_returns(
        client, brand, smtp_server):
    smtp_server.stop()
    references = [submit(client, n) for n in range(3)]
    ids = [m.id for r in references for m in outgoing_of(r)]
    wait_until(lambda: all(Message.get_by_id(i).attempts >= 1 for i in ids), 10,
               message="the messages were not tried while the server was down")
    assert all(Message.get_by_id(i).state in ("queued", "sending") for i in ids)

    smtp_server.start()
    wait_until(lambda: all_in_state(ids, "sent"), 10, message="not every message was retried")
    counts = recipients(smtp_server)
    assert sorted(counts) == [f"customer{n}@example.org" for n in range(3)]
    assert max(counts.values()) == 1


SLOW_DATA_SECONDS = 0.2


class SlowSmtpSink(SmtpSink):
    """An SMTP server that takes a while over each mail, but never long enough to time out."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(SLOW_DATA_SECONDS)
        return await super().handle_DATA(server, session, envelope)


def test_a_batch_that_outlasts_its_lease_to_a_slow_server_sends_each_mail_once_with_another_worker_waiting(
        settings, tmp_path):
    # smtp_timeout 0.6 s: a claim is held for 6 s, and 36 mails at 0.2 s each take 7.2 s. (The
    # server answers well within the timeout: a mail whose answer timed out would be sent again
    # by its retry, which no lease can prevent.)
    settings = settings.with_changes(smtp_timeout=0.6)
    slow = SlowSmtpSink()
    slow.start()
    try:
        app = create_app(settings)
        brands.create_brand("acme", {"name": "Acme Outdoor", "address": "support@acme.example",
                                     "smtp_host": "127.0.0.1", "smtp_port": slow.port,
                                     "smtp_security": "none"})
        stuck_pending_mark()  # the app's own worker stays away: this test plays two workers
        offline = TestClient(app, base_url="http://127.0.0.1")
        count = 36
        references = [submit(offline, n) for n in range(count)]

        # The second worker does what any worker does meanwhile: give overdue claims back
        # to the queue, and send what is queued.
        done = threading.Event()

        def second_worker():
            while not done.is_set():
                outgoing.requeue_overdue()
                outgoing.send_due(settings)
                time.sleep(0.05)
            database.close()

        other = threading.Thread(target=second_worker)
        other.start()
        try:
            outgoing.send_due(settings)  # the first worker takes them all in one batch
        finally:
            done.set()
            other.join()

        counts = recipients(slow)
        assert sorted(counts) == sorted(f"customer{n}@example.org" for n in range(count))
        assert max(counts.values()) == 1, [a for a, c in counts.items() if c > 1]
        for reference in references:
            [confirmation] = outgoing_of(reference)
            assert confirmation.state == "sent" and confirmation.attempts == 1
    finally:
        slow.stop()
