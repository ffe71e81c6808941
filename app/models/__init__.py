"""Peewee models, one module per aggregate."""
from app.models.accounts import Agent
from app.models.base import BaseModel, database, prepared, utcnow
from app.models.brands import Brand
from app.models.chat import ChatSession
from app.models.customers import Customer, CustomerIdentity
from app.models.events import Event
from app.models.forms import Form, TicketField
from app.models.mail import Attachment, Mailbox, SkippedMail
from app.models.tickets import Message, Ticket, TicketTally

ALL_MODELS = [Agent, Brand, Customer, CustomerIdentity, Ticket, Message, TicketTally, Event,
              Mailbox, SkippedMail, Attachment, Form, TicketField, ChatSession]

__all__ = [
    "ALL_MODELS", "Agent", "Attachment", "BaseModel", "Brand", "ChatSession", "Customer", "CustomerIdentity",
    "Event", "Form", "Mailbox", "Message", "SkippedMail", "Ticket", "TicketField", "TicketTally",
    "database", "prepared", "utcnow",
]
