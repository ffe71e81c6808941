"""Contact forms of a brand, and the fields a ticket was submitted with (its own copy)."""
import json

import peewee

from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.brands import Brand
from app.models.tickets import Ticket


class Form(BaseModel):
    brand = peewee.ForeignKeyField(Brand, backref="forms")
    slug = peewee.CharField()  # the public address: /forms/<brand slug>/<slug>
    name = peewee.CharField()
    intro = peewee.TextField(default="")
    # The admin's fields in their order, as JSON: [{key, kind, label, help, required, options,
    # pattern, shape}, ...]. Name, email and message are always there and not listed.
    fields = peewee.TextField(default="[]")
    active = peewee.BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("brand", "slug"), True),)

    @property
    def field_list(self) -> list[dict]:
        return json.loads(self.fields or "[]")


class TicketField(BaseModel):
    """One field as the customer submitted it: label, kind and value are copied, so that
    editing the form later never changes the tickets made from it."""

    # Not indexed alone: the unique (ticket, key) index serves lookups by ticket.
    ticket = peewee.ForeignKeyField(Ticket, backref="form_fields", on_delete="CASCADE",
                                    index=False)
    position = peewee.IntegerField()
    key = peewee.CharField(max_length=64)  # stable per form: the queue filters by it
    label = peewee.CharField()
    kind = peewee.CharField()
    value = peewee.TextField(default="")
    # The value again for the fields the queue filters by (choice, checkbox), empty for the
    # others: a long text cannot be in a PostgreSQL index, this short column can.
    choice = peewee.CharField(max_length=200, default="")

    class Meta:
        indexes = ((("ticket", "key"), True), (("key", "choice", "ticket"), False))
