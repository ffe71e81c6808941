"""The chat widget's service and HTTP API: presence, hours, live chats, offline messages, the
visitor token, origins, sizes, rate limits, idle chats, and the streams of both sides."""
import gzip
import json
import re
import threading
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest

from app.models import Agent, ChatSession, Event, Message, Ticket, utcnow
from app.services import agents, brands, chat, hours, tickets
from tests.conftest import PASSWORD, wait_for_state
from tests.helpers import CSRF, login, post_form, wait_until
from workers import tasks

ORIGIN = "https://shop.example"
VISITOR = {"name": "Maria Lopez", "email": "maria@example.org", "message": "Do you ship to Norway?",
           "page_url": "https://shop.example/tents/alpine-2"}


@pytest.fixture
def settings(settings):
    return settings.with_changes(chat_rate_per_token="5/minute", chat_start_rate_per_ip="4/hour",
                                 chat_rate_per_ip="60/minute")


def brand_values(brand, **changes) -> dict:
    return {**{name: getattr(brand, name) for name in brands.FIELDS}, **changes}


@pytest.fixture
def shop(brand):
    """The brand, with the widget allowed on https://shop.example."""
    return brands.update_brand(brand.slug, brand_values(brand, allowed_origins=ORIGIN))


@pytest.fixture
def online(agent):
    """An agent who is online (as after a request of theirs)."""
    agents.record_seen(agent.id, force=True)
    return agent


def widget(client, method, path, token=None, origin=ORIGIN, slug="acme", **kwargs):
    headers = {**({"Origin": origin} if origin else {}),
               **({"X-Visitor-Token": token} if token else {}), **kwargs.pop("headers", {})}
    return client.request(method, f"/widget/{slug}{path}", headers=headers, **kwargs)


