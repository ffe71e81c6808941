"""Brands (stores): each owns a support address and its outgoing mail server."""
import peewee

from app.models.base import BaseModel, DateTimeField, utcnow

SMTP_SECURITY = ("none", "starttls", "ssl")


class Brand(BaseModel):
    slug = peewee.CharField(unique=True)
    name = peewee.CharField()
    address = peewee.CharField()
    signature = peewee.TextField(default="")
    is_default = peewee.BooleanField(default=False)
    smtp_host = peewee.CharField(default="")
    smtp_port = peewee.IntegerField(default=587)
    smtp_security = peewee.CharField(default="starttls")
    smtp_username = peewee.CharField(default="")
    smtp_password = peewee.CharField(default="")
    # The automatic acknowledgement of a new ticket; a template with {{ reference }},
    # {{ subject }}, {{ name }} and {{ response_time }}.
    ack_enabled = peewee.BooleanField(default=True)
    ack_template = peewee.TextField(default="")
    response_time = peewee.CharField(default="within one working day")
    # The chat widget: the sites that may embed it (one origin a line, like
    # https://shop.example), its colour, and when chats are taken ("mon-fri 09:00-17:00";
    # empty: always) in the brand's time zone (an IANA name).
    allowed_origins = peewee.TextField(default="")
    widget_color = peewee.CharField(default="#2f5fd0")
    business_hours = peewee.TextField(default="")
    timezone = peewee.CharField(default="UTC")
    created_at = DateTimeField(default=utcnow)
