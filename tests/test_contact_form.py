"""The public contact form: a ticket per valid submission, clear errors, no injection, no spam."""
import re
from urllib.parse import urlencode

from app.models import Customer, Message, Ticket
from tests.helpers import post_form

VALID = {"name": "Maria Lopez", "email": "maria@example.org", "subject": "Parcel",
         "message": "Where is my parcel?"}


def submit(client, data, slug="acme"):
    return post_form(client, f"/contact/{slug}", data)


def test_valid_submission_becomes_a_form_ticket_and_thanks_with_its_reference(client, brand, smtp_server):
    response = submit(client, VALID)
    assert response.status_code == 200
    reference = int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1))
    ticket = Ticket.get_by_id(reference)
    assert ticket.channel == "form" and ticket.brand_id == brand.id and ticket.subject == "Parcel"
    assert ticket.customer.email == "maria@example.org" and ticket.customer.name == "Maria Lopez"
    confirmation = smtp_server.wait_for(1)[0]
    assert confirmation["To"].addresses[0].addr_spec == "maria@example.org"
    assert f"[#{reference}]" in confirmation["Subject"]
    assert confirmation["Auto-Submitted"] == "auto-replied"
    # Signed once, as replies are: the signature under "-- ", not the brand's name before it.
    text = confirmation.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "-- \nAcme care team" in text and "Acme Outdoor\nAcme care team" not in text
    html = confirmation.get_body(("html",)).get_content()
    assert '<div style="color:#555"><p>-- </p><p>Acme care team</p></div>' in html


def test_what_a_visitor_types_is_kept_character_for_character(client, brand):
    typed = {"name": "Zoë Ñandú", "email": "zoe@example.org", "subject": "Заказ 42 — 注文",
             "message": "Price 5% + tax & fees = 7€?\nSecond line 🙂 a+b=c"}
    response = submit(client, typed)
    assert response.status_code == 200
    ticket = Ticket.get_by_id(int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1)))
    assert ticket.subject == typed["subject"] and ticket.customer.name == typed["name"]
    first = Message.get(Message.ticket == ticket, Message.direction == "incoming")
    assert first.body_text == typed["message"]


def test_without_acknowledgements_the_thanks_page_promises_no_confirmation(client, brand,
                                                                          smtp_server):
    brand.ack_enabled = False
    brand.save()
    response = submit(client, VALID)
    assert response.status_code == 200
    assert "We sent a confirmation" not in response.text
    assert "We will answer you at maria@example.org" in response.text
    assert Message.select().where(Message.direction == "outgoing").count() == 0


def test_default_contact_page_uses_the_default_brand(client, brand):
    page = client.get("/contact")
    assert page.status_code == 200 and "Acme Outdoor" in page.text
    missing = client.get("/contact/nope")
    assert missing.status_code == 404 and "There is no contact form here." in missing.text
    assert "Back to the queue" not in missing.text  # a visitor has no queue


def test_without_a_subject_the_first_line_of_the_message_stands_in(client, brand):
    response = submit(client, {**VALID, "subject": "",
                               "message": "My order 1042 is late\nIt was due on Monday."})
    reference = int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1))
    assert Ticket.get_by_id(reference).subject == "My order 1042 is late"


def test_invalid_input_shows_a_message_per_field_and_keeps_what_was_typed(client, brand):
    response = submit(client, {"name": "", "email": "not-an-address", "subject": "Kept subject",
                               "message": ""})
    assert response.status_code == 400
    assert "Please tell us your name." in response.text
    assert "This email address does not look right" in response.text
    assert "Please write your message." in response.text
    assert 'value="not-an-address"' in response.text and 'value="Kept subject"' in response.text
    assert Ticket.select().count() == 0


def test_honeypot_refuses_with_a_clear_message(client, brand):
    response = submit(client, {**VALID, "website": "http://spam.example"})
    assert response.status_code == 400 and "meant to stay empty" in response.text
    assert 'value="maria@example.org"' in response.text
    assert Ticket.select().count() == 0