def start(client, **changes):
    response = widget(client, "POST", "/chats", json={**VISITOR, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def say(client, token, text, client_id=None):
    return widget(client, "POST", "/chats/messages", token,
                  json={"text": text, **({"client_id": client_id} if client_id else {})})


# Presence and hours

def test_widget_offers_a_chat_only_while_an_agent_is_online(client, shop, agent):
    status = widget(client, "GET", "/status").json()
    assert status["show"] == "offline" and not status["online"]
    assert "Nobody is available" in status["notice"]
    assert status["name"] == "Acme Outdoor" and status["color"] == "#2f5fd0"

    agents.record_seen(agent.id, force=True)
    status = widget(client, "GET", "/status").json()
    assert status["show"] == "chat" and status["online"] and status["notice"] == ""


def test_agent_is_online_after_logging_in_and_offline_when_away_or_logged_out(client, shop, agent):
    def shows():
        return widget(client, "GET", "/status").json()["show"]

    assert login(client, agent.email, PASSWORD).status_code == 303
    assert shows() == "chat"
    page = client.get("/").text
    assert "Available" in page and "Set me away" in page

    assert post_form(client, "/presence", {"away": "1"}, page="/").status_code == 200  # back to /
    assert Agent.get_by_id(agent.id).away and shows() == "offline"
    assert "Set me available" in client.get("/").text

    post_form(client, "/presence", {"away": "0"}, page="/")
    assert shows() == "chat"
    post_form(client, "/logout", {}, page="/")
    assert shows() == "offline"


def test_agent_not_seen_within_the_online_window_is_not_online(client, shop, online, settings):
    Agent.update(last_seen_at=utcnow() - timedelta(minutes=settings.agent_online_minutes + 1)).execute()
    assert widget(client, "GET", "/status").json()["show"] == "offline"


def test_outside_business_hours_the_widget_offers_a_message_even_with_agents_online(client, shop, online):
    tomorrow = hours.DAYS[(utcnow().weekday() + 1) % 7]
    brands.update_brand("acme", brand_values(shop, business_hours=f"{tomorrow} 09:00-17:00",
                                             timezone="UTC"))
    status = widget(client, "GET", "/status").json()
    assert status["online"] and not status["open"] and status["show"] == "offline"
    assert f"our hours: {tomorrow} 09:00-17:00, UTC time" in status["notice"]
    refused = widget(client, "POST", "/chats", json=VISITOR)
    assert refused.status_code == 409 and refused.json()["code"] == "unavailable"


def test_business_hours_are_read_in_the_brands_time_zone():
    text = "mon-fri 09:00-17:00, sat 10:00-14:00"
    monday_0830_utc = datetime(2024, 3, 4, 8, 30)  # 09:30 in Berlin (winter time)
    assert hours.is_open(text, "Europe/Berlin", monday_0830_utc)
    assert not hours.is_open(text, "UTC", monday_0830_utc)
    assert not hours.is_open(text, "Europe/Berlin", datetime(2024, 3, 10, 12, 0))  # Sunday
    assert hours.is_open(text, "Europe/Berlin", datetime(2024, 3, 9, 12, 0))  # Saturday 13:00
    assert hours.is_open("", "UTC", monday_0830_utc)  # no hours: always open
    assert hours.is_open("fri-mon 20:00-24:00", "UTC", datetime(2024, 3, 3, 23, 59))  # wraps


def test_admin_sets_widget_settings_and_sees_the_script_tag(admin_client, brand, settings):
    page = admin_client.get("/admin/brands/acme").text
    assert (f'&lt;script src="{settings.base_url}/widget.js" data-brand="acme" async&gt;'
            f'&lt;/script&gt;') in page
    values = brand_values(brand, allowed_origins="https://Shop.example/\nhttp://127.0.0.1:8080",
                          widget_color="#AA3300", business_hours="mon-fri 09:00-17:00",
                          timezone="Europe/Berlin", ack_enabled="on")
    response = post_form(admin_client, "/admin/brands/acme", values, page="/admin/brands/acme")
    assert response.status_code == 200
    saved = brands.get_brand("acme")
    assert brands.allowed_origins(saved) == ["https://shop.example", "http://127.0.0.1:8080"]
    assert (saved.widget_color, saved.timezone) == ("#aa3300", "Europe/Berlin")


@pytest.mark.parametrize("field, value, words", [
    ("allowed_origins", "https://shop.example/checkout", "without a path"),
    ("widget_color", "red", "hex colour"),
    ("business_hours", "weekdays 9-5", "is not like"),
    ("business_hours", "mon 18:00-09:00", "over midnight"),
    ("timezone", "Mars/Olympus", "is not a time zone"),
])
def test_bad_widget_settings_are_refused_with_the_field_and_kept(admin_client, brand, field,
                                                                 value, words):
    response = post_form(admin_client, "/admin/brands/acme", brand_values(brand, **{field: value}),
                         page="/admin/brands/acme")
    assert response.status_code == 400 and words in response.text
    assert f'name="{field}"' in response.text and 'aria-invalid="true"' in response.text
    assert value.replace("<", "&lt;") in response.text


# Live chats

def test_live_chat_is_a_live_chat_ticket_with_the_visitors_messages(client, shop, online):
    started = start(client)
    assert started["state"] == "live" and len(started["token"]) >= 40
    assert [m["text"] for m in started["messages"]] == ["Do you ship to Norway?"]
    ticket = Ticket.get()
    assert ticket.channel == "chat" and ticket.is_live and ticket.status == "new"
    assert ticket.customer.email == "maria@example.org" and started["reference"] == f"#{ticket.id}"
    session = ChatSession.get()
    assert session.token_hash == chat.hash_token(started["token"])  # only the hash is kept
    assert started["token"] not in json.dumps(list(ChatSession.select().dicts()), default=str)
    assert session.page_url == VISITOR["page_url"] and session.origin == ORIGIN

    assert say(client, started["token"], "To Oslo, please.").status_code == 201
    texts = [m.body_text for m in Message.select().where(Message.ticket == ticket).order_by(Message.id)]
    assert texts == ["Do you ship to Norway?", "To Oslo, please."]


def test_starting_a_chat_with_nobody_online_is_refused_with_a_clear_error(client, shop, agent):
    response = widget(client, "POST", "/chats", json=VISITOR)
    assert response.status_code == 409
    assert response.json()["code"] == "unavailable" and "Leave a message" in response.json()["error"]
    assert Ticket.select().count() == 0


def test_a_message_sent_twice_with_the_same_client_id_is_stored_once(client, shop, online):
    token = start(client)["token"]
    first = say(client, token, "Hello again", client_id="m-1")
    again = say(client, token, "Hello again", client_id="m-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    assert Message.select().where(Message.body_text == "Hello again").count() == 1


def test_agent_answer_on_a_live_chat_goes_to_the_chat_and_not_by_email(agent_client, shop, smtp_server):
    token = start(agent_client)["token"]
    ticket = Ticket.get()
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "Live chat." in page and "Your answer goes to the chat at once." in page
    assert "Written from" in page and VISITOR["page_url"] in page

    post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "Yes, in 4 to 6 days."},
              page=f"/tickets/{ticket.id}")
    answer = Message.get(Message.direction == "outgoing")
    assert answer.state == "sent" and answer.to_address == ""
    assert "in the chat" in agent_client.get(f"/tickets/{ticket.id}").text
    transcript = widget(agent_client, "GET", "/chats/transcript", token).json()
    assert transcript["messages"][-1] == {**transcript["messages"][-1], "from": "agent",
                                          "name": "Sam Support", "text": "Yes, in 4 to 6 days."}
    tasks.requeue_overdue_messages.call_local()
    assert smtp_server.messages == []


def test_htmx_answer_on_a_live_chat_gets_back_the_empty_reply_box_and_the_status(agent_client, shop):
    start(agent_client)
    ticket = Ticket.get()
    csrf = CSRF.search(agent_client.get(f"/tickets/{ticket.id}").text).group(1)

    def answer(text):
        return agent_client.post(f"/tickets/{ticket.id}/reply", data={"csrftoken": csrf, "text": text},
                                 headers={"HX-Request": "true"})

    response = answer("Hello!")
    assert response.headers["HX-Retarget"] == "#reply-form"
    assert response.text.lstrip().startswith('<form id="reply-form"') and "Hello!" not in response.text
    # The new ticket became open with the answer: the status control comes along (oob).
    status = re.search(r'<form id="ticket-status".*?</form>', response.text, re.DOTALL).group(0)
    assert 'hx-swap-oob="true"' in status and '<option value="open" selected>' in status
    assert '<div id="ticket"' not in response.text
    assert Message.get(Message.body_text == "Hello!").in_chat


def test_notes_and_confirmations_never_reach_the_visitor(agent_client, shop, smtp_server):
    token = widget(agent_client, "POST", "/offline", json=VISITOR).json()["token"]
    smtp_server.wait_for(1)  # the confirmation mail
    ticket = Ticket.get()
    tickets.add_note(ticket.id, "Customer seems upset; be gentle.", Agent.get())
    texts = [m["text"] for m in widget(agent_client, "GET", "/chats/transcript", token).json()["messages"]]
    assert texts == ["Do you ship to Norway?"]


def test_visitor_can_end_the_chat_and_then_answers_go_by_email(agent_client, shop, smtp_server):
    token = start(agent_client)["token"]
    ended = widget(agent_client, "POST", "/chats/end", token)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    ticket = Ticket.get()
    assert not ticket.is_live and ticket.is_active
    refused = say(agent_client, token, "One more thing")
    assert refused.status_code == 409 and refused.json()["code"] == "ended"

    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "The chat has ended." in page and "goes by email to" in page
    post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "Following up by email."},
              page=f"/tickets/{ticket.id}")
    mail = smtp_server.wait_for(1)[0]
    assert mail["To"].addresses[0].addr_spec == "maria@example.org"
    assert "Following up by email." in mail.get_body(("plain",)).get_content()


