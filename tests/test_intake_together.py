"""Arrivals stored together (one transaction): every one is kept, a duplicate gets the ticket
stored before, and one that fails takes none of the others with it."""
import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from app.intake import Incoming, WebIntake, receive_together
from app.models import Customer, Message, Ticket


def arrival(brand, n: int, ref: str | None = None) -> Incoming:
    return Incoming(channel="form", brand=brand, sender_email=f"visitor{n}@example.org",
                    sender_name=f"Visitor {n}", subject=f"Question {n}", text=f"Hello {n}",
                    channel_ref=ref or f"form:{n:032x}")


def test_arrivals_stored_together_each_become_their_own_ticket(app, brand):
    outcomes = receive_together([arrival(brand, n) for n in range(5)], "test-secret-key")
    assert [o.ticket.subject for o in outcomes] == [f"Question {n}" for n in range(5)]
    assert len({o.ticket.id for o in outcomes}) == 5
    assert Ticket.select().count() == 5 and Customer.select().count() == 5


def test_a_duplicate_among_arrivals_gets_the_ticket_already_stored(app, brand):
    first, again, other = receive_together(
        [arrival(brand, 1), arrival(brand, 1), arrival(brand, 2)], "test-secret-key")
    assert first.created and not first.duplicate
    assert again.duplicate and again.ticket.id == first.ticket.id
    assert other.created and other.ticket.id != first.ticket.id
    assert Ticket.select().count() == 2
    assert Message.select().where(Message.direction == "incoming").count() == 2


def test_an_arrival_that_fails_is_undone_alone(app, brand):
    broken = arrival(brand, 2)
    broken.brand = None  # a ticket needs its brand: storing this one fails halfway
    before, failed, after = receive_together(
        [arrival(brand, 1), broken, arrival(brand, 3)], "test-secret-key")
    assert isinstance(failed, Exception)
    assert before.ticket.subject == "Question 1" and after.ticket.subject == "Question 3"
    assert sorted(t.subject for t in Ticket.select()) == ["Question 1", "Question 3"]
    # Nothing of the failed one is left half-stored: its customer went with it.
    assert not Customer.select().where(Customer.email == "visitor2@example.org").exists()


@pytest.fixture
def settings(settings):
    # The simultaneous posts come from one test client's address: let the per-IP limit allow it.
    return settings.with_changes(form_rate_per_ip="1000/minute")


def test_simultaneous_contact_submissions_each_get_their_own_reference(client, app, brand):
    """Posts that reach the server at once are stored together, more than one batch of them;
    each visitor still gets the reference of their own ticket, and the same submission sent
    twice is one ticket."""
    count = WebIntake.BATCH + 10
    def form(n, submission):
        return {"name": f"Visitor {n}", "email": f"visitor{n}@example.org",
                "subject": f"Question {n}", "message": f"Hello {n}", "website": "",
                "submission_id": submission}

    async def post_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            posts = [http.post("/contact/acme", data=form(n, f"{n:032x}")) for n in range(count)]
            posts.append(http.post("/contact/acme", data=form(3, f"{3:032x}")))  # sent twice
            return await asyncio.gather(*posts)

    # In a thread of its own: earlier browser tests may leave an event loop on this one.
    with ThreadPoolExecutor(1) as thread:
        responses = thread.submit(asyncio.run, post_all()).result()
    assert [r.status_code for r in responses] == [200] * (count + 1)
    references = [int(re.search(r'class="ticket-ref">#(\d+)<', r.text).group(1))
                  for r in responses]
    assert len(set(references[:count])) == count and references[count] == references[3]
    for n, reference in enumerate(references[:count]):
        ticket = Ticket.get_by_id(reference)
        assert ticket.subject == f"Question {n}"
        assert ticket.customer.email == f"visitor{n}@example.org"
    assert Ticket.select().count() == count