def test_too_many_submissions_from_one_address_are_refused(client, brand, settings):
    limit = int(settings.form_rate_per_address.split("/")[0])
    for n in range(limit):
        assert submit(client, {**VALID, "subject": f"n{n}"}).status_code == 200
    response = submit(client, VALID)
    assert response.status_code == 429 and "Please wait a while" in response.text
    assert Ticket.select().count() == limit


def test_too_long_message_is_refused_with_its_length(client, brand, settings):
    response = submit(client, {**VALID, "message": "x" * (settings.max_message_chars + 1)})
    assert response.status_code == 400 and "too long" in response.text


def test_the_message_box_stops_where_the_limit_is(client, brand, settings):
    # A browser then never sends a message that is refused, and loses nothing typed.
    page = client.get("/contact/acme").text
    assert f'<textarea name="message" rows="8" required maxlength="{settings.max_message_chars}"' in page


def test_too_large_request_is_refused_before_it_is_read(client, brand):
    response = submit(client, {**VALID, "message": "x" * 300_000})
    assert response.status_code == 413 and "too large" in response.text


def test_too_large_request_without_a_declared_length_is_refused_as_it_arrives(client, brand):
    body = urlencode({**VALID, "message": "x" * 300_000}).encode()
    chunked = (body[i:i + 16_384] for i in range(0, len(body), 16_384))  # no Content-Length
    response = client.post("/contact/acme", content=chunked,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and "too large" in response.text
    assert Ticket.select().count() == 0


def test_a_multipart_submission_is_read_like_a_plain_one(client, brand):
    response = client.post("/contact/acme", files={key: (None, value) for key, value in VALID.items()})
    assert response.status_code == 200
    ticket = Ticket.get_by_id(int(re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1)))
    assert ticket.subject == "Parcel" and ticket.customer.email == "maria@example.org"


def test_header_injection_in_fields_does_not_reach_the_mail_headers(client, brand, smtp_server):
    response = submit(client, {"name": "Eve\r\nBcc: victim@example.net", "email": "eve@example.org",
                               "subject": "Hi\r\nBcc: victim@example.net\r\nX-Evil: 1",
                               "message": "Body\r\nBcc: victim@example.net"})
    assert response.status_code == 200
    mail = smtp_server.wait_for(1)[0]
    envelope = smtp_server.envelopes[0]
    assert envelope.rcpt_tos == ["eve@example.org"]
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert "\n" not in mail["Subject"] and "\r" not in mail["Subject"]
    assert Customer.get(Customer.email == "eve@example.org").name == "Eve Bcc: victim@example.net"


def test_injected_address_is_refused(client, brand):
    response = submit(client, {**VALID, "email": "eve@example.org\r\nBcc: victim@example.net"})
    assert response.status_code == 400 and Ticket.select().count() == 0


def test_markup_typed_by_a_visitor_is_shown_as_text(agent_client, brand):
    submit(agent_client, {**VALID, "subject": "<script>alert(1)</script>",
                          "message": "<img src=x onerror=alert(1)>"})
    ticket = Ticket.get()
    for page in ("/", f"/tickets/{ticket.id}"):
        html = agent_client.get(page).text
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_visitor_quoting_an_earlier_mail_is_shown_as_typed_not_folded(agent_client, brand):
    typed = ("My answer is below.\n\nOn Mon, 1 Jan 2024 at 10:00, Acme wrote:\n"
             "> Have you tried turning the pole?")
    submit(agent_client, {**VALID, "message": typed})
    page = agent_client.get(f"/tickets/{Ticket.get().id}").text
    assert 'class="quoted"' not in page
    assert "Have you tried turning the pole?" in page and "My answer is below." in page


def test_submitting_the_same_form_twice_makes_one_ticket(client, brand):
    page = client.get("/contact/acme").text
    submission_id = re.search(r'name="submission_id" value="([0-9a-f]+)"', page).group(1)
    first = client.post("/contact/acme", data={**VALID, "submission_id": submission_id})
    again = client.post("/contact/acme", data={**VALID, "submission_id": submission_id})
    assert first.status_code == again.status_code == 200
    assert Ticket.select().count() == 1 and Message.select().where(Message.direction == "incoming").count() == 1
