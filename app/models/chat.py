"""Chat sessions: a visitor's conversation through the chat widget, which is one ticket."""
import peewee

from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.brands import Brand
from app.models.tickets import Ticket

ENDED_OFFLINE = "left as a message"  # the offline form: a session that was never live


class ChatSession(BaseModel):
    """The widget's side of a chat ticket. The transcript is the ticket's conversation; this
    row only says who may read it (the holder of the visitor token, kept here as its SHA-256)
    and whether the chat is still live."""

    brand = peewee.ForeignKeyField(Brand, backref="chat_sessions")
    ticket = peewee.ForeignKeyField(Ticket, backref="chat_sessions", on_delete="CASCADE")
    token_hash = peewee.CharField(unique=True)
    visitor_name = peewee.CharField(default="")
    visitor_email = peewee.CharField(default="")
    page_url = peewee.TextField(default="")  # the page the visitor wrote from
    origin = peewee.CharField(default="")  # the site that embeds the widget
    state = peewee.CharField(default="live")  # live, ended
    ended_reason = peewee.CharField(default="")
    created_at = DateTimeField(default=utcnow)
    last_visitor_seen_at = DateTimeField(default=utcnow)  # a post, or an open stream
    ended_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("state", "last_visitor_seen_at"), False),)

    @property
    def left_as_message(self) -> bool:
        return self.ended_reason == ENDED_OFFLINE
