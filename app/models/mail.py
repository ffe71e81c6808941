"""Mailboxes (IMAP accounts of a brand), mail skipped for its size, and stored attachments."""
import peewee

from app.models.base import BaseModel, DateTimeField, utcnow
from app.models.brands import Brand
from app.models.tickets import Message

IMAP_SECURITY = ("ssl", "starttls", "none")


class Mailbox(BaseModel):
    name = peewee.CharField(unique=True)
    brand = peewee.ForeignKeyField(Brand, backref="mailboxes")
    imap_host = peewee.CharField()
    imap_port = peewee.IntegerField(default=993)
    imap_security = peewee.CharField(default="ssl")
    username = peewee.CharField()
    password = peewee.CharField(default="")
    folder = peewee.CharField(default="INBOX")
    addresses = peewee.TextField(default="")  # the addresses it receives for, comma-separated
    # Outgoing mail for answers to this mailbox's tickets; empty host: the brand's server.
    smtp_host = peewee.CharField(default="")
    smtp_port = peewee.IntegerField(default=587)
    smtp_security = peewee.CharField(default="starttls")
    smtp_username = peewee.CharField(default="")
    smtp_password = peewee.CharField(default="")
    mark_seen = peewee.BooleanField(default=True)  # False: leave the mailbox untouched
    paused = peewee.BooleanField(default=False)
    # Where fetching stands: UIDs are only comparable within one UIDVALIDITY.
    uidvalidity = peewee.BigIntegerField(null=True)
    last_uid = peewee.BigIntegerField(default=0)
    last_check_at = DateTimeField(null=True)
    last_success_at = DateTimeField(null=True)
    fetched_count = peewee.IntegerField(default=0)
    last_error = peewee.TextField(default="")
    error_since = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    @property
    def address_list(self) -> list[str]:
        return [a.strip().lower() for a in self.addresses.split(",") if a.strip()]


class SkippedMail(BaseModel):
    """A mail not made into a message: over the size limit, or it could not be stored. Left on
    the server and listed for the admins, never fetched again by itself."""

    mailbox = peewee.ForeignKeyField(Mailbox, backref="skipped", on_delete="CASCADE")
    uidvalidity = peewee.BigIntegerField()
    uid = peewee.BigIntegerField()
    size = peewee.BigIntegerField()
    sender = peewee.CharField(default="")
    subject = peewee.CharField(default="")
    reason = peewee.TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("mailbox", "uidvalidity", "uid"), True),)


class Attachment(BaseModel):
    """A file of a message, its bytes kept in the data directory under their SHA-256."""

    message = peewee.ForeignKeyField(Message, backref="attachments", on_delete="CASCADE")
    filename = peewee.CharField()
    content_type = peewee.CharField()
    size = peewee.BigIntegerField()
    sha256 = peewee.CharField()
    content_id = peewee.CharField(default="")
    inline = peewee.BooleanField(default=False)
