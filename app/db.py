"""Database setup: connect from the configured URL, set SQLite pragmas, run numbered migrations."""
import logging
import threading
from contextlib import contextmanager

import peewee
from playhouse.db_url import connect as connect_url

from app.models import ALL_MODELS, BaseModel, database

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",  # durable across process crashes in WAL mode
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "cache_size": -32000,
}


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)


def _create_initial_tables(db):
    db.create_tables(ALL_MODELS)


# Append only: each entry runs once, in order, at start-up.
MIGRATIONS = [
    (1, _create_initial_tables),
]


# Bumped by every connect(): in-memory caches of database contents are keyed by it, so that a
# process that connects to another database (tests do) never sees the old one's data.
generation = 0


def connect(settings) -> peewee.Database:
    """Bind the models to the configured database and bring its schema up to date."""
    global generation
    generation += 1
    url = settings.db_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = connect_url(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        db = connect_url(url)
    database.initialize(db)
    migrate(db)
    return db


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


def migrate(db) -> None:
    with db.atomic():
        db.create_tables([SchemaVersion])
        done = {row.version for row in SchemaVersion.select()}
        for version, step in MIGRATIONS:
            if version not in done:
                log.info("applying migration %s", version)
                step(db)
                SchemaVersion.create(version=version)
