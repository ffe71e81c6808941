"""The base model and the database proxy every model is bound to."""
from datetime import datetime, timezone

import peewee

database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite and PostgreSQL then compare and sort alike.
    return datetime.now(timezone.utc).replace(tzinfo=None)


class DateTimeField(peewee.DateTimeField):
    """A naive UTC timestamp. SQLite hands back text: fromisoformat reads it many times faster
    than peewee's strptime attempts, which dominated the cost of a queue page."""

    def python_value(self, value):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                return super().python_value(value)
        return value


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False
