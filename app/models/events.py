"""The append-only event log: history, audit, reports and the live feed."""
import peewee

from app.models.accounts import Agent
from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.tickets import Ticket


class Event(BaseModel):
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="events", on_delete="CASCADE")
    kind = peewee.CharField()  # ticket.created, ticket.status, ticket.assigned, message.received, ...
    agent = peewee.ForeignKeyField(Agent, null=True)  # who did it; empty for customers and the system
    data = peewee.TextField(default="{}")  # JSON
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "id"), False),)