def test_chat_whose_visitor_left_ends_and_stays_in_the_queue(agent_client, shop, settings):
    token = start(agent_client)["token"]
    widget(agent_client, "POST", "/chats/typing", token)
    assert Event.select().where(Event.kind == "chat.typing").count() == 1
    tasks.end_idle_chats.call_local()
    assert Ticket.get().is_live  # the visitor was seen a moment ago

    gone = utcnow() - timedelta(minutes=settings.chat_idle_minutes + 1)
    ChatSession.update(last_visitor_seen_at=gone).execute()
    tasks.end_idle_chats.call_local()
    ticket = Ticket.get()
    assert not ticket.is_live and ticket.is_active and ChatSession.get().state == "ended"
    assert Event.select().where(Event.kind == "chat.typing").count() == 0  # signals are dropped
    history = agent_client.get(f"/tickets/{ticket.id}").text
    assert "ended the chat (the visitor left)" in history
    row = agent_client.get("/").text
    assert f'id="ticket-{ticket.id}"' in row and 'badge live' not in row


def test_agent_ends_a_live_chat_and_the_answer_then_goes_by_email(agent_client, shop,
                                                                   smtp_server):
    token = start(agent_client)["token"]
    ticket = Ticket.get()
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "End the chat" in page
    response = post_form(agent_client, f"/tickets/{ticket.id}/chat/end", {},
                         page=f"/tickets/{ticket.id}", follow_redirects=False)
    assert response.status_code == 303  # without JavaScript: back to the ticket

    ticket = Ticket.get()
    assert not ticket.is_live and ChatSession.get().state == "ended"
    refused = say(agent_client, token, "Hello?")
    assert refused.status_code == 409 and refused.json()["code"] == "ended"
    assert widget(agent_client, "GET", "/chats/transcript", token).json()["state"] == "ended"
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "Sam Support" in page and "ended the chat (an agent closed it)" in page
    assert "End the chat" not in page
    post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "We ship to Norway."},
              page=f"/tickets/{ticket.id}")
    mail = smtp_server.wait_for(1)[-1]
    assert mail["To"].addresses[0].addr_spec == "maria@example.org"
    assert "We ship to Norway." in mail.get_body(("plain",)).get_content()


