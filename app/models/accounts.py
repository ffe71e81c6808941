"""Agents: the people who answer tickets."""
import peewee

from app.models.base import BaseModel, DateTimeField, utcnow

ROLES = ("admin", "agent")


class Agent(BaseModel):
    email = peewee.CharField(unique=True)
    name = peewee.CharField()
    password_hash = peewee.CharField()
    role = peewee.CharField(default="agent")
    active = peewee.BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    # Presence for the chat widget: online = active, not away, and seen lately.
    last_seen_at = DateTimeField(null=True)
    away = peewee.BooleanField(default=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
