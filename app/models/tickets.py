"""Tickets, their messages, and the per-filter tallies that make queue counters cheap."""
import peewee

from app.models.accounts import Agent
from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.brands import Brand
from app.models.customers import Customer

STATUSES = ("new", "open", "pending", "resolved", "closed", "spam")
ACTIVE_STATUSES = ("new", "open", "pending")
CHANNELS = ("email", "form", "chat")


class Ticket(BaseModel):
    subject = peewee.CharField(max_length=255)
    status = peewee.CharField(default="new")
    # 1 while the status is new, open or pending: one index then serves the default queue.
    is_active = peewee.BooleanField(default=True)
    channel = peewee.CharField()
    # brand and assignee lead indexes of their own below; one more on each would cost every
    # write and serve no read.
    brand = peewee.ForeignKeyField(Brand, backref="tickets", index=False)
    customer = peewee.ForeignKeyField(Customer, backref="tickets")
    assignee = peewee.ForeignKeyField(Agent, null=True, backref="tickets", index=False)
    created_at = DateTimeField(default=utcnow)
    last_activity_at = DateTimeField(default=utcnow)
    waiting_since = DateTimeField(null=True)  # oldest customer message not yet answered
    resolved_at = DateTimeField(null=True)
    # The earlier ticket this one follows up (an answer to a ticket closed long ago). A plain
    # id: SQLite cannot add a column with a foreign key to a table that has rows.
    linked_ticket_id = peewee.IntegerField(null=True)
    # True while the ticket's chat is live: an answer then goes to the chat, not by email.
    is_live = peewee.BooleanField(default=False)
    # The contact form it came from (app.models.forms.Form), a plain id for the same reason.
    form_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = (
            (("last_activity_at", "id"), False),
            (("is_active", "last_activity_at", "id"), False),
            (("status", "last_activity_at", "id"), False),
            (("assignee", "last_activity_at", "id"), False),
            (("channel", "last_activity_at", "id"), False),
            (("brand", "last_activity_at", "id"), False),
        )

    @property
    def reference(self) -> str:
        return f"#{self.id}"


class Message(BaseModel):
    # Indexed by (ticket, id) below. Agents are never deleted, so author needs no index.
    ticket = peewee.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE", index=False)
    direction = peewee.CharField()  # incoming, outgoing, note
    author = peewee.ForeignKeyField(Agent, null=True, index=False)  # for outgoing and notes
    is_auto = peewee.BooleanField(default=False)  # confirmations and acknowledgements
    body_text = peewee.TextField(default="")
    body_html = peewee.TextField(default="")  # sanitized before it is stored
    # Outgoing delivery: queued -> sent, or failed with the reason in words.
    state = peewee.CharField(default="received")
    error = peewee.TextField(default="")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = DateTimeField(null=True)
    sent_at = DateTimeField(null=True)
    to_address = peewee.CharField(default="")
    message_id = peewee.CharField(default="", index=True)  # RFC 5322 Message-ID, ours or theirs
    # What the channel calls this item (form submission id, IMAP mailbox+UIDVALIDITY+UID, ...):
    # unique, so that receiving the same thing twice changes nothing.
    channel_ref = peewee.CharField(null=True)  # unique where set: PARTIAL_INDEXES
    # For mail: the same Message-ID with the same content is the same mail, whichever mailbox
    # or UID it came from (one mail sent To and Cc two of our addresses is one message).
    dedupe_key = peewee.CharField(null=True)  # unique where set: PARTIAL_INDEXES
    raw_sha256 = peewee.CharField(default="")  # the original as received, in the blob store
    notes = peewee.TextField(default="")  # what could not be read or kept, in words
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "id"), False),
                   (("to_address", "created_at"), False))  # acknowledgements sent lately

    @property
    def may_have_files(self) -> bool:
        """Files come only with a mail or a form received (app.intake): never with what was
        written here, nor with a chat message (channel_ref chat:...)."""
        return self.direction == "incoming" and not (self.channel_ref or "").startswith("chat:")

    @property
    def in_chat(self) -> bool:
        """An answer given into a live chat (not mailed)."""
        return self.direction == "outgoing" and not self.to_address


# Indexes on columns most rows leave empty hold only the rows that fill them: most writes then
# skip them (a form's ticket, its message and its confirmation skip five). A query comparing
# the column (=, <, IN) implies IS NOT NULL, and SQLite and PostgreSQL use the index for it.
PARTIAL_INDEXES = (
    Ticket.index(Ticket.form_id, Ticket.last_activity_at, Ticket.id,
                 where=Ticket.form_id.is_null(False), name="ticket_form_id_last_activity_at_id"),
    Ticket.index(Ticket.status, Ticket.resolved_at, where=Ticket.resolved_at.is_null(False),
                 name="ticket_status_resolved_at"),
    # Only mail still to send has a next attempt.
    Message.index(Message.state, Message.next_attempt_at,
                  where=Message.next_attempt_at.is_null(False),
                  name="message_state_next_attempt_at"),
    Message.index(Message.channel_ref, unique=True, where=Message.channel_ref.is_null(False),
                  name="message_channel_ref"),
    Message.index(Message.dedupe_key, unique=True, where=Message.dedupe_key.is_null(False),
                  name="message_dedupe_key"),
)
for _index in PARTIAL_INDEXES:
    _index._model.add_index(_index)


class TicketTally(BaseModel):
    """How many tickets share one (status, brand, channel, assignee): counters sum these rows."""

    status = peewee.CharField()
    brand_id = peewee.IntegerField()
    channel = peewee.CharField()
    assignee_id = peewee.IntegerField()  # 0: unassigned
    count = peewee.IntegerField(default=0)

    class Meta:
        indexes = ((("status", "brand_id", "channel", "assignee_id"), True),)
