"""Peewee models, one module per aggregate."""
from app.models.accounts import Agent
from app.models.base import BaseModel, database, utcnow
from app.models.brands import Brand
from app.models.customers import Customer, CustomerIdentity
from app.models.events import Event
from app.models.tickets import Message, Ticket, TicketTally

ALL_MODELS = [Agent, Brand, Customer, CustomerIdentity, Ticket, Message, TicketTally, Event]

__all__ = [
    "ALL_MODELS", "Agent", "BaseModel", "Brand", "Customer", "CustomerIdentity", "Event",
    "Message", "Ticket", "TicketTally", "database", "utcnow",
]
