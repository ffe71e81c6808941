"""Building the email for an outgoing message: both parts, our ids, the thread's headers."""
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from app.models import Message, TicketField
from app.templating import render

MAX_REFERENCES = 20

DEFAULT_ACKNOWLEDGEMENT = """Hello {{ name or "there" }},

we received your message "{{ subject }}" and will answer {{ response_time }}.
Its reference is {{ reference }}. To add something, simply answer this email."""

# Admins write the acknowledgement; a sandbox keeps their template from reaching Python.
_sandbox = SandboxedEnvironment(autoescape=False)


def acknowledgement_text(brand, ticket, customer) -> str:
    values = {"name": customer.name, "subject": ticket.subject, "reference": ticket.reference,
              "response_time": brand.response_time}
    try:
        return _sandbox.from_string(brand.ack_template or DEFAULT_ACKNOWLEDGEMENT).render(values)
    except TemplateError:
        return _sandbox.from_string(DEFAULT_ACKNOWLEDGEMENT).render(values)


def _address(name: str, address: str) -> Address:
    username, _, domain = address.partition("@")
    return Address(display_name=name, username=username, domain=domain)


def subject_for(message: Message) -> str:
    ticket = message.ticket
    if message.is_auto:
        return f"[{ticket.reference}] We received your message: {ticket.subject}"
    return f"[{ticket.reference}] Re: {ticket.subject}"


def thread_ids(message: Message) -> list[str]:
    """Message-IDs of the ticket's earlier mail, oldest first, that the new one answers."""
    earlier = (Message.select(Message.message_id)
               .where((Message.ticket == message.ticket_id) & (Message.id < message.id)
                      & (Message.message_id != "") & (Message.direction != "note"))
               .order_by(Message.id))
    ids = [m.message_id for m in earlier]
    return ids[-MAX_REFERENCES:]


def compose(message: Message) -> EmailMessage:
    ticket = message.ticket
    brand = ticket.brand
    customer = ticket.customer
    context = {"message": message, "ticket": ticket, "brand": brand, "customer": customer}
    kind = "confirmation" if message.is_auto else "reply"
    if message.is_auto:
        context["acknowledgement"] = acknowledgement_text(brand, ticket, customer)
        # A form's confirmation repeats what was filled in, so the customer can check it.
        context["fields"] = list(TicketField.select().where(
            (TicketField.ticket == ticket.id) & (TicketField.value != ""))
            .order_by(TicketField.position)) if ticket.form_id else []

    mail = EmailMessage()
    mail["From"] = _address(brand.name, brand.address)
    mail["To"] = _address(customer.name, message.to_address)
    mail["Subject"] = subject_for(message)
    mail["Date"] = format_datetime(datetime.now(timezone.utc))
    mail["Message-ID"] = message.message_id
    references = thread_ids(message)
    if references:
        mail["In-Reply-To"] = references[-1]
        mail["References"] = " ".join(references)
    if message.is_auto:
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(render(f"email/{kind}.txt", **context))
    mail.add_alternative(render(f"email/{kind}.html", **context), subtype="html")
    return mail
