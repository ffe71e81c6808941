"""The queue: filters as bookmarkable links, counters, keyset pages, and the live stream."""
import re
import threading

import httpx2 as httpx

from app.intake import Incoming, receive
from app.models import Ticket
from app.services import brands as brand_service
from app.services import tickets
from tests.conftest import PASSWORD
from tests.helpers import login, wait_until

_counter = iter(range(1, 10**9))


def make_ticket(brand, channel="form", subject=None, email=None, name="Maria Lopez") -> Ticket:
    n = next(_counter)
    result = receive(Incoming(channel=channel, brand=brand, sender_email=email or f"c{n}@example.org",
                              sender_name=name, subject=subject or f"Question {n}", text="Hello?",
                              channel_ref=f"test:{n}"), "test-secret-key")
    return result.ticket


def row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li id="ticket-(\d+)"', html)]


def test_queue_lists_tickets_newest_activity_first_with_their_facts(agent_client, brand):
    first = make_ticket(brand, subject="Broken zipper", name="Tom Becker")
    second = make_ticket(brand, channel="email", subject="Invoice please")
    page = agent_client.get("/").text
    assert row_ids(page)[:2] == [second.id, first.id]
    assert "Broken zipper" in page and "Tom Becker" in page and "Acme Outdoor" in page
    assert f"#{first.id}" in page


def test_default_queue_hides_resolved_and_closed_and_status_all_shows_them(agent_client, brand, agent):
    active = make_ticket(brand)
    done = make_ticket(brand)
    tickets.change_status(done.id, "resolved", agent)
    assert row_ids(agent_client.get("/").text) == [active.id]
    assert set(row_ids(agent_client.get("/?status=all").text)) == {active.id, done.id}
    assert row_ids(agent_client.get("/?status=resolved").text) == [done.id]


def test_filters_by_scope_channel_and_brand(agent_client, brand, agent, admin):
    other_brand = brand_service.create_brand("books", {"name": "Bright Books", "address": "hi@books.example"})
    mine = make_ticket(brand, channel="email")
    theirs = make_ticket(other_brand, channel="form")
    loose = make_ticket(brand, channel="chat")
    tickets.assign(mine.id, agent.id, agent)
    tickets.assign(theirs.id, admin.id, admin)
    assert row_ids(agent_client.get("/?scope=mine").text) == [mine.id]
    assert row_ids(agent_client.get("/?scope=unassigned").text) == [loose.id]
    assert row_ids(agent_client.get("/?channel=email").text) == [mine.id]
    assert row_ids(agent_client.get("/?brand=books").text) == [theirs.id]
    assert row_ids(agent_client.get("/?status=all&channel=chat").text) == [loose.id]


def test_counters_show_what_each_filter_would_list(agent_client, brand, agent):
    for _ in range(3):
        make_ticket(brand, channel="email")
    done = make_ticket(brand, channel="form")
    tickets.change_status(done.id, "closed", agent)
    page = agent_client.get("/").text

    def count(label):
        match = re.search(rf'>{label} <span class="count">(\d+)</span>', page)
        return int(match.group(1))

    assert count("Active") == 3
    assert count("Closed") == 1
    assert count("All") == 4
    assert count("Email") == 3
    assert count("Form") == 0  # the only form ticket is closed, and the status filter is kept
    assert count("Unassigned") == 3


def test_a_brand_added_shows_in_the_queue_filters_at_once(agent_client, brand):
    make_ticket(brand)
    assert "Bright Books" not in agent_client.get("/").text
    brand_service.create_brand("books", {"name": "Bright Books", "address": "hi@books.example"})
    page = agent_client.get("/").text
    assert re.search(r'<a href="/\?brand=books" >Bright Books <span class="count">0</span>', page)


def test_keyset_pages_walk_every_ticket_once(agent_client, brand):
    made = {make_ticket(brand).id for _ in range(120)}
    seen, url = [], "/"
    while url:
        page = agent_client.get(url).text
        seen.extend(row_ids(page))
        match = re.search(r'href="(/\?[^"]*before=[^"]+)" rel="next"', page)
        url = match.group(1).replace("&amp;", "&") if match else ""
    assert len(seen) == 120 and set(seen) == made


def test_unknown_filter_values_fall_back_to_defaults(agent_client, brand):
    ticket = make_ticket(brand)
    response = agent_client.get("/?status=bogus&scope=<script>&before=garbage")
    assert response.status_code == 200
    assert row_ids(response.text) == [ticket.id]


def test_htmx_request_gets_the_queue_fragment_only(agent_client, brand):
    make_ticket(brand)
    fragment = agent_client.get("/", headers={"hx-request": "true"}).text
    assert fragment.lstrip().startswith('<section id="queue"') and "<html" not in fragment


