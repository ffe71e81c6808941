"""Demo data: two brands, two agents and a dozen tickets, so a newcomer sees a working inbox."""
from datetime import timedelta

from app import events
from app.db import transaction
from app.intake import Incoming, receive
from app.models import Event, Message, Ticket, utcnow
from app.services import agents, brands, forms, tickets

DEMO_PASSWORD = "demo-password"
# Where a local test page may show the chat widget (python3 -m http.server 8080; see README).
DEMO_WIDGET_ORIGINS = "http://127.0.0.1:8080\nhttp://localhost:8080"
AGENTS = [("ada@example.com", "Ada Admin", "admin"), ("sam@example.com", "Sam Support", "agent")]

# (brand, channel, customer, email, subject, message, agent's answer or None, final status, hours ago)
TICKETS = [
    ("acme", "form", "Maria Lopez", "maria@example.org", "Where is my order #5521?",
     "Hi, I ordered a tent two weeks ago and it has not arrived yet. Can you check?",
     "Hi Maria, your parcel left our warehouse yesterday; tracking: ZX123. Sorry for the wait!",
     "pending", 50),
    ("acme", "email", "Tom Becker", "tom.becker@example.net", "Broken zipper on sleeping bag",
     "The zipper broke on the first night. What can I do?", None, "new", 2),
    ("acme", "chat", "Visitor Lee", "lee@example.com", "Do you ship to Norway?",
     "Do you ship to Norway, and how long does it take?",
     "Yes, we do: 4 to 6 working days, customs included.", "resolved", 30),
    ("acme", "email", "Priya Natarajan", "priya@example.org", "Invoice for company purchase",
     "Could you send an invoice with our VAT number DE123456789?", None, "open", 6),
    ("acme", "form", "Jonas Weber", "jonas@example.com", "Return label missing",
     "The return label was not in the box. Please send one.",
     "Here is your return label, attached to this email. Thanks!", "resolved", 80),
    ("acme", "chat", "Guest 4711", "guest4711@example.net", "Size chart for boots",
     "Are your boots true to size?", None, "new", 1),
    ("books", "email", "Elena Rossi", "elena@example.org", "Pre-order: signed edition",
     "Will the signed edition of the new novel be available for pre-order?",
     "It will! Pre-orders open on Monday; we will write to you.", "pending", 20),
    ("books", "form", "Liam O'Brien", "liam@example.com", "Damaged book cover",
     "The book arrived with a torn cover. Can I get a replacement?", None, "open", 9),
    ("books", "email", "Chen Wei", "chen.wei@example.net", "Gift wrapping",
     "Do you offer gift wrapping and a card?", "Yes, choose it at checkout: 2 EUR.", "closed", 200),
    ("books", "chat", "Nora Svensson", "nora@example.org", "E-book format",
     "Are your e-books EPUB or PDF?", None, "new", 0.5),
    ("books", "form", "Ahmed Hassan", "ahmed@example.com", "Change delivery address",
     "I moved last week. Please send order 8812 to my new address.",
     "Done: order 8812 goes to your new address.", "resolved", 40),
    ("books", "email", "Win a free iPhone!!!", "promo@spam.example", "You are a WINNER",
     "Click here to claim your prize.", None, "spam", 12),
]


# Each brand's "Returns" form, and what two of the form tickets above were sent with.
RETURNS_FORM = [
    {**forms.blank_field("choice"), "label": "Topic", "required": True,
     "options": ["Refund", "Exchange", "Damaged item", "Missing return label"]},
    {**forms.blank_field("order"), "label": "Order number", "required": True, "pattern": "digits",
     "help": "On your order confirmation, like 5521."},
    {**forms.blank_field("checkbox"), "label": "I still have the original packaging"},
    {**forms.blank_field("file"), "label": "Photos", "help": "Of the item or its damage, if any."},
]
FORM_ANSWERS = {  # by subject: {label: value}
    "Return label missing": {"Topic": "Missing return label", "Order number": "5521",
                             "I still have the original packaging": "yes"},
    "Damaged book cover": {"Topic": "Damaged item", "Order number": "7340"},
}


