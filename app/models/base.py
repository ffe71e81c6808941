"""The base model and the database proxy every model is bound to."""
from datetime import datetime, timezone

import peewee

database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite and PostgreSQL then compare and sort alike.
    return datetime.now(timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False
