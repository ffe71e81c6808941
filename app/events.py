"""The event log and the broadcaster that turns new events into server-sent events."""
import asyncio
import json
import logging
import threading

from peewee import fn

from app.models import Event, prepared, utcnow

log = logging.getLogger(__name__)


# One encoder for all: json.dumps(data, default=str) would make a new one for every event.
_to_json = json.JSONEncoder(default=str).encode


def row(kind: str, ticket=None, agent=None, **data) -> dict:
    """One event as a row, for record_rows()."""
    return {"kind": kind, "ticket": ticket, "agent": agent, "data": _to_json(data),
            "created_at": utcnow()}


def record_rows(rows: list[dict]) -> None:
    """Append several events in one statement; call it inside the transaction that made them."""
    if rows:
        Event.insert_rows(rows)


def record(kind: str, ticket=None, agent=None, **data) -> None:
    """Append one event; call it inside the transaction that made the change."""
    record_rows([row(kind, ticket, agent, **data)])


def event_data(event: Event) -> dict:
    return json.loads(event.data or "{}")


# Wakes the broadcasters of this process right after a commit, so that a change made here
# reaches the screens without waiting for the next poll. Changes made by other processes
# are found by polling.
_wake_callbacks: list = []
_wake_lock = threading.Lock()


def notify() -> None:
    with _wake_lock:
        callbacks = list(_wake_callbacks)
    for callback in callbacks:
        callback()


class Broadcaster:
    """Reads new events from the log and hands them to every subscriber of this process."""

    def __init__(self, poll_interval: float = 0.25, batch: int = 500):
        self.poll_interval = poll_interval
        self.batch = batch
        self.subscribers: set = set()
        self.last_id = 0
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def _wake_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.last_id = latest_event_id()
        with _wake_lock:
            _wake_callbacks.append(self._wake_threadsafe)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        with _wake_lock:
            if self._wake_threadsafe in _wake_callbacks:
                _wake_callbacks.remove(self._wake_threadsafe)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for subscriber in list(self.subscribers):
            subscriber.close()

    def subscribe(self, subscriber) -> None:
        self.subscribers.add(subscriber)

    def unsubscribe(self, subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that meets a wake-up, and stop() would then wait for ever.
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self.publish_new()
            except Exception:
                log.exception("broadcaster could not read new events")

    def publish_new(self) -> None:
        if not any(subscriber.listening for subscriber in self.subscribers):
            # No stream is open here: nothing to read. One that opens later hears of what
            # happens from then on, as it would anyway.
            self.last_id = latest_event_id()
            return
        while True:
            events = list(events_after(self.last_id, self.batch))
            if events:
                self.last_id = events[-1].id
            for event, is_new in latest_per_ticket(events):
                for subscriber in list(self.subscribers):
                    subscriber.offer(event, is_new)
            if len(events) < self.batch:
                return


def end_stream(pending: asyncio.Queue) -> None:
    """Queue the None that ends an open stream; when its queue is full, the oldest waiting
    frame makes room (the client reconnects and catches up anyway)."""
    while True:
        try:
            pending.put_nowait(None)
            return
        except asyncio.QueueFull:
            pending.get_nowait()


# Events that change nothing about the ticket (someone is typing in a chat): passed on each
# one, never standing in for a change, and left out of the ticket's history.
SIGNAL_KINDS = frozenset({"chat.typing"})


def latest_per_ticket(events: list) -> list[tuple]:
    """The last of the events about each ticket, in order, and whether the ticket was created
    among them. Screens show a ticket as it is now, so one update per ticket is enough.
    Signals (SIGNAL_KINDS) are each passed on in their place."""
    latest, created, signals = {}, set(), []
    for event in events:
        if event.kind in SIGNAL_KINDS:
            signals.append((event, False))
            continue
        latest[event.ticket_id] = event
        if event.kind == "ticket.created":
            created.add(event.ticket_id)
    changes = [(e, e.ticket_id in created) for e in latest.values()]
    return sorted(changes + signals, key=lambda pair: pair[0].id)


@prepared
def _max_event_id():
    return Event.select(fn.MAX(Event.id)).tuples()


def latest_event_id() -> int:
    # Read for every queue page: MAX of the primary key is one index lookup in SQLite and
    # PostgreSQL alike, and prepared, as building it with peewee cost more than running it.
    return next(iter(_max_event_id()))[0] or 0


@prepared
def events_after(event_id: int, limit: int):
    """The events after event_id, oldest first, at most limit of them."""
    return Event.select().where(Event.id > event_id).order_by(Event.id).limit(limit)