def test_queue_row_of_a_live_chat_has_a_live_badge(agent_client, shop):
    start(agent_client)
    row = agent_client.get("/").text
    assert 'class="badge live">live</span>' in row


def test_typing_is_not_in_the_history(agent_client, shop):
    token = start(agent_client)["token"]
    assert widget(agent_client, "POST", "/chats/typing", token).status_code == 204
    ticket = Ticket.get()
    csrf = CSRF.search(agent_client.get(f"/tickets/{ticket.id}").text).group(1)
    assert agent_client.post(f"/tickets/{ticket.id}/typing",
                             headers={"x-csrftoken": csrf}).status_code == 204
    assert Event.select().where(Event.kind == "chat.typing").count() == 2
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "chat.typing" not in page and "started a live chat" in page


def test_markup_typed_in_the_chat_is_shown_as_text(agent_client, shop):
    token = start(agent_client, name="<b>Eve</b>", message="<script>alert(1)</script>")["token"]
    say(agent_client, token, "<img src=x onerror=alert(1)>")
    page = agent_client.get(f"/tickets/{Ticket.get().id}").text
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;Eve&lt;/b&gt;" in page


def test_page_address_must_be_a_web_address(client, shop, online):
    response = widget(client, "POST", "/chats", json={**VISITOR, "page_url": "javascript:alert(1)"})
    assert response.status_code == 400 and response.json()["field"] == "page_url"


# Offline messages

