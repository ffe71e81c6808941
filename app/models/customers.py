"""Customers and the identities (email, phone, chat visitor) that lead to them."""
import peewee

from app.models.base import BaseModel, DateTimeField, utcnow


class Customer(BaseModel):
    name = peewee.CharField(default="")
    email = peewee.CharField(default="")  # the address we answer to
    created_at = DateTimeField(default=utcnow)

    @property
    def display_name(self) -> str:
        return self.name or self.email or f"Customer {self.id}"


class CustomerIdentity(BaseModel):
    customer = peewee.ForeignKeyField(Customer, backref="identities", on_delete="CASCADE")
    kind = peewee.CharField()  # email, phone, chat
    value = peewee.CharField()

    class Meta:
        indexes = ((("kind", "value"), True),)
