"""Database setup: connect from the configured URL, set SQLite pragmas, run numbered migrations."""
import datetime
import logging
import sqlite3
import threading
from contextlib import contextmanager

import peewee
from playhouse.db_url import connect as connect_url
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_schema

from app.models import ALL_MODELS, BaseModel, database

log = logging.getLogger(__name__)

# How sqlite3 has always stored dates and times (and peewee reads them back), registered here
# because Python 3.12 deprecates the module's own default adapters.
sqlite3.register_adapter(datetime.datetime, lambda value: value.isoformat(" "))
sqlite3.register_adapter(datetime.date, lambda value: value.isoformat())

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",  # durable across process crashes in WAL mode
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "cache_size": -32000,
    # Checkpoints are the Checkpoints thread's job; this only bounds the WAL if it falls behind.
    "wal_autocheckpoint": 20000,
}


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)


def _create_initial_tables(db):
    db.create_tables(ALL_MODELS)


def _add_columns(db, table: str, fields: list) -> None:
    """Add the columns a table lacks (a database made by an older version)."""
    present = {column.name for column in db.get_columns(table)}
    migrator = SchemaMigrator.from_database(db)
    for field in fields:
        if field.column_name in present:
            continue
        # Added as NULL-able and filled with the default: making it NOT NULL would have
        # SQLite rebuild the table, which foreign keys pointing at it forbid.
        nullable = field.clone()
        nullable.null = True
        operations = [migrator.add_column(table, field.column_name, nullable)]
        if field.default is not None:
            operations.append(migrator.apply_default(table, field.column_name, field))
        migrate_schema(*operations)


def _email_channel(db):
    from app.models import Attachment, Brand, Mailbox, Message, SkippedMail, Ticket

    # Columns first: SQLite reads an index on a missing "column" as an index on a string.
    _add_columns(db, "message", [Message.dedupe_key, Message.raw_sha256, Message.notes])
    _add_columns(db, "ticket", [Ticket.linked_ticket_id])
    _add_columns(db, "brand", [Brand.ack_enabled, Brand.ack_template, Brand.response_time])
    db.create_tables([Mailbox, SkippedMail, Attachment])
    Message._schema.create_indexes(safe=True)


def _forms(db):
    """Structured contact forms: the forms, the fields each ticket keeps, the ticket's form."""
    from app.models import Form, Ticket, TicketField

    _add_columns(db, "ticket", [Ticket.form_id])
    db.create_tables([Form, TicketField])
    # Only this index: the model may list indexes on columns a later migration adds.
    db.execute(peewee.ModelIndex(Ticket, (Ticket.form_id, Ticket.last_activity_at, Ticket.id)))


def _chat(db):
    """The chat widget: brand settings, agent presence, live chat tickets, chat sessions."""
    from app.models import Agent, Brand, ChatSession, Ticket

    _add_columns(db, "brand", [Brand.allowed_origins, Brand.widget_color, Brand.business_hours,
                               Brand.timezone])
    _add_columns(db, "agent", [Agent.last_seen_at, Agent.away])
    _add_columns(db, "ticket", [Ticket.is_live])
    db.create_tables([ChatSession])


def _fewer_indexes(db):
    """Indexes every write paid for and no read used: on a column that leads another index,
    or on who wrote (agents are never deleted)."""
    for name in ("ticket_brand_id", "ticket_assignee_id", "message_ticket_id",
                 "message_author_id", "event_ticket_id", "event_agent_id"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def _partial_indexes(db):
    """Indexes on columns most rows leave empty keep only the rows that fill them."""
    from app.models.tickets import PARTIAL_INDEXES

    for index in PARTIAL_INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{index._name}"')
        db.execute(index)


# Append only: each entry runs once, in order, at start-up.
MIGRATIONS = [
    (1, _create_initial_tables),
    (2, _email_channel),
    (3, _forms),
    (4, _chat),
    (5, _fewer_indexes),
    (6, _partial_indexes),
]


# Bumped by every connect(): in-memory caches of database contents are keyed by it, so that a
# process that connects to another database (tests do) never sees the old one's data.
generation = 0


def connect(settings) -> peewee.Database:
    """Bind the models to the configured database and bring its schema up to date."""
    global generation
    generation += 1
    url = settings.db_url
    # Whatever the database: the data directory also keeps the job queue and attachments.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        db = connect_url(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        db = connect_url(url)
    database.initialize(db)
    migrate(db)
    if isinstance(db, peewee.SqliteDatabase):
        Checkpoints.start_for(db)
    return db


class Checkpoints(threading.Thread):
    """Copies committed pages from the write-ahead log into the database file, twice a second,
    on a connection of its own. Left to SQLite, the commit that crosses its limit does it
    and waits for the disk, and that commit is a visitor's or an agent's request."""

    running: "Checkpoints | None" = None
    interval = 0.5

    def __init__(self, db: peewee.SqliteDatabase):
        super().__init__(name="sqlite-checkpoints", daemon=True)
        self.db = db
        self.stopped = threading.Event()

    @classmethod
    def start_for(cls, db: peewee.SqliteDatabase) -> None:
        if cls.running is not None:
            cls.running.stopped.set()
        cls.running = cls(db)
        cls.running.start()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                # PASSIVE: never waits for, nor holds up, the readers and writers.
                self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except peewee.DatabaseError as exc:
                log.warning("checkpoint of the database failed: %s", exc)
        self.db.close()


# SQLite lets one writer in at a time and makes the others wait in its busy handler, which
# sleeps in steps of milliseconds. Threads of one process queue here instead and are handed
# the lock at once; other processes still meet SQLite's own lock.
_sqlite_writers = threading.RLock()


@contextmanager
def transaction():
    """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so that
    a read-then-write never fails halfway on a lock upgrade; elsewhere rows are locked with
    SELECT ... FOR UPDATE where it matters."""
    db = database.obj
    if isinstance(db, peewee.SqliteDatabase):
        with _sqlite_writers, db.atomic(lock_type="IMMEDIATE"):
            yield
    else:
        with db.atomic():
            yield


@contextmanager
def savepoint():
    """Inside a transaction: what runs in it is undone alone if it fails. Always the same name:
    peewee gives every savepoint a new one, and each new SQL text takes a place in sqlite3's
    cache of prepared statements, pushing out those that run on every request."""
    db = database.obj
    db.execute_sql('SAVEPOINT "part"')
    try:
        yield
    except BaseException:
        db.execute_sql('ROLLBACK TO SAVEPOINT "part"')
        db.execute_sql('RELEASE SAVEPOINT "part"')
        raise
    db.execute_sql('RELEASE SAVEPOINT "part"')


def migrate(db) -> None:
    with db.atomic():
        db.create_tables([SchemaVersion])
        done = {row.version for row in SchemaVersion.select()}
        for version, step in MIGRATIONS:
            if version not in done:
                log.info("applying migration %s", version)
                step(db)
                SchemaVersion.create(version=version)