class StreamReader:
    """Reads a queue stream in a thread, collecting (event id, data) pairs."""

    def __init__(self, url: str, cookies, headers=None):
        self.events: list = []
        self.client = httpx.Client(cookies=cookies, timeout=10)
        self.url, self.headers = url, headers or {}
        self.status = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        event_id, data = None, []
        try:
            with self.client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        event_id = int(line[3:].strip())
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line == "" and data:
                        self.events.append((event_id, "\n".join(data)))
                        event_id, data = None, []
        except httpx.HTTPError:
            pass

    def close(self):
        self.client.close()


def _live_login(live_server, agent):
    client = httpx.Client(base_url=live_server.url)
    assert login(client, agent.email, PASSWORD).status_code == 303
    return client


def test_new_ticket_is_pushed_to_open_queue_streams(live_server, brand, agent):
    client = _live_login(live_server, agent)
    stream = StreamReader(f"{live_server.url}/events/queue", client.cookies)
    wait_until(lambda: stream.status == 200)
    ticket = make_ticket(brand, subject="Live one")
    pushed = wait_until(lambda: [d for _, d in stream.events if f'id="ticket-{ticket.id}"' in d], 5)
    assert "Live one" in pushed[0]
    assert 'hx-swap-oob="afterbegin:#queue-rows"' in pushed[0]
    assert "delete:" not in pushed[0]  # a new ticket has no old row to take out
    stream.close()


def test_ticket_leaving_a_filter_is_removed_from_that_stream(live_server, brand, agent):
    client = _live_login(live_server, agent)
    ticket = make_ticket(brand)
    stream = StreamReader(f"{live_server.url}/events/queue?status=new", client.cookies)
    wait_until(lambda: stream.status == 200)
    tickets.change_status(ticket.id, "pending", agent)
    pushed = wait_until(lambda: [d for _, d in stream.events if f"ticket-{ticket.id}" in d], 5)
    assert f'hx-swap-oob="delete:#ticket-{ticket.id}"' in pushed[-1]
    assert "afterbegin" not in pushed[-1]
    stream.close()


def test_a_later_page_of_the_queue_takes_no_newer_tickets_live(live_server, brand, agent):
    client = _live_login(live_server, agent)
    older = make_ticket(brand, subject="On page two")
    cursor = f"{Ticket.get_by_id(older.id).last_activity_at.isoformat()},{older.id + 1}"
    stream = StreamReader(f"{live_server.url}/events/queue?before={cursor}", client.cookies)
    wait_until(lambda: stream.status == 200)
    newer = make_ticket(brand, subject="Belongs on page one")
    tickets.change_status(older.id, "open", agent)  # active now: it moves to page one too
    pushed = wait_until(lambda: [d for _, d in stream.events if f"ticket-{older.id}" in d], 5)
    assert f'hx-swap-oob="delete:#ticket-{older.id}"' in pushed[-1]
    assert not [d for _, d in stream.events if f'id="ticket-{newer.id}"' in d]
    stream.close()


def test_reconnecting_stream_catches_up_from_last_event_id(live_server, brand, agent):
    client = _live_login(live_server, agent)
    stream = StreamReader(f"{live_server.url}/events/queue", client.cookies)
    wait_until(lambda: stream.status == 200)
    seen = make_ticket(brand, subject="Seen before the drop")
    wait_until(lambda: stream.events, 5)
    last_id = stream.events[-1][0]
    stream.close()  # the browser loses its connection...

    missed = [make_ticket(brand, subject=f"Missed {n}") for n in range(3)]  # ...while these arrive

    again = StreamReader(f"{live_server.url}/events/queue", client.cookies,
                         headers={"Last-Event-ID": str(last_id)})
    wait_until(lambda: all(any(f"ticket-{t.id}" in d for _, d in again.events) for t in missed), 5,
               message="the reconnected stream did not get the missed tickets")
    assert not any(f'id="ticket-{seen.id}"' in d and i <= last_id for i, d in again.events)
    assert all(i > last_id for i, _ in again.events)
    again.close()


def test_stream_of_a_page_read_on_an_empty_log_gets_what_came_before_it_connected(live_server, brand, agent):
    client = _live_login(live_server, agent)
    ticket = make_ticket(brand, subject="Arrived between page and stream")  # the page said after=0
    stream = StreamReader(f"{live_server.url}/events/queue?after=0", client.cookies)
    wait_until(lambda: any(f'id="ticket-{ticket.id}"' in d for _, d in stream.events), 5,
               message="the ticket created before the stream connected never arrived")
    stream.close()


def test_a_finished_ticket_shows_no_waiting_time(agent_client, brand, agent):
    waiting, closed = make_ticket(brand), make_ticket(brand)
    tickets.change_status(closed.id, "closed", agent)
    page = agent_client.get("/?status=all").text

    def waiting_cell(ticket_id):
        row = page.split(f'id="ticket-{ticket_id}"')[1].split("</li>")[0]
        return row.split('class="waiting">')[1].split("</span>\n")[0]

    assert "waiting since" in waiting_cell(waiting.id)
    assert "waiting since" not in waiting_cell(closed.id)