def test_offline_message_becomes_a_chat_ticket_and_the_answer_is_mailed(client, shop, agent,
                                                                        smtp_server):
    response = widget(client, "POST", "/offline", json=VISITOR)
    assert response.status_code == 201
    left = response.json()
    ticket = Ticket.get()
    assert left["state"] == "ended" and left["reference"] == f"#{ticket.id}"
    assert ticket.channel == "chat" and not ticket.is_live and ticket.status == "new"
    assert ticket.customer.email == "maria@example.org" and ticket.customer.name == "Maria Lopez"
    confirmation = smtp_server.wait_for(1)[0]
    assert confirmation["To"].addresses[0].addr_spec == "maria@example.org"

    assert login(client, agent.email, PASSWORD).status_code == 303
    page = client.get(f"/tickets/{ticket.id}").text
    assert "Left as a message." in page and VISITOR["page_url"] in page
    post_form(client, f"/tickets/{ticket.id}/reply", {"text": "We ship to Norway: 4-6 days."},
              page=f"/tickets/{ticket.id}")
    wait_for_state(Message.get(Message.body_text.contains("4-6 days")).id, "sent")
    reply = smtp_server.wait_for(2)[1]
    assert reply["To"].addresses[0].addr_spec == "maria@example.org"
    assert f"[#{ticket.id}]" in reply["Subject"]
    assert reply["In-Reply-To"] == confirmation["Message-ID"]
    # The visitor sees the answer in the widget too: the transcript is the conversation.
    texts = [m["text"] for m in widget(client, "GET", "/chats/transcript", left["token"]).json()["messages"]]
    assert texts == ["Do you ship to Norway?", "We ship to Norway: 4-6 days."]


# The visitor token

def test_a_token_that_is_not_theirs_is_refused_without_data(client, shop, online, brand):
    token = start(client)["token"]
    brands.create_brand("books", {"name": "Bright Books", "address": "hello@books.example",
                                  "allowed_origins": ORIGIN})
    for method, path in (("GET", "/chats/transcript"), ("POST", "/chats/typing"),
                         ("POST", "/chats/end")):
        unknown = widget(client, method, path, "not-a-real-token-" + "x" * 30)
        assert unknown.status_code == 404 and set(unknown.json()) == {"error", "code", "field"}
        other_brand = widget(client, method, path, token, slug="books")
        assert other_brand.status_code == 403 and "Norway" not in other_brand.text
    assert widget(client, "GET", "/chats/transcript").status_code == 404  # no token at all
    stream = client.get(f"/widget/books/chats/stream?token={token}", headers={"Origin": ORIGIN})
    assert stream.status_code == 403
    assert say(client, token + "x", "Let me in").status_code == 404
    assert Message.select().count() == 1 and ChatSession.get().state == "live"


def test_a_token_used_from_another_allowed_site_is_refused(client, shop, online):
    token = start(client)["token"]
    brands.update_brand("acme", brand_values(shop, allowed_origins=f"{ORIGIN}\nhttps://other.example"))
    response = widget(client, "GET", "/chats/transcript", token, origin="https://other.example")
    assert response.status_code == 403 and "Norway" not in response.text


# Origins

def test_a_site_not_allowed_gets_no_answer_it_could_read(client, shop, online):
    for origin in ("https://evil.example", None, "null"):
        preflight = widget(client, "OPTIONS", "/chats", origin=origin,
                           headers={"Access-Control-Request-Method": "POST"})
        status = widget(client, "GET", "/status", origin=origin)
        started = widget(client, "POST", "/chats", origin=origin, json=VISITOR)
        for response in (preflight, status, started):
            assert response.status_code == 403, (origin, response.status_code)
            assert "access-control-allow-origin" not in response.headers
    assert Ticket.select().count() == 0


