"""Live queue updates: what each open queue is sent when a ticket is created or changes."""
import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from app.events import SIGNAL_KINDS, end_stream
from app.models import Event
from app.services import directory, queue
from app.templating import render

PUSH_TEMPLATE = "partials/_queue_push.html"


@dataclass
class Push:
    """One ticket's update as ready-to-send server-sent event frames, made once per event."""

    ticket: object
    upsert: bytes  # moves the row to the top of the queue (the newest activity is first)
    remove: bytes  # takes the row out: the ticket no longer matches that queue's filter


def frame(event_id: int, fragment: str) -> bytes:
    return ServerSentEvent(data=fragment, event="queue", id=str(event_id)).encode()


class QueueFeed:
    """Renders each event's row once, however many queues are open in this process."""

    def __init__(self, keep: int = 512):
        self.keep = keep
        self._pushes: OrderedDict[tuple, Push | None] = OrderedDict()
        self.brand_ids: dict = {}

    def push_for(self, event: Event, is_new: bool) -> Push | None:
        key = (event.id, is_new)
        if key in self._pushes:
            return self._pushes[key]
        push = None
        if event.ticket_id and event.kind not in SIGNAL_KINDS:
            ticket = queue.queue_row(event.ticket_id)
            if ticket is not None:
                push = Push(ticket=ticket,
                            upsert=frame(event.id, render(PUSH_TEMPLATE, ticket=ticket, show=True,
                                                          is_new=is_new)),
                            remove=frame(event.id, render(PUSH_TEMPLATE, ticket=ticket, show=False,
                                                          is_new=is_new)))
                self.brand_ids = directory.brand_ids_by_slug()
        self._pushes[key] = push
        while len(self._pushes) > self.keep:
            self._pushes.popitem(last=False)
        return push


class QueueStream:
    """One open queue: its filter, and the fragments waiting to be sent to it."""

    listening = True  # for the broadcaster: an open stream wants every event

    def __init__(self, feed: QueueFeed, queue_filter, agent_id: int, max_pending: int = 1000):
        self.feed = feed
        self.filter = queue_filter
        self.agent_id = agent_id
        self.pending: asyncio.Queue = asyncio.Queue(maxsize=max_pending)

    def frame_for(self, event: Event, is_new: bool) -> bytes | None:
        push = self.feed.push_for(event, is_new)
        if push is None:
            return None
        matches = queue.ticket_matches(self.filter, self.agent_id, self.feed.brand_ids, push.ticket)
        return push.upsert if matches else push.remove

    def offer(self, event: Event, is_new: bool) -> None:
        ready = self.frame_for(event, is_new)
        if ready is None:
            return
        try:
            self.pending.put_nowait(ready)
        except asyncio.QueueFull:
            # A client this far behind reconnects and catches up from the event log.
            self.close()

    def close(self) -> None:
        end_stream(self.pending)
