"""The append-only event log: history, audit, reports and the live feed."""
import peewee

from app.models.accounts import Agent
from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.tickets import Ticket


class Event(BaseModel):
    # Indexed by (ticket, id) below. Agents are never deleted, so agent needs no index.
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="events", on_delete="CASCADE",
                                    index=False)
    kind = peewee.CharField()  # ticket.created, ticket.status, ticket.assigned, message.received, ...
    agent = peewee.ForeignKeyField(Agent, null=True, index=False)  # who; empty for customers
    data = peewee.TextField(default="{}")  # JSON
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "id"), False),)