def test_an_allowed_site_gets_cors_headers_for_itself_only(client, shop):
    preflight = widget(client, "OPTIONS", "/chats/messages",
                       headers={"Access-Control-Request-Method": "POST",
                                "Access-Control-Request-Headers": "content-type, x-visitor-token"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Visitor-Token" in preflight.headers["access-control-allow-headers"]
    status = widget(client, "GET", "/status")
    assert status.headers["access-control-allow-origin"] == ORIGIN and status.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in status.headers  # no cookies, ever


def test_unknown_brand_is_not_found(client, shop):
    assert widget(client, "GET", "/status", slug="nope").status_code == 404


# Sizes

@pytest.mark.parametrize("field, size", [("name", 201), ("email", 255), ("page_url", 2001)])
def test_oversize_visitor_fields_are_refused_per_field(client, shop, online, field, size):
    value = ("https://shop.example/" + "p" * size) if field == "page_url" else "x" * size
    if field == "email":
        value = "m" * (size - 12) + "@example.org"
    response = widget(client, "POST", "/chats", json={**VISITOR, field: value})
    assert response.status_code == 400
    assert response.json()["field"] == field and "too long" in response.json()["error"]
    assert Ticket.select().count() == 0


def test_oversize_message_is_refused_with_its_length(client, shop, online, settings):
    too_long = "x" * (settings.chat_max_message_chars + 1)
    first = widget(client, "POST", "/chats", json={**VISITOR, "message": too_long})
    assert first.status_code == 400 and first.json()["field"] == "message"
    assert "at most 5,000" in first.json()["error"]
    token = start(client)["token"]
    response = say(client, token, too_long)
    assert response.status_code == 400 and "too long" in response.json()["error"]


def test_oversize_request_is_refused_before_it_is_read(client, shop, online):
    response = widget(client, "POST", "/chats", content=b'{"name": "' + b"x" * 70_000 + b'"}',
                      headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "too_large"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"name": 5, "email": "a@b.example"}'])
def test_malformed_requests_get_a_clear_error(client, shop, online, body):
    response = widget(client, "POST", "/chats", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]


def test_missing_details_are_named(client, shop, online):
    response = widget(client, "POST", "/chats", json={**VISITOR, "email": "maria at example"})
    assert response.status_code == 400 and response.json()["field"] == "email"
    assert "does not look right" in response.json()["error"]
    response = widget(client, "POST", "/chats", json={**VISITOR, "name": " "})
    assert response.json()["field"] == "name"


# Rate limits

def test_messages_of_one_conversation_are_rate_limited(client, shop, online):
    token = start(client)["token"]
    for n in range(5):
        assert say(client, token, f"message {n}").status_code == 201
    refused = say(client, token, "one too many")
    assert refused.status_code == 429 and "please wait" in refused.json()["error"]
    assert refused.headers["access-control-allow-origin"] == ORIGIN  # the widget can read why
    assert not Message.select().where(Message.body_text == "one too many").exists()


def test_new_conversations_from_one_address_are_rate_limited(client, shop, online):
    for _ in range(4):
        start(client)
    refused = widget(client, "POST", "/offline", json=VISITOR)
    assert refused.status_code == 429 and "wait a while" in refused.json()["error"]
    assert Ticket.select().count() == 4


def test_all_widget_requests_from_one_address_are_rate_limited(client, shop):
    codes = [widget(client, "GET", "/status").status_code for _ in range(61)]
    assert codes[:60] == [200] * 60 and codes[60] == 429


# The script

def test_widget_script_is_served_small_cacheable_and_compressed(client):
    plain = client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "max-age" in plain.headers["cache-control"]
    assert len(plain.content) < 20_000
    packed = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < 10_000
    assert len(gzip.compress(plain.content)) < 10_000
    assert client.get("/widget.js", headers={"If-None-Match": plain.headers["etag"]}).status_code == 304
    assert "innerHTML" not in plain.text and "eval(" not in plain.text


# Streams

class SseReader:
    """Reads a server-sent event stream in a thread: (event, id, data) triples."""

    def __init__(self, url: str, headers=None, cookies=None):
        self.events: list = []
        self.status = None
        self.client = httpx.Client(timeout=10, cookies=cookies)
        self.thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self.thread.start()

    def _read(self, url, headers):
        kind, event_id, data = "message", None, []
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line == "" and data:
                        self.events.append((kind, event_id, "\n".join(data)))
                        kind, event_id, data = "message", None, []
        except httpx.HTTPError:
            pass

    def of(self, kind: str) -> list:
        return [(event_id, data) for k, event_id, data in self.events if k == kind]

    def close(self):
        self.client.close()


def test_visitor_stream_brings_the_agents_answer_typing_and_the_end(live_server, shop, online):
    http = httpx.Client(base_url=live_server.url)
    token = start(http)["token"]
    stream = SseReader(f"{live_server.url}/widget/acme/chats/stream?token={token}",
                       headers={"Origin": ORIGIN})
    wait_until(lambda: stream.of("message"), 5, message="the first message never came")
    assert stream.status == 200
    assert json.loads(stream.of("message")[0][1])["text"] == "Do you ship to Norway?"

    ticket = Ticket.get()
    chat.agent_typing(ticket.id, online)
    typing = wait_until(lambda: stream.of("typing"), 5)
    assert json.loads(typing[0][1]) == {"name": "Sam Support"}
    tickets.reply(ticket.id, "Yes we do!", online, "test-secret-key")
    answer = wait_until(lambda: [d for _, d in stream.of("message") if "Yes we do!" in d], 5)
    assert json.loads(answer[0])["from"] == "agent"

    widget(http, "POST", "/chats/end", token)
    ended = wait_until(lambda: stream.of("state"), 5)
    assert json.loads(ended[0][1]) == {"state": "ended"}
    stream.close()


def test_visitor_stream_resumes_after_the_last_message_it_had(live_server, shop, online):
    http = httpx.Client(base_url=live_server.url)
    token = start(http)["token"]
    first_id = Message.get().id
    say(http, token, "Second")
    stream = SseReader(f"{live_server.url}/widget/acme/chats/stream?token={token}",
                       headers={"Origin": ORIGIN, "Last-Event-ID": str(first_id)})
    resumed = wait_until(lambda: stream.of("message"), 5)
    assert [json.loads(d)["text"] for _, d in resumed] == ["Second"]
    stream.close()


def test_ticket_stream_appends_visitor_messages_and_shows_typing(live_server, shop, online):
    http = httpx.Client(base_url=live_server.url)
    token = start(http)["token"]
    ticket = Ticket.get()
    desk = httpx.Client(base_url=live_server.url)
    assert login(desk, online.email, PASSWORD).status_code == 303
    last = Message.get().id
    stream = SseReader(f"{live_server.url}/tickets/{ticket.id}/stream?after={last}&live=1",
                       cookies=desk.cookies)
    wait_until(lambda: stream.status == 200, 5)

    widget(http, "POST", "/chats/typing", token)
    typing = wait_until(lambda: [d for _, d in stream.of("ticket") if "is typing" in d], 5)
    assert "Maria Lopez" in typing[0] and 'id="chat-typing"' in typing[0]
    say(http, token, "Is shipping free?")
    pushed = wait_until(lambda: [(i, d) for i, d in stream.of("ticket") if "Is shipping free?" in d], 5)
    event_id, fragment = pushed[0]
    assert event_id == str(Message.get(Message.body_text == "Is shipping free?").id)
    assert 'hx-swap-oob="beforeend:ol.messages"' in fragment and 'class="message incoming' in fragment

    widget(http, "POST", "/chats/end", token)
    state = wait_until(lambda: [d for _, d in stream.of("ticket") if 'id="chat-state"' in d], 5)
    assert "The chat has ended." in state[0]
    stream.close()


def test_ticket_stream_needs_a_login(live_server, shop):
    assert httpx.get(f"{live_server.url}/tickets/1/stream").status_code == 401