class DemoError(Exception):
    pass


def is_empty() -> bool:
    return not agents.any_agent_exists() and not Ticket.select().exists()


def load(secret_key: str) -> list[tuple[str, str, str]]:
    """Load the demo; returns (email, password, role) of the agents to log in with."""
    if not is_empty():
        raise DemoError("The database already has data; the demo loads only into an empty one.")
    team = [agents.create_agent(email, name, DEMO_PASSWORD, role) for email, name, role in AGENTS]
    brand_of = {
        "acme": brands.create_brand("acme", {"name": "Acme Outdoor", "address": "support@acme.example",
                                             "signature": "Acme Outdoor · Customer care",
                                             "allowed_origins": DEMO_WIDGET_ORIGINS,
                                             "widget_color": "#1f7a4d"}),
        "books": brands.create_brand("books", {"name": "Bright Books", "address": "hello@brightbooks.example",
                                               "signature": "Bright Books",
                                               "allowed_origins": DEMO_WIDGET_ORIGINS,
                                               "widget_color": "#7a3fb0"}),
    }
    form_of = {slug: forms.save_form(None, brand.id, {
        "name": "Returns", "active": True,
        "intro": "Tell us what you would like to return; we answer within a working day."},
        RETURNS_FORM) for slug, brand in brand_of.items()}
    for number, (slug, channel, name, email, subject, text, answer, status, hours) in enumerate(TICKETS):
        form = form_of[slug] if subject in FORM_ANSWERS else None
        result = receive(Incoming(channel=channel, brand=brand_of[slug], sender_email=email,
                                  sender_name=name, subject=subject, text=text,
                                  channel_ref=f"demo:{number}",
                                  fields=_form_fields(form, FORM_ANSWERS[subject]) if form else [],
                                  form_id=form.id if form else None), secret_key)
        ticket_id = result.ticket.id
        agent = team[number % 2]
        if status != "new":
            tickets.assign(ticket_id, agent.id, agent)
        if answer:
            _answered(ticket_id, answer, agent, secret_key)
        if status != "new":
            tickets.change_status(ticket_id, status, agent)
        _backdate(ticket_id, timedelta(hours=hours))
    return [(email, DEMO_PASSWORD, role) for email, _, role in AGENTS]


def _form_fields(form, answers: dict) -> list[dict]:
    values = {f["key"]: answers.get(f["label"], "") for f in form.field_list}
    return forms.snapshot(form, forms.Submission(values=values))


def _answered(ticket_id: int, text: str, agent, secret_key: str) -> None:
    """A reply that went out long ago: stored as sent, without mailing anyone now."""
    with transaction():
        ticket = tickets.lock_ticket(ticket_id)
        message = tickets.new_outgoing(ticket, secret_key, text, agent)
        message.state, message.sent_at, message.next_attempt_at = "sent", utcnow(), None
        message.save()
        events.record("message.sent", ticket=ticket, message_id=message.id, to=message.to_address)
        ticket.waiting_since = None
        ticket.save()


def _backdate(ticket_id: int, age: timedelta) -> None:
    """Spread the demo over the last days, keeping each ticket's order of events."""
    with transaction():
        ticket = Ticket.get_by_id(ticket_id)
        shift = ticket.created_at - (utcnow() - age)
        step = timedelta(minutes=7)
        for field in ("created_at", "last_activity_at", "waiting_since", "resolved_at"):
            if getattr(ticket, field):
                setattr(ticket, field, getattr(ticket, field) - shift)
        ticket.last_activity_at = ticket.created_at + step
        ticket.save()
        messages = Message.select().where(Message.ticket == ticket_id).order_by(Message.id)
        for n, message in enumerate(messages):
            message.created_at = ticket.created_at + step * n
            message.sent_at = message.created_at if message.sent_at else None
            message.save()
        for n, event in enumerate(Event.select().where(Event.ticket == ticket_id).order_by(Event.id)):
            event.created_at = ticket.created_at + step * n / 2
            event.save()
