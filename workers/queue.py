"""The Huey instance. Its storage is set from Settings by configure() before anything runs."""
from urllib.parse import urlparse

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

huey = SqliteHuey("helpdesk", filename=":memory:")


class QueueStorage(SqliteStorage):
    """Huey's SQLite storage with synchronous=NORMAL, like the main database: Huey's default
    (FULL) waits for the disk on every enqueue and dequeue. A job lost to a power cut is not
    a lost mail: messages wait in the database as queued, and requeue_overdue finds them."""

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn
settings = None  # the Settings the worker runs with, set by configure()


def configure(new_settings) -> Huey:
    """Point the queue at its storage: SQLite in the data directory, or Redis for scale-out."""
    global settings
    settings = new_settings
    if new_settings.huey_url.startswith("redis"):
        storage = RedisHuey("helpdesk", url=new_settings.huey_url).storage
    else:
        path = urlparse(new_settings.huey_url).path if new_settings.huey_url else \
            str(new_settings.data_dir / "queue.db")
        storage = QueueStorage("helpdesk", filename=path)
    huey.storage = storage
    return huey


class EmbeddedConsumer(Consumer):
    """A consumer that runs beside the web server in the same process.

    It leaves signal handling to uvicorn, which stops it through the app's lifespan."""

    def _set_signal_handlers(self):
        pass


# Idle workers look for jobs at least every second (Huey's default backs off to 10 s, which
# a reply waiting to be sent would feel).
CONSUMER_OPTIONS = {"worker_type": "thread", "periodic": True, "scheduler_interval": 1,
                    "max_delay": 1.0}


def start_embedded(workers: int) -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(huey, **CONSUMER_OPTIONS, workers=workers,
                                check_worker_health=False, flush_locks=False, shutdown_timeout=15)
    consumer.start()
    return consumer
